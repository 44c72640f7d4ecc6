"""``coderun``: code in the sandbox's language run as today's daemon runs it.

The daemon (v0.190.0 ``apps/daemon/pkg/toolbox/process/coderun``) turns the code into a shell
script (code base64-encoded, decoded into the language's interpreter reading it from stdin,
``argv`` appended joined by spaces so the shell splits and expands them) and pipes that script
to the sandbox's shell on stdin, as ``exec`` does. Python code that imports matplotlib runs
inside a wrapper that reports each shown figure as a chart artifact line, which is taken out of
the output.
"""

from __future__ import annotations

import base64
import json
import os
import re
from typing import Any

from .ops import WORK_DIR, OpError, Request, op
from .process import check_env_keys, run_piped

#: Prefix of an artifact line in the output (the daemon's marker).
ARTIFACT_MARKER = "dtn_artifact_k39fd2:"
LANGUAGES = ("python", "javascript", "typescript")
SCRIPTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scripts")

_MATPLOTLIB = re.compile(
    r"^[^#\n]*(?:"
    r"(?:import|from)\s+matplotlib"
    r"|(?:__import__|import_module|load_module)\s*\(\s*['\"]matplotlib['\"]"
    r"|sys\.modules\[['\"]matplotlib['\"]\]"
    r")",
    re.MULTILINE,
)
# Node keeps the ``-`` (script read from stdin) in process.argv; the daemon drops it.
_NODE_PRELUDE = "process.argv.splice(1, 1);\n"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def uses_matplotlib(code: str) -> bool:
    """Whether `code` imports matplotlib (outside a comment), so charts are collected."""
    return _MATPLOTLIB.search(code) is not None


def _python(code: str, args: str) -> str:
    if uses_matplotlib(code):
        with open(os.path.join(SCRIPTS, "chart_wrapper.py"), encoding="utf-8") as fh:
            code = fh.read().replace("__DTN_USER_CODE__", _b64(code), 1)
    return f"printf '%s' '{_b64(code)}' | base64 -d | python3 -u - {args}"


def _javascript(code: str, args: str) -> str:
    return f"printf '%s' '{_b64(_NODE_PRELUDE + code)}' | base64 -d | node - {args}"


def _typescript(code: str, args: str) -> str:
    # As the daemon: ts-node through npx from a temporary file. npm is kept offline here, so a
    # sandbox without ts-node answers npm's own "not cached" failure instead of downloading.
    return "; ".join(
        [
            "_f=/tmp/dtn_$$.ts",
            f"printf '%s' '{_b64(_NODE_PRELUDE + code)}' | base64 -d > \"$_f\"",
            "npm_config_offline=true npm_config_loglevel=error npx ts-node -T"
            f' --ignore-diagnostics 5107 -O \'{{"module":"CommonJS"}}\' "$_f" {args}',
            "_dtn_ec=$?",
            'rm -f "$_f"',
            "exit $_dtn_ec",
        ]
    )


_BUILDERS = {"python": _python, "javascript": _javascript, "typescript": _typescript}


def run_script(language: str, code: str, argv: list[str]) -> str:
    """The shell script the daemon pipes to the shell for `code` in `language`."""
    builder = _BUILDERS.get(language)
    if builder is None:
        raise OpError(400, f"unsupported language: {language}", "BAD_REQUEST")
    return builder(code, " ".join(argv))


def split_artifacts(output: str) -> tuple[str, dict[str, Any] | None]:
    """The output without artifact lines, and the charts they carried (None when none)."""
    kept: list[str] = []
    charts: list[Any] = []
    for line in output.split("\n"):
        if not line.startswith(ARTIFACT_MARKER):
            kept.append(line)
            continue
        try:
            artifact = json.loads(line[len(ARTIFACT_MARKER) :].strip() or "null")
        except ValueError:
            continue
        value = artifact.get("value") if isinstance(artifact, dict) else None
        if isinstance(value, dict) and artifact.get("type") == "chart":
            charts.append(value)
    return "\n".join(kept), ({"charts": charts} if charts else None)


@op("coderun")
def code_run(req: Request) -> dict[str, object]:
    """Run ``code`` in ``language`` with ``argv`` and ``env``; ``exitCode``, ``result`` (stdout
    and stderr combined, artifact lines removed) and ``artifacts``. A ``timeout`` (seconds, > 0)
    kills the process group and answers 408."""
    language = str(req.params.get("language") or "")
    script = run_script(language, str(req.params.get("code") or ""), req.params.get("argv") or [])
    check_env_keys(req.params.get("env"))
    code, output = run_piped(script, WORK_DIR, req.env(), req.params.get("timeout") or 0)
    result, artifacts = split_artifacts(output)
    answer: dict[str, object] = {"exitCode": code, "result": result}
    if artifacts is not None:
        answer["artifacts"] = artifacts
    return answer
