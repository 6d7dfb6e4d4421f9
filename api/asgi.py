"""The ASGI application for uvicorn workers (``dpn serve``): settings from the environment."""

from api.app import create_app

app = create_app()
