"""``python -m bench.engine``: the same as ``dpn bench engine``."""

import sys

from bench.engine import main

sys.exit(main())
