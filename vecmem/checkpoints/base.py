"""Checkpoints: the data model, state diffs, retention and the logic every backend shares.

A backend stores opaque records (metadata + encoded state) and implements six small methods;
:class:`CheckpointStoreBase` builds saving, history, restore, branching, diffs and retention on
them, and encodes states with :class:`~vecmem.checkpoints.codec.Codec` (zstd, optional AES-GCM or
Fernet), so behaviour is the same on every backend.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vecmem._keys import check_epoch, check_metadata, check_name, check_tags, check_tenant
from vecmem.checkpoints.codec import Cipher, Codec
from vecmem.errors import InvalidInputError, NotFoundError

DAY = 86400.0


@dataclass(frozen=True)
class CheckpointInfo:
    """A checkpoint without its state. ``size`` is the state's JSON size, ``stored_size`` the
    bytes at rest (after compression and encryption); ``seq`` its position in the thread;
    ``failed``: saved as the state of a failed step (``save(..., failed=True)``)."""

    id: str
    thread_id: str
    seq: int
    created_at: float
    parent_id: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    size: int = 0
    stored_size: int = 0
    failed: bool = False


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint with its state."""

    info: CheckpointInfo
    state: Any

    @property
    def id(self) -> str:
        return self.info.id

    @property
    def thread_id(self) -> str:
        return self.info.thread_id


@dataclass(frozen=True)
class Retention:
    """Which checkpoints to keep: the last ``keep_last`` of each thread, or those younger than
    ``max_age_days`` (either is enough to keep one), and with ``keep_failed`` every failed one
    (kept for post-mortems). The newest of a thread is always kept."""

    keep_last: int | None = None
    max_age_days: float | None = None
    keep_failed: bool = False

    def __post_init__(self) -> None:
        if self.keep_last is None and self.max_age_days is None:
            raise InvalidInputError("a retention policy needs keep_last and/or max_age_days")
        if self.keep_last is not None and (
            not isinstance(self.keep_last, int) or self.keep_last < 1
        ):
            raise InvalidInputError(f"keep_last must be an int >= 1, got {self.keep_last!r}")
        if self.max_age_days is not None and not self.max_age_days >= 0:
            raise InvalidInputError(f"max_age_days must be >= 0, got {self.max_age_days!r}")
        if not isinstance(self.keep_failed, bool):
            raise InvalidInputError(f"keep_failed must be a bool, got {self.keep_failed!r}")


StateMatcher = Mapping[str, Any] | Callable[[Any], bool]
"""``with_state_matching``: a mapping the state must contain (nested mappings are matched the
same way, other values must be equal and of the same JSON type), or a predicate on the state."""


def state_matches(state: Any, pattern: Any) -> bool:
    """True if ``state`` contains ``pattern``: every key of a mapping pattern is in the state
    and matches recursively; anything else must be equal (``1`` does not match ``True`` or
    ``1.0``; lists must be equal as a whole).

    >>> state_matches({"status": "failed", "user": {"id": 7, "n": 1}}, {"user": {"id": 7}})
    True
    >>> state_matches({"n": 1}, {"n": True}), state_matches({"n": [1, 2]}, {"n": [1]})
    (False, False)
    """
    if isinstance(pattern, Mapping):
        return isinstance(state, Mapping) and all(
            k in state and state_matches(state[k], v) for k, v in pattern.items()
        )
    return type(state) is type(pattern) and state == pattern


def _check_matcher(matcher: Any) -> StateMatcher | None:
    if matcher is None or callable(matcher):
        return matcher
    if isinstance(matcher, Mapping):
        if not matcher:
            raise InvalidInputError("with_state_matching must not be an empty mapping")
        return matcher
    raise InvalidInputError(
        f"with_state_matching must be a mapping or a callable, got {type(matcher).__name__}"
    )


@dataclass(frozen=True)
class StateDiff:
    """What changed from one state to another, keyed by JSON Pointer (``/a/0/b``)."""

    added: dict[str, Any] = field(default_factory=dict)
    removed: dict[str, Any] = field(default_factory=dict)
    changed: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)


def _pointer(path: str, key: str | int) -> str:
    return f"{path}/{str(key).replace('~', '~0').replace('/', '~1')}"


