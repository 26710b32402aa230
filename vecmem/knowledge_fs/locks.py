"""Cross-process locks for :class:`~vecmem.knowledge_fs.LockedKnowledgeStore`.

Both follow the lock protocol, ``acquire(name, ttl) -> bool`` (waiting up to ``wait`` seconds)
and ``release(name)``, and both free a lock whose holder crashed or hung:

* :class:`RedisLock`: redis-py's own ``Lock`` (``SET NX PX`` with a random token, released by a
  compare-and-delete script). A crashed holder's lock expires after ``ttl``.
* :class:`PostgresAdvisoryLock`: a transaction-level advisory lock
  (``pg_advisory_xact_lock``) on a connection of its own, held until ``release`` commits. A
  crashed holder's connection closes and the server frees the lock at once; a holder that
  keeps it longer than ``ttl`` has its session ended by the server
  (``idle_in_transaction_session_timeout``), which frees it too. Nothing to clean up, no table.

A lock lost to its TTL is left alone by ``release`` (as :class:`~vecmem.state.StateLock` does).
"""

from __future__ import annotations

import hashlib
import re
import threading
from typing import Any

from vecmem._deps import require
from vecmem.errors import BackendUnavailableError, ConfigurationError, InvalidInputError
from vecmem.state.redis import connect_redis

MAX_NAME = 512


def check_lock_args(name: object, ttl: object) -> None:
    """``name`` a non-empty str (at most 512 characters), ``ttl`` seconds > 0."""
    if not isinstance(name, str) or not name or len(name) > MAX_NAME:
        raise InvalidInputError(f"a lock name must be a str of 1..{MAX_NAME} characters")
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not ttl > 0:
        raise InvalidInputError(f"ttl must be a number of seconds > 0, got {ttl!r}")
    if ttl > 2_000_000:  # PostgreSQL's timeouts are int milliseconds
        raise InvalidInputError(f"ttl must be at most 2,000,000 seconds, got {ttl!r}")


def _check_wait(wait: object) -> float:
    if isinstance(wait, bool) or not isinstance(wait, (int, float)) or not wait >= 0:
        raise InvalidInputError(f"wait must be a number of seconds >= 0, got {wait!r}")
    return float(wait)


