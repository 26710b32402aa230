"""The shared test suite every :class:`~vecmem.state.StateStore` backend passes.

A backend's test file subclasses :class:`StateStoreSuite` and supplies one fixture,
``store_factory`` (any scope), a zero-argument callable returning a store; every test works in
fresh tenants made with ``store_factory().with_tenant``, so a shared server needs no cleanup
between tests::

    class TestSQLiteState(StateStoreSuite):
        @pytest.fixture(scope="class")
        def store_factory(self, tmp_path_factory):
            store = SQLStateStore(f"sqlite:///{tmp_path_factory.mktemp('s')}/state.db")
            yield lambda: store
            store.close()
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from vecmem.errors import ConflictError, InvalidInputError
from vecmem.state import StateLock, StateStore
from vecmem.testing.tenancy import StateTenancySuite

MakeStore = Callable[[str], StateStore]


class StateStoreSuite(StateTenancySuite):
    """Conformance tests for state stores; override the ``store_factory`` fixture."""

    @pytest.fixture
    def make_store(self, root_store: Any) -> MakeStore:
        return lambda tenant: root_store.with_tenant(tenant)

    @pytest.fixture
    def store(self, make_store: MakeStore) -> StateStore:
        return make_store(f"t-{uuid.uuid4().hex[:12]}")

    def test_round_trip_keeps_json_types(self, store: StateStore) -> None:
        value = {"int": 1, "float": 1.5, "s": "héllo ✓", "list": [1, None, True], "n": {"a": {}}}
        assert store.set("ns", "k", value) == 1
        got = store.get("ns", "k")
        assert got == value and isinstance(got["int"], int)

    def test_missing_gives_default_and_none_entry(self, store: StateStore) -> None:
        assert store.get("ns", "absent") is None
        assert store.get("ns", "absent", 42) == 42
        assert store.get_entry("ns", "absent") is None

    def test_input_is_not_mutated_and_stored_value_is_a_copy(self, store: StateStore) -> None:
        value = {"a": [1, 2]}
        store.set("ns", "k", value)
        value["a"].append(3)
        assert store.get("ns", "k") == {"a": [1, 2]}

    def test_every_write_bumps_the_version(self, store: StateStore) -> None:
        assert [store.set("ns", "k", i) for i in range(3)] == [1, 2, 3]
        entry = store.get_entry("ns", "k")
        assert entry is not None and entry.version == 3 and entry.value == 2
        assert entry.expires_at is None and entry.namespace == "ns" and entry.key == "k"

    def test_compare_and_set(self, store: StateStore) -> None:
        assert store.compare_and_set("ns", "k", "a", expected_version=0) == 1
        with pytest.raises(ConflictError):
            store.compare_and_set("ns", "k", "b", expected_version=0)
        with pytest.raises(ConflictError):
            store.compare_and_set("ns", "k", "b", expected_version=5)
        assert store.compare_and_set("ns", "k", "b", expected_version=1) == 2
        assert store.get("ns", "k") == "b"

    def test_delete(self, store: StateStore) -> None:
        assert store.delete("ns", "k") is False
        store.set("ns", "k", 1)
        store.set("ns", "k", 2)
        with pytest.raises(ConflictError):
            store.delete("ns", "k", expected_version=1)
        assert store.delete("ns", "k", expected_version=2) is True
        assert store.get_entry("ns", "k") is None
        assert store.set("ns", "k", 3) == 1  # a re-created entry starts again

    def test_keys_with_prefix_are_exact_and_case_sensitive(self, store: StateStore) -> None:
        for key in ["a", "A", "a%b", "a_b", "ab", "b", "a b", "a*", "a:c"]:
            store.set("ns", key, key)
        store.set("other", "a1", 0)
        assert store.keys("ns") == sorted(["a", "A", "a%b", "a_b", "ab", "b", "a b", "a*", "a:c"])
        assert store.keys("ns", prefix="a%") == ["a%b"]
        assert store.keys("ns", prefix="a_") == ["a_b"]
        assert store.keys("ns", prefix="a*") == ["a*"]
        assert store.keys("ns", prefix="A") == ["A"]
        assert store.get("ns", "A") == "A" and store.get("ns", "a") == "a"
        assert store.keys("empty") == []

    def test_clear_removes_only_the_namespace(self, store: StateStore) -> None:
        for i in range(3):
            store.set("ns", f"k{i}", i)
        store.set("keep", "k", 1)
        assert store.clear("ns") == 3
        assert store.keys("ns") == [] and store.get("keep", "k") == 1

    def test_ttl_expires(self, store: StateStore) -> None:
        store.set("ns", "short", 1, ttl=0.3)
        store.set("ns", "long", 1, ttl=60)
        entry = store.get_entry("ns", "long")
        assert entry is not None and entry.expires_at is not None
        assert 50 < entry.expires_at - time.time() <= 61
        assert store.get("ns", "short") == 1
        time.sleep(0.45)
        assert store.get("ns", "short") is None
        assert store.keys("ns") == ["long"]
        assert store.compare_and_set("ns", "short", 2, expected_version=0) == 1
        store.set("ns", "long", 2)  # a write without ttl makes it permanent
        entry = store.get_entry("ns", "long")
        assert entry is not None and entry.expires_at is None

    def test_invalid_input(self, store: StateStore) -> None:
        with pytest.raises(InvalidInputError):
            store.set("ns", "k", {1, 2})
        with pytest.raises(InvalidInputError):
            store.set("ns", "", 1)
        with pytest.raises(InvalidInputError):
            store.set("", "k", 1)
        with pytest.raises(InvalidInputError):
            store.set("ns", "a\x00b", 1)
        with pytest.raises(InvalidInputError):
            store.set("ns", "k", 1, ttl=-1)
        with pytest.raises(InvalidInputError):
            store.compare_and_set("ns", "k", 1, expected_version=-1)
        with pytest.raises(InvalidInputError):
            store.with_tenant("")
        # issue 13: a None key reached the database (NOT NULL), ttl=True meant one second
        for call in (
            lambda: store.set("ns", None, 1),  # type: ignore[arg-type]
            lambda: store.get_entry("ns", None),  # type: ignore[arg-type]
            lambda: store.compare_and_set("ns", None, 1, expected_version=0),  # type: ignore[arg-type]
            lambda: store.delete("ns", None),  # type: ignore[arg-type]
            lambda: store.set("ns", "k", 1, ttl=True),
            lambda: store.set("ns", "k", 1, ttl=math.inf),
            lambda: store.set("ns", "k", 1, ttl=math.nan),
            lambda: store.set("ns", "k\ud800", 1),
            lambda: store.set("ns", "k", {"v": "\ud800"}),
            lambda: store.set("ns", "k", [1, {"\udfff": 2}]),
        ):
            with pytest.raises(InvalidInputError):
                call()
        assert store.keys("ns") == []  # nothing written

    def test_tenants_are_isolated(self, make_store: MakeStore) -> None:
        a = make_store(f"a-{uuid.uuid4().hex[:8]}")
        b = make_store(f"b-{uuid.uuid4().hex[:8]}")
        a.set("ns", "k", "a's")
        assert b.get("ns", "k") is None and b.get_entry("ns", "k") is None
        assert b.keys("ns") == []
        assert b.delete("ns", "k") is False
        assert b.clear("ns") == 0
        with pytest.raises(ConflictError):
            b.compare_and_set("ns", "k", "b's", expected_version=1)
        assert b.set("ns", "k", "b's") == 1
        assert a.get("ns", "k") == "a's" and a.get_entry("ns", "k").version == 1  # type: ignore[union-attr]
        b.clear("ns")
        assert a.keys("ns") == ["k"]

    def test_concurrent_compare_and_set_loses_no_update(self, store: StateStore) -> None:
        store.set("ns", "counter", 0)

        def bump() -> None:
            for _ in range(10):
                while True:
                    entry = store.get_entry("ns", "counter")
                    assert entry is not None
                    try:
                        store.compare_and_set(
                            "ns", "counter", entry.value + 1, expected_version=entry.version
                        )
                        break
                    except ConflictError:
                        continue

        threads = [threading.Thread(target=bump) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert store.get("ns", "counter") == 40

    def test_state_lock_excludes_and_expires(self, store: StateStore) -> None:
        first = StateLock(store, wait=0)
        second = StateLock(store, wait=0)
        assert first.acquire("res", ttl=0.3)
        assert not second.acquire("res", ttl=0.3)
        second.release("res")  # not the holder: no effect
        assert not second.acquire("res", ttl=0.3)
        time.sleep(0.45)
        assert second.acquire("res", ttl=5)
        first.release("res")  # lost its lease: must not free the new holder's lock
        assert not first.acquire("res", ttl=5)
        second.release("res")
        assert first.acquire("res", ttl=5)
