"""What the server does, per caller: the library's calls, scoped to the caller's tenant.

The HTTP routes and the MCP tools both call a :class:`TenantView`, so isolation is enforced in
one place. How a tenant maps onto one shared vector store:

* every chunk a tenant writes carries the reserved metadata field ``vecmem_tenant`` and its
  document id is prefixed ``"<tenant>/"`` (tenant names have no ``/``, so prefixes never
  overlap, and two tenants adding the same text get two documents, not one overwritten);
* every read, count and delete ANDs ``{"vecmem_tenant": tenant}`` to the caller's filter (an
  ``$or`` or ``$not`` inside the caller's filter can only narrow it), and id-based calls keep
  only chunks whose stored tenant field is the caller's;
* agent memory scopes (``user_id``, ``agent_id``, ``run_id``) are prefixed ``"<tenant>/"``, so
  one tenant's ``user_id="alice"`` is not another's; conversation stores have tenants of their
  own (:meth:`~vecmem.conversations.ConversationStore.with_tenant`).

Answers are stripped of the prefix and the reserved field. A server started open (no keys)
serves the whole store unscoped (tenant ``None``), as the command line does.

>>> from vecmem.memory import VectorMemory
>>> svc = Service(VectorMemory(embedder="hashing"))
>>> a, b = svc.view("acme"), svc.view("globex")
>>> a.add(["green tea is popular"], ids=["d1"])
['d1']
>>> [h["document_id"] for h in a.search("green tea")], b.search("green tea")
(['d1'], [])
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any, TypedDict

import sqlalchemy as sa

from vecmem.agent_memory import SCOPE_FIELDS, AgentMemory, Change, Memory, versions_table
from vecmem.conversations import MemoryConversationStore, Message, Usage
from vecmem.conversations.base import ConversationStore, message_dict, session_dict
from vecmem.errors import ConfigurationError, InvalidInputError, VecmemError
from vecmem.fusion import Fusion
from vecmem.memory import VectorMemory
from vecmem.types import Chunk, Document, Hit, content_hash

TENANT_FIELD = "vecmem_tenant"
"""The reserved chunk metadata field that holds a chunk's tenant."""
SEP = "/"
_TENANT_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MAX_K = 1000


def check_tenant_name(name: str) -> str:
    """A tenant name: 1-64 of ``A-Z a-z 0-9 _ . -`` (never ``/``, the id prefix separator)."""
    if not isinstance(name, str) or not _TENANT_RE.match(name):
        raise ConfigurationError(f"tenant names are 1-64 characters of A-Z a-z 0-9 _ . -: {name!r}")
    return name


class Service:
    """The served stores: knowledge (a :class:`VectorMemory`), agent memory and conversations.

    ``agent``: agent memory (default: over an in-memory store with the knowledge embedder and an
    in-memory history database); ``conversations``: a conversation store (default in memory).
    """

    def __init__(
        self,
        memory: VectorMemory,
        *,
        agent: AgentMemory | None = None,
        conversations: ConversationStore | None = None,
    ) -> None:
        self.memory = memory
        self.agent = (
            agent if agent is not None else AgentMemory(VectorMemory(embedder=memory.embedder))
        )
        self.conversations = (
            conversations
            if conversations is not None
            else MemoryConversationStore(tenant="default")
        )
        self._views: dict[str | None, TenantView] = {}
        self._lock = threading.Lock()

    def view(self, tenant: str | None) -> TenantView:
        """The calls of one tenant (``None``: the whole store, unscoped)."""
        with self._lock:
            v = self._views.get(tenant)
            if v is None:
                if tenant is not None:
                    check_tenant_name(tenant)
                v = self._views[tenant] = TenantView(self, tenant)
            return v

    def close(self) -> None:
        self.agent.close()
        self.memory.close()
        self.conversations.close()


class _ScopeArgs(TypedDict):
    user_id: str | None
    agent_id: str | None
    run_id: str | None


def _seq(value: Any, what: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v for v in value):
        raise InvalidInputError(f"{what} must be a string or a list of non-empty strings")
    return list(value)


