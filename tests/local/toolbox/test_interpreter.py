"""`sandbox.code_interpreter` against the local server with the real SDK (0.226.1).

The SDK opens ``GET /process/interpreter/execute`` as a WebSocket, sends ``{code, contextId?,
envs?, timeout?}`` and reads JSON chunks until the close (4008 = timeout). Semantics follow the
daemon v0.190.0 `apps/daemon/pkg/toolbox/process/interpreter/` (persistent worker per context,
SIGINT on timeout then kill after a grace, tracebacks of user frames as ``<stdin>``).
"""

from __future__ import annotations

import asyncio
import datetime

import pytest
from daytona import (
    AsyncDaytona,
    DaytonaBadRequestError,
    DaytonaConfig,
    DaytonaConnectionError,
    DaytonaError,
    DaytonaNotFoundError,
    DaytonaTimeoutError,
    ExecutionError,
    OutputMessage,
    Sandbox,
)
from daytona_toolbox_api_client import InterpreterContext

from pytest_daytona.local import LocalServer


@pytest.mark.quick
def test_state_persists_in_the_default_context(iso_sandbox: Sandbox) -> None:
    interpreter = iso_sandbox.code_interpreter
    first = interpreter.run_code("import os\nanswer = 41\ndef bump(n):\n    return n + 1")
    assert (first.stdout, first.stderr, first.error) == ("", "", None)
    result = interpreter.run_code("print(bump(answer), os.getcwd(), os.environ['FROM_CREATE'])")
    assert result.stdout == f"42 {iso_sandbox.get_work_dir()} yes\n"
    assert result.error is None


def test_contexts_are_independent_and_have_their_cwd(iso_sandbox: Sandbox) -> None:
    interpreter = iso_sandbox.code_interpreter
    iso_sandbox.fs.create_folder("ctxdir", "755")
    one = interpreter.create_context()
    two = interpreter.create_context(cwd=f"{iso_sandbox.get_work_dir()}/ctxdir")
    assert one.id != two.id and one.language == "python" and one.active
    assert two.cwd.endswith("/ctxdir")
    interpreter.run_code("value = 'one'", context=one)
    interpreter.run_code("value = 'two'", context=two)
    assert interpreter.run_code("print(value)", context=one).stdout == "one\n"
    assert interpreter.run_code("import os; print(os.getcwd())", context=two).stdout == (
        f"{two.cwd}\n"
    )
    missing = interpreter.run_code("print(value)")  # the default context never saw it
    assert missing.error is not None and missing.error.name == "NameError"
    listed = {c.id for c in interpreter.list_contexts()}
    assert listed == {one.id, two.id}  # the default context is not listed


def test_stdout_and_stderr_callbacks_stream_in_order(sandbox: Sandbox) -> None:
    events: list[tuple[str, str]] = []
    code = (
        "import sys\n"
        "print('a')\n"
        "print('b', file=sys.stderr)\n"
        "sys.stdout.write('partial')\n"
        "print(' line')\n"
    )
    result = sandbox.code_interpreter.run_code(
        code,
        on_stdout=lambda m: events.append(("out", m.output)),
        on_stderr=lambda m: events.append(("err", m.output)),
    )
    assert events == [("out", "a\n"), ("err", "b\n"), ("out", "partial line\n")]
    assert (result.stdout, result.stderr) == ("a\npartial line\n", "b\n")


def test_output_arrives_while_the_code_still_runs(sandbox: Sandbox) -> None:
    # The code waits for a file that the stdout callback creates: it can only finish if its
    # first line reached the client before it ended.
    code = (
        "import os, time\nprint('ready')\n"
        "while not os.path.exists('go'):\n    time.sleep(0.02)\nprint('done')"
    )

    def on_stdout(message: OutputMessage) -> None:
        if message.output == "ready\n":
            sandbox.process.exec("touch go")

    result = sandbox.code_interpreter.run_code(code, on_stdout=on_stdout, timeout=60)
    assert result.stdout == "ready\ndone\n"


def test_an_exception_gives_name_value_and_user_traceback(sandbox: Sandbox) -> None:
    errors: list[ExecutionError] = []
    code = "print('before')\ndef fail():\n    raise ValueError('bad value')\nfail()"
    result = sandbox.code_interpreter.run_code(code, on_error=errors.append)
    assert result.stdout == "before\n"
    assert result.error is not None and errors == [result.error]
    assert (result.error.name, result.error.value) == ("ValueError", "bad value")
    assert result.error.traceback == (
        'Traceback (most recent call last):\n  File "<stdin>", line 4\n'
        '  File "<stdin>", line 3\nValueError: bad value\n'
    )
    syntax = sandbox.code_interpreter.run_code("def (:").error
    assert syntax is not None and syntax.name == "SyntaxError"


