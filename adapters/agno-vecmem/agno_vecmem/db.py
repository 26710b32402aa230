"""agno ``db`` on vecmem: sessions on vecmem's conversation store, user memories on its agent
memory, on SQLite or PostgreSQL (any URL :data:`vecmem.registry.CONVERSATION_STORES` opens).

An agno session is one vecmem session of its user (``user_id``; sessions without one belong to
:data:`ANONYMOUS`) whose metadata holds agno's session record; the messages of each completed run
are appended to the session as vecmem messages (with token usage), so vecmem's own tools
(``export``, ``query_sessions``, usage totals) see the conversation. Evaluations, knowledge
contents, traces, learnings and metrics are not stored: those methods raise
:class:`UnsupportedByVecmemDb` rather than drop data.
"""

from __future__ import annotations

import abc
import copy
import time
from collections.abc import Sequence
from typing import Any

from agno.db.base import BaseDb, SessionType
from agno.db.in_memory.utils import apply_sorting
from agno.db.schemas.memory import UserMemory
from agno.db.utils import deserialize_session, filter_context_runs
from agno.session import AgentSession, TeamSession, WorkflowSession

from vecmem.agent_memory import AgentMemory, Memory
from vecmem.conversations import ConversationStore, Message, Usage
from vecmem.errors import InvalidInputError, NotFoundError, VecmemError
from vecmem.registry import CONVERSATION_STORES

ANONYMOUS = "agno:anonymous"
"""The vecmem user of agno sessions that have no ``user_id``."""

_KEY = "agno"  # session metadata: agno's session record
_LOGGED = "agno_logged_runs"  # session metadata: runs whose messages are vecmem messages
_ROLES = frozenset({"system", "user", "assistant", "tool"})

AgnoSession = AgentSession | TeamSession | WorkflowSession


class UnsupportedByVecmemDb(VecmemError, NotImplementedError):
    """agno asked :class:`VecmemDb` for a table vecmem does not keep (evals, traces, ...)."""


def _session_type(session: AgnoSession) -> str:
    if isinstance(session, TeamSession):
        return SessionType.TEAM.value
    if isinstance(session, WorkflowSession):
        return SessionType.WORKFLOW.value
    return SessionType.AGENT.value


def _component_id(record: dict[str, Any]) -> str | None:
    return record.get("agent_id") or record.get("team_id") or record.get("workflow_id")


def _run_messages(run: dict[str, Any]) -> list[Message]:
    """A completed run's messages as vecmem messages (history replays and system prompts left
    out: they are already in the session or are not part of the conversation)."""
    out = []
    for m in run.get("messages") or []:
        if m.get("from_history") or m.get("role") not in _ROLES or m.get("role") == "system":
            continue
        content = m.get("content")
        text = content if isinstance(content, str) else ("" if content is None else str(content))
        metrics = m.get("metrics") or {}
        usage = None
        if metrics.get("input_tokens") or metrics.get("output_tokens"):
            usage = Usage(
                input_tokens=int(metrics.get("input_tokens") or 0),
                output_tokens=int(metrics.get("output_tokens") or 0),
                model=run.get("model"),
            )
        out.append(
            Message(m["role"], text, usage=usage, metadata={"agno_run_id": run.get("run_id")})
        )
    return out


