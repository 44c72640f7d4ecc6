"""A pytest plugin for `bench_suite.py --profile`: each test's CPU, its own process's and that
of the child processes it waited for, one line per test in ``$SUITE_CPU_DIR/<pid>.txt``."""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Iterator

import pytest


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    own, kids, wall = (
        _cpu(resource.RUSAGE_SELF),
        _cpu(resource.RUSAGE_CHILDREN),
        time.monotonic(),
    )
    try:
        return (yield)
    finally:
        own = _cpu(resource.RUSAGE_SELF) - own
        kids = _cpu(resource.RUSAGE_CHILDREN) - kids
        wall = time.monotonic() - wall
        path = os.path.join(os.environ["SUITE_CPU_DIR"], f"{os.getpid()}.txt")
        with open(path, "a") as fh:
            fh.write(f"{own:.2f} {kids:.2f} {wall:.2f} {item.nodeid}\n")
