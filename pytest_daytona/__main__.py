"""``python -m pytest_daytona``."""

import sys

from .cli import main

sys.exit(main())
