"""The ``--daytona-cleanup*`` options and the names the cleanup (`cleanup`) matches on; they
import nothing heavy, so that registering them (`cleanup_plugin`) costs nothing."""

from __future__ import annotations

import pytest

from ..config.durations import FORMS

OLDER_THAN_OPTION = "--daytona-cleanup-older-than"
DEFAULT_OLDER_THAN = "1h"
#: The CI labels ``--daytona-cleanup-ci-job`` matches (see `coordination.ci_labels`): GitHub's
#: run id and job name, GitLab's pipeline id and job id (``create_params.LABEL_PREFIX``-<name>).
CI_JOB_LABELS = tuple(
    f"pytest-daytona-{name}"
    for name in ("gh-run-id", "gh-job", "gitlab-pipeline-id", "gitlab-job-id")
)


def add_options(parser: pytest.Parser) -> None:
    """Register the ``--daytona-cleanup*`` options in the ``daytona`` group."""
    group = parser.getgroup("daytona", "Daytona sandboxes")
    group.addoption(
        "--daytona-cleanup",
        action="store_true",
        default=False,
        help="Run no tests: list the sandboxes earlier runs left behind (add "
        "--daytona-cleanup-yes to delete them) and remove dead runs' run directories.",
    )
    group.addoption(
        OLDER_THAN_OPTION,
        default=DEFAULT_OLDER_THAN,
        metavar="AGE",
        help=f"Only sandboxes created longer ago than AGE, a duration ({FORMS}; 0s: any "
        "age; default 1h).",
    )
    group.addoption(
        "--daytona-cleanup-run-id",
        default=None,
        metavar="ID",
        help="Only sandboxes of the run ID (label pytest-daytona-run-id).",
    )
    group.addoption(
        "--daytona-cleanup-reuse-key",
        default=None,
        metavar="KEY",
        help="Only reusable sandboxes of reuse key KEY (with --daytona-cleanup-reused).",
    )
    group.addoption(
        "--daytona-cleanup-ci-job",
        default=None,
        metavar="VALUE",
        help="Only sandboxes of one CI job: VALUE is matched against the labels "
        + ", ".join(CI_JOB_LABELS)
        + " (GITHUB_RUN_ID, GITHUB_JOB, CI_PIPELINE_ID, CI_JOB_ID).",
    )
    group.addoption(
        "--daytona-cleanup-yes",
        action="store_true",
        default=False,
        help="Really delete what --daytona-cleanup lists.",
    )
    group.addoption(
        "--daytona-cleanup-reused",
        action="store_true",
        default=False,
        help="Also delete reusable (--daytona-reuse) sandboxes nobody has claimed.",
    )
