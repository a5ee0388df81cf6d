"""``python -m visualizer``: start the app (same as the ``bpttlab`` command)."""
import sys

from .cli import main

sys.exit(main())
