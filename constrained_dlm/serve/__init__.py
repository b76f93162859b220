"""Interfaces: the HTTP server (``cdlm serve``). Needs the ``serve`` extra (FastAPI, uvicorn)."""

from .app import ServerConfig, create_app
from .engine import Engine, Job

__all__ = ["Engine", "Job", "ServerConfig", "create_app"]
