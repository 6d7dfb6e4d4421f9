"""``python -m bench.outputs``: see ``bench.outputs``."""

import sys

from bench.outputs import main

sys.exit(main())
