"""``python -m bench.chain``: the same as ``dpn bench chain``."""

import sys

from bench.chain import main

sys.exit(main())
