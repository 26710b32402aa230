"""API keys: ``KEY TENANT [ro]`` lines from a file, or ``$VECMEM_API_KEYS``, each mapped to a
tenant and optionally read-only. Requests carry ``Authorization: Bearer KEY``.

>>> keys = KeyTable.parse("k-acme acme\\n# comment\\nk-view acme ro\\n", source="keys.txt")
>>> keys.lookup("Bearer k-view")
Caller(tenant='acme', read_only=True)
>>> keys.lookup("Bearer nope") is None
True
"""

from __future__ import annotations

import hmac
import os
from dataclasses import dataclass
from pathlib import Path

from vecmem.errors import ConfigurationError
from vecmem.serve.service import check_tenant_name

ENV = "VECMEM_API_KEYS"
"""``KEY:TENANT[:ro]`` entries separated by commas or whitespace."""
MIN_KEY = 16


@dataclass(frozen=True)
class Caller:
    """Who a request is: its tenant (``None`` on a server started open) and whether it may
    write."""

    tenant: str | None
    read_only: bool = False


OPEN = Caller(None)


class KeyTable:
    """Keys -> callers. Lookups compare every key in constant time (``hmac.compare_digest``)."""

    def __init__(self, entries: dict[str, Caller]) -> None:
        self._entries = dict(entries)

    def __len__(self) -> int:
        return len(self._entries)

    @classmethod
    def parse(cls, text: str, *, source: str, min_key: int = 1) -> KeyTable:
        entries: dict[str, Caller] = {}
        for n, raw in enumerate(text.splitlines(), 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("ro", "rw")):
                raise ConfigurationError(f"{source}:{n}: expected 'KEY TENANT [ro|rw]'")
            key, tenant = parts[0], parts[1]
            if len(key) < min_key:
                raise ConfigurationError(
                    f"{source}:{n}: keys must have at least {min_key} characters"
                )
            if key in entries:
                raise ConfigurationError(f"{source}:{n}: the same key appears twice")
            entries[key] = Caller(check_tenant_name(tenant), len(parts) == 3 and parts[2] == "ro")
        return cls(entries)

    @classmethod
    def load(
        cls, path: str | os.PathLike[str] | None = None, *, environ: dict[str, str] | None = None
    ) -> KeyTable:
        """Keys from ``path`` and ``$VECMEM_API_KEYS`` (both, if both are given)."""
        env = os.environ if environ is None else environ
        table: dict[str, Caller] = {}
        if path is not None:
            try:
                text = Path(path).read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigurationError(f"cannot read the API key file {path}: {exc}") from exc
            table.update(cls.parse(text, source=str(path), min_key=MIN_KEY)._entries)
        if env.get(ENV):
            lines = "\n".join(
                " ".join(item.split(":")) for item in env[ENV].replace(",", " ").split()
            )
            for key, caller in cls.parse(lines, source=f"${ENV}", min_key=MIN_KEY)._entries.items():
                if key in table:
                    raise ConfigurationError(f"a key appears in both {path} and ${ENV}")
                table[key] = caller
        return cls(table)

    def lookup(self, authorization: str | None) -> Caller | None:
        """The caller of an ``Authorization`` header value, or ``None``."""
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        given = token.strip().encode()
        found = None
        for key, caller in self._entries.items():  # no early exit: timing says nothing
            if hmac.compare_digest(key.encode(), given):
                found = caller
        return found
