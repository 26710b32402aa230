"""OACP's event storage on vecmem: an OACP run's audit trail (node starts and results, votes,
conflicts, decisions) kept in any vecmem conversation store — SQLite, PostgreSQL (and its hosted
aliases), MariaDB, Redis or in memory — by URL.

One OACP run is one vecmem session (``session_id`` = the run id) of one vecmem user (default
``"oacp"``, or OACP's tenant); each event is one message whose role is the event type, whose
content is the event's JSON and whose ``created_at`` is the event's timestamp. vecmem's own tools
(``export``, ``query_sessions``, backups, ``vecmem migrate`` of relational data) therefore see
OACP's runs.

OACP creates its storage from the ``OACP_STORAGE_URI`` environment variable through a fixed
factory (``file://``, ``sqlite:///``, ``postgresql://``) with no plugin hook. :func:`install`
teaches that factory one more prefix, ``vecmem+``: ``OACP_STORAGE_URI=vecmem+sqlite:///runs.db``
makes ``@with_oacp`` nodes, ``oacp`` CLI commands and ``TraceReader`` use vecmem.

>>> from oacp.events import TaskStart
>>> storage = VecmemStorage("memory://")
>>> storage.append(TaskStart(run_id="r1", graph_name="review"))
>>> [e.event_type for e in storage.iterate("r1")]
['TaskStart']
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import oacp.storage
import oacp.trace
from oacp.contracts import DecisionContract
from oacp.events import (
    ConflictRaised,
    DecisionFinalized,
    EventBase,
    NodeResult,
    NodeStart,
    RetryScheduled,
    RunSummary,
    TaskStart,
    VoteCast,
)
from oacp.storage.base import IStorage
from pydantic import ValidationError

from vecmem.conversations import ConversationStore, Message
from vecmem.errors import IntegrityError, InvalidInputError
from vecmem.registry import CONVERSATION_STORES

__all__ = ["PREFIX", "VecmemStorage", "install"]

PREFIX = "vecmem+"
"""``OACP_STORAGE_URI`` prefix that :func:`install` routes to :class:`VecmemStorage`."""

_EVENTS: dict[str, type[EventBase]] = {
    c.model_fields["event_type"].default: c
    for c in (
        TaskStart,
        NodeStart,
        NodeResult,
        VoteCast,
        ConflictRaised,
        DecisionFinalized,
        RetryScheduled,
        RunSummary,
    )
}


def _utc(ts: datetime) -> datetime:
    """``ts`` as an aware UTC datetime (OACP stamps events with naive ``utcnow()``)."""
    return ts.replace(tzinfo=timezone.utc) if ts.tzinfo is None else ts.astimezone(timezone.utc)


def _event(message: Message) -> EventBase:
    try:
        raw = EventBase.model_validate_json(message.content)
        return _EVENTS.get(raw.event_type, EventBase).model_validate_json(message.content)
    except ValidationError as exc:
        raise IntegrityError(
            f"message {message.id!r} of an OACP run does not hold an OACP event: {exc}"
        ) from exc


class VecmemStorage(IStorage):
    """OACP ``IStorage`` on a vecmem conversation store (a store object or any URL
    :data:`vecmem.registry.CONVERSATION_STORES` opens).

    Appending an event id that the run already holds replaces it, as OACP's own SQL storages do
    (the last write wins, at its own timestamp). ``await_votes`` polls every ``poll_interval``
    seconds, so a vote cast by another process sharing the database is seen.

    >>> storage = VecmemStorage("sqlite://", user_id="team-a")
    >>> storage.close()
    """

    def __init__(
        self,
        store: ConversationStore | str,
        *,
        user_id: str = "oacp",
        poll_interval: float = 0.5,
    ) -> None:
        if not isinstance(poll_interval, int | float) or not poll_interval > 0:
            raise InvalidInputError(f"poll_interval must be > 0 seconds, got {poll_interval!r}")
        self._owned = isinstance(store, str)
        self._store: ConversationStore = (
            CONVERSATION_STORES.create(store) if isinstance(store, str) else store
        )
        self._user = user_id
        self._poll = float(poll_interval)

    def append(self, event: EventBase) -> None:
        if not isinstance(event, EventBase):
            raise InvalidInputError(f"expected an OACP event, got {type(event).__name__}")
        message = Message(
            event.event_type,
            event.model_dump_json(),
            {"event_type": event.event_type},
            id=event.event_id,
            created_at=_utc(event.timestamp).timestamp(),
        )
        self._store.add_messages(self._user, event.run_id, [message])

    def _events(self, run_id: str) -> list[EventBase]:
        latest: dict[str, EventBase] = {}
        for message in self._store.get_messages(self._user, run_id):
            event = _event(message)
            latest.pop(event.event_id, None)  # a replaced event keeps only its last version
            latest[event.event_id] = event
        return sorted(latest.values(), key=lambda e: _utc(e.timestamp))  # stable: append order

    def iterate(self, run_id: str, from_timestamp: datetime | None = None) -> Iterator[EventBase]:
        events = self._events(run_id)
        if from_timestamp is not None:
            since = _utc(from_timestamp)
            events = [e for e in events if _utc(e.timestamp) >= since]
        return iter(events)

    def await_votes(
        self, run_id: str, contract: DecisionContract, window_seconds: int
    ) -> dict[str, Any]:
        """The required approvers' latest votes, once all have voted or ``window_seconds``
        passed (OACP's result shape: ``votes``, ``timeout``, ``missing_voters``)."""
        required = set(contract.required_approvers)
        start = time.monotonic()
        votes: dict[str, VoteCast] = {}
        while True:
            for event in self._events(run_id):
                if isinstance(event, VoteCast) and event.voter_id in required:
                    votes[event.voter_id] = event
            timed_out = time.monotonic() - start >= window_seconds
            if required <= votes.keys() or timed_out:
                break
            time.sleep(self._poll)
        return {
            "votes": votes,
            "timeout": timed_out,
            "missing_voters": [v for v in contract.required_approvers if v not in votes],
        }

    def close(self) -> None:
        if self._owned:
            self._store.close()


_original = oacp.storage.create_storage


def _create_storage(uri: str) -> IStorage:
    if uri.startswith(PREFIX):
        return VecmemStorage(uri[len(PREFIX) :])
    return _original(uri)


def install() -> None:
    """Route ``vecmem+<url>`` storage URIs in OACP (its decorator, trace reader/writer and CLI
    all create storage through ``oacp.storage.create_storage``) to :class:`VecmemStorage`;
    other URIs keep OACP's own backends. Idempotent.

    >>> install()
    >>> type(oacp.trace.create_storage("vecmem+memory://")).__name__
    'VecmemStorage'
    """
    import oacp.cli  # the CLI binds the factory by name too

    for module in (oacp.storage, oacp.trace, oacp.cli):
        module.create_storage = _create_storage
