"""`process.code_run` as today's daemon runs it (SDK 0.226.1 sends ``POST /process/code-run``).

Daytona's daemon (v0.190.0 `apps/daemon/pkg/toolbox/process/coderun/`) pipes a shell script to
the sandbox's shell: the code base64-decoded into ``python3 -u -`` (``node -`` for javascript,
``npx ts-node`` for typescript), argv appended joined by spaces, stdout and stderr combined,
artifact lines turned into charts, 408 on timeout. The SDK takes the language from the
sandbox's ``code-toolbox-language`` label and does not wrap code_run's errors in its own types.
"""

from __future__ import annotations

import asyncio
import json
import shutil

import pytest
from daytona import (
    AsyncDaytona,
    CodeRunParams,
    CreateSandboxFromSnapshotParams,
    Daytona,
    DaytonaConfig,
    Sandbox,
)
from daytona_toolbox_api_client.exceptions import ApiException

from pytest_daytona.local import LocalServer
from pytest_daytona.local.agent.coderun import uses_matplotlib
from tests.local.conftest import close_client, http_json, require

MARKER = "dtn_artifact_k39fd2:"


def test_code_run_answers_exit_code_and_combined_output(iso_sandbox: Sandbox) -> None:
    code = "import sys\nprint('out')\nprint('err', file=sys.stderr)\nraise SystemExit(3)"
    response = iso_sandbox.process.code_run(code)
    assert response.exit_code == 3
    assert response.result == "out\nerr\n"
    assert response.artifacts is not None and response.artifacts.stdout == "out\nerr\n"
    assert response.artifacts.charts == []
    assert iso_sandbox.process.code_run("print(6 * 7)").result == "42\n"


def test_code_run_passes_argv_through_the_shell_and_env(iso_sandbox: Sandbox) -> None:
    code = "import os, sys\nprint(sys.argv)\nprint(os.environ['GIVEN'], os.environ['FROM_CREATE'])"
    params = CodeRunParams(argv=["one", "two words"], env={"GIVEN": "given"})
    response = iso_sandbox.process.code_run(code, params=params)
    assert response.exit_code == 0
    # The daemon joins argv with spaces into the shell command: the shell splits it again.
    assert response.result == "['-', 'one', 'two', 'words']\ngiven yes\n"


def test_code_run_runs_in_the_work_dir_and_reports_exceptions(iso_sandbox: Sandbox) -> None:
    cwd = iso_sandbox.process.code_run("import os; print(os.getcwd())").result.strip()
    assert cwd == iso_sandbox.get_work_dir()
    response = iso_sandbox.process.code_run("x = 1\nraise ValueError('bad value')")
    assert response.exit_code == 1
    assert 'File "<stdin>", line 2' in response.result
    assert response.result.endswith("ValueError: bad value\n")


def test_code_run_timeout_is_the_daemons_408(iso_sandbox: Sandbox) -> None:
    with pytest.raises(ApiException) as caught:
        iso_sandbox.process.code_run("import time; time.sleep(30)", timeout=1)
    assert caught.value.status == 408
    body = json.loads(caught.value.body or "{}")
    assert body["code"] == "PROCESS_EXECUTION_TIMEOUT"
    assert body["source"] == "DAYTONA_DAEMON"
    assert iso_sandbox.process.code_run("print('still serving')").result == "still serving\n"


def test_code_run_refuses_bad_env_names_and_unknown_languages(
    server: LocalServer, sandbox: Sandbox
) -> None:
    with pytest.raises(ApiException) as caught:
        sandbox.process.code_run("print(1)", params=CodeRunParams(env={"A-B": "1"}))
    assert caught.value.status == 400
    assert "invalid environment variable name: 'A-B'" in str(caught.value.body)
    status, body = http_json(
        server,
        "POST",
        f"/toolbox/{sandbox.id}/process/code-run",
        server.token,
        {"code": "puts 1", "language": "ruby"},
    )
    assert status == 400
    assert body["message"] == "unsupported language: ruby"


