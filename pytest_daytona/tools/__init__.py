"""Commands that run instead of the tests: ``--daytona-cleanup``, ``--daytona-probe`` and the
``pytest-daytona`` command line (the embedded server in the foreground)."""
