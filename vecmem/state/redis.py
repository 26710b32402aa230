"""State on Redis: one hash per entry (value, version, updated_at), expiry with ``PEXPIRE``.

Writes and compare-and-set run as Lua scripts, so they are atomic on the server; expiry uses
Redis's own clock. Keys are ``{prefix}:{tenant}:{namespace}:{key}`` with ``%`` and ``:``
percent-escaped in tenant and namespace, so no two scopes can share a key.
"""

from __future__ import annotations

import json
import time
from typing import Any

from vecmem._deps import require
from vecmem._keys import check_tenant, to_json
from vecmem.errors import BackendError, BackendUnavailableError, ConfigurationError
from vecmem.state.base import (
    StateEntry,
    check_args,
    check_ttl,
    check_version,
    conflict,
)

_WRITE = """
local cur = tonumber(redis.call('HGET', KEYS[1], 'ver') or '0')
local expected = tonumber(ARGV[2])
if expected >= 0 and cur ~= expected then return -1 - cur end
local new = cur + 1
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'ver', new, 'at', ARGV[4])
if ARGV[3] ~= '' then redis.call('PEXPIRE', KEYS[1], ARGV[3])
else redis.call('PERSIST', KEYS[1]) end
return new
"""

_DELETE = """
local cur = tonumber(redis.call('HGET', KEYS[1], 'ver') or '0')
local expected = tonumber(ARGV[1])
if expected >= 0 and cur ~= expected then return -1 - cur end
return redis.call('DEL', KEYS[1])
"""


def escape(part: str) -> str:
    """Percent-escape ``%`` and ``:`` so a key component cannot contain the separator."""
    return part.replace("%", "%25").replace(":", "%3A")


def glob_escape(text: str) -> str:
    """Escape Redis ``MATCH`` pattern characters."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def connect_redis(url: str | None, client: Any) -> Any:
    """A ``redis.Redis`` client for ``url`` (or ``client`` itself), bytes responses."""
    if client is not None:
        return client
    redis = require("redis", "redis", "the Redis backends")
    if not url:
        raise ConfigurationError("a Redis store needs url='redis://host:port/db' or client=")
    return redis.Redis.from_url(url)


class RedisStateStore:
    """State in Redis.

    >>> store = RedisStateStore("redis://localhost:6379/0", tenant="acme")  # doctest: +SKIP
    >>> store.set("ns", "k", 1, ttl=5)                                     # doctest: +SKIP
    1
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Any = None,
        tenant: str = "default",
        prefix: str = "vecmem:state",
    ) -> None:
        self.tenant = check_tenant(tenant)
        self.prefix = prefix
        self._owned = client is None
        self.client = connect_redis(url, client)
        self._write_script = self.client.register_script(_WRITE)
        self._delete_script = self.client.register_script(_DELETE)

    def with_tenant(self, tenant: str) -> RedisStateStore:
        return RedisStateStore(client=self.client, tenant=tenant, prefix=self.prefix)

    def _base(self, namespace: str) -> str:
        return f"{self.prefix}:{escape(self.tenant)}:{escape(namespace)}:"

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        redis = require("redis", "redis")
        try:
            return fn(*args, **kwargs)
        except redis.ConnectionError as exc:
            raise BackendUnavailableError(f"{what}: {exc}") from exc
        except redis.RedisError as exc:
            raise BackendError(f"{what}: {exc}") from exc

    def get_entry(self, namespace: str, key: str) -> StateEntry | None:
        check_args(namespace, key)
        name = self._base(namespace) + key
        pipe = self.client.pipeline(transaction=True)
        pipe.hmget(name, "v", "ver", "at")
        pipe.pttl(name)
        (value, version, at), pttl = self._call("reading state", pipe.execute)
        if value is None:
            return None
        expires = time.time() + pttl / 1000 if pttl and pttl > 0 else None
        return StateEntry(namespace, key, json.loads(value), int(version), expires, float(at))

    def get(self, namespace: str, key: str, default: Any = None) -> Any:
        entry = self.get_entry(namespace, key)
        return default if entry is None else entry.value

    def _write(self, namespace: str, key: str, value: Any, ttl: float | None, expected: int) -> int:
        check_args(namespace, key)
        check_ttl(ttl)
        text = to_json("state value", value)
        ms = str(max(1, int(round(ttl * 1000)))) if ttl else ""
        got = int(
            self._call(
                "writing state",
                self._write_script,
                keys=[self._base(namespace) + key],
                args=[text, expected, ms, repr(time.time())],
            )
        )
        if got < 0:
            raise conflict(namespace, key, expected, -1 - got)
        return got

    def set(self, namespace: str, key: str, value: Any, *, ttl: float | None = None) -> int:
        return self._write(namespace, key, value, ttl, -1)

    def compare_and_set(
        self,
        namespace: str,
        key: str,
        value: Any,
        *,
        expected_version: int,
        ttl: float | None = None,
    ) -> int:
        check_version(expected_version)
        return self._write(namespace, key, value, ttl, expected_version)

    def delete(self, namespace: str, key: str, *, expected_version: int | None = None) -> bool:
        check_args(namespace, key)
        if expected_version is not None:
            check_version(expected_version)
        exp = -1 if expected_version is None else expected_version
        got = int(
            self._call(
                "deleting state",
                self._delete_script,
                keys=[self._base(namespace) + key],
                args=[exp],
            )
        )
        if got < 0:
            raise conflict(namespace, key, exp, -1 - got)
        return got == 1

    def _scan(self, namespace: str, prefix: str) -> list[str]:
        base = self._base(namespace)
        pattern = glob_escape(base + prefix) + "*"
        names = self._call(
            "listing state", lambda: list(self.client.scan_iter(match=pattern, count=1000))
        )
        return [n.decode("utf-8")[len(base) :] for n in names]

    def keys(self, namespace: str, *, prefix: str = "") -> list[str]:
        check_args(namespace)
        return sorted(self._scan(namespace, prefix))

    def clear(self, namespace: str) -> int:
        check_args(namespace)
        base = self._base(namespace)
        names = [base + k for k in self._scan(namespace, "")]
        removed = 0
        for i in range(0, len(names), 500):
            removed += int(self._call("clearing state", self.client.delete, *names[i : i + 500]))
        return removed

    def close(self) -> None:
        if self._owned:
            self.client.close()
