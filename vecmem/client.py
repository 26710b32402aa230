"""A Python client of ``vecmem serve`` with :class:`~vecmem.memory.VectorMemory`'s method names,
so code moves from in-process to served by changing one line; errors come back as the same
vecmem types (``NotFoundError``, ``InvalidInputError``, ...).

>>> from vecmem.client import Client
>>> mem = Client("http://127.0.0.1:8080", api_key="...")           # doctest: +SKIP
>>> mem.add(["first text"], metadata={"source": "a.md"})             # doctest: +SKIP
>>> mem.search("first", k=3, mode="hybrid")[0].scores.vector_rank     # doctest: +SKIP
1

Agent memory is under ``client.agent`` (``remember``, ``recall``, ``update``, ``forget``,
``get``, ``history``, ``undo``, ``consolidate``, ``list``) and conversations under
``client.conversations``; both return the server's JSON (dicts).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vecmem import errors as E
from vecmem._deps import require
from vecmem.fusion import Fusion
from vecmem.types import Chunk, Hit, Scores

_BY_STATUS: dict[int, type[E.VecmemError]] = {
    400: E.InvalidInputError,
    404: E.NotFoundError,
    409: E.ConflictError,
    413: E.DocumentTooLargeError,
    415: E.UnsupportedFormatError,
    503: E.BackendUnavailableError,
}


class ServerError(E.BackendError):
    """The server answered with a status no vecmem error stands for (500, 401, 403, ...)."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(f"{status} {kind}: {message}")
        self.status = status
        self.kind = kind


class AuthError(ServerError, PermissionError):
    """401 (missing or unknown key) or 403 (a read-only key writing)."""


def _error(status: int, body: Any) -> Exception:
    err = body.get("error", {}) if isinstance(body, dict) else {}
    kind, message = str(err.get("type", "Error")), str(err.get("message", body))
    if status in (401, 403):
        return AuthError(status, kind, message)
    cls = getattr(E, kind, None)
    if (
        isinstance(cls, type)
        and issubclass(cls, E.VecmemError)
        and cls is not E.MissingDependencyError
    ):
        try:
            return cls(message)
        except TypeError:
            pass
    if status in _BY_STATUS:
        return _BY_STATUS[status](message)
    return ServerError(status, kind, message)


def _chunk(d: Mapping[str, Any]) -> Chunk:
    return Chunk(
        id=d["id"],
        document_id=d["document_id"],
        position=d["position"],
        text=d["text"],
        metadata=dict(d["metadata"]),
        content_hash=d["content_hash"],
    )


def _hit(d: Mapping[str, Any]) -> Hit:
    return Hit(_chunk(d), float(d["score"]), Scores(**d["scores"]))


