"""Request bodies of the HTTP API, shaped like the Python calls (unknown fields are refused)."""

from __future__ import annotations

from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

Filter = Optional[dict[str, Any]]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Scope(Body):
    user_id: Optional[str] = None
    agent_id: Optional[str] = None
    run_id: Optional[str] = None


class AddBody(Body):
    texts: Union[str, list[str]] = Field(description="a text or a list of texts")
    metadata: Union[dict[str, Any], list[Optional[dict[str, Any]]], None] = None
    ids: Optional[list[str]] = Field(None, description="document ids (default: hash of the text)")


class SearchBody(Body):
    query: str
    k: int = 10
    mode: Literal["hybrid", "vector", "keyword"] = "hybrid"
    filter: Filter = None
    candidates: Optional[int] = None
    fusion: Optional[dict[str, Any]] = Field(
        None, description="vecmem.fusion.Fusion fields: method, k, alpha, adaptive, ...")
    vector: Optional[list[float]] = Field(
        None, description="the query's embedding, if computed by the caller (not embedded then)")


class IdsBody(Body):
    ids: Union[str, list[str]]


class PageBody(Body):
    limit: int = 50
    offset: int = 0


class DeleteBody(Body):
    ids: Union[str, list[str], None] = None
    filter: Filter = None


class CountBody(Body):
    filter: Filter = None


class RememberBody(Scope):
    text: str
    session_id: Optional[str] = None
    importance: Optional[float] = None
    metadata: Optional[dict[str, Any]] = None


class RecallBody(Scope):
    query: str
    k: int = 10
    filter: Filter = None
    as_of: Optional[float] = None
    recency_weight: float = 0.0
    importance_weight: float = 0.0
    half_life_days: Optional[float] = None
    mode: Literal["hybrid", "vector", "keyword"] = "hybrid"


class UpdateBody(Scope):
    memory_id: str
    text: str
    reason: Optional[str] = None
    metadata: Optional[dict[str, Any]] = None


class ForgetBody(Scope):
    memory_id: str
    reason: Optional[str] = None


class MemoryIdBody(Scope):
    memory_id: str


class UndoBody(Scope):
    change_id: str
    reason: Optional[str] = None


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
    agent_id: Optional[str] = None
    title: Optional[str] = None
    tags: Optional[list[str]] = None
    metadata: Optional[dict[str, Any]] = None


class MessageIn(Body):
    role: str
    content: str
    metadata: Optional[dict[str, Any]] = None
    usage: Optional[dict[str, Any]] = None


class AddMessagesBody(SessionKey):
    messages: list[MessageIn]
    agent_id: Optional[str] = None


class GetMessagesBody(SessionKey):
    limit: Optional[int] = None
    offset: int = 0
    newest_first: bool = False


class QuerySessionsBody(Body):
    user_id: Optional[str] = None
    agent_id: Optional[str] = None
    since: Optional[float] = None
    until: Optional[float] = None
    tags: list[str] = []
    min_messages: Optional[int] = None
    order_by: Literal["created_at", "updated_at", "message_count"] = "updated_at"
    descending: bool = True
    limit: int = 100
    offset: int = 0


class ExportBody(Body):
    user_id: str
    session_id: Optional[str] = None