class TenantView:
    """The library's calls as one tenant sees them (see the module docstring)."""

    def __init__(self, service: Service, tenant: str | None) -> None:
        self.service = service
        self.tenant = tenant
        self.mem = service.memory
        self.agent = service.agent
        self.conv = service.conversations.with_tenant(tenant or "default")

    # ------------------------------------------------------------------ id and filter mapping
    def _in(self, doc_id: str) -> str:
        return doc_id if self.tenant is None else f"{self.tenant}{SEP}{doc_id}"

    def _out(self, stored: str) -> str:
        if self.tenant is None:
            return stored
        return stored[len(self.tenant) + 1 :]

    def _filter(self, flt: Any) -> Any:
        if self.tenant is None:
            return flt
        mine = {TENANT_FIELD: self.tenant}
        return mine if flt is None else {"$and": [mine, flt]}

    def _mine(self, chunk: Chunk) -> bool:
        return self.tenant is None or chunk.metadata.get(TENANT_FIELD) == self.tenant

    def _chunk(self, c: Chunk) -> dict[str, Any]:
        d = c.to_dict()
        if self.tenant is not None:
            d["id"], d["document_id"] = self._out(c.id), self._out(c.document_id)
            d["metadata"] = {k: v for k, v in c.metadata.items() if k != TENANT_FIELD}
        return d

    def _hit(self, h: Hit, rank: int) -> dict[str, Any]:
        d = h.to_dict()
        d.update(self._chunk(h.chunk))
        d["rank"] = rank
        return d

    # ------------------------------------------------------------------ knowledge
    def add(
        self, texts: str | Sequence[str], metadata: Any = None, *, ids: Sequence[str] | None = None
    ) -> list[str]:
        """:meth:`VectorMemory.add`, tenant-stamped; returns the (unprefixed) document ids."""
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, (list, tuple)) or not texts:
            raise InvalidInputError("texts must be a string or a non-empty list of strings")
        if self.tenant is None:
            return self.mem.add(list(texts), metadata, ids=ids)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise InvalidInputError(f"text {i} is {type(t).__name__}, not str")
        if ids is None:
            ids = [content_hash(t)[:32] for t in texts]
        ids = _seq(ids, "ids")
        if len(ids) != len(texts):
            raise InvalidInputError(f"{len(ids)} ids for {len(texts)} texts")
        metas = (
            [metadata] * len(texts)
            if metadata is None or isinstance(metadata, Mapping)
            else metadata
        )
        if not isinstance(metas, (list, tuple)) or len(metas) != len(texts):
            raise InvalidInputError("metadata must be one dict or one dict (or null) per text")
        stamped = []
        for i, m in enumerate(metas):
            if m is not None and not isinstance(m, Mapping):
                raise InvalidInputError(f"metadata of text {i} must be a dict")
            if m and TENANT_FIELD in m:
                raise InvalidInputError(f"metadata key {TENANT_FIELD!r} is reserved by the server")
            stamped.append({**(m or {}), TENANT_FIELD: self.tenant})
        self.mem.add(list(texts), stamped, ids=[self._in(i) for i in ids])
        return list(ids)

    def add_documents(self, documents: Sequence[Document], *, force: bool = False) -> Any:
        """:meth:`VectorMemory.add_documents`, tenant-stamped; the result's ids unprefixed."""
        if self.tenant is not None:
            stamped = []
            for d in documents:
                if TENANT_FIELD in d.metadata:
                    raise InvalidInputError(
                        f"metadata key {TENANT_FIELD!r} is reserved by the server"
                    )
                stamped.append(
                    Document(
                        self._in(d.id),
                        d.text,
                        {**d.metadata, TENANT_FIELD: self.tenant},
                        d.elements,
                    )
                )
            documents = stamped
        result = self.mem.add_documents(documents, force=force)
        result.document_ids = [self._out(i) for i in result.document_ids]
        return result

    def add_files(
        self,
        files: Sequence[tuple[str, bytes]],
        *,
        metadata: Mapping[str, Any] | None = None,
        force: bool = False,
    ) -> dict[str, Any]:
        """Uploaded files (name, bytes) read by the loaders as ``add_files`` reads paths: a
        file's document id and ``source`` are its name; a file that cannot be read is listed in
        ``failed`` with its error type, one no loader reads in ``unsupported``; the others are
        added."""
        from vecmem.ingest import _load, documents_of
        from vecmem.loaders import LoaderTable

        if metadata is not None and not isinstance(metadata, Mapping):
            raise InvalidInputError("metadata must be a JSON object")
        table = LoaderTable()
        docs: list[Document] = []
        failed: list[dict[str, str]] = []
        unsupported: list[str] = []
        warnings: list[str] = []
        pages = read = 0
        seen: set[str] = set()
        for name, data in files:
            if not isinstance(name, str) or not name.strip():
                raise InvalidInputError("every uploaded file needs a file name")
            loader = table.for_name(name)
            if loader is None:
                unsupported.append(name)
                continue
            try:
                loaded = _load(loader, data, name)
                found = documents_of(
                    loaded, doc_id=name, metadata={**(metadata or {}), "source": name}
                )
                ids = [d.id for d in found]
                if seen & set(ids) or len(set(ids)) != len(ids):
                    raise InvalidInputError(f"{name}: a document id appears twice")
            except VecmemError as exc:
                failed.append({"source": name, "error": type(exc).__name__, "message": str(exc)})
                continue
            seen.update(ids)
            docs += found
            read += 1
            pages += loaded.pages
            warnings += loaded.warnings
        result = self.add_documents(docs, force=force) if docs else None
        return {
            "document_ids": result.document_ids if result else [],
            "added": result.added if result else 0,
            "skipped": result.skipped if result else 0,
            "chunks_written": result.chunks_written if result else 0,
            "files": read,
            "pages": pages,
            "unsupported": unsupported,
            "failed": failed,
            "warnings": warnings,
        }

    def search(
        self,
        query: str,
        k: int = 10,
        *,
        mode: str = "hybrid",
        filter: Any = None,
        candidates: int | None = None,
        fusion: Mapping[str, Any] | None = None,
        vector: Sequence[float] | None = None,
    ) -> list[dict[str, Any]]:
        """:meth:`VectorMemory.search` within the tenant; hits as dicts with per-leg scores."""
        if isinstance(k, int) and k > MAX_K:
            raise InvalidInputError(f"k must be at most {MAX_K}")
        f = None
        if fusion is not None:
            try:
                f = Fusion(**dict(fusion))
            except TypeError as exc:
                raise InvalidInputError(f"fusion: {exc}") from exc
        hits = self.mem.search(
            query,
            k=k,
            mode=mode,  # type: ignore[arg-type]
            filter=self._filter(filter),
            candidates=candidates,
            fusion=f,
            vector=vector,
        )
        return [self._hit(h, r) for r, h in enumerate(hits, 1)]

    def get(self, ids: str | Sequence[str]) -> list[dict[str, Any]]:
        """Chunks by chunk id, or every chunk of a document id (the tenant's only)."""
        got = self.mem.get([self._in(i) for i in _seq(ids, "ids")])
        return [self._chunk(c) for c in got if self._mine(c)]

    def documents(self, *, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        """The tenant's documents in insertion order (id, chunk count, source, the start of its
        text), for browsing. Only stores that can list their chunks (``all_chunks``: the
        embedded default and the in-memory store) can; one pass over the store per call."""
        if not 1 <= limit <= MAX_K or offset < 0:
            raise InvalidInputError(f"limit must be in [1, {MAX_K}] and offset >= 0")
        listing = getattr(self.mem.store, "all_chunks", None)
        if listing is None:
            raise ConfigurationError(
                f"the {self.mem.store.name} store cannot list its documents; open one by its id"
            )
        self.mem.space  # noqa: B018  (connect)
        docs: dict[str, list[Chunk]] = {}
        for c in listing():
            if self._mine(c) and (
                self.tenant is None or c.document_id.startswith(self.tenant + SEP)
            ):
                docs.setdefault(c.document_id, []).append(c)
        page = list(docs.items())[offset : offset + limit]
        out = []
        for doc_id, chunks in page:
            first = min(chunks, key=lambda c: c.position)
            meta = self._chunk(first)["metadata"]
            out.append(
                {
                    "document_id": self._out(doc_id),
                    "chunks": len(chunks),
                    "source": meta.get("source"),
                    "text": first.text[:200],
                }
            )
        return {"total": len(docs), "documents": out}

    def delete(self, ids: str | Sequence[str] | None = None, *, filter: Any = None) -> int:
        """Delete the tenant's chunks by chunk/document id and/or filter; chunks removed."""
        if ids is None and filter is None:
            raise InvalidInputError("delete needs ids or a filter")
        if self.tenant is None:
            return self.mem.delete(None if ids is None else _seq(ids, "ids"), filter=filter)
        chunk_ids = None
        if ids is not None:
            chunk_ids = [
                c.id for c in self.mem.get([self._in(i) for i in _seq(ids, "ids")]) if self._mine(c)
            ]
            if not chunk_ids and filter is None:
                return 0
        return self.mem.store.delete(
            ids=chunk_ids, filter=self._parsed(filter) if filter is not None else None
        )

    def _parsed(self, flt: Any) -> Any:
        from vecmem.filters import parse_filter

        self.mem.space  # noqa: B018  (connect)
        return parse_filter(self._filter(flt))

    def count(self, filter: Any = None) -> int:
        return self.mem.count(self._filter(filter))

    def stats(self) -> dict[str, Any]:
        out = self.mem.stats()
        out["fusion"] = dict(out["fusion"])
        if self.tenant is not None:
            out["chunks"] = self.count()
            out["tenant"] = self.tenant
        return out

    # ------------------------------------------------------------------ agent memory
    def _scope(self, user_id: str | None, agent_id: str | None, run_id: str | None) -> _ScopeArgs:
        out: dict[str, str | None] = {}
        for f, v in zip(SCOPE_FIELDS, (user_id, agent_id, run_id)):
            if v is not None and not isinstance(v, str):
                raise InvalidInputError(f"{f} must be a string")
            out[f] = v if v is None or self.tenant is None else f"{self.tenant}{SEP}{v}"
        return _ScopeArgs(user_id=out["user_id"], agent_id=out["agent_id"], run_id=out["run_id"])

    def _state(self, state: Mapping[str, Any] | None) -> dict[str, Any] | None:
        if state is None:
            return None
        d = dict(state)
        if self.tenant is not None:
            for f in SCOPE_FIELDS:
                if isinstance(d.get(f), str):
                    d[f] = self._out(d[f])
        return d

    def _memory(self, m: Memory) -> dict[str, Any]:
        return {
            "id": m.id,
            "version": m.version,
            "text": m.text,
            "metadata": m.metadata,
            "state": self._state(m.state),
        }

    def _change(self, c: Change) -> dict[str, Any]:
        payload = [
            {**p, "before": self._state(p.get("before")), "after": self._state(p.get("after"))}
            for p in c.payload
        ]
        return {
            "change_id": c.change_id,
            "memory_id": c.memory_id,
            "op": c.op,
            "at": c.at,
            "reason": c.reason,
            "payload": payload,
            "undone_by": c.undone_by,
        }

    def remember(
        self,
        text: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        session_id: str | None = None,
        importance: float | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        w = self.agent.remember(
            text,
            **self._scope(user_id, agent_id, run_id),
            session_id=session_id,
            importance=importance,
            metadata=metadata,
        )
        return asdict(w)

    def recall(
        self,
        query: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        k: int = 10,
        filter: Any = None,
        as_of: float | None = None,
        recency_weight: float = 0.0,
        importance_weight: float = 0.0,
        half_life_days: float | None = None,
        mode: str = "hybrid",
    ) -> list[dict[str, Any]]:
        if isinstance(k, int) and k > MAX_K:
            raise InvalidInputError(f"k must be at most {MAX_K}")
        hits = self.agent.recall(
            query,
            **self._scope(user_id, agent_id, run_id),
            k=k,
            filter=filter,
            as_of=as_of,
            recency_weight=recency_weight,
            importance_weight=importance_weight,
            half_life_days=half_life_days,
            mode=mode,
        )
        return [
            {
                "memory": self._memory(h.memory),
                "score": h.score,
                "relevance": h.relevance,
                "recency": h.recency,
            }
            for h in hits
        ]

    def update(
        self,
        memory_id: str,
        text: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        reason: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        return asdict(
            self.agent.update(
                memory_id,
                text,
                **self._scope(user_id, agent_id, run_id),
                reason=reason,
                metadata=metadata,
            )
        )

    def forget(
        self,
        memory_id: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        reason: str | None = None,
    ) -> dict[str, Any]:
        return asdict(
            self.agent.forget(memory_id, **self._scope(user_id, agent_id, run_id), reason=reason)
        )

    def memory(
        self,
        memory_id: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
    ) -> dict[str, Any]:
        return self._memory(self.agent.get(memory_id, **self._scope(user_id, agent_id, run_id)))

    def history(
        self,
        memory_id: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
    ) -> dict[str, Any]:
        scope = self._scope(user_id, agent_id, run_id)
        return {
            "changes": [self._change(c) for c in self.agent.history(memory_id, **scope)],
            "versions": [self._memory(m) for m in self.agent.versions(memory_id, **scope)],
        }

    def undo(
        self,
        change_id: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        reason: str | None = None,
    ) -> dict[str, Any]:
        return {
            "change_id": self.agent.undo(
                change_id, **self._scope(user_id, agent_id, run_id), reason=reason
            )
        }

    def consolidate(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        window: float = 7 * 86400.0,
        similarity: float = 0.75,
        min_group: int = 2,
        source_weight: float = 0.5,
        max_sentences: int = 3,
    ) -> dict[str, Any]:
        report = self.agent.consolidate(
            **self._scope(user_id, agent_id, run_id),
            window=window,
            similarity=similarity,
            min_group=min_group,
            source_weight=source_weight,
            max_sentences=max_sentences,
        )
        return asdict(report)

    def memories(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        limit: int = 50,
        offset: int = 0,
        current_only: bool = True,
    ) -> list[dict[str, Any]]:
        """The scope's memories, newest first (for browsing)."""
        if not 1 <= limit <= MAX_K or offset < 0:
            raise InvalidInputError(f"limit must be in [1, {MAX_K}] and offset >= 0")
        scope = {
            f: v for f, v in self._scope(user_id, agent_id, run_id).items() if isinstance(v, str)
        }
        if not scope:
            raise InvalidInputError("a memory needs a scope: user_id, agent_id or run_id")
        t = versions_table
        q = sa.select(t.c.memory_id, t.c.version, t.c.text, t.c.state)
        for f, v in scope.items():
            q = q.where(t.c[f] == v)
        if current_only:
            q = q.where(t.c.current.is_(True))
        q = (
            q.order_by(t.c.created_at.desc(), t.c.memory_id, t.c.version)
            .limit(limit)
            .offset(offset)
        )
        with self.agent.db.read("listing memories") as conn:
            rows = conn.execute(q).fetchall()
        return [
            self._memory(Memory(r.memory_id, r.version, r.text, json.loads(r.state))) for r in rows
        ]

    # ------------------------------------------------------------------ conversations
    def save_session(
        self,
        user_id: str,
        session_id: str,
        *,
        agent_id: str | None = None,
        title: str | None = None,
        tags: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        return session_dict(
            self.conv.save_session(
                user_id, session_id, agent_id=agent_id, title=title, tags=tags, metadata=metadata
            )
        )

    def get_session(self, user_id: str, session_id: str) -> dict[str, Any]:
        return session_dict(self.conv.get_session(user_id, session_id))

    def add_messages(
        self,
        user_id: str,
        session_id: str,
        messages: Sequence[Mapping[str, Any]],
        *,
        agent_id: str | None = None,
    ) -> list[dict[str, Any]]:
        msgs = []
        for i, m in enumerate(messages):
            u = m.get("usage")
            try:
                msgs.append(
                    Message(
                        role=m["role"],
                        content=m["content"],
                        metadata=dict(m.get("metadata") or {}),
                        usage=None if u is None else Usage(**u),
                    )
                )
            except (KeyError, TypeError) as exc:
                raise InvalidInputError(f"message {i}: {exc}") from exc
        return [
            message_dict(m)
            for m in self.conv.add_messages(user_id, session_id, msgs, agent_id=agent_id)
        ]

    def get_messages(
        self,
        user_id: str,
        session_id: str,
        *,
        limit: int | None = None,
        offset: int = 0,
        newest_first: bool = False,
    ) -> list[dict[str, Any]]:
        return [
            message_dict(m)
            for m in self.conv.get_messages(
                user_id, session_id, limit=limit, offset=offset, newest_first=newest_first
            )
        ]

    def query_sessions(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        since: float | None = None,
        until: float | None = None,
        tags: Sequence[str] = (),
        min_messages: int | None = None,
        order_by: str = "updated_at",
        descending: bool = True,
        limit: int = 100,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        return [
            session_dict(s)
            for s in self.conv.query_sessions(
                user_id=user_id,
                agent_id=agent_id,
                since=since,
                until=until,
                tags=tags,
                min_messages=min_messages,
                order_by=order_by,  # type: ignore[arg-type]
                descending=descending,
                limit=limit,
                offset=offset,
            )
        ]

    def delete_session(self, user_id: str, session_id: str) -> bool:
        return self.conv.delete_session(user_id, session_id)

    def export(self, user_id: str, session_id: str | None = None) -> dict[str, Any]:
        return self.conv.export(user_id, session_id)
