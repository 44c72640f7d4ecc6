"""Runs user code that imports matplotlib and reports each figure shown as a chart artifact.

``coderun`` substitutes the base64 of the user's code for the placeholder below and pipes this
script to ``python3 -u -``. ``plt.show()`` prints one ``dtn_artifact_k39fd2:{json}`` line per new
figure (type, title, axis labels, ticks, scales, elements, PNG as base64), the shape Daytona's
SDK parses into its chart classes. Standard library only, until matplotlib itself is imported.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import importlib.abc
import importlib.util
import io
import json
import linecache
import sys
import traceback
import types
from typing import Any

USER_CODE = "__DTN_USER_CODE__"
FILENAME = "<target_code>"
MARKER = "dtn_artifact_k39fd2:"

_seen: set[str] = set()


def _plain(value: Any) -> Any:
    """JSON-friendly form of numpy scalars, arrays and dates."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, set):
        return list(value)
    return str(value)


def _number_text(value: Any) -> str:
    """A bar's value as the SDK's ``BarData.value`` (a string) wants it: ``40``, ``2.5``."""
    number = float(value)
    return str(int(number)) if number.is_integer() else str(number)


def _ticks(axis: Any, ticks: Any) -> tuple[list[float], str | None]:
    """Tick positions as numbers (dates as matplotlib's day numbers) and the scale they imply."""
    mdates = importlib.import_module("matplotlib.dates")

    # get_converter() since matplotlib 3.10; the attribute before.
    getter = getattr(axis, "get_converter", None)
    converter = getter() if getter is not None else getattr(axis, "converter", None)
    date_converters = tuple(
        getattr(mdates, name)
        for name in ("_SwitchableDateConverter", "DateConverter", "ConciseDateConverter")
        if hasattr(mdates, name)
    )
    return [float(t) for t in ticks], (
        "datetime" if isinstance(converter, date_converters) else None
    )


def _scale(kind: str | None, scale: str, ticks: list[float], labels: list[str]) -> str:
    if kind is not None:
        return kind
    if scale != "linear":
        return scale
    categorical = bool(labels) and all(
        t == i and str(i) != lab for i, (t, lab) in enumerate(zip(ticks, labels, strict=False))
    )
    return "categorical" if categorical else "linear"


def _is_rule(line: Any) -> bool:
    xs, ys = line.get_xdata(), line.get_ydata()
    return len(xs) == 2 and len(ys) == 2 and (xs[0] == xs[1] or ys[0] == ys[1])


def _kind(ax: Any) -> str:
    mpl = importlib.import_module("matplotlib")

    artists = [a for a in ax._children if not isinstance(a, (mpl.text.Text, mpl.patches.Shadow))]
    if all(isinstance(a, mpl.lines.Line2D) for a in artists):
        return "line"
    if all(isinstance(a, (mpl.patches.PathPatch, mpl.lines.Line2D)) for a in artists):
        return "box_and_whisker"
    artists = [a for a in artists if not (isinstance(a, mpl.lines.Line2D) and _is_rule(a))]
    for kind, cls in (
        ("scatter", mpl.collections.PathCollection),
        ("bar", mpl.patches.Rectangle),
        ("pie", mpl.patches.Wedge),
    ):
        if all(isinstance(a, cls) for a in artists):
            return kind
    return "unknown"


def _boxes(ax: Any) -> tuple[list[dict[str, Any]], bool]:
    """Box-and-whisker elements read back from what ``Axes.bxp`` drew for each box: a PathPatch
    whose first edge runs along the position axis, two-point lines for the whiskers (along the
    value axis) and the median (across the box), and a marker-only line of fliers."""
    mpl = importlib.import_module("matplotlib")

    boxes = [p.get_path().vertices for p in ax.patches if isinstance(p, mpl.patches.PathPatch)]
    horizontal = bool(boxes) and boxes[0][0][0] == boxes[0][1][0]
    flip = slice(None, None, -1) if horizontal else slice(None)  # columns as (position, value)
    lines = [(ln.get_xydata()[:, flip], ln.get_linestyle() == "None") for ln in ax.get_lines()]
    ticks = ax.get_yticklabels() if horizontal else ax.get_xticklabels()
    found: list[dict[str, Any]] = []
    for i, box in enumerate(boxes):
        pos, val = box[:, flip].T
        q1, q3 = float(val.min()), float(val.max())
        own = [
            (xy, marks)
            for xy, marks in lines
            if len(xy) and pos.min() <= xy[:, 0].min() and xy[:, 0].max() <= pos.max()
        ]
        segments = [xy for xy, marks in own if len(xy) == 2 and not marks]
        whiskers = [v for xy in segments if xy[0, 0] == xy[1, 0] for v in xy[:, 1].tolist()]
        low, high = min(whiskers, default=q1), max(whiskers, default=q3)
        across = [xy for xy in segments if xy[0, 1] == xy[1, 1] and q1 <= xy[0, 1] <= q3]
        # The median spans the box; a cap at a quartile (no whisker there) is narrower.
        median = max(across, key=lambda xy: abs(xy[1, 0] - xy[0, 0]), default=None)
        fliers = [v for xy, marks in own if marks for v in xy[:, 1].tolist()]
        found.append(
            {
                "label": ticks[i].get_text() if i < len(ticks) else str(i + 1),
                "min": low,
                "first_quartile": q1,
                "median": q1 if median is None else float(median[0, 1]),
                "third_quartile": q3,
                "max": high,
                "outliers": [v for v in fliers if not low <= v <= high],
            }
        )
    return found, horizontal


