"""Request bodies of the HTTP API, shaped like the Python calls (unknown fields are refused)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Filter = dict[str, Any] | None


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Scope(Body):
    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None


class AddBody(Body):
    texts: str | list[str] = Field(description="a text or a list of texts")
    metadata: dict[str, Any] | list[dict[str, Any] | None] | None = None
    ids: list[str] | None = Field(None, description="document ids (default: hash of the text)")


class SearchBody(Body):
    query: str
    k: int = 10
    mode: Literal["hybrid", "vector", "keyword"] = "hybrid"
    filter: Filter = None
    candidates: int | None = None
    fusion: dict[str, Any] | None = Field(
        None, description="vecmem.fusion.Fusion fields: method, k, alpha, adaptive, ..."
    )
    vector: list[float] | None = Field(
        None, description="the query's embedding, if computed by the caller (not embedded then)"
    )


class IdsBody(Body):
    ids: str | list[str]


class PageBody(Body):
    limit: int = 50
    offset: int = 0


class DeleteBody(Body):
    ids: str | list[str] | None = None
    filter: Filter = None


class CountBody(Body):
    filter: Filter = None


class RememberBody(Scope):
    text: str
    session_id: str | None = None
    importance: float | None = None
    metadata: dict[str, Any] | None = None


class RecallBody(Scope):
    query: str
    k: int = 10
    filter: Filter = None
    as_of: float | None = None
    recency_weight: float = 0.0
    importance_weight: float = 0.0
    half_life_days: float | None = None
    mode: Literal["hybrid", "vector", "keyword"] = "hybrid"


class UpdateBody(Scope):
    memory_id: str
    text: str
    reason: str | None = None
    metadata: dict[str, Any] | None = None


class ForgetBody(Scope):
    memory_id: str
    reason: str | None = None


class MemoryIdBody(Scope):
    memory_id: str


class UndoBody(Scope):
    change_id: str
    reason: str | None = None


class ConsolidateBody(Scope):
    window: float = 7 * 86400.0
    similarity: float = 0.75
    min_group: int = 2
    source_weight: float = 0.5
    max_sentences: int = 3


class ListMemoriesBody(Scope):
    limit: int = 50
    offset: int = 0
    current_only: bool = True


class SessionKey(Body):
    user_id: str
    session_id: str


class SaveSessionBody(SessionKey):
    agent_id: str | None = None
    title: str | None = None
    tags: list[str] | None = None
    metadata: dict[str, Any] | None = None


class MessageIn(Body):
    role: str
    content: str
    metadata: dict[str, Any] | None = None
    usage: dict[str, Any] | None = None


class AddMessagesBody(SessionKey):
    messages: list[MessageIn]
    agent_id: str | None = None


class GetMessagesBody(SessionKey):
    limit: int | None = None
    offset: int = 0
    newest_first: bool = False


class QuerySessionsBody(Body):
    user_id: str | None = None
    agent_id: str | None = None
    since: float | None = None
    until: float | None = None
    tags: list[str] = []
    min_messages: int | None = None
    order_by: Literal["created_at", "updated_at", "message_count"] = "updated_at"
    descending: bool = True
    limit: int = 100
    offset: int = 0


class ExportBody(Body):
    user_id: str
    session_id: str | None = None
