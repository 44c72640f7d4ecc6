"""Every chart type the chart wrapper reports, parsed by the real SDK into its chart classes.

The SDK's generated models are strict: a bar's ``value`` is a string, points, ticks, angles and
box statistics are numbers, labels are strings. A wrong type fails the SDK's parsing of the
whole ``code_run`` response (``ValidationError for ChartElement``), as Daytona's own
``charts/main.py`` example did on a bar value of 40.
"""

from __future__ import annotations

import pytest
from daytona import (
    BarChart,
    BoxAndWhiskerChart,
    Chart,
    ChartType,
    CompositeChart,
    LineChart,
    PieChart,
    Sandbox,
    ScatterChart,
)

from tests.local.conftest import require

PRELUDE = "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"


def charts(sandbox: Sandbox, code: str) -> list[Chart]:
    """The charts that running ``code`` (after importing pyplot) shows."""
    probe = sandbox.process.exec("python3 -c 'import matplotlib'")
    require(probe.exit_code == 0, "no matplotlib for python3: apt-get install python3-matplotlib")
    response = sandbox.process.code_run(PRELUDE + code)
    assert response.exit_code == 0, response.result
    return response.artifacts.charts


def test_line_charts_carry_points_ticks_and_a_datetime_scale(sandbox: Sandbox) -> None:
    line, dated = charts(
        sandbox,
        "import datetime\n"
        "plt.plot([0, 1, 2], [0, 1, 4], label='squares')\n"
        "plt.plot([0, 2], [3, 3.5], label='flat')\n"
        "plt.title('Lines')\nplt.xlabel('x')\nplt.ylabel('y')\nplt.xticks([0, 1, 2])\nplt.show()\n"
        "plt.plot([datetime.date(2024, 1, 1), datetime.date(2024, 1, 3)], [1, 2])\nplt.show()",
    )
    assert isinstance(line, LineChart)
    assert line.type == ChartType.LINE
    assert (line.title, line.x_label, line.y_label) == ("Lines", "x", "y")
    assert [e.label for e in line.elements] == ["squares", "flat"]
    assert line.elements[0].points == [[0, 0], [1, 1], [2, 4]]
    assert line.elements[1].points == [[0, 3], [2, 3.5]]
    assert (line.x_ticks, line.x_tick_labels, line.x_scale) == (
        [0, 1, 2],
        ["0", "1", "2"],
        "linear",
    )
    # Dates come back as matplotlib's day numbers (the model's ticks and points are numbers).
    assert isinstance(dated, LineChart)
    assert dated.x_scale == "datetime"
    assert dated.elements[0].points == [[19723.0, 1.0], [19725.0, 2.0]]
    assert all(isinstance(t, float) for t in dated.x_ticks)
    assert 19723.0 <= dated.x_ticks[1] < dated.x_ticks[-2] <= 19725.0


def test_scatter_with_a_colorbar_is_one_scatter_chart(sandbox: Sandbox) -> None:
    (chart,) = charts(
        sandbox,
        "plt.scatter([1, 2, 3], [4, 5, 6], c=[0.1, 0.5, 0.9], label='dots')\n"
        "plt.colorbar(label='shade')\nplt.title('Dots')\nplt.xlabel('a')\nplt.ylabel('b')\n"
        "plt.show()",
    )
    assert isinstance(chart, ScatterChart)
    assert chart.type == ChartType.SCATTER
    assert (chart.title, chart.x_label, chart.y_label) == ("Dots", "a", "b")
    assert [(e.label, e.points) for e in chart.elements] == [("dots", [[1, 4], [2, 5], [3, 6]])]


