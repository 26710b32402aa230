"""LangGraph checkpoints in vecmem: ``VecmemSaver`` (SQLite, PostgreSQL, MySQL/MariaDB).

>>> from langgraph.checkpoint.vecmem import VecmemSaver
>>> with VecmemSaver.from_conn_string("sqlite:///graph.db") as saver:   # doctest: +SKIP
...     graph = builder.compile(checkpointer=saver)
"""

from __future__ import annotations

from langgraph.checkpoint.vecmem.saver import (
    CHECKPOINTS,
    MIGRATIONS,
    WRITES,
    VecmemSaver,
)

__all__ = ["CHECKPOINTS", "MIGRATIONS", "WRITES", "VecmemSaver"]