def _elements(ax: Any, kind: str) -> tuple[list[dict[str, Any]], bool]:
    mpl = importlib.import_module("matplotlib")

    if kind == "line":
        return [
            {
                "label": ln.get_label(),
                "points": ln.get_xydata().tolist(),
            }
            for ln in ax.get_lines()
            if not _is_rule(ln)
        ], False
    if kind == "scatter":
        return [
            {"label": c.get_label(), "points": c.get_offsets().tolist()} for c in ax.collections
        ], False
    if kind == "bar":
        found: list[dict[str, Any]] = []
        horizontal = False
        for container in ax.containers:
            heights = [bar.get_height() for bar in container]
            orientation = getattr(container, "orientation", None)  # since matplotlib 3.4
            if orientation is None:
                horizontal = len(set(heights)) == 1 and len(heights) > 1
            else:
                horizontal = orientation == "horizontal"
            ticklabels = ax.get_yticklabels() if horizontal else ax.get_xticklabels()
            values = [bar.get_width() for bar in container] if horizontal else heights
            for label, value in zip(ticklabels, values, strict=False):
                found.append(
                    {
                        "label": label.get_text(),
                        "group": container.get_label(),
                        "value": _number_text(value),
                    }
                )
        return found, horizontal
    if kind == "pie":
        wedges = [p for p in ax.patches if isinstance(p, mpl.patches.Wedge)]
        texts = [t.get_text() for t in ax.texts]
        paired = len(texts) == 2 * len(wedges)
        labels = texts[0::2] if paired else texts
        return [
            {
                "label": labels[i] if i < len(labels) else "",
                "angle": float(abs(w.theta2 - w.theta1)),
                "radius": float(w.r),
                "autopct": texts[2 * i + 1] if paired else None,
            }
            for i, w in enumerate(wedges)
        ], False
    if kind == "box_and_whisker":
        return _boxes(ax)
    return [], False


def _axes_chart(ax: Any) -> dict[str, Any]:
    kind = _kind(ax)
    chart: dict[str, Any] = {"type": kind, "title": ax.get_title()}
    x_labels = [t.get_text() for t in ax.get_xticklabels()]
    y_labels = [t.get_text() for t in ax.get_yticklabels()]
    x_ticks, x_kind = _ticks(ax.xaxis, ax.get_xticks())
    y_ticks, y_kind = _ticks(ax.yaxis, ax.get_yticks())
    chart.update(
        x_ticks=x_ticks,
        x_tick_labels=x_labels,
        x_scale=_scale(x_kind, ax.get_xscale(), x_ticks, x_labels),
        y_ticks=y_ticks,
        y_tick_labels=y_labels,
        y_scale=_scale(y_kind, ax.get_yscale(), y_ticks, y_labels),
    )
    elements, swap = _elements(ax, kind)
    x_label, y_label = ax.get_xlabel(), ax.get_ylabel()
    chart["x_label"], chart["y_label"] = (y_label, x_label) if swap else (x_label, y_label)
    chart["elements"] = elements
    return chart


def _figure_chart(fig: Any) -> dict[str, Any]:
    axes = [
        ax
        for ax in fig.axes
        if (ax.has_data() or ax.get_subplotspec() is None) and not hasattr(ax, "_colorbar")
    ]
    charts = [_axes_chart(ax) for ax in axes]
    if len(charts) > 1:
        title = fig.texts[0].get_text() if fig.texts else None
        chart: dict[str, Any] = {"type": "composite_chart", "title": title, "elements": charts}
    else:
        chart = charts[0] if charts else {"type": "unknown", "elements": []}
    png = io.BytesIO()
    fig.savefig(png, format="png", bbox_inches="tight", dpi=100)
    chart["png"] = base64.b64encode(png.getvalue()).decode()
    return chart


def _report_figures(pyplot: Any) -> None:
    for number in pyplot.get_fignums():
        fig = pyplot.figure(number)
        probe = io.BytesIO()
        fig.savefig(probe, format="png", dpi=50)
        digest = hashlib.sha256(probe.getvalue()).hexdigest()
        if digest in _seen:
            continue
        _seen.add(digest)
        artifact = {"type": "chart", "value": _figure_chart(fig)}
        print(MARKER + json.dumps(artifact, default=_plain), flush=True)


class _PyplotHook(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Wraps ``matplotlib.pyplot.show`` when pyplot is first imported."""

    def __init__(self) -> None:
        self.inner: Any = None

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != "matplotlib.pyplot" or self.inner is not None:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return None
        self.inner = spec.loader
        return importlib.util.spec_from_loader(fullname, self, origin=spec.origin)

    def create_module(self, spec: Any) -> Any:
        return self.inner.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self.inner.exec_module(module)
        shown = module.show

        def show(*args: Any, **kwargs: Any) -> Any:
            _report_figures(module)
            try:
                return shown(*args, **kwargs)
            finally:
                module.close("all")

        module.show = show


def main() -> None:
    code = base64.b64decode(USER_CODE).decode()
    sys.meta_path.insert(0, _PyplotHook())
    module = types.ModuleType("__main__")
    module.__file__ = FILENAME
    sys.modules["__main__"] = module
    linecache.cache[FILENAME] = (len(code), None, code.splitlines(True), FILENAME)
    try:
        exec(compile(code, FILENAME, "exec"), module.__dict__)
    except Exception as exc:
        tb = exc.__traceback__
        last_user = None
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == FILENAME:
                last_user = tb
            tb = tb.tb_next
        if last_user is None:
            raise type(exc)(str(exc)) from None
        traceback.print_exception(type(exc), exc, last_user)
        sys.exit(1)


main()
