"""Cross-process locks for LockedKnowledgeStore on real Redis and PostgreSQL (LockSuite)."""

from __future__ import annotations

import pytest

from vecmem.testing import LockSuite
from vecmem.testing.locks import LockSpec


@pytest.mark.server
class TestRedisLock(LockSuite):
    @pytest.fixture
    def lock_spec(self, redis_url: str) -> LockSpec:
        return ("vecmem.knowledge_fs.locks:RedisLock", {"url": redis_url})


@pytest.mark.server
class TestPostgresAdvisoryLock(LockSuite):
    @pytest.fixture
    def lock_spec(self, postgres_url: str) -> LockSpec:
        return ("vecmem.knowledge_fs.locks:PostgresAdvisoryLock", {"url": postgres_url})