def test_bar_values_are_strings_with_labels_and_groups(sandbox: Sandbox) -> None:
    grouped, equal, sideways = charts(
        sandbox,
        "plt.bar([0, 1, 2], [40, 63, 2.5], width=0.4, label='first')\n"
        "plt.bar([0.4, 1.4, 2.4], [8, -3, 15], width=0.4, label='second')\n"
        "plt.xticks([0, 1, 2], ['A', 'B', 'C'])\nplt.title('Bars')\nplt.xlabel('Categories')\n"
        "plt.ylabel('Count')\nplt.show()\n"
        "plt.bar(['x', 'y'], [5, 5])\nplt.show()\n"
        "plt.barh(['p', 'q'], [3, 4.5], label='h')\nplt.xlabel('value')\nplt.ylabel('name')\n"
        "plt.show()",
    )
    assert isinstance(grouped, BarChart)
    assert grouped.type == ChartType.BAR
    assert (grouped.title, grouped.x_label, grouped.y_label) == ("Bars", "Categories", "Count")
    assert [(e.label, e.group, e.value) for e in grouped.elements] == [
        ("A", "first", "40"),
        ("B", "first", "63"),
        ("C", "first", "2.5"),
        ("A", "second", "8"),
        ("B", "second", "-3"),
        ("C", "second", "15"),
    ]
    # Equal heights are still vertical bars: their heights, not their widths (0.8).
    assert [(e.label, e.value) for e in equal.elements] == [("x", "5"), ("y", "5")]
    assert equal.x_scale == "categorical"
    # Horizontal bars: the widths, labelled from the y axis, whose label becomes x_label.
    assert [(e.label, e.group, e.value) for e in sideways.elements] == [
        ("p", "h", "3"),
        ("q", "h", "4.5"),
    ]
    assert (sideways.x_label, sideways.y_label) == ("name", "value")


def test_pie_wedges_carry_labels_angles_and_radius(sandbox: Sandbox) -> None:
    (chart,) = charts(
        sandbox,
        "plt.pie([1, 1, 2], labels=['a', 'b', 'c'], autopct='%1.0f%%', radius=1.5)\n"
        "plt.title('Shares')\nplt.show()",
    )
    assert isinstance(chart, PieChart)
    assert chart.type == ChartType.PIE
    assert chart.title == "Shares"
    assert [e.label for e in chart.elements] == ["a", "b", "c"]
    assert [e.angle for e in chart.elements] == pytest.approx([90.0, 90.0, 180.0])
    assert [e.radius for e in chart.elements] == [1.5, 1.5, 1.5]
    assert [e.additional_properties["autopct"] for e in chart.elements] == ["25%", "25%", "50%"]


# Quartiles by numpy's linear interpolation; whiskers reach the furthest point within 1.5 IQR.
BOX_DATA = "[[1, 2, 3, 4, 5, 6, 7, 8, 9, 30], [10, 11, 12, 13, 14]]"
BOX_STATS = [
    ("a", 1.0, 3.25, 5.5, 7.75, 9.0, [30.0]),
    ("b", 10.0, 11.0, 12.0, 13.0, 14.0, []),
]


@pytest.mark.parametrize("vert", [True, False])
def test_box_plots_carry_quartiles_whiskers_and_outliers(sandbox: Sandbox, vert: bool) -> None:
    ticks = "plt.xticks" if vert else "plt.yticks"
    (chart,) = charts(
        sandbox,
        f"plt.boxplot({BOX_DATA}, patch_artist=True, vert={vert})\n{ticks}([1, 2], ['a', 'b'])\n"
        "plt.title('Spread')\nplt.xlabel('horizontal')\nplt.ylabel('vertical')\nplt.show()",
    )
    assert isinstance(chart, BoxAndWhiskerChart)
    assert chart.type == ChartType.BOX_AND_WHISKER
    assert chart.title == "Spread"
    found = [
        (e.label, e.min, e.first_quartile, e.median, e.third_quartile, e.max, e.outliers)
        for e in chart.elements
    ]
    assert found == BOX_STATS
    # As for bars, x_label is the label of the axis the boxes stand on.
    labels = (chart.x_label, chart.y_label)
    assert labels == (("horizontal", "vertical") if vert else ("vertical", "horizontal"))


def test_subplots_make_a_composite_of_typed_charts(sandbox: Sandbox) -> None:
    (chart,) = charts(
        sandbox,
        "fig, (left, right) = plt.subplots(1, 2)\nfig.suptitle('Both')\n"
        "left.plot([1, 2], [3, 4], label='rise')\nleft.set_title('Line')\n"
        "right.bar(['u', 'v'], [1.5, 40], label='pair')\nright.set_title('Bar')\nplt.show()",
    )
    assert isinstance(chart, CompositeChart)
    assert chart.type == ChartType.COMPOSITE_CHART
    assert chart.title == "Both"
    assert [(e.type, e.title) for e in chart.elements] == [("line", "Line"), ("bar", "Bar")]
    line, bar = (e.additional_properties["elements"] for e in chart.elements)
    assert line == [{"label": "rise", "points": [[1.0, 3.0], [2.0, 4.0]]}]
    assert bar == [
        {"label": "u", "group": "pair", "value": "1.5"},
        {"label": "v", "group": "pair", "value": "40"},
    ]