class RedisLock:
    """Named locks in Redis, held at most ``ttl`` seconds.

    >>> lock = RedisLock("redis://localhost:6379/0", wait=0)      # doctest: +SKIP
    >>> lock.acquire("kb", 30), lock.acquire("kb", 30)            # doctest: +SKIP
    (True, False)
    >>> kb = LockedKnowledgeStore(store, lock)                    # doctest: +SKIP
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Any = None,
        prefix: str = "vecmem:lock",
        wait: float = 10.0,
        poll: float = 0.01,
    ) -> None:
        self._owned = client is None
        self.client = connect_redis(url, client)
        self.prefix = prefix
        self.wait = _check_wait(wait)
        self.poll = poll
        self._held: dict[str, Any] = {}
        self._guard = threading.Lock()

    def acquire(self, name: str, ttl: float) -> bool:
        redis = require("redis", "redis", "RedisLock")
        check_lock_args(name, ttl)
        lock = self.client.lock(
            f"{self.prefix}:{name}", timeout=ttl, sleep=self.poll, thread_local=False
        )
        try:
            got = lock.acquire(blocking=self.wait > 0, blocking_timeout=self.wait or None)
        except redis.exceptions.ConnectionError as exc:
            raise BackendUnavailableError(f"Redis lock {name!r}: {exc}") from exc
        if got:
            with self._guard:
                self._held[name] = lock
        return bool(got)

    def release(self, name: str) -> None:
        redis = require("redis", "redis", "RedisLock")
        with self._guard:
            lock = self._held.pop(name, None)
        if lock is None:
            return
        try:
            lock.release()
        except redis.exceptions.LockError:
            pass  # expired (and perhaps taken by another): not ours to free
        except redis.exceptions.ConnectionError as exc:
            raise BackendUnavailableError(f"Redis lock {name!r}: {exc}") from exc

    def close(self) -> None:
        if self._owned:
            self.client.close()


def _psycopg_url(url: str) -> str:
    if not isinstance(url, str) or not re.match(r"postgres(ql)?(\+\w+)?://", url):
        raise ConfigurationError("PostgresAdvisoryLock needs a postgresql:// URL")
    return re.sub(r"^postgres(ql)?\+\w+://", "postgresql://", url)


class PostgresAdvisoryLock:
    """Named locks as PostgreSQL advisory locks; one connection per lock held.

    ``name`` hashes (BLAKE2b, 64 bits, with ``namespace``) to the advisory-lock key, so every
    process naming the same lock on the same database contends for the same key.

    >>> lock = PostgresAdvisoryLock("postgresql://u:pw@host/db", wait=0)  # doctest: +SKIP
    >>> lock.acquire("kb", 30), lock.acquire("kb", 30)                  # doctest: +SKIP
    (True, False)
    """

    def __init__(self, url: str, *, namespace: str = "vecmem.lock", wait: float = 10.0) -> None:
        self.url = _psycopg_url(url)
        self.namespace = namespace
        self.wait = _check_wait(wait)
        self._held: dict[str, Any] = {}
        self._idle: list[Any] = []
        self._guard = threading.Lock()

    def key(self, name: str) -> int:
        """The signed 64-bit advisory-lock key of ``name``."""
        digest = hashlib.blake2b(f"{self.namespace}\x00{name}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big", signed=True)

    def _connection(self) -> Any:
        psycopg = require("psycopg", "postgres", "PostgresAdvisoryLock")
        with self._guard:
            if self._idle:
                return self._idle.pop()
        try:
            return psycopg.connect(self.url, autocommit=False)
        except psycopg.Error as exc:
            raise BackendUnavailableError(f"PostgreSQL lock: {exc}") from exc

    def acquire(self, name: str, ttl: float) -> bool:
        psycopg = require("psycopg", "postgres", "PostgresAdvisoryLock")
        check_lock_args(name, ttl)
        conn = self._connection()
        try:
            with conn.cursor() as cur:
                ttl_ms = str(max(1, round(ttl * 1000)))
                cur.execute(
                    "SELECT set_config('idle_in_transaction_session_timeout', %s, true)",
                    (ttl_ms,),
                )
                if self.wait == 0:
                    cur.execute("SELECT pg_try_advisory_xact_lock(%s)", (self.key(name),))
                    row = cur.fetchone()
                    got = bool(row and row[0])
                else:
                    wait_ms = str(max(1, round(self.wait * 1000)))
                    cur.execute("SELECT set_config('lock_timeout', %s, true)", (wait_ms,))
                    try:
                        cur.execute("SELECT pg_advisory_xact_lock(%s)", (self.key(name),))
                        got = True
                    except psycopg.errors.LockNotAvailable:
                        got = False
        except psycopg.Error as exc:
            conn.close()
            raise BackendUnavailableError(f"PostgreSQL lock {name!r}: {exc}") from exc
        if not got:
            conn.rollback()
            with self._guard:
                self._idle.append(conn)
            return False
        with self._guard:
            self._held[name] = conn
        return True

    def release(self, name: str) -> None:
        psycopg = require("psycopg", "postgres", "PostgresAdvisoryLock")
        with self._guard:
            conn = self._held.pop(name, None)
        if conn is None:
            return
        try:
            conn.commit()  # ends the transaction, and with it the lock
        except psycopg.Error:
            conn.close()  # the server ended the session at the TTL: the lock is already free
            return
        with self._guard:
            self._idle.append(conn)

    def close(self) -> None:
        """Close every connection (which frees any lock still held)."""
        with self._guard:
            conns = [*self._idle, *self._held.values()]
            self._idle.clear()
            self._held.clear()
        for conn in conns:
            conn.close()
