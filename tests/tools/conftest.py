"""The fixtures of the plugin's pytester tests (`tests/pytester_support.py`)."""

from tests.pytester_support import clean_env, run_inner, server

__all__ = ["clean_env", "run_inner", "server"]
