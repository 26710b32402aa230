"""agno-vecmem: vecmem as an agno ``VectorDb`` (``Knowledge(vector_db=VecmemVectorDb(...))``)
and as an agno ``db`` (``Agent(db=VecmemDb("sqlite:///agent.db"))``: sessions and user memories).

>>> from agno.knowledge.knowledge import Knowledge                 # doctest: +SKIP
>>> from agno_vecmem import VecmemVectorDb
>>> kb = Knowledge(vector_db=VecmemVectorDb("./kb"))                # doctest: +SKIP
"""

from __future__ import annotations

from agno_vecmem.db import UnsupportedByVecmemDb, VecmemDb
from agno_vecmem.embedder import AgnoEmbedder
from agno_vecmem.filters import to_vecmem_filter
from agno_vecmem.vectordb import VecmemVectorDb

__all__ = [
    "AgnoEmbedder",
    "UnsupportedByVecmemDb",
    "VecmemDb",
    "VecmemVectorDb",
    "to_vecmem_filter",
]
