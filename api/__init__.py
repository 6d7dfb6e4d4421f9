"""The faces of DPN Ledger: the ``dpn`` command line (and, next, the HTTP API)."""

__all__: list[str] = []
