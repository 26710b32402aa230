"""LangChain's standard ``VectorStoreIntegrationTests`` (langchain-tests==1.1.9, sync and async)
on the embedded default (a fresh folder per test) and on PostgreSQL + pgvector (a fresh
collection per test, dropped afterwards)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_tests.integration_tests import VectorStoreIntegrationTests
from langchain_vecmem import VecmemVectorStore


class TestEmbeddedStandard(VectorStoreIntegrationTests):
    @pytest.fixture()
    def vectorstore(self, tmp_path: Path) -> Iterator[VecmemVectorStore]:  # type: ignore[override]
        store = VecmemVectorStore(self.get_embeddings(), tmp_path / "kb")
        try:
            yield store
        finally:
            store.close()


class TestPostgresStandard(VectorStoreIntegrationTests):
    @pytest.fixture()
    def vectorstore(  # type: ignore[override]
        self, postgres_url: str
    ) -> Iterator[VecmemVectorStore]:
        collection = f"lc_{uuid.uuid4().hex[:12]}"
        store = VecmemVectorStore(self.get_embeddings(), f"{postgres_url}?collection={collection}")
        try:
            yield store
        finally:
            drop = getattr(store.memory.store, "drop", None)
            if drop is not None:
                drop()
            store.close()
