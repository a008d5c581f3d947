"""Storage: ``open_store(url)`` returns a SQLite or PostgreSQL store behind one interface."""

from __future__ import annotations

from communique.store.base import Store
from communique.store.engines import open_store

__all__ = ["Store", "open_store"]