def diff_states(old: Any, new: Any) -> StateDiff:
    """Recursive diff of two JSON values: dicts by key, lists by index, the rest by value.

    >>> diff_states({"a": 1, "b": [1, 2]}, {"a": 2, "b": [1], "c": None})
    StateDiff(added={'/c': None}, removed={'/b/1': 2}, changed={'/a': (1, 2)})
    """
    out = StateDiff()

    def walk(path: str, a: Any, b: Any) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for k in a:
                if k not in b:
                    out.removed[_pointer(path, k)] = a[k]
                else:
                    walk(_pointer(path, k), a[k], b[k])
            for k in b:
                if k not in a:
                    out.added[_pointer(path, k)] = b[k]
        elif isinstance(a, list) and isinstance(b, list):
            for i in range(min(len(a), len(b))):
                walk(_pointer(path, i), a[i], b[i])
            for i in range(len(b), len(a)):
                out.removed[_pointer(path, i)] = a[i]
            for i in range(len(a), len(b)):
                out.added[_pointer(path, i)] = b[i]
        elif type(a) is not type(b) or a != b:
            out.changed[path or ""] = (a, b)

    walk("", old, new)
    return out


class CheckpointStoreBase:
    """Checkpoint logic over a backend's records. Backends implement the ``_`` methods.

    ``key`` turns on encryption at rest (``cipher`` "aes-gcm" with a 16/24/32-byte key, or
    "fernet" with a Fernet key; see :func:`~vecmem.checkpoints.generate_key`); ``retention``
    prunes a thread after each save.
    """

    def __init__(
        self,
        *,
        tenant: str,
        key: bytes | str | None,
        cipher: Cipher,
        compression: bool,
        retention: Retention | None,
        clock: Callable[[], float],
    ) -> None:
        self.tenant = check_tenant(tenant)
        self.codec = Codec(key=key, cipher=cipher, compression=compression)
        self.retention = retention
        self.clock = clock
        self._options: dict[str, Any] = {
            "tenant": self.tenant,
            "key": key,
            "cipher": cipher,
            "compression": compression,
            "retention": retention,
            "clock": clock,
        }

    def _clone(self, options: dict[str, Any]) -> Any:
        """The same backend with other options (tenant, key, ...)."""
        raise NotImplementedError

    def with_tenant(self, tenant: str) -> Any:
        """A view of the same backend scoped to another tenant."""
        return self._clone({**self._options, "tenant": tenant})

    def with_key(self, key: bytes | str | None, *, cipher: Cipher = "aes-gcm") -> Any:
        """A view of the same data that encrypts new checkpoints with ``key`` (``None``: none)
        and decrypts with it; use it to read data written under another key."""
        return self._clone({**self._options, "key": key, "cipher": cipher})

    # -- backend primitives -------------------------------------------------------------------
    def _append(
        self, info: CheckpointInfo, blob: bytes, *, parent_latest: bool, new_thread: bool
    ) -> CheckpointInfo:
        """Store ``info`` (seq assigned: last + 1; with ``parent_latest`` its parent is the
        thread's latest) atomically; ConflictError if ``new_thread`` and the thread exists."""
        raise NotImplementedError

    def _get(self, checkpoint_id: str) -> tuple[CheckpointInfo, bytes] | None:
        raise NotImplementedError

    def _latest_id(self, thread_id: str) -> str | None:
        raise NotImplementedError

    def _list(
        self,
        *,
        thread_id: str | None,
        tags: tuple[str, ...],
        since: float | None,
        until: float | None,
        limit: int | None,
        offset: int,
    ) -> list[CheckpointInfo]:
        """Newest first: by created_at, then thread_id, then seq (both descending)."""
        raise NotImplementedError

    def _delete(self, ids: Sequence[str]) -> int:
        raise NotImplementedError

    def _threads(self) -> list[str]:
        raise NotImplementedError

    # -- API ----------------------------------------------------------------------------------
    def _aad(self, checkpoint_id: str) -> bytes:
        return f"{self.tenant}\x00{checkpoint_id}".encode()

    def _store(
        self,
        thread_id: str,
        state: Any,
        *,
        metadata: Mapping[str, Any] | None,
        tags: Sequence[str],
        parent_id: str | None,
        parent_latest: bool,
        new_thread: bool,
        failed: bool = False,
    ) -> CheckpointInfo:
        check_name("thread_id", thread_id)
        if not isinstance(failed, bool):
            raise InvalidInputError(f"failed must be a bool, got {failed!r}")
        meta = check_metadata(metadata)
        tag_set = check_tags(tags)
        cid = uuid.uuid4().hex
        blob, size = self.codec.encode(state, aad=self._aad(cid))
        info = CheckpointInfo(
            cid, thread_id, -1, self.clock(), parent_id, meta, tag_set, size, len(blob), failed
        )
        saved = self._append(info, blob, parent_latest=parent_latest, new_thread=new_thread)
        if self.retention is not None:
            self.prune(
                thread_id=thread_id,
                keep_last=self.retention.keep_last,
                max_age_days=self.retention.max_age_days,
                keep_failed=self.retention.keep_failed,
            )
        return saved

    def save(
        self,
        thread_id: str,
        state: Any,
        *,
        metadata: Mapping[str, Any] | None = None,
        tags: Sequence[str] = (),
        parent_id: str | None = None,
        failed: bool = False,
    ) -> CheckpointInfo:
        """Save ``state`` (JSON-able) as the thread's newest checkpoint; its parent is
        ``parent_id`` or else the thread's previous latest. ``failed=True`` marks the state of
        a step that failed (see ``Retention(keep_failed=True)`` and ``find(failed=...)``)."""
        if parent_id is not None:
            self.info(parent_id)
        return self._store(
            thread_id,
            state,
            metadata=metadata,
            tags=tags,
            parent_id=parent_id,
            parent_latest=parent_id is None,
            new_thread=False,
            failed=failed,
        )

    def info(self, checkpoint_id: str) -> CheckpointInfo:
        """A checkpoint's info without decoding its state."""
        return self._fetch(checkpoint_id)[0]

    def _fetch(self, checkpoint_id: str) -> tuple[CheckpointInfo, bytes]:
        check_name("checkpoint_id", checkpoint_id)
        got = self._get(checkpoint_id)
        if got is None:
            raise NotFoundError(f"no checkpoint {checkpoint_id!r}")
        return got

    def get(self, checkpoint_id: str) -> Checkpoint:
        """The checkpoint with its decoded state."""
        info, blob = self._fetch(checkpoint_id)
        state = self.codec.decode(blob, aad=self._aad(info.id), what=f"checkpoint {info.id!r}")
        return Checkpoint(info, state)

    def latest(self, thread_id: str) -> Checkpoint:
        """The thread's newest checkpoint; :class:`NotFoundError` if it has none."""
        check_name("thread_id", thread_id)
        cid = self._latest_id(thread_id)
        if cid is None:
            raise NotFoundError(f"thread {thread_id!r} has no checkpoint")
        return self.get(cid)

    def history(
        self,
        thread_id: str,
        *,
        limit: int | None = None,
        offset: int = 0,
        include_failed: bool = True,
    ) -> list[CheckpointInfo]:
        """The thread's checkpoints, newest first (without the failed ones when
        ``include_failed=False``)."""
        check_name("thread_id", thread_id)
        if include_failed:
            _check_page(limit, offset)
            return self._list(
                thread_id=thread_id, tags=(), since=None, until=None, limit=limit, offset=offset
            )
        return self.find(thread_id=thread_id, failed=False, limit=limit, offset=offset)

    def find(
        self,
        *,
        thread_id: str | None = None,
        tags: Sequence[str] = (),
        since: float | None = None,
        until: float | None = None,
        failed: bool | None = None,
        with_state_matching: StateMatcher | None = None,
        limit: int | None = 100,
        offset: int = 0,
    ) -> list[CheckpointInfo]:
        """Checkpoints with every tag in ``tags``, ``since <= created_at < until``, failed or
        not (``failed``: None for both) and whose state matches ``with_state_matching`` (see
        :func:`state_matches`; states are decoded to check, so narrow by thread, tags or time
        first on large stores), newest first.

        >>> from vecmem.checkpoints import MemoryCheckpointStore
        >>> store = MemoryCheckpointStore()
        >>> done = store.save("t", {"status": "completed", "n": 2})
        >>> _ = store.save("t", {"status": "running"})
        >>> [i.id for i in store.find(with_state_matching={"status": "completed"})] == [done.id]
        True
        """
        if thread_id is not None:
            check_name("thread_id", thread_id)
        _check_page(limit, offset)
        check_epoch("since", since)
        check_epoch("until", until)
        if failed is not None and not isinstance(failed, bool):
            raise InvalidInputError(f"failed must be a bool or None, got {failed!r}")
        matcher = _check_matcher(with_state_matching)
        tag_set = check_tags(tags)
        if failed is None and matcher is None:
            return self._list(
                thread_id=thread_id,
                tags=tag_set,
                since=since,
                until=until,
                limit=limit,
                offset=offset,
            )
        candidates = self._list(
            thread_id=thread_id, tags=tag_set, since=since, until=until, limit=None, offset=0
        )
        out: list[CheckpointInfo] = []
        skip = offset
        for info in candidates:
            if limit is not None and len(out) >= limit:
                break
            if failed is not None and info.failed != failed:
                continue
            if matcher is not None and not self._matches(info.id, matcher):
                continue
            if skip:
                skip -= 1
                continue
            out.append(info)
        return out

    def _matches(self, checkpoint_id: str, matcher: StateMatcher) -> bool:
        try:
            state = self.get(checkpoint_id).state
        except NotFoundError:  # deleted meanwhile
            return False
        if isinstance(matcher, Mapping):
            return state_matches(state, matcher)
        return bool(matcher(state))

    def find_checkpoint(
        self,
        *,
        thread_id: str | None = None,
        tags: Sequence[str] = (),
        since: float | None = None,
        until: float | None = None,
        failed: bool | None = None,
        with_state_matching: StateMatcher | None = None,
    ) -> Checkpoint | None:
        """The newest checkpoint :meth:`find` would list first, with its state; None if none."""
        found = self.find(
            thread_id=thread_id,
            tags=tags,
            since=since,
            until=until,
            failed=failed,
            with_state_matching=with_state_matching,
            limit=1,
        )
        return self.get(found[0].id) if found else None

    def threads(self) -> list[str]:
        """Sorted ids of the threads that have checkpoints."""
        return self._threads()

    def restore(
        self, checkpoint_id: str, *, metadata: Mapping[str, Any] | None = None
    ) -> Checkpoint:
        """Make ``checkpoint_id``'s state the newest of its thread again: saves a copy (parent:
        the restored checkpoint, metadata ``restored_from``) and returns it with the state."""
        old = self.get(checkpoint_id)
        meta = {**check_metadata(metadata), "restored_from": old.id}
        info = self._store(
            old.thread_id,
            old.state,
            metadata=meta,
            tags=old.info.tags,
            parent_id=old.id,
            parent_latest=False,
            new_thread=False,
        )
        return Checkpoint(info, old.state)

    def branch(
        self,
        checkpoint_id: str,
        thread_id: str,
        *,
        metadata: Mapping[str, Any] | None = None,
        tags: Sequence[str] | None = None,
    ) -> CheckpointInfo:
        """Start the new thread ``thread_id`` from ``checkpoint_id`` (its parent);
        :class:`ConflictError` if that thread already has checkpoints."""
        old = self.get(checkpoint_id)
        meta = {
            **check_metadata(metadata),
            "branched_from": old.id,
            "branched_from_thread": old.thread_id,
        }
        return self._store(
            thread_id,
            old.state,
            metadata=meta,
            tags=old.info.tags if tags is None else tags,
            parent_id=old.id,
            parent_latest=False,
            new_thread=True,
        )

    def diff(self, from_id: str, to_id: str) -> StateDiff:
        """What changed between two checkpoints' states (see :func:`diff_states`)."""
        return diff_states(self.get(from_id).state, self.get(to_id).state)

    def prune(
        self,
        *,
        thread_id: str | None = None,
        keep_last: int | None = None,
        max_age_days: float | None = None,
        keep_failed: bool = False,
        now: float | None = None,
    ) -> int:
        """Apply a retention policy to one thread (or all); never deletes a thread's newest.

        Keeps the last ``keep_last`` of each thread, or those younger than ``max_age_days``
        as of ``now`` (default: the clock), and with ``keep_failed`` every failed checkpoint.
        Returns how many checkpoints were deleted.
        """
        policy = Retention(keep_last, max_age_days, keep_failed)
        if thread_id is not None:
            check_name("thread_id", thread_id)
        cutoff = (
            None
            if max_age_days is None
            else ((self.clock() if now is None else now) - max_age_days * DAY)
        )
        infos = self._list(
            thread_id=thread_id, tags=(), since=None, until=None, limit=None, offset=0
        )
        by_thread: dict[str, list[CheckpointInfo]] = {}
        for info in infos:
            by_thread.setdefault(info.thread_id, []).append(info)
        doomed = []
        for items in by_thread.values():
            items.sort(key=lambda i: i.seq, reverse=True)
            for rank, info in enumerate(items):
                keep = (
                    rank == 0
                    or (policy.keep_last is not None and rank < policy.keep_last)
                    or (cutoff is not None and info.created_at >= cutoff)
                    or (policy.keep_failed and info.failed)
                )
                if not keep:
                    doomed.append(info.id)
        return self._delete(doomed) if doomed else 0

    def delete(self, checkpoint_id: str) -> bool:
        """Delete one checkpoint; ``False`` if it did not exist."""
        check_name("checkpoint_id", checkpoint_id)
        return self._delete([checkpoint_id]) > 0

    def delete_thread(self, thread_id: str) -> int:
        """Delete every checkpoint of a thread; returns how many."""
        ids = [i.id for i in self.history(thread_id)]
        return self._delete(ids) if ids else 0

    def close(self) -> None:
        pass


def _check_page(limit: int | None, offset: int) -> None:
    if limit is not None and (not isinstance(limit, int) or limit < 0):
        raise InvalidInputError(f"limit must be an int >= 0, got {limit!r}")
    if not isinstance(offset, int) or offset < 0:
        raise InvalidInputError(f"offset must be an int >= 0, got {offset!r}")


__all__ = [
    "Checkpoint",
    "CheckpointInfo",
    "CheckpointStoreBase",
    "Retention",
    "StateDiff",
    "StateMatcher",
    "diff_states",
    "state_matches",
]
