"""The ASGI application for uvicorn workers (``dpn serve``): settings from the environment."""

import gc

from api.app import create_app

app = create_app()

# What is alive now (modules, the app, its routes and models) lives as long as the worker:
# keep it out of the collector's way, so full collections stay short.
gc.freeze()
