"""`vidcls serve`: an HTTP API and a web page that classify uploaded videos with one loaded model."""

from vidcls.serve.app import create_app

__all__ = ["create_app"]
