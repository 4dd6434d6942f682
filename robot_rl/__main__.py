"""``python -m robot_rl``: the ``robot-rl`` command."""

import sys

from robot_rl.cli import main

sys.exit(main())
