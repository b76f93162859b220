"""Interfaces: the ``cdlm`` command line, built on the public API only (see :mod:`.main`)."""

from .main import main

__all__ = ["main"]