def test_envs_apply_to_one_execution(sandbox: Sandbox) -> None:
    interpreter = sandbox.code_interpreter
    code = "import os; print(os.environ.get('ONLY_NOW'))"
    assert interpreter.run_code(code, envs={"ONLY_NOW": "set"}).stdout == "set\n"
    assert interpreter.run_code(code).stdout == "None\n"


def test_timeout_interrupts_and_keeps_the_context(iso_sandbox: Sandbox) -> None:
    interpreter = iso_sandbox.code_interpreter
    interpreter.run_code("kept = 'yes'")
    seen: list[str] = []
    with pytest.raises(DaytonaTimeoutError):
        interpreter.run_code(
            "import time\nprint('started')\ntime.sleep(60)",
            on_stdout=lambda m: seen.append(m.output),
            timeout=1,
        )
    assert seen == ["started\n"]
    assert interpreter.run_code("print(kept)").stdout == "yes\n"


def test_code_that_ignores_the_interrupt_is_killed_and_restarts_fresh(sandbox: Sandbox) -> None:
    interpreter = sandbox.code_interpreter
    interpreter.run_code("lost = True")
    stubborn = (
        "import time\n"
        "while True:\n"
        "    try:\n"
        "        time.sleep(60)\n"
        "    except BaseException:\n"
        "        pass"
    )
    with pytest.raises(DaytonaTimeoutError):
        interpreter.run_code(stubborn, timeout=1)
    after = interpreter.run_code("print(lost)")
    assert after.error is not None and after.error.name == "NameError"


def test_a_worker_that_exits_closes_the_stream_and_restarts(sandbox: Sandbox) -> None:
    context = sandbox.code_interpreter.create_context()
    sandbox.code_interpreter.run_code("x = 1", context=context)
    with pytest.raises(DaytonaConnectionError, match="worker process ended"):
        sandbox.code_interpreter.run_code("import os; os._exit(3)", context=context)
    again = sandbox.code_interpreter.run_code("print('x' in globals())", context=context)
    assert again.stdout == "False\n"


def test_delete_context(sandbox: Sandbox) -> None:
    interpreter = sandbox.code_interpreter
    context = interpreter.create_context()
    interpreter.run_code("x = 1", context=context)
    interpreter.delete_context(context)
    assert interpreter.list_contexts() == []
    with pytest.raises(DaytonaConnectionError, match=f"context not found: {context.id}"):
        interpreter.run_code("print(x)", context=context)
    with pytest.raises(DaytonaNotFoundError, match="not found"):
        interpreter.delete_context(context)
    default = InterpreterContext(
        id="default",
        cwd="",
        created_at=datetime.datetime.now(datetime.timezone.utc).isoformat(),
        active=True,
        language="python",
    )
    with pytest.raises(DaytonaBadRequestError, match="cannot delete default context"):
        interpreter.delete_context(default)


def test_bad_requests(sandbox: Sandbox) -> None:
    interpreter = sandbox.code_interpreter
    with pytest.raises(DaytonaError, match="failed to start context"):
        interpreter.create_context(cwd="/no/such/dir")
    with pytest.raises(DaytonaConnectionError, match="code is required"):
        interpreter.run_code("")
    with pytest.raises(DaytonaConnectionError, match="greater than or equal to 0"):
        interpreter.run_code("1", timeout=-1)


def test_async_client_streams_and_times_out(server: LocalServer) -> None:
    async def scenario() -> tuple[list[str], str, bool]:
        config = DaytonaConfig(api_key=server.token, api_url=server.api_url)
        async with AsyncDaytona(config) as daytona:
            sandbox = await daytona.create()
            interpreter = sandbox.code_interpreter
            context = await interpreter.create_context()
            chunks: list[str] = []
            await interpreter.run_code("n = 2", context=context)
            result = await interpreter.run_code(
                "for i in range(n):\n    print(i)",
                context=context,
                on_stdout=lambda m: chunks.append(m.output),
            )
            timed_out = False
            try:
                await interpreter.run_code("import time; time.sleep(60)", timeout=1)
            except DaytonaTimeoutError:
                timed_out = True
            await interpreter.delete_context(context)
            return chunks, result.stdout, timed_out

    assert asyncio.run(scenario()) == (["0\n", "1\n"], "0\n1\n", True)
