"""The keyword leg kept beside a database: rank_bm25-exact BM25 over chunk ids.

Chroma has no BM25, and Qdrant and LanceDB in ``keyword="exact"`` mode keep rank_bm25's scores
rather than their own. Each keeps a :class:`~vecmem.bm25.BM25Index` in memory, in step with every
write and delete; :class:`KeywordBeside` is that index with its chunk id <-> slot bookkeeping (a
slot is never reused) and the filtered top-k search the three stores share: the database holds
the metadata, so BM25 proposes candidates and the store's ``fetch`` keeps those that pass the
filter, widening until ``k`` pass; past ``widen_to`` candidates a store that can list every
matching id (``matching``) switches to a mask and one exact top ``k``.

>>> from vecmem.tokenize import get_tokenizer
>>> kw = KeywordBeside(k1=1.5, b=0.75, epsilon=0.25, tokenizer=get_tokenizer("default"))
>>> kw.add(["a", "b"], [["vector", "memory"], ["graph"]])
>>> [cid for cid, _, _ in kw.search(["graph"], 1, lambda ids, filtered: {i: i for i in ids})]
['b']
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np

from vecmem.bm25 import BM25Index
from vecmem.tokenize import Tokenizer
from vecmem.types import Chunk

T = TypeVar("T")


class KeywordBeside:
    """A BM25 index over chunk ids (see the module docstring)."""

    def __init__(self, *, k1: float, b: float, epsilon: float, tokenizer: Tokenizer) -> None:
        self.bm25 = BM25Index(k1=k1, b=b, epsilon=epsilon)
        self.tokenizer = tokenizer
        self.slot_of: dict[str, int] = {}  # chunk id -> slot
        self.id_of: dict[int, str] = {}  # slot -> chunk id
        self.next_slot = 0

    @classmethod
    def restore(
        cls,
        bm25: BM25Index,
        tokenizer: Tokenizer,
        ids: Sequence[str],
        slots: Sequence[int],
        next_slot: int,
    ) -> KeywordBeside:
        """An index saved earlier: ``ids[i]`` lives in ``slots[i]``."""
        kw = cls.__new__(cls)
        kw.bm25, kw.tokenizer, kw.next_slot = bm25, tokenizer, next_slot
        kw.slot_of = dict(zip(ids, slots))
        kw.id_of = dict(zip(slots, ids))
        return kw

    def save(self, path: Path, stamp: Mapping[str, int]) -> None:
        """Write the index to ``path`` (``.npz``) with the integers ``stamp`` (what it reflects:
        a table version...), atomically: through a temporary file of this process and thread's
        own, so processes closing at once never move each other's file away."""
        st = self.bm25.state()
        ids = [self.id_of[s] for s in st["slots"].tolist()]
        st["vocab"] = np.frombuffer(json.dumps(list(st["vocab"])).encode(), dtype=np.uint8)
        st["ids"] = np.frombuffer(json.dumps(ids).encode(), dtype=np.uint8)
        st.update({f"stamp_{k}": np.array([v]) for k, v in stamp.items()})
        tmp = path.with_name(f"{path.name}.{os.getpid()}-{threading.get_ident()}.tmp.npz")
        try:
            np.savez(tmp, **st)  # type: ignore[arg-type]  # numpy's stub types **kwds loosely
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    @classmethod
    def load(
        cls, path: Path, tokenizer: Tokenizer, expect: Mapping[str, int]
    ) -> tuple[KeywordBeside, dict[str, int]] | None:
        """The index :meth:`save` wrote to ``path`` and its stamp, or ``None`` when there is no
        file, its stamp differs from ``expect`` or it is torn or foreign (only a cache)."""
        try:
            with np.load(path, allow_pickle=False) as z:
                stamp = {k[6:]: int(z[k][0]) for k in z.files if k.startswith("stamp_")}
                if any(stamp.get(k) != v for k, v in expect.items()):
                    return None
                st = {k: z[k] for k in z.files}
            st["vocab"] = np.array(json.loads(bytes(st["vocab"]).decode()), dtype=object)
            ids = json.loads(bytes(st["ids"]).decode())
            bm25 = BM25Index.from_state(st)
        except (OSError, ValueError, KeyError):
            return None
        return cls.restore(bm25, tokenizer, ids, st["slots"].tolist(), int(st["used"][0])), stamp

    def __contains__(self, chunk_id: str) -> bool:
        return chunk_id in self.slot_of

    def add(self, ids: Sequence[str], tokens: Sequence[Sequence[str]]) -> None:
        """Index new chunk ids (not indexed yet) with their tokens, in this order."""
        slots = np.arange(self.next_slot, self.next_slot + len(ids))
        self.next_slot += len(ids)
        self.bm25.add(slots, tokens)
        for s, cid in zip(slots.tolist(), ids):
            self.slot_of[cid] = s
            self.id_of[s] = cid

    def write(
        self,
        chunks: Sequence[Chunk],
        deleted: Iterable[str] = (),
        tokens: Sequence[Sequence[str]] | None = None,
    ) -> None:
        """Follow a write: ``deleted`` ids and the old versions of ``chunks`` out, ``chunks``
        in (``tokens``: theirs, when the store has tokenized them already)."""
        gone = [
            self.slot_of.pop(i) for i in [*deleted, *(c.id for c in chunks)] if i in self.slot_of
        ]
        self.bm25.remove(gone)
        for s in gone:
            self.id_of.pop(s, None)
        self.add(
            [c.id for c in chunks],
            tokens if tokens is not None else [self.tokenizer(c.text) for c in chunks],
        )

    def mask(self, ids: Iterable[str]) -> np.ndarray:
        """The slots of ``ids`` (those indexed) as a bool array."""
        mask = np.zeros(self.next_slot, dtype=bool)
        slot_of = self.slot_of
        mask[[slot_of[i] for i in ids if i in slot_of]] = True
        return mask

    def search(
        self,
        tokens: Sequence[str],
        k: int,
        fetch: Callable[[list[str], bool], Mapping[str, T]],
        *,
        filtered: bool = False,
        matching: Callable[[], Iterable[str]] | None = None,
        widen_to: int = 0,
    ) -> list[tuple[str, T, float]]:
        """The best ``k`` by BM25 among the chunks ``fetch(ids, apply_filter)`` returns (it
        leaves out ids that fail the store's filter when asked to), best first, as (chunk id,
        what ``fetch`` gave for it, score).

        Unfiltered, ``k`` candidates are asked for; filtered, ``max(4k, 64)``, then as many as
        the pass rate so far says ``k`` need (x1.5, at least twice as many) until ``k`` pass or
        the index runs out. With ``matching`` (every id that passes the filter), a round past
        ``widen_to`` candidates, or a first round where none passed, ends the widening: the ids
        become a mask and one exact top ``k`` is taken among them."""
        want = max(4 * k, 64) if filtered else k
        got: dict[str, T] = {}
        checked: set[str] = set()
        mask = None
        while True:
            slots, scores = self.bm25.top_k(tokens, want, mask)
            ranked = [(self.id_of[int(s)], float(x)) for s, x in zip(slots, scores)]
            fresh = [cid for cid, _ in ranked if cid not in checked]
            if fresh:
                got.update(fetch(fresh, filtered and mask is None))
            checked.update(fresh)
            passing = [(cid, x) for cid, x in ranked if cid in got]
            if len(passing) >= k or len(slots) < want or mask is not None:
                return [(cid, got[cid], x) for cid, x in passing[:k]]
            # enough for k to pass at the pass rate seen so far (x1.5), at least twice as many;
            # none passed: a selective filter, where one list of the matching ids is cheaper
            want = (
                max(2 * want, math.ceil(1.5 * k * len(checked) / len(passing)))
                if passing
                else 4 * want
            )
            if matching is not None and (want > widen_to or not passing):
                mask, want = self.mask(matching()), k