class VecmemDb(BaseDb):
    """agno's ``db`` on vecmem: sessions (conversation store) and user memories.

    ``db_url``: a database URL (``sqlite:///agent.db``, ``postgresql://...``); or pass an open
    ``conversations`` store. ``tenant`` scopes everything.

    >>> from agno_vecmem import VecmemDb
    >>> db = VecmemDb("sqlite://")
    >>> db.get_session("nope") is None
    True
    """

    def __init__(
        self,
        db_url: str | None = None,
        *,
        conversations: ConversationStore | None = None,
        memory: AgentMemory | None = None,
        vectors: str | None = None,
        embedder: Any = None,
        tenant: str = "default",
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        if (db_url is None) == (conversations is None):
            raise InvalidInputError("VecmemDb needs exactly one of db_url or conversations=")
        self._owned = conversations is None
        self.conversations: ConversationStore = (
            conversations
            if conversations is not None
            else CONVERSATION_STORES.create(str(db_url), tenant=tenant)
        )
        self._owns_memory = memory is None
        self.memory: AgentMemory = (
            memory if memory is not None else self._default_memory(db_url, vectors, embedder)
        )

    def _default_memory(
        self, db_url: str | None, vectors: str | None, embedder: Any
    ) -> AgentMemory:
        """Agent memory whose history shares the sessions' database; its vectors go to
        ``vectors`` (a folder or store URL), else pgvector on a PostgreSQL URL, else a folder
        beside a SQLite file, else memory."""
        from vecmem import VectorMemory

        db = getattr(self.conversations, "db", None)
        if vectors is None and db_url is not None:
            scheme = db_url.split("://", 1)[0].split("+", 1)[0].lower()
            path = db_url.split("://", 1)[1].lstrip("/") if scheme == "sqlite" else ""
            if scheme in ("postgresql", "postgres", "pg"):
                vectors = db_url
            elif path and path != ":memory:":
                vectors = "/" + path + ".vectors"
        return AgentMemory(VectorMemory(vectors, embedder=embedder), db=db)

    def close(self) -> None:
        if self._owns_memory:
            self.memory.close()
        if self._owned:
            self.conversations.close()

    # -- housekeeping agno asks about ------------------------------------------------------------
    def table_exists(self, table_name: str) -> bool:
        return table_name in (self.session_table_name, self.memory_table_name)

    def get_latest_schema_version(self, table_name: str) -> str:
        return self.default_schema_version

    def upsert_schema_version(self, table_name: str, version: str) -> None:
        return None  # vecmem migrates its own tables

    # -- sessions ------------------------------------------------------------------------------
    def _find(
        self, session_id: str, user_id: str | None
    ) -> tuple[str, dict[str, Any], dict[str, Any]] | None:
        """``(vecmem user, agno record, session metadata)`` of a session; without ``user_id``
        the anonymous user's sessions are tried first, then every user's (a scan of the
        tenant's sessions: agno looks sessions up by id alone)."""
        user = user_id if user_id is not None else ANONYMOUS
        try:
            s = self.conversations.get_session(user, session_id)
        except NotFoundError:
            s = None
        if (s is None or _KEY not in s.metadata) and user_id is None:
            s = next(
                (
                    x
                    for x in self._all_sessions()
                    if x.session_id == session_id and _KEY in x.metadata
                ),
                None,
            )
        if s is None or _KEY not in s.metadata:
            return None
        meta = copy.deepcopy(dict(s.metadata))
        return s.user_id, meta[_KEY], meta

    def _all_sessions(self, user_id: str | None = None) -> list[Any]:
        out: list[Any] = []
        page = 500
        while True:
            batch = self.conversations.query_sessions(user_id=user_id, limit=page, offset=len(out))
            out.extend(batch)
            if len(batch) < page:
                return out

    def get_session(
        self,
        session_id: str,
        session_type: SessionType | None = None,
        user_id: str | None = None,
        deserialize: bool | None = True,
        runs_limit: int | None = None,
    ) -> AgnoSession | dict[str, Any] | None:
        found = self._find(session_id, user_id)
        if found is None:
            return None
        record = found[1]
        if session_type is not None and record.get("session_type") != session_type.value:
            return None
        if runs_limit is not None:
            record["runs"] = filter_context_runs(record.get("runs") or [])[-runs_limit:]
        return deserialize_session(session_type, record) if deserialize else record

    def get_sessions(
        self,
        session_type: SessionType | None = None,
        user_id: str | None = None,
        component_id: str | None = None,
        session_name: str | None = None,
        start_timestamp: int | None = None,
        end_timestamp: int | None = None,
        limit: int | None = None,
        page: int | None = None,
        sort_by: str | None = None,
        sort_order: str | None = None,
        deserialize: bool | None = True,
        include_runs: bool = True,
    ) -> Any:
        records = []
        for s in self._all_sessions(user_id):
            r = s.metadata.get(_KEY)
            if r is None or (
                session_type is not None and r.get("session_type") != session_type.value
            ):
                continue
            if component_id is not None and _component_id(r) != component_id:
                continue
            created = r.get("created_at") or 0
            if start_timestamp is not None and created < start_timestamp:
                continue
            if end_timestamp is not None and created > end_timestamp:
                continue
            name = (r.get("session_data") or {}).get("session_name") or ""
            if session_name is not None and session_name.lower() not in name.lower():
                continue
            record = copy.deepcopy(dict(r))
            if not include_runs:
                record["runs"] = None
            records.append(record)
        records = apply_sorting(records, sort_by or "created_at", sort_order)
        total = len(records)
        if limit is not None:
            start = ((page or 1) - 1) * limit
            records = records[start : start + limit]
        if not deserialize:
            return records, total
        return [deserialize_session(session_type, r) for r in records]

    def upsert_session(
        self, session: AgnoSession, deserialize: bool | None = True
    ) -> AgnoSession | dict[str, Any] | None:
        return self.upsert_sessions([session], deserialize=deserialize)[0]

    def upsert_sessions(
        self,
        sessions: Sequence[AgnoSession],
        deserialize: bool | None = True,
        preserve_updated_at: bool = False,
    ) -> list[Any]:
        out = []
        for session in sessions:
            record = session.to_dict()
            record["session_type"] = _session_type(session)
            record["runs"] = [
                r if isinstance(r, dict) else r.to_dict() for r in (session.runs or [])
            ]
            now = int(time.time())
            user = session.user_id or ANONYMOUS
            previous = self._find(session.session_id, user)
            record["created_at"] = (
                (previous[1].get("created_at") if previous else None)
                or record.get("created_at")
                or now
            )
            if not (preserve_updated_at and record.get("updated_at")):
                record["updated_at"] = now
            logged = self._log_runs(
                user, session.session_id, record, previous[2].get(_LOGGED, []) if previous else []
            )
            self.conversations.save_session(
                user,
                session.session_id,
                agent_id=_component_id(record),
                title=(record.get("session_data") or {}).get("session_name"),
                metadata={_KEY: record, _LOGGED: logged},
            )
            out.append(
                deserialize_session(None, copy.deepcopy(record))
                if deserialize
                else copy.deepcopy(record)
            )
        return out

    def _log_runs(
        self, user: str, session_id: str, record: dict[str, Any], logged: list[str]
    ) -> list[str]:
        """Append the messages of runs completed since the last upsert to the vecmem session;
        returns the ids of the runs logged so far."""
        done = set(logged)
        new = [
            r
            for r in record["runs"]
            if str(r.get("status", "")).lower() == "completed"
            and r.get("run_id") not in done
            and not r.get("parent_run_id")
        ]
        messages = [m for r in new for m in _run_messages(r)]
        if messages:
            self.conversations.add_messages(
                user, session_id, messages, agent_id=_component_id(record)
            )
        return sorted(done | {r["run_id"] for r in new})

    def rename_session(
        self,
        session_id: str,
        session_type: SessionType | None,
        session_name: str,
        user_id: str | None = None,
        deserialize: bool | None = True,
    ) -> Any:
        found = self._find(session_id, user_id)
        if found is None:
            return None
        user, record, meta = found
        record["session_data"] = {
            **(record.get("session_data") or {}),
            "session_name": session_name,
        }
        record["updated_at"] = int(time.time())
        self.conversations.save_session(
            user, session_id, title=session_name, metadata={**meta, _KEY: record}
        )
        return deserialize_session(session_type, record) if deserialize else record

    def delete_session(self, session_id: str, user_id: str | None = None) -> bool:
        found = self._find(session_id, user_id)
        return found is not None and self.conversations.delete_session(found[0], session_id)

    def delete_sessions(self, session_ids: list[str], user_id: str | None = None) -> None:
        for session_id in session_ids:
            self.delete_session(session_id, user_id)

    # -- user memories -------------------------------------------------------------------------
    def _agno_memories(
        self, user_id: str | None = None, ids: Sequence[str] | None = None
    ) -> list[Memory]:
        return [m for m in self.memory.memories(user_id=user_id, ids=ids) if "agno" in m.metadata]

    @staticmethod
    def _to_agno(m: Memory) -> UserMemory:
        extra = m.metadata["agno"]
        return UserMemory(
            memory=m.text,
            memory_id=m.id,
            user_id=None if m.user_id == ANONYMOUS else m.user_id,
            agent_id=extra.get("agent_id"),
            team_id=extra.get("team_id"),
            topics=extra.get("topics"),
            input=extra.get("input"),
            feedback=extra.get("feedback"),
            created_at=extra.get("created_at"),
            updated_at=extra.get("updated_at"),
        )

    def _one(self, memory_id: str, user_id: str | None) -> Memory | None:
        found = self._agno_memories(user_id, ids=[memory_id])
        return found[0] if found else None

    def get_user_memory(
        self, memory_id: str, deserialize: bool | None = True, user_id: str | None = None
    ) -> UserMemory | dict[str, Any] | None:
        m = self._one(memory_id, user_id)
        if m is None:
            return None
        memory = self._to_agno(m)
        return memory if deserialize else memory.to_dict()

    def get_user_memories(
        self,
        user_id: str | None = None,
        agent_id: str | None = None,
        team_id: str | None = None,
        topics: list[str] | None = None,
        search_content: str | None = None,
        limit: int | None = None,
        page: int | None = None,
        sort_by: str | None = None,
        sort_order: str | None = None,
        deserialize: bool | None = True,
    ) -> Any:
        out = []
        for m in self._agno_memories(user_id):
            um = self._to_agno(m)
            if agent_id is not None and um.agent_id != agent_id:
                continue
            if team_id is not None and um.team_id != team_id:
                continue
            if topics and not set(topics) & set(um.topics or ()):
                continue
            if search_content and search_content.lower() not in um.memory.lower():
                continue
            out.append(um)
        rows = [dict(u.__dict__) for u in out]
        rows = apply_sorting(rows, sort_by or "updated_at", sort_order)
        total = len(rows)
        if limit is not None:
            start = ((page or 1) - 1) * limit
            rows = rows[start : start + limit]
        memories = [UserMemory(**r) for r in rows]
        if not deserialize:
            return [u.to_dict() for u in memories], total
        return memories

    def upsert_user_memory(
        self, memory: UserMemory, deserialize: bool | None = True
    ) -> UserMemory | dict[str, Any] | None:
        return self.upsert_memories([memory], deserialize=deserialize)[0]

    def upsert_memories(
        self,
        memories: list[UserMemory],
        deserialize: bool | None = True,
        preserve_updated_at: bool = False,
    ) -> list[Any]:
        """Each memory is a vecmem memory under agno's id: a new text of a known id becomes
        its next version (the old one stays in vecmem's history)."""
        import uuid

        out = []
        for um in memories:
            um.memory_id = um.memory_id or str(uuid.uuid4())
            if not (preserve_updated_at and um.updated_at):
                um.updated_at = int(time.time())
            extra = {
                "agent_id": um.agent_id,
                "team_id": um.team_id,
                "topics": um.topics,
                "input": um.input,
                "feedback": um.feedback,
                "created_at": um.created_at,
                "updated_at": um.updated_at,
            }
            meta = {"agno": {k: v for k, v in extra.items() if v is not None}}
            user = um.user_id or ANONYMOUS
            old = self._one(um.memory_id, None)
            if old is None:
                self.memory.remember(um.memory, user_id=user, memory_id=um.memory_id, metadata=meta)
            elif old.user_id != user:
                raise InvalidInputError(
                    f"memory {um.memory_id!r} belongs to another user; it was not changed"
                )
            else:
                self.memory.update(um.memory_id, um.memory, user_id=user, metadata=meta)
            out.append(um if deserialize else um.to_dict())
        return out

    def delete_user_memory(self, memory_id: str, user_id: str | None = None) -> None:
        m = self._one(memory_id, user_id)
        if m is not None:
            self.memory.forget(memory_id, user_id=m.user_id, reason="agno delete")

    def delete_user_memories(self, memory_ids: list[str], user_id: str | None = None) -> None:
        for memory_id in memory_ids:
            self.delete_user_memory(memory_id, user_id)

    def clear_memories(self) -> None:
        for m in self._agno_memories():
            self.memory.forget(m.id, user_id=m.user_id, reason="agno clear")

    def get_all_memory_topics(self, user_id: str | None = None) -> list[str]:
        return sorted(
            {
                t
                for m in self._agno_memories(user_id)
                for t in m.metadata["agno"].get("topics") or ()
            }
        )

    def get_user_memory_stats(
        self, limit: int | None = None, page: int | None = None, user_id: str | None = None
    ) -> tuple[list[dict[str, Any]], int]:
        stats: dict[str, dict[str, Any]] = {}
        for m in self._agno_memories(user_id):
            um = self._to_agno(m)
            key = um.user_id or ""
            s = stats.setdefault(
                key, {"user_id": um.user_id, "total_memories": 0, "last_memory_updated_at": 0}
            )
            s["total_memories"] += 1
            s["last_memory_updated_at"] = max(s["last_memory_updated_at"], um.updated_at or 0)
        rows = sorted(stats.values(), key=lambda r: r["last_memory_updated_at"], reverse=True)
        total = len(rows)
        if limit is not None:
            start = ((page or 1) - 1) * limit
            rows = rows[start : start + limit]
        return rows, total


def _unsupported(name: str) -> Any:
    def method(self: VecmemDb, *args: Any, **kwargs: Any) -> Any:
        raise UnsupportedByVecmemDb(
            f"VecmemDb keeps sessions and user memories; agno's {name}() (evals, knowledge "
            "contents, traces, learnings, metrics) needs another agno db"
        )

    method.__name__ = name
    return method


for _name in (
    "calculate_metrics",
    "get_metrics",
    "create_eval_run",
    "delete_eval_runs",
    "get_eval_run",
    "get_eval_runs",
    "rename_eval_run",
    "delete_knowledge_content",
    "get_knowledge_content",
    "get_knowledge_contents",
    "upsert_knowledge_content",
    "create_span",
    "create_spans",
    "get_span",
    "get_spans",
    "get_trace",
    "get_trace_stats",
    "get_traces",
    "upsert_trace",
    "delete_learning",
    "get_learning",
    "get_learnings",
    "upsert_learning",
):
    setattr(VecmemDb, _name, _unsupported(_name))
abc.update_abstractmethods(VecmemDb)  # type: ignore[type-abstract]
