"""The faces of DPN Ledger: the HTTP API (``api.app``, routes in ``api.routes``, schemas
in ``api.schemas``, who may do what in ``api.policy``) and the ``dpn`` command line."""

__all__: list[str] = []
