"""The shared test suite every path-based :class:`~vecmem.knowledge_fs.KnowledgeStore` passes.

Subclass :class:`KnowledgeStoreSuite` (also exported as ``FileStoreSuite``) and supply a
``store_factory`` fixture, a zero-argument callable returning a store; each test works in fresh
tenants made with its ``with_tenant``, so a shared server needs no cleanup between tests.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from vecmem.errors import InvalidInputError, NotFoundError, StoreLockedError
from vecmem.knowledge_fs import (
    DefaultBootstrap,
    Event,
    EventLog,
    KnowledgeStore,
    LayoutBootstrap,
    LocalLock,
    LockedKnowledgeStore,
    Subscription,
    bootstrap_once,
)
from vecmem.testing.tenancy import KnowledgeTenancySuite

MakeStore = Callable[[str], KnowledgeStore]
BAD_PATHS = [
    "relative.txt",
    "",
    "/a/../b",
    "/..",
    "/a/./b",
    "/a//b",
    "/a/\x00b",
    "/a/b/",
    "/",
    "/" + "x" * 256,
    5,
]


class KnowledgeStoreSuite(KnowledgeTenancySuite):
    """Conformance tests for knowledge stores; override the ``store_factory`` fixture."""

    @pytest.fixture
    def make_store(self, root_store: Any) -> MakeStore:
        return lambda tenant: root_store.with_tenant(tenant)

    @pytest.fixture
    def store(self, make_store: MakeStore) -> KnowledgeStore:
        return make_store(f"t-{uuid.uuid4().hex[:12]}")

    def test_write_and_read(self, store: KnowledgeStore) -> None:
        store.write("/a.txt", "héllo ✓")
        assert store.read("/a.txt") == "héllo ✓".encode()
        binary = bytes(range(256)) * 3
        store.write("/bin/blob", binary)
        assert store.read("/bin/blob") == binary
        store.write("/empty", b"")
        assert store.read("/empty") == b"" and store.exists("/empty")
        store.write("/a.txt", b"replaced")
        assert store.read("/a.txt") == b"replaced"

    def test_append_returns_offsets(self, store: KnowledgeStore) -> None:
        assert store.append("/log/a.jsonl", "one\n") == 0
        assert store.append("/log/a.jsonl", b"two\n") == 4
        assert store.append("/log/a.jsonl", "") == 8
        assert store.append("/log/a.jsonl", "three\n") == 8
        assert store.read("/log/a.jsonl") == b"one\ntwo\nthree\n"
        store.write("/log/a.jsonl", "x")
        assert store.append("/log/a.jsonl", "y") == 1

    def test_read_range(self, store: KnowledgeStore) -> None:
        store.write("/f", b"0123456789")
        store.append("/f", b"abcdef")
        assert store.read_range("/f", 0, 3) == b"012"
        assert store.read_range("/f", 8, 12) == b"89ab"
        assert store.read_range("/f", 12) == b"cdef"
        assert store.read_range("/f", 14, 100) == b"ef"
        assert store.read_range("/f", 16, 20) == b"" and store.read_range("/f", 50) == b""
        assert store.read_range("/f", 5, 5) == b""
        with pytest.raises(InvalidInputError):
            store.read_range("/f", 5, 4)
        with pytest.raises(InvalidInputError):
            store.read_range("/f", -1, 4)
        with pytest.raises(NotFoundError):
            store.read_range("/missing", 0, 1)

    def test_large_file_across_chunks(self, store: KnowledgeStore) -> None:
        block = bytes(range(256)) * 4096  # 1 MiB
        big = block * 5
        store.write("/big.bin", big)
        assert store.append("/big.bin", block) == len(big)
        whole = big + block
        assert store.read("/big.bin") == whole
        for start, end in [
            (0, 10),
            (4 * 2**20 - 5, 4 * 2**20 + 5),
            (len(whole) - 3, None),
            (2**20 + 7, 5 * 2**20 + 9),
        ]:
            assert store.read_range("/big.bin", start, end) == whole[start:end]

    def test_list_immediate_children(self, store: KnowledgeStore) -> None:
        assert store.list("/") == []
        for p in ["/b.md", "/a/x.md", "/a/y/z.md", "/a/y/w/v.md", "/c/d.md"]:
            store.write(p, p)
        assert store.list("/") == ["a/", "b.md", "c/"]
        assert store.list("/a") == ["x.md", "y/"] == store.list("/a/")
        assert store.list("/a/y") == ["w/", "z.md"]
        with pytest.raises(NotFoundError):
            store.list("/nope")
        with pytest.raises(InvalidInputError):
            store.list("/b.md")

    def test_directories_are_implicit(self, store: KnowledgeStore) -> None:
        store.write("/d/e/f.txt", "x")
        assert store.exists("/d") and store.exists("/d/") and store.exists("/d/e")
        assert store.exists("/")
        assert not store.exists("/x") and not store.exists("/d/e/g")
        assert store.delete("/d/e/f.txt") is True
        assert not store.exists("/d") and not store.exists("/d/e")
        assert store.list("/") == []
        store.write("/d/keep", "1")
        store.write("/d/e/gone", "1")
        store.delete("/d/e/gone")
        assert store.list("/d") == ["keep"]

    def test_delete(self, store: KnowledgeStore) -> None:
        for p in ["/a/1", "/a/b/2", "/a/b/c/3", "/ab", "/z/9"]:
            store.write(p, "x")
        assert store.delete("/missing") is False
        assert store.delete("/a/missing/deep") is False
        with pytest.raises(InvalidInputError):
            store.delete("/a")
        assert store.delete("/a/b", recursive=True) is True
        assert store.list("/a") == ["1"] and not store.exists("/a/b/c/3")
        assert store.read("/ab") == b"x"  # a sibling sharing the prefix is untouched
        assert store.delete("/a/", recursive=True) is True and not store.exists("/a")
        assert store.list("/") == ["ab", "z/"]
        assert store.delete("/", recursive=True) is True
        assert store.list("/") == [] and not store.exists("/z/9")
        assert store.delete("/", recursive=True) is False
        store.write("/z/9", "back")
        assert store.read("/z/9") == b"back"

    def test_files_and_directories_do_not_clash(self, store: KnowledgeStore) -> None:
        store.write("/dir/file", "x")
        with pytest.raises(InvalidInputError):
            store.write("/dir", "x")
        with pytest.raises(InvalidInputError):
            store.append("/dir", "x")
        with pytest.raises(InvalidInputError):
            store.write("/dir/file/sub", "x")
        with pytest.raises(InvalidInputError):
            store.append("/dir/file/sub/deeper", "x")
        with pytest.raises(InvalidInputError):
            store.read("/dir")
        with pytest.raises(NotFoundError):
            store.read("/dir/none")
        assert store.list("/dir") == ["file"] and store.read("/dir/file") == b"x"

    def test_invalid_paths_are_rejected(self, store: KnowledgeStore) -> None:
        for bad in BAD_PATHS:
            with pytest.raises(InvalidInputError):
                store.write(bad, "x")  # type: ignore[arg-type]
            with pytest.raises(InvalidInputError):
                store.read(bad)  # type: ignore[arg-type]
        for bad in ["relative", "/a/../..", "/a//b", "/\x00", "/.."]:
            for call in (store.list, store.exists, store.delete):
                with pytest.raises(InvalidInputError):
                    call(bad)
        with pytest.raises(InvalidInputError):
            store.write("/ok", 5)  # type: ignore[arg-type]
        assert store.list("/") == []

    def test_names_are_exact(self, store: KnowledgeStore) -> None:
        names = [
            "A",
            "a",
            "a ",
            "sp ace",
            "per%cent",
            "co:lon",
            "st*r?",
            "ünï😀",
            "dot.ted",
            ".hidden",
            "x_y",
        ]
        for n in names:
            store.write(f"/n/{n}", n)
        assert store.list("/n") == sorted(names)
        for n in names:
            assert store.read(f"/n/{n}") == n.encode()

    def test_concurrent_appends_get_distinct_offsets(self, store: KnowledgeStore) -> None:
        offsets: list[int] = []
        guard = threading.Lock()

        def work(k: int) -> None:
            for i in range(10):
                off = store.append("/log", f"{k}:{i}|".encode())
                with guard:
                    offsets.append(off)

        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        data = store.read("/log")
        assert len(data) == 40 * 4 and sorted(offsets) == list(range(0, 160, 4))
        assert sorted(data.decode().rstrip("|").split("|")) == sorted(
            f"{k}:{i}" for k in range(4) for i in range(10)
        )

    def test_on_change_returns_a_subscription(self, store: KnowledgeStore) -> None:
        sub = store.on_change(lambda event: None)
        assert isinstance(sub, Subscription)
        sub.close()
        sub.close()

    def test_tenants_are_isolated(self, make_store: MakeStore) -> None:
        a = make_store(f"a-{uuid.uuid4().hex[:8]}")
        b = make_store(f"b-{uuid.uuid4().hex[:8]}")
        a.write("/secret/plan.md", "a's")
        assert b.list("/") == [] and not b.exists("/secret") and not b.exists("/secret/plan.md")
        with pytest.raises(NotFoundError):
            b.read("/secret/plan.md")
        with pytest.raises(NotFoundError):
            b.read_range("/secret/plan.md", 0, 2)
        with pytest.raises(NotFoundError):
            b.list("/secret")
        assert b.delete("/secret/plan.md") is False and b.delete("/secret", recursive=True) is False
        assert b.append("/secret/plan.md", "b's") == 0
        b.write("/secret/plan.md", "b's own")
        b.delete("/", recursive=True)
        assert a.read("/secret/plan.md") == b"a's" and a.list("/") == ["secret/"]

    def test_locked_wrapper_serialises_writers(self, store: KnowledgeStore) -> None:
        holders = {"now": 0, "max": 0}
        guard = threading.Lock()

        class CountingLock(LocalLock):
            def acquire(self, name: str, ttl: float) -> bool:
                got = super().acquire(name, ttl)
                if got:
                    with guard:
                        holders["now"] += 1
                        holders["max"] = max(holders["max"], holders["now"])
                return got

            def release(self, name: str) -> None:
                with guard:
                    holders["now"] -= 1
                super().release(name)

        locked = LockedKnowledgeStore(store, CountingLock())

        def work(k: int) -> None:
            for i in range(5):
                locked.append("/shared.log", f"{k}{i}")
                locked.write(f"/w/{k}", str(i))

        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert holders["max"] == 1 and len(locked.read("/shared.log")) == 40
        assert locked.list("/w") == ["0", "1", "2", "3"]
        assert locked.delete("/w", recursive=True) and not store.exists("/w")

        class Refusing:
            def acquire(self, name: str, ttl: float) -> bool:
                return False

            def release(self, name: str) -> None:  # pragma: no cover - never acquired
                raise AssertionError

        refused = LockedKnowledgeStore(store, Refusing())
        with pytest.raises(StoreLockedError):
            refused.write("/nope", "x")
        assert not store.exists("/nope") and refused.read("/shared.log")

    def test_event_log_replays_into_the_store(self, store: KnowledgeStore, tmp_path: Path) -> None:
        log = EventLog(tmp_path / "events.jsonl")
        log.append(Event("write", "/a.md", b"v1"))
        log.append(Event("append", "/a.md", b"+more"))
        log.append(Event("write", "/bin", bytes([0, 255, 1])))
        log.append(Event("x-future-type", "/a.md", extra={"payload": {"k": [1, 2]}}))
        log.append(Event("write", "/tmp/x", b"1"))
        log.append(Event("delete", "/tmp", recursive=True))
        assert log.replay(store) == 5
        assert store.read("/a.md") == b"v1+more" and store.read("/bin") == bytes([0, 255, 1])
        assert store.list("/") == ["a.md", "bin"]
        kept = [e for e in log if not e.known]
        assert kept[0].type == "x-future-type" and kept[0].extra == {"payload": {"k": [1, 2]}}

    def test_default_bootstrap_runs_once(self, store: KnowledgeStore) -> None:
        assert bootstrap_once(store, "alice") is True
        assert store.list("/") == [".initialized", "SKILL.md", "artifacts/", "log/", "memory/"]
        for folder in ("/log", "/artifacts", "/memory"):
            assert store.list(folder) == ["SKILL.md"]
        root = store.read("/SKILL.md").decode()
        assert root.startswith("# alice Knowledge Store") and "`knowledge` tool" in root
        store.write("/SKILL.md", "edited by the agent")
        assert bootstrap_once(store, "alice") is False
        assert bootstrap_once(store, "bob") is False  # one bootstrap per store (per actor)
        assert store.read("/SKILL.md") == b"edited by the agent"
        assert store.read("/.initialized") == b"alice"

    def test_bootstrap_claims_once_among_threads(self, store: KnowledgeStore) -> None:
        calls: list[str] = []
        guard = threading.Lock()

        class Counting(DefaultBootstrap):
            def bootstrap(self, store: KnowledgeStore, actor: str) -> None:
                with guard:
                    calls.append(actor)
                super().bootstrap(store, actor)

        results: list[bool] = []
        threads = [
            threading.Thread(
                target=lambda: results.append(bootstrap_once(store, "a", bootstrap=Counting()))
            )
            for _ in range(6)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == [False] * 5 + [True] and calls == ["a"]

    def test_custom_layout_and_failed_bootstrap(self, store: KnowledgeStore) -> None:
        class Broken:
            def bootstrap(self, store: KnowledgeStore, actor: str) -> None:
                store.write("/half.md", "x")
                raise OSError("disk gone")

        with pytest.raises(OSError):
            bootstrap_once(store, "carol", bootstrap=Broken())
        assert not store.exists("/.initialized")  # the next run tries again
        layout = LayoutBootstrap({"/SKILL.md": "# {actor} {keep}", "/plans/SKILL.md": "Plans"})
        assert bootstrap_once(store, "carol", bootstrap=layout) is True
        assert store.read("/SKILL.md") == b"# carol {keep}"
        assert store.read("/plans/SKILL.md") == b"Plans"
        no_tool = DefaultBootstrap(mention_tool=False).files("x")["/SKILL.md"]
        assert "`knowledge` tool" not in no_tool and "no tool exposed" in no_tool

    def test_bootstrap_rejects_bad_input(self, store: KnowledgeStore) -> None:
        for actor in ["", "  ", "a\nb", "x" * 256, None, 5]:
            with pytest.raises(InvalidInputError):
                bootstrap_once(store, actor)  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError):
            bootstrap_once(store, "a", bootstrap=object())  # type: ignore[arg-type]
        for files in [{}, {"relative": "x"}, {"/.initialized": "x"}, {"/a": 5}]:
            with pytest.raises(InvalidInputError):
                LayoutBootstrap(files)  # type: ignore[arg-type]
        assert store.list("/") == []