class Client:
    """A served vector memory (see the module docstring). ``api_key`` is sent as
    ``Authorization: Bearer``; omit it for a server started ``--open``."""

    def __init__(self, url: str, api_key: str | None = None, *, timeout: float = 30.0) -> None:
        httpx = require("httpx", "client", "vecmem.client")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout)
        self._transport_error = httpx.TransportError
        self.agent = _Agent(self)
        self.conversations = _Conversations(self)

    def _call(
        self, method: str, path: str, body: Any = None, *, files: Any = None, data: Any = None
    ) -> Any:
        try:
            if files is not None:
                r = self._http.request(method, path, files=files, data=data)
            else:
                r = self._http.request(method, path, json=body)
        except self._transport_error as exc:
            raise E.BackendUnavailableError(f"cannot reach the vecmem server: {exc}") from exc
        try:
            data = r.json()
        except ValueError:
            data = {"error": {"type": "Error", "message": r.text[:200]}}
        if r.status_code >= 400:
            raise _error(r.status_code, data)
        return data

    # --- VectorMemory's calls
    def add(
        self,
        texts: str | Sequence[str],
        metadata: Mapping[str, Any] | Sequence[Mapping[str, Any] | None] | None = None,
        *,
        ids: Sequence[str] | None = None,
    ) -> list[str]:
        """:meth:`VectorMemory.add`: the document ids."""
        body = {
            "texts": texts if isinstance(texts, str) else list(texts),
            "metadata": metadata
            if metadata is None or isinstance(metadata, Mapping)
            else list(metadata),
            "ids": None if ids is None else list(ids),
        }
        return self._call("POST", "/add", body)["ids"]

    def add_files(
        self,
        paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        *,
        metadata: Mapping[str, Any] | None = None,
        force: bool = False,
    ) -> dict[str, Any]:
        """Upload files (their contents; the server reads them with its loaders): each file's
        document id and ``source`` are its file name. Returns the server's report (ids,
        ``failed`` with error types, ``unsupported``)."""
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        files = []
        for p in paths:
            path = Path(p)
            try:
                files.append(("files", (path.name, path.read_bytes())))
            except OSError as exc:
                raise E.DocumentReadError(f"cannot read {path}: {exc}") from exc
        data = {"force": "true" if force else "false"}
        if metadata is not None:
            data["metadata"] = json.dumps(dict(metadata))
        return self._call("POST", "/add_files", files=files, data=data)

    def search(
        self,
        query: str,
        k: int = 10,
        *,
        mode: str = "hybrid",
        filter: Any = None,
        candidates: int | None = None,
        fusion: Fusion | None = None,
        vector: Sequence[float] | None = None,
    ) -> list[Hit]:
        """:meth:`VectorMemory.search`: hits with their per-leg :class:`Scores`."""
        body = {
            "query": query,
            "k": k,
            "mode": mode,
            "filter": filter,
            "candidates": candidates,
            "fusion": None if fusion is None else dataclasses.asdict(fusion),
            "vector": None if vector is None else [float(x) for x in vector],
        }
        return [_hit(h) for h in self._call("POST", "/search", body)["hits"]]

    def get(self, ids: str | Sequence[str]) -> list[Chunk]:
        return [
            _chunk(c)
            for c in self._call(
                "POST", "/get", {"ids": ids if isinstance(ids, str) else list(ids)}
            )["chunks"]
        ]

    def documents(self, *, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        """``{"total", "documents": [{document_id, chunks, source, text}]}`` (browsing)."""
        return self._call("POST", "/documents", {"limit": limit, "offset": offset})

    def delete(self, ids: Sequence[str] | None = None, *, filter: Any = None) -> int:
        body = {"ids": ids if ids is None or isinstance(ids, str) else list(ids), "filter": filter}
        return int(self._call("POST", "/delete", body)["deleted"])

    def count(self, filter: Any = None) -> int:
        return int(self._call("POST", "/count", {"filter": filter})["count"])

    def __len__(self) -> int:
        return self.count()

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "/stats")

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/health")

    def metrics(self) -> dict[str, Any]:
        return self._call("GET", "/metrics")

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Agent:
    """AgentMemory's calls, scoped by ``user_id`` / ``agent_id`` / ``run_id`` (dict answers)."""

    def __init__(self, client: Client) -> None:
        self._c = client

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        return self._c._call("POST", f"/memory/{path}", body)

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
        return self._post(
            "remember",
            {
                "text": text,
                "user_id": user_id,
                "agent_id": agent_id,
                "run_id": run_id,
                "session_id": session_id,
                "importance": importance,
                "metadata": metadata,
            },
        )

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
        return self._post(
            "recall",
            {
                "query": query,
                "user_id": user_id,
                "agent_id": agent_id,
                "run_id": run_id,
                "k": k,
                "filter": filter,
                "as_of": as_of,
                "recency_weight": recency_weight,
                "importance_weight": importance_weight,
                "half_life_days": half_life_days,
                "mode": mode,
            },
        )["hits"]

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
        return self._post(
            "update",
            {
                "memory_id": memory_id,
                "text": text,
                "user_id": user_id,
                "agent_id": agent_id,
                "run_id": run_id,
                "reason": reason,
                "metadata": metadata,
            },
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
        return self._post(
            "forget",
            {
                "memory_id": memory_id,
                "user_id": user_id,
                "agent_id": agent_id,
                "run_id": run_id,
                "reason": reason,
            },
        )

    def get(
        self,
        memory_id: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
    ) -> dict[str, Any]:
        return self._post(
            "get",
            {"memory_id": memory_id, "user_id": user_id, "agent_id": agent_id, "run_id": run_id},
        )

    def history(
        self,
        memory_id: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
    ) -> dict[str, Any]:
        """``{"changes": [...], "versions": [...]}``, oldest first."""
        return self._post(
            "history",
            {"memory_id": memory_id, "user_id": user_id, "agent_id": agent_id, "run_id": run_id},
        )

    def undo(
        self,
        change_id: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        reason: str | None = None,
    ) -> str:
        return self._post(
            "undo",
            {
                "change_id": change_id,
                "user_id": user_id,
                "agent_id": agent_id,
                "run_id": run_id,
                "reason": reason,
            },
        )["change_id"]

    def consolidate(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        window: float = 7 * 86400.0,
        similarity: float = 0.75,
        min_group: int = 2,
    ) -> dict[str, Any]:
        return self._post(
            "consolidate",
            {
                "user_id": user_id,
                "agent_id": agent_id,
                "run_id": run_id,
                "window": window,
                "similarity": similarity,
                "min_group": min_group,
            },
        )

    def list(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        limit: int = 50,
        offset: int = 0,
        current_only: bool = True,
    ) -> list[dict[str, Any]]:
        return self._post(
            "list",
            {
                "user_id": user_id,
                "agent_id": agent_id,
                "run_id": run_id,
                "limit": limit,
                "offset": offset,
                "current_only": current_only,
            },
        )["memories"]


class _Conversations:
    """ConversationStore's calls (dict answers)."""

    def __init__(self, client: Client) -> None:
        self._c = client

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        return self._c._call("POST", f"/conversations/{path}", body)

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
        return self._post(
            "sessions/save",
            {
                "user_id": user_id,
                "session_id": session_id,
                "agent_id": agent_id,
                "title": title,
                "tags": None if tags is None else list(tags),
                "metadata": metadata,
            },
        )

    def get_session(self, user_id: str, session_id: str) -> dict[str, Any]:
        return self._post("sessions/get", {"user_id": user_id, "session_id": session_id})

    def query_sessions(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        tags: Sequence[str] = (),
        min_messages: int | None = None,
        order_by: str = "updated_at",
        descending: bool = True,
        limit: int = 100,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        return self._post(
            "sessions/query",
            {
                "user_id": user_id,
                "agent_id": agent_id,
                "tags": list(tags),
                "min_messages": min_messages,
                "order_by": order_by,
                "descending": descending,
                "limit": limit,
                "offset": offset,
            },
        )["sessions"]

    def delete_session(self, user_id: str, session_id: str) -> bool:
        return self._post("sessions/delete", {"user_id": user_id, "session_id": session_id})[
            "deleted"
        ]

    def add_messages(
        self,
        user_id: str,
        session_id: str,
        messages: Sequence[Mapping[str, Any]],
        *,
        agent_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """``messages``: dicts with ``role``, ``content`` and optional ``metadata``, ``usage``."""
        return self._post(
            "messages/add",
            {
                "user_id": user_id,
                "session_id": session_id,
                "messages": [dict(m) for m in messages],
                "agent_id": agent_id,
            },
        )["messages"]

    def get_messages(
        self,
        user_id: str,
        session_id: str,
        *,
        limit: int | None = None,
        offset: int = 0,
        newest_first: bool = False,
    ) -> list[dict[str, Any]]:
        return self._post(
            "messages/get",
            {
                "user_id": user_id,
                "session_id": session_id,
                "limit": limit,
                "offset": offset,
                "newest_first": newest_first,
            },
        )["messages"]

    def export(self, user_id: str, session_id: str | None = None) -> dict[str, Any]:
        return self._post("export", {"user_id": user_id, "session_id": session_id})
