"""The shared test suite every checkpoint store passes.

Subclass :class:`CheckpointStoreSuite` and supply a ``store_factory`` fixture, a zero-argument
callable returning a store (no key); each test works in fresh tenants (``with_tenant``) and
makes keyed views with ``with_key``, so a shared server needs no cleanup between tests.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from vecmem.checkpoints import CheckpointStoreBase, Retention, generate_key
from vecmem.errors import (
    ConflictError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
)
from vecmem.testing.tenancy import CheckpointTenancySuite

MakeStore = Callable[[str], CheckpointStoreBase]


def _tick() -> float:
    time.sleep(0.02)
    now = time.time()
    time.sleep(0.02)
    return now


class CheckpointStoreSuite(CheckpointTenancySuite):
    """Conformance tests for checkpoint stores; override the ``store_factory`` fixture."""

    @pytest.fixture
    def make_store(self, root_store: Any) -> MakeStore:
        return lambda tenant: root_store.with_tenant(tenant)

    @pytest.fixture
    def store(self, make_store: MakeStore) -> CheckpointStoreBase:
        return make_store(f"t-{uuid.uuid4().hex[:12]}")

    def test_save_get_latest(self, store: CheckpointStoreBase) -> None:
        state = {"messages": ["hi", "hé ✓"], "n": 1, "f": 0.5, "ok": True, "none": None}
        a = store.save("th", state, metadata={"node": "plan", "k": 2}, tags=["b", "a"])
        b = store.save("th", {"n": 2})
        assert (a.seq, b.seq) == (0, 1)
        assert a.parent_id is None and b.parent_id == a.id
        assert a.tags == ("a", "b") and a.metadata == {"node": "plan", "k": 2}
        assert a.size > 0 and a.stored_size > 0 and a.thread_id == "th"
        got = store.get(a.id)
        assert got.state == state and got.info == a and isinstance(got.state["n"], int)
        assert store.latest("th").state == {"n": 2} and store.latest("th").id == b.id
        assert store.info(b.id) == b

    def test_missing(self, store: CheckpointStoreBase) -> None:
        with pytest.raises(NotFoundError):
            store.get("nope")
        with pytest.raises(NotFoundError):
            store.latest("nope")
        with pytest.raises(NotFoundError):
            store.save("th", {}, parent_id="nope")
        assert store.history("nope") == [] and store.threads() == []

    def test_state_is_copied(self, store: CheckpointStoreBase) -> None:
        state = {"a": [1]}
        ck = store.save("th", state)
        state["a"].append(2)
        assert store.get(ck.id).state == {"a": [1]}

    def test_history_newest_first_with_pages(self, store: CheckpointStoreBase) -> None:
        ids = [store.save("th", {"i": i}).id for i in range(5)]
        store.save("other", {})
        assert [c.id for c in store.history("th")] == ids[::-1]
        assert [c.id for c in store.history("th", limit=2)] == ids[:2:-1][:2]
        assert [c.id for c in store.history("th", limit=2, offset=3)] == [ids[1], ids[0]]
        assert store.threads() == ["other", "th"]

    def test_find_by_tags_and_time(self, store: CheckpointStoreBase) -> None:
        a = store.save("t1", {}, tags=["good", "v1"])
        b = store.save("t2", {}, tags=["good"])
        mid = _tick()
        c = store.save("t1", {}, tags=["v1"])
        ids = lambda cs: [x.id for x in cs]  # noqa: E731
        assert ids(store.find(tags=["good"])) == [b.id, a.id]
        assert ids(store.find(tags=["good", "v1"])) == [a.id]
        assert ids(store.find(since=mid)) == [c.id]
        assert ids(store.find(until=mid)) == [b.id, a.id]
        assert ids(store.find(thread_id="t1")) == [c.id, a.id]
        assert ids(store.find(thread_id="t1", tags=["v1"], until=mid)) == [a.id]
        assert ids(store.find(limit=1)) == [c.id]
        assert store.find(tags=["missing"]) == []

    def test_restore_makes_an_old_state_the_newest(self, store: CheckpointStoreBase) -> None:
        a = store.save("th", {"v": 1}, tags=["x"])
        store.save("th", {"v": 2})
        restored = store.restore(a.id, metadata={"why": "undo"})
        assert restored.state == {"v": 1}
        latest = store.latest("th")
        assert latest.id == restored.id and latest.state == {"v": 1}
        assert latest.info.parent_id == a.id and latest.info.seq == 2
        assert latest.info.metadata == {"why": "undo", "restored_from": a.id}
        assert len(store.history("th")) == 3

    def test_branch(self, store: CheckpointStoreBase) -> None:
        a = store.save("main", {"v": 1}, tags=["t"])
        store.save("main", {"v": 2})
        br = store.branch(a.id, "experiment", metadata={"by": "me"})
        assert br.thread_id == "experiment" and br.parent_id == a.id and br.seq == 0
        assert br.tags == ("t",) and br.metadata["branched_from"] == a.id
        assert br.metadata["by"] == "me"
        assert store.latest("experiment").state == {"v": 1}
        store.save("experiment", {"v": 10})
        assert store.latest("main").state == {"v": 2}  # the source is untouched
        with pytest.raises(ConflictError):
            store.branch(a.id, "main")
        assert store.branch(a.id, "other", tags=[]).tags == ()

    def test_diff(self, store: CheckpointStoreBase) -> None:
        a = store.save("th", {"a": 1, "b": {"c": [1, 2]}, "gone": "x", "a/b": 1})
        b = store.save("th", {"a": 2, "b": {"c": [1]}, "new": [None], "a/b": 1})
        d = store.diff(a.id, b.id)
        assert d.changed == {"/a": (1, 2)}
        assert d.removed == {"/b/c/1": 2, "/gone": "x"}
        assert d.added == {"/new": [None]}
        assert not store.diff(a.id, a.id)

    def test_prune_keep_last_never_the_newest(self, store: CheckpointStoreBase) -> None:
        ids = [store.save("th", {"i": i}).id for i in range(5)]
        other = [store.save("other", {"i": i}).id for i in range(2)]
        assert store.prune(thread_id="th", keep_last=2) == 3
        assert [c.id for c in store.history("th")] == [ids[4], ids[3]]
        assert len(store.history("other")) == 2
        assert store.prune(keep_last=1) == 2
        assert [c.id for c in store.history("other")] == [other[1]]
        with pytest.raises(NotFoundError):
            store.get(ids[0])
        with pytest.raises(InvalidInputError):
            store.prune()

    def test_prune_by_age(self, store: CheckpointStoreBase) -> None:
        old = [store.save("th", {"i": i}).id for i in range(3)]
        mid = _tick()
        young = [store.save("th", {"i": i}).id for i in range(2)]
        lone = store.save("lone", {}).id
        # as of one day after `mid`, everything before `mid` is older than a day
        assert store.prune(max_age_days=1, now=mid + 86400) == 3
        assert [c.id for c in store.history("th")] == young[::-1]
        # far future: all old, but the newest of each thread stays
        assert store.prune(max_age_days=1, now=mid + 10 * 86400) == 1
        assert [c.id for c in store.history("th")] == [young[1]]
        assert [c.id for c in store.history("lone")] == [lone]
        assert old

    def test_prune_keeps_what_either_rule_keeps(self, store: CheckpointStoreBase) -> None:
        [store.save("th", {"i": i}) for i in range(3)]
        mid = _tick()
        young = [store.save("th", {"i": i}).id for i in range(3)]
        assert store.prune(keep_last=1, max_age_days=1, now=mid + 86400) == 3
        assert [c.id for c in store.history("th")] == young[::-1]

    def test_retention_after_each_save(self, store: CheckpointStoreBase) -> None:
        kept = store._clone({**store._options, "retention": Retention(keep_last=2)})
        ids = [kept.save("th", {"i": i}).id for i in range(4)]
        assert [c.id for c in kept.history("th")] == [ids[3], ids[2]]

    def test_find_with_state_matching(self, store: CheckpointStoreBase) -> None:
        a = store.save("th", {"status": "completed", "user": {"id": 7, "name": "a"}, "n": 1})
        _tick()  # distinct times: find() lists across threads by time
        b = store.save("th", {"status": "running", "user": {"id": 7}, "n": True})
        _tick()
        c = store.save("other", {"status": "completed", "user": {"id": 8}, "n": 1.0}, tags=["x"])
        _tick()
        d = store.save("th", {"status": "completed", "user": {"id": 7}, "n": [1, 2]})

        def ids(**kw: Any) -> list[str]:
            return [i.id for i in store.find(**kw)]

        assert ids(with_state_matching={"status": "completed"}) == [d.id, c.id, a.id]
        assert ids(with_state_matching={"status": "completed"}, limit=1, offset=1) == [c.id]
        assert ids(thread_id="th", with_state_matching={"user": {"id": 7}}) == [d.id, b.id, a.id]
        assert ids(with_state_matching={"n": 1}) == [a.id]  # not True, not 1.0
        assert ids(with_state_matching={"n": [1]}) == []  # lists match whole
        assert ids(with_state_matching={"user": {"id": 8}}, tags=["x"]) == [c.id]
        assert ids(with_state_matching={"missing": None}) == []
        assert ids(with_state_matching=lambda s: s["n"] == [1, 2]) == [d.id]
        found = store.find_checkpoint(thread_id="th", with_state_matching={"status": "completed"})
        assert found is not None and found.id == d.id and found.state["n"] == [1, 2]
        assert store.find_checkpoint(with_state_matching={"status": "nope"}) is None
        for bad in [{}, "completed", 5]:
            with pytest.raises(InvalidInputError):
                store.find(with_state_matching=bad)  # type: ignore[arg-type]

    def test_state_matching_on_encrypted_states(self, store: CheckpointStoreBase) -> None:
        keyed = store.with_key(generate_key())
        ck = keyed.save("th", {"secret": "yes"})
        keyed.save("th", {"secret": "no"})
        assert [i.id for i in keyed.find(with_state_matching={"secret": "yes"})] == [ck.id]

    def test_failed_checkpoints_kept_under_retention(self, store: CheckpointStoreBase) -> None:
        ok = [store.save("th", {"i": i}).id for i in range(2)]
        bad = store.save("th", {"i": 2, "error": "boom"}, failed=True)
        assert bad.failed and not store.info(ok[0]).failed and store.info(bad.id).failed
        more = [store.save("th", {"i": i}).id for i in range(3, 6)]
        assert [i.id for i in store.find(failed=True)] == [bad.id]
        assert [i.id for i in store.history("th", include_failed=False)] == (ok + more)[::-1]
        assert len(store.history("th")) == 6
        assert store.prune(thread_id="th", keep_last=1, keep_failed=True) == 4
        assert [i.id for i in store.history("th")] == [more[-1], bad.id]
        assert store.get(bad.id).state == {"i": 2, "error": "boom"}
        kept = store._clone(
            {**store._options, "retention": Retention(keep_last=1, keep_failed=True)}
        )
        f2 = kept.save("t2", {}, failed=True).id
        last = [kept.save("t2", {"k": k}).id for k in range(3)][-1]
        assert [i.id for i in kept.history("t2")] == [last, f2]
        assert store.prune(thread_id="th", keep_last=1) == 1  # without keep_failed it goes
        assert [i.id for i in store.history("th")] == [more[-1]]
        with pytest.raises(InvalidInputError):
            store.save("th", {}, failed="yes")  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError):
            Retention(keep_last=1, keep_failed="yes")  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError):
            store.find(failed="no")  # type: ignore[arg-type]

    def test_delete_and_delete_thread(self, store: CheckpointStoreBase) -> None:
        a = store.save("th", {})
        b = store.save("th", {})
        store.save("keep", {})
        assert store.delete(a.id) is True and store.delete(a.id) is False
        assert [c.id for c in store.history("th")] == [b.id]
        assert store.delete_thread("th") == 1 and store.history("th") == []
        assert store.threads() == ["keep"]
        assert store.save("th", {}).seq == 0

    def test_compressed_at_rest(self, store: CheckpointStoreBase) -> None:
        state = {"rows": [{"id": i, "text": "the same words again " * 4} for i in range(2000)]}
        ck = store.save("th", state)
        assert ck.size > 150_000 and ck.stored_size < ck.size / 10
        assert store.get(ck.id).state == state

    @pytest.mark.parametrize("cipher", ["aes-gcm", "fernet"])
    def test_encrypted_and_wrong_keys_fail_clearly(
        self, store: CheckpointStoreBase, cipher: str
    ) -> None:
        key = generate_key(cipher)  # type: ignore[arg-type]
        keyed = store.with_key(key, cipher=cipher)  # type: ignore[arg-type]
        ck = keyed.save("th", {"secret": "s3cr3t" * 50})
        assert keyed.get(ck.id).state == {"secret": "s3cr3t" * 50}
        assert keyed.latest("th").id == ck.id
        wrong = store.with_key(generate_key(cipher), cipher=cipher)  # type: ignore[arg-type]
        with pytest.raises(IntegrityError, match="wrong key"):
            wrong.get(ck.id)
        with pytest.raises(IntegrityError, match="no key"):
            store.get(ck.id)
        assert store.info(ck.id).id == ck.id  # info needs no key
        plain = store.save("th", {"open": 1})
        assert keyed.get(plain.id).state == {"open": 1}  # unencrypted stays readable

    def test_invalid_input(self, store: CheckpointStoreBase) -> None:
        with pytest.raises(InvalidInputError):
            store.save("th", {"s": {1, 2}})
        with pytest.raises(InvalidInputError):
            store.save("", {})
        with pytest.raises(InvalidInputError):
            store.save("th", {}, tags=[""])
        with pytest.raises(InvalidInputError):
            store.history("th", limit=-1)
        bad: list[dict[str, Any]] = [{"since": "yesterday"}, {"until": math.nan}, {"since": True}]
        for kwargs in bad:
            with pytest.raises(InvalidInputError):
                store.find(**kwargs)
        assert store.threads() == []

    def test_concurrent_saves_get_consecutive_positions(self, store: CheckpointStoreBase) -> None:
        def work(k: int) -> None:
            for i in range(5):
                store.save("th", {"k": k, "i": i})

        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(c.seq for c in store.history("th")) == list(range(20))

    def test_tenants_are_isolated(self, make_store: MakeStore) -> None:
        a = make_store(f"a-{uuid.uuid4().hex[:8]}")
        b = make_store(f"b-{uuid.uuid4().hex[:8]}")
        ck = a.save("th", {"secret": 1}, tags=["t"])
        for call in (
            lambda: b.get(ck.id),
            lambda: b.info(ck.id),
            lambda: b.latest("th"),
            lambda: b.restore(ck.id),
            lambda: b.branch(ck.id, "mine"),
            lambda: b.diff(ck.id, ck.id),
        ):
            with pytest.raises(NotFoundError):
                call()
        assert b.history("th") == [] and b.find(tags=["t"]) == [] and b.threads() == []
        assert b.delete(ck.id) is False and b.delete_thread("th") == 0
        assert b.prune(keep_last=1) == 0
        mine = b.save("th", {"mine": 1})
        assert mine.seq == 0 and mine.parent_id is None
        assert a.latest("th").id == ck.id and a.get(ck.id).state == {"secret": 1}
