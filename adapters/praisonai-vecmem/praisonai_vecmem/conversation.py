"""PraisonAI's ``ConversationStore`` on a vecmem conversation store.

PraisonAI keys a session by its id alone; vecmem by (user, session). Every PraisonAI session is
therefore a session of one vecmem user (``owner``, default ``"praisonai"``); PraisonAI's own user
id, name, state and metadata ride in the vecmem session (``agent_id`` as is, the user id also as
a ``user:<id>`` tag so ``list_sessions(user_id=...)`` is a query, the rest under the
``praisonai`` metadata key), and each message's tool calls and metadata under the message's.
"""

from __future__ import annotations

from typing import Any

from praisonai.persistence.conversation.base import (
    ConversationMessage,
    ConversationSession,
    ConversationStore,
)

from vecmem.conversations import ConversationStore as VecmemStore
from vecmem.conversations import Message, Session
from vecmem.errors import InvalidInputError, NotFoundError, VecmemError
from vecmem.registry import CONVERSATION_STORES

_KEY = "praisonai"


class UnsupportedByVecmem(VecmemError, NotImplementedError):
    """PraisonAI asked for something vecmem's stores do not do (the message says what to use)."""


def _user_tag(user_id: str) -> str:
    return f"user:{user_id}"


class VecmemConversationStore(ConversationStore):
    """PraisonAI sessions and messages in vecmem (SQLite, PostgreSQL, MariaDB or in memory).

    >>> store = VecmemConversationStore("sqlite://")
    >>> s = store.create_session(ConversationSession(session_id="s1", user_id="alice"))
    >>> _ = store.add_message("s1", ConversationMessage(role="user", content="hi"))
    >>> [m.content for m in store.get_messages("s1")]
    ['hi']
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        store: VecmemStore | None = None,
        owner: str = "praisonai",
        tenant: str | None = None,
    ) -> None:
        if (url is None) == (store is None):
            raise InvalidInputError("give exactly one of url= (a vecmem URL) and store=")
        self._owned = url is not None
        opened: VecmemStore = CONVERSATION_STORES.create(url) if url is not None else store
        self._store = opened.with_tenant(tenant) if tenant else opened
        self._owner = owner

    # --------------------------------------------------------------- sessions
    def _session(self, s: Session) -> ConversationSession:
        extra = dict(s.metadata.get(_KEY) or {})
        return ConversationSession(
            session_id=s.session_id,
            user_id=extra.get("user_id"),
            agent_id=s.agent_id,
            name=s.title,
            state=extra.get("state"),
            metadata=extra.get("metadata"),
            created_at=s.created_at,
            updated_at=s.updated_at,
        )

    def _save(self, session: ConversationSession) -> ConversationSession:
        if not isinstance(session, ConversationSession):
            raise InvalidInputError(f"expected ConversationSession, got {type(session).__name__}")
        extra = {"user_id": session.user_id, "state": session.state, "metadata": session.metadata}
        saved = self._store.save_session(
            self._owner,
            session.session_id,
            agent_id=session.agent_id,
            title=session.name,
            tags=[_user_tag(session.user_id)] if session.user_id else [],
            metadata={_KEY: extra},
        )
        return self._session(saved)

    def create_session(self, session: ConversationSession) -> ConversationSession:
        return self._save(session)

    def update_session(self, session: ConversationSession) -> ConversationSession:
        if self.get_session(session.session_id) is None:
            raise NotFoundError(f"no PraisonAI session {session.session_id!r} to update")
        return self._save(session)

    def get_session(self, session_id: str) -> ConversationSession | None:
        try:
            return self._session(self._store.get_session(self._owner, session_id))
        except NotFoundError:
            return None

    def delete_session(self, session_id: str) -> bool:
        return self._store.delete_session(self._owner, session_id)

    def list_sessions(
        self,
        user_id: str | None = None,
        agent_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[ConversationSession]:
        found = self._store.query_sessions(
            user_id=self._owner,
            agent_id=agent_id,
            tags=[_user_tag(user_id)] if user_id else (),
            limit=limit,
            offset=offset,
        )
        return [self._session(s) for s in found]

    # --------------------------------------------------------------- messages
    def add_message(self, session_id: str, message: ConversationMessage) -> ConversationMessage:
        if not isinstance(message, ConversationMessage):
            raise InvalidInputError(f"expected ConversationMessage, got {type(message).__name__}")
        extra: dict[str, Any] = {
            "tool_calls": message.tool_calls,
            "tool_call_id": message.tool_call_id,
            "metadata": message.metadata,
        }
        meta = {_KEY: {k: v for k, v in extra.items() if v is not None}}
        vm = Message(
            message.role, message.content, meta, id=message.id, created_at=message.created_at
        )
        (stored,) = self._store.add_messages(self._owner, session_id, [vm])
        return self._message(session_id, stored)

    @staticmethod
    def _message(session_id: str, m: Message) -> ConversationMessage:
        extra = dict(m.metadata.get(_KEY) or {})
        return ConversationMessage(
            id=m.id,
            session_id=session_id,
            role=m.role,
            content=m.content,
            tool_calls=extra.get("tool_calls"),
            tool_call_id=extra.get("tool_call_id"),
            metadata=extra.get("metadata"),
            created_at=m.created_at or 0.0,
        )

    def get_messages(
        self,
        session_id: str,
        limit: int | None = None,
        before: float | None = None,
        after: float | None = None,
    ) -> list[ConversationMessage]:
        """Messages oldest first, ``before``/``after`` exclusive on ``created_at``, the first
        ``limit`` of them (as PraisonAI's SQL stores answer)."""
        if limit is not None and (not isinstance(limit, int) or limit < 0):
            raise InvalidInputError(f"limit must be an int >= 0, got {limit!r}")
        out = []
        for m in self._store.get_messages(self._owner, session_id):
            at = m.created_at or 0.0
            if (before is not None and at >= before) or (after is not None and at <= after):
                continue
            out.append(self._message(session_id, m))
        out.sort(key=lambda m: m.created_at)  # stable: equal times keep their order
        return out if limit is None else out[:limit]

    def delete_messages(self, session_id: str, message_ids: list[str] | None = None) -> int:
        raise UnsupportedByVecmem(
            "vecmem sessions are append-only: delete the session (delete_session) or start a "
            "branch of it without those messages (vecmem's branch_session)"
        )

    def close(self) -> None:
        if self._owned:
            self._store.close()
