"""ag2-vecmem: vecmem's path-based file stores as AG2 ``KnowledgeStore`` s.

>>> from ag2_vecmem import VecmemKnowledgeStore
>>> store = VecmemKnowledgeStore("memory://")
>>> import asyncio; asyncio.run(store.write("/notes.md", "hi")); asyncio.run(store.read("/notes.md"))
'hi'
"""

from __future__ import annotations

from ag2_vecmem.store import AsyncLock, VecmemKnowledgeStore

__all__ = ["AsyncLock", "VecmemKnowledgeStore"]
