"""``python -m bench.market``: the same as ``dpn bench market``."""

import sys

from bench.market import main

sys.exit(main())
