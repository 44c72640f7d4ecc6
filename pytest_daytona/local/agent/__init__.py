"""The toolbox agent: a long-lived process inside each started sandbox that runs its toolbox calls.

Everything in this package runs inside the sandbox with Python's standard library only
(``python -I -S``): it must not import the rest of pytest_daytona, pydantic or aiohttp.
"""