@pytest.mark.quick
def test_artifact_lines_become_charts_and_leave_the_output(sandbox: Sandbox) -> None:
    chart = {
        "type": "line",
        "title": "Made by hand",
        "x_label": "x",
        "elements": [{"label": "a", "points": [[0, 1], [1, 2]]}],
    }
    line = MARKER + json.dumps({"type": "chart", "value": chart})
    code = f"print('before')\nprint({line!r})\nprint({MARKER + 'not json'!r})\nprint('after')"
    response = sandbox.process.code_run(code)
    assert response.result == "before\nafter\n"
    assert len(response.artifacts.charts) == 1
    parsed = response.artifacts.charts[0]
    assert parsed.title == "Made by hand"
    assert [list(p) for p in parsed.elements[0].points] == [[0, 1], [1, 2]]


def test_matplotlib_imports_are_recognised_outside_comments() -> None:
    assert uses_matplotlib("import matplotlib.pyplot as plt")
    assert uses_matplotlib("x = 1\nfrom matplotlib import pyplot")
    assert uses_matplotlib("m = __import__('matplotlib')")
    assert not uses_matplotlib("# import matplotlib\nprint(1)")
    assert not uses_matplotlib("print('matplotlib')")


def test_matplotlib_figures_come_back_as_charts(sandbox: Sandbox) -> None:
    probe = sandbox.process.exec("python3 -c 'import matplotlib'")
    require(probe.exit_code == 0, "no matplotlib for python3: apt-get install python3-matplotlib")
    code = (
        "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
        "plt.plot([0, 1, 2], [0, 1, 4], label='sq')\nplt.title('Squares')\nplt.show()\n"
        "print('done')"
    )
    response = sandbox.process.code_run(code)
    assert response.exit_code == 0, response.result
    assert response.result == "done\n"
    chart = response.artifacts.charts[0]
    assert chart.title == "Squares"
    assert chart.png


def test_javascript_sandbox_runs_code_with_node(iso_server: LocalServer) -> None:
    require(shutil.which("node") is not None, "node is not installed: apt-get install nodejs")
    daytona = Daytona(DaytonaConfig(api_key=iso_server.token, api_url=iso_server.api_url))
    try:
        sandbox = daytona.create(CreateSandboxFromSnapshotParams(language="javascript"))
        assert sandbox.labels["code-toolbox-language"] == "javascript"
        # The daemon drops node's "-" (script on stdin): the arguments start at argv[1].
        code = "console.log(process.argv.slice(1), process.env.GIVEN); process.exit(4)"
        params = CodeRunParams(argv=["a", "b"], env={"GIVEN": "given"})
        response = sandbox.process.code_run(code, params=params)
    finally:
        close_client(daytona)
    assert response.exit_code == 4
    assert response.result == "[ 'a', 'b' ] given\n"


def test_typescript_sandbox_runs_ts_node_or_answers_npms_failure(client: Daytona) -> None:
    require(shutil.which("npx") is not None, "npx is not installed: install npm")
    sandbox = client.create(CreateSandboxFromSnapshotParams(language="typescript"))
    response = sandbox.process.code_run("const n: number = 6 * 7;\nconsole.log(n);")
    if response.exit_code == 0:
        assert response.result == "42\n"
    else:  # no ts-node here: npm (kept offline) says it cannot fetch it, as the daemon passes on
        assert "ts-node" in response.result
        assert "npm error" in response.result


def test_async_client_runs_code(server: LocalServer) -> None:
    async def scenario() -> tuple[int, str]:
        config = DaytonaConfig(api_key=server.token, api_url=server.api_url)
        async with AsyncDaytona(config) as daytona:
            sandbox = await daytona.create()
            params = CodeRunParams(argv=["x"])
            response = await sandbox.process.code_run("import sys; print(sys.argv[1:])", params)
            return response.exit_code, response.result

    assert asyncio.run(scenario()) == (0, "['x']\n")
