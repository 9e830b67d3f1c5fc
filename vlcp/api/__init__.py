"""The web API: REST v1 and the original VLCP API, one FastAPI application over the model."""

from .app import create_app

__all__ = ["create_app"]
