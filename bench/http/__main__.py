"""``python -m bench.http``: the same as ``dpn bench http``."""

from bench.http import main

raise SystemExit(main())
