"""Knowledge store on Redis: one string per file, one set per directory.

``{prefix}:{tenant}:f:{path}`` holds a file's bytes; ``{prefix}:{tenant}:d:{dir}`` the names in
a directory (sub-directories with a trailing ``/``). Writes, appends and deletes are Lua
scripts, so the file and its directories change atomically; a directory's set disappears with
its last entry, which is how directories stay implicit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vecmem._deps import require
from vecmem._keys import check_tenant
from vecmem.errors import BackendError, BackendUnavailableError, NotFoundError
from vecmem.knowledge_fs.base import (
    ChangeEvent,
    Subscription,
    check_range,
    is_a_directory,
    not_a_directory,
    polling,
    to_bytes,
)
from vecmem.knowledge_fs.paths import ancestors, any_path, child, dir_path, file_path, name, parent
from vecmem.state.redis import connect_redis, escape

_WRITE = """
if redis.call('EXISTS', KEYS[2]) == 1 then return {-1, 0} end
local n = tonumber(ARGV[3])
for j = 1, n - 1 do
  if redis.call('EXISTS', KEYS[2 + n + j]) == 1 then return {-2, j} end
end
local offset = 0
if ARGV[1] == 'w' then
  redis.call('SET', KEYS[1], ARGV[2])
else
  offset = redis.call('APPEND', KEYS[1], ARGV[2]) - string.len(ARGV[2])
end
for i = 1, n do redis.call('SADD', KEYS[2 + i], ARGV[3 + i]) end
return {0, offset}
"""

_DELETE = """
if redis.call('DEL', KEYS[1]) == 0 then return 0 end
for i = 1, #ARGV do
  redis.call('SREM', KEYS[1 + i], ARGV[i])
  if redis.call('SCARD', KEYS[1 + i]) > 0 then return 1 end
end
return 1
"""


class RedisKnowledgeStore:
    """Knowledge files in Redis.

    >>> kb = RedisKnowledgeStore("redis://localhost:6379/0", tenant="acme")  # doctest: +SKIP
    >>> kb.append("/log.txt", "line\\n")                                    # doctest: +SKIP
    0
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Any = None,
        tenant: str = "default",
        prefix: str = "vecmem:kfs",
    ) -> None:
        self.tenant = check_tenant(tenant)
        self.prefix = prefix
        self._owned = client is None
        self.client = connect_redis(url, client)
        self._base = f"{prefix}:{escape(self.tenant)}:"
        self._write_script = self.client.register_script(_WRITE)
        self._delete_script = self.client.register_script(_DELETE)

    def with_tenant(self, tenant: str) -> RedisKnowledgeStore:
        return RedisKnowledgeStore(client=self.client, tenant=tenant, prefix=self.prefix)

    def _f(self, path: str) -> str:
        return self._base + "f:" + path

    def _d(self, path: str) -> str:
        return self._base + "d:" + path

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        redis = require("redis", "redis")
        try:
            return fn(*args, **kwargs)
        except redis.ConnectionError as exc:
            raise BackendUnavailableError(f"{what}: {exc}") from exc
        except redis.RedisError as exc:
            raise BackendError(f"{what}: {exc}") from exc

    def _missing(self, path: str) -> Exception:
        if self._call("checking a path", self.client.exists, self._d(path)):
            return is_a_directory(path)
        return NotFoundError(f"no file {path!r}")

    def _levels(self, path: str) -> tuple[list[str], list[str]]:
        """(dir keys, entry names) from ``path``'s parent up to the root."""
        keys, names = [], []
        p, entry = path, name(path)
        while True:
            up = parent(p)
            keys.append(self._d(up))
            names.append(entry)
            if up == "/":
                return keys, names
            p, entry = up, name(up) + "/"

    def _put(self, mode: str, path: str, raw: bytes) -> int:
        dir_keys, names = self._levels(path)
        ups = ancestors(path)
        keys = [self._f(path), self._d(path), *dir_keys, *(self._f(a) for a in ups)]
        code, extra = self._call(
            "writing a file", self._write_script, keys=keys, args=[mode, raw, len(dir_keys), *names]
        )
        if code == -1:
            raise is_a_directory(path)
        if code == -2:
            raise not_a_directory(ups[int(extra) - 1])
        return int(extra)

    def read(self, path: str) -> bytes:
        path = file_path(path)
        data = self._call("reading a file", self.client.get, self._f(path))
        if data is None:
            raise self._missing(path)
        return bytes(data)

    def read_range(self, path: str, start: int, end: int | None = None) -> bytes:
        path = file_path(path)
        check_range(start, end)
        pipe = self.client.pipeline(transaction=True)
        pipe.exists(self._f(path))
        pipe.getrange(self._f(path), start, -1 if end is None else max(end - 1, 0))
        found, data = self._call("reading a file", pipe.execute)
        if not found:
            raise self._missing(path)
        return b"" if end is not None and end <= start else bytes(data)

    def write(self, path: str, data: bytes | str) -> None:
        self._put("w", file_path(path), to_bytes(data))

    def append(self, path: str, data: bytes | str) -> int:
        return self._put("a", file_path(path), to_bytes(data))

    def list(self, path: str = "/") -> list[str]:
        path = dir_path(path)
        names = self._call("listing a directory", self.client.smembers, self._d(path))
        if not names and path != "/":
            if self._call("checking a path", self.client.exists, self._f(path)):
                raise not_a_directory(path)
            raise NotFoundError(f"no directory {path!r}")
        return sorted(n.decode("utf-8") for n in names)

    def delete(self, path: str, *, recursive: bool = False) -> bool:
        path = any_path(path)
        if path != "/":
            dir_keys, names = self._levels(path)
            if self._call(
                "deleting a file", self._delete_script, keys=[self._f(path), *dir_keys], args=names
            ):
                return True
        if not self._call("checking a path", self.client.exists, self._d(path)):
            return False
        if not recursive:
            raise is_a_directory(path)
        files, dirs = [], []
        level = [path]
        while level:
            nxt = []
            for d in level:
                for entry in self._call("listing", self.client.smembers, self._d(d)):
                    e = entry.decode("utf-8")
                    if e.endswith("/"):
                        nxt.append(child(d, e[:-1]))
                    else:
                        files.append(self._f(child(d, e)))
            dirs += nxt
            level = nxt
        doomed = files + [self._d(d) for d in dirs]
        for i in range(0, len(doomed), 500):
            self._call("deleting", self.client.delete, *doomed[i : i + 500])
        if path == "/":
            self._call("deleting", self.client.delete, self._d("/"))
            return True
        dir_keys, names = self._levels(path)
        self._call(
            "deleting",
            self._delete_script,
            keys=[self._d(path), *dir_keys],
            args=[names[0] + "/", *names[1:]],
        )
        return True

    def exists(self, path: str) -> bool:
        path = any_path(path)
        if path == "/":
            return True
        return bool(self._call("checking a path", self.client.exists, self._f(path), self._d(path)))

    def on_change(self, callback: Callable[[ChangeEvent], None]) -> Subscription:
        return polling()

    def close(self) -> None:
        if self._owned:
            self.client.close()
