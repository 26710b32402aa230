"""Tenancy probes: a second tenant or user never reads, lists, changes or deletes the first's data.

Each suite attacks one scoped API with names crafted to collide with the victim's: ``.``,
``..``, ``../x``, case variants, trailing spaces, SQL ``LIKE`` and Redis ``MATCH`` wildcards,
separators, percent-encodings (the victim's own file name included), look-alike Unicode, names
at the length limit; and with the victim's real ids (memory, change and checkpoint ids). It
checks every read, list, write and delete, then that the victim's data is exactly as written.
Names a store must refuse (empty, NUL, too long, lone surrogates) must raise
:class:`~vecmem.errors.InvalidInputError`.

The conformance suites (:mod:`vecmem.testing.knowledge_fs`, ``conversations``, ``state``,
``checkpoints``) inherit these, so every backend that runs its suite is probed with the same
``store_factory`` fixture; agent memory is probed with :class:`AgentMemoryTenancySuite` and a
``store_factory`` returning an :class:`~vecmem.agent_memory.AgentMemory`. Everything written
under a crafted name is deleted again, so a shared server needs no cleanup.
"""

from __future__ import annotations

import unicodedata
import uuid
from typing import Any
from urllib.parse import quote

import pytest

from vecmem._keys import MAX_KEY, MAX_TENANT, file_name, legacy_file_name
from vecmem.errors import InvalidInputError, NotFoundError
from vecmem.testing._factory import FactorySuite

ABSOLUTE = [
    ".",
    "..",
    "../x",
    "./",
    "%2e%2e",
    "%2E%2E",
    "*",
    "%",
    "_",
    "?",
    "[a]",
    "~",
    "a/b",
    "a\\b",
    ":",
    "|",
    " ",
    "default",
]
"""Names that reach too far wherever a name is used unescaped (a path, a pattern, a key)."""


def hostile_names(victim: str, *, max_len: int) -> list[str]:
    """Names a second tenant or user might use to reach ``victim``'s data, all distinct from it:
    the :data:`ABSOLUTE` names plus variants of ``victim`` (case, padding, separators, wildcards
    in its place, its escaped spellings, look-alike and decomposed Unicode, a longer name with
    the same prefix)."""
    v = victim
    variants = [
        v.upper(),
        v.lower(),
        v.swapcase(),
        v + " ",
        " " + v,
        v + "\t",
        v + "/",
        v + "\\",
        "./" + v,
        "../" + v,
        v + "/..",
        v + "/.",
        v[:-1] + "_",
        v[:-1] + "%",
        v + "%",
        "%" + v,
        v[:-1] + "?",
        v[:-1] + "*",
        v + "*",
        v + ":",
        v + ":*",
        file_name(v),
        legacy_file_name(v),
        quote(v, safe=""),
        unicodedata.normalize("NFD", v),
        unicodedata.normalize("NFKC", v),
        v.replace("a", "\u0430"),
        v + "x" * max_len,
        "x" * max_len,
    ]
    out = {n[:max_len] for n in ABSOLUTE + variants}
    return sorted(n for n in out if n and n != v)


def refused_names(max_len: int) -> list[str]:
    """Names every scoped API must refuse with :class:`InvalidInputError`."""
    return ["", "a\x00b", "\x00", "x" * (max_len + 1), "a\ud800b"]


def crafted_set(victim: str, *, max_len: int) -> list[str]:
    """``victim`` with its :func:`hostile_names`: names that must all be told apart."""
    return [victim, *hostile_names(victim, max_len=max_len)]


def victim_name(kind: str) -> str:
    """A fresh name with upper case, a dot, ``_`` and non-ASCII, so every escaping matters."""
    return f"Vi.ct_{kind}-{uuid.uuid4().hex[:8]}-Äa"


# -- knowledge stores (tenant) ------------------------------------------------------------------
class KnowledgeTenancySuite(FactorySuite):
    """Tenants of a path-based knowledge store are sealed from one another."""

    def test_no_tenant_name_reaches_another_tenants_files(self, root_store: Any) -> None:
        name = victim_name("kb")
        victim = root_store.with_tenant(name)
        top = f"/p-{uuid.uuid4().hex[:8]}"
        secret, other_file = f"{top}/secret.md", f"{top}/sub/x"
        victim.write(secret, b"victim data")
        victim.write(other_file, b"2")
        # where the victim's file would be seen by a tenant whose folder holds the others'
        nested = [
            f"/{n}{secret}"
            for n in {name, file_name(name), legacy_file_name(name), quote(name, safe="")}
        ]
        try:
            for crafted in hostile_names(name, max_len=MAX_TENANT):
                other = root_store.with_tenant(crafted)
                try:
                    assert not other.exists(secret) and not other.exists(top), crafted
                    for path in nested:
                        assert not other.exists(path), (crafted, path)
                        with pytest.raises(NotFoundError):
                            other.read(path)
                        assert other.delete(path) is False, (crafted, path)
                    with pytest.raises(NotFoundError):
                        other.read(secret)
                    with pytest.raises(NotFoundError):
                        other.read_range(secret, 0, 3)
                    with pytest.raises(NotFoundError):
                        other.list(top)
                    assert top[1:] + "/" not in other.list("/"), crafted
                    assert other.delete(secret) is False, crafted
                    assert other.delete(top, recursive=True) is False, crafted
                    other.write(secret, crafted.encode())
                    assert other.append(secret, b"+") == len(crafted.encode())
                    assert other.read(secret) == crafted.encode() + b"+", crafted
                    other.delete("/", recursive=True)  # the crafted tenant's own files only
                    assert victim.read(secret) == b"victim data", crafted
                finally:
                    other.delete(top, recursive=True)
            assert victim.read(secret) == b"victim data"
            assert victim.read(other_file) == b"2" and victim.list(top) == ["secret.md", "sub/"]
        finally:
            victim.delete(top, recursive=True)

    def test_crafted_tenant_names_are_pairwise_distinct(self, root_store: Any) -> None:
        """Every crafted name writes the same path; each must read back only its own file."""
        names = crafted_set(victim_name("kb"), max_len=MAX_TENANT)
        top = f"/probe-{uuid.uuid4().hex[:8]}"
        stores = [root_store.with_tenant(n) for n in names]
        try:
            for i, kb in enumerate(stores):
                kb.write(f"{top}/{i}", names[i].encode())
            for i, kb in enumerate(stores):
                assert kb.list(top) == [str(i)], names[i]
                assert kb.read(f"{top}/{i}") == names[i].encode(), names[i]
        finally:
            for kb in stores:
                kb.delete(top, recursive=True)

    def test_tenant_names_that_cannot_be_stored_are_refused(self, root_store: Any) -> None:
        for crafted in refused_names(MAX_TENANT):
            with pytest.raises(InvalidInputError):
                root_store.with_tenant(crafted).write("/x", b"1")


# -- conversation stores (tenant, user) ---------------------------------------------------------
class ConversationTenancySuite(FactorySuite):
    """Tenants and users of a conversation store are sealed from one another."""

    def _probe(self, store: Any, user: str, session: str, crafted: str) -> None:
        from vecmem.conversations import Message

        assert store.get_messages(user, session) == [], crafted
        assert store.last_messages(user, session, 5) == [], crafted
        with pytest.raises(NotFoundError):
            store.get_session(user, session)
        assert all(s.session_id != session for s in store.list_sessions(user)), crafted
        assert all(s.session_id != session for s in store.query_sessions(user_id=user)), crafted
        assert store.export(user)["sessions"] == [], crafted
        assert store.delete_session(user, session) is False, crafted
        assert store.delete_user(user) == 0, crafted
        store.add_messages(user, session, [Message("user", crafted)])
        assert [m.content for m in store.get_messages(user, session)] == [crafted]

    def test_no_tenant_name_reaches_another_tenants_conversations(self, root_store: Any) -> None:
        from vecmem.conversations import Message

        name, user, session = victim_name("conv"), victim_name("user"), victim_name("session")
        victim = root_store.with_tenant(name)
        victim.add_messages(user, session, [Message("user", "victim says hi")], agent_id="a")
        before = victim.export(user)["sessions"]
        for crafted in hostile_names(name, max_len=MAX_TENANT):
            other = root_store.with_tenant(crafted)
            try:
                self._probe(other, user, session, crafted)
                assert all(s.user_id != user for s in other.query_sessions(agent_id="a"))
            finally:
                other.delete_user(user)
        assert victim.export(user)["sessions"] == before

    def test_no_user_or_session_name_reaches_another_users_conversations(
        self, root_store: Any
    ) -> None:
        from vecmem.conversations import Message

        store = root_store.with_tenant(victim_name("conv"))
        user, session = victim_name("user"), victim_name("session")
        store.add_messages(user, session, [Message("user", "victim says hi")])
        before = store.export(user)["sessions"]
        for crafted in hostile_names(user, max_len=MAX_KEY):
            try:
                self._probe(store, crafted, session, crafted)
            finally:
                store.delete_user(crafted)
        for crafted in hostile_names(session, max_len=MAX_KEY):
            assert store.get_messages(user, crafted) == [], crafted
            assert store.delete_session(user, crafted) is False, crafted
        assert store.export(user)["sessions"] == before
        assert [s.user_id for s in store.query_sessions()] == [user]

    def test_crafted_tenant_user_and_session_names_are_pairwise_distinct(
        self, root_store: Any
    ) -> None:
        """Every crafted tenant writes the same user and session, every crafted user (and
        session) of one tenant the same session: each reads back only its own message."""
        from vecmem.conversations import Message

        run = uuid.uuid4().hex[:8]
        tenants = crafted_set(victim_name("conv"), max_len=MAX_TENANT)
        users = crafted_set(victim_name("user"), max_len=MAX_KEY)
        stores = [root_store.with_tenant(n) for n in tenants]
        home, away = root_store.with_tenant(f"t-{run}"), root_store.with_tenant(f"T-{run}")
        try:
            for n, st in zip(tenants, stores):
                st.add_messages(f"u-{run}", "s", [Message("user", n)])
            for u in users:
                for st in (home, away):
                    st.add_messages(u, u, [Message("user", f"{st.tenant}|{u}")])
                home.add_messages(f"u-{run}", u, [Message("user", u)])
            for n, st in zip(tenants, stores):
                assert [m.content for m in st.get_messages(f"u-{run}", "s")] == [n], n
            for u in users:
                for st in (home, away):
                    assert [m.content for m in st.get_messages(u, u)] == [f"{st.tenant}|{u}"], u
                    assert [s.session_id for s in st.list_sessions(u)] == [u], u
                assert [m.content for m in home.get_messages(f"u-{run}", u)] == [u], u
            assert len(home.list_sessions(f"u-{run}", limit=1000)) == len(users)
            assert len(away.query_sessions(limit=1000)) == len(users)
        finally:
            for st in stores:
                st.delete_user(f"u-{run}")
            for u in users:
                home.delete_user(u)
                away.delete_user(u)
            home.delete_user(f"u-{run}")

    def test_user_and_session_names_that_cannot_be_stored_are_refused(
        self, root_store: Any
    ) -> None:
        from vecmem.conversations import Message

        store = root_store.with_tenant(victim_name("conv"))
        for crafted in refused_names(MAX_KEY):
            with pytest.raises(InvalidInputError):
                store.add_messages(crafted, "s", [Message("user", "x")])
            with pytest.raises(InvalidInputError):
                store.add_messages("u", crafted, [Message("user", "x")])
        for crafted in refused_names(MAX_TENANT):
            with pytest.raises(InvalidInputError):
                root_store.with_tenant(crafted).add_messages("u", "s", [Message("user", "x")])
        assert store.query_sessions() == []


# -- state stores (tenant, namespace) -----------------------------------------------------------
class StateTenancySuite(FactorySuite):
    """Tenants and namespaces of a state store are sealed; key prefixes are literal."""

    def test_no_tenant_or_namespace_name_reaches_another_ones_state(self, root_store: Any) -> None:
        name, ns = victim_name("state"), victim_name("ns")
        victim = root_store.with_tenant(name)
        victim.set(ns, "k", {"v": 1})
        for crafted in hostile_names(name, max_len=MAX_TENANT):
            other = root_store.with_tenant(crafted)
            try:
                assert other.get(ns, "k") is None and other.get_entry(ns, "k") is None, crafted
                assert other.keys(ns) == [] and other.clear(ns) == 0, crafted
                assert other.delete(ns, "k") is False, crafted
                assert other.compare_and_set(ns, "k", crafted, expected_version=0) == 1
                assert other.get(ns, "k") == crafted
            finally:
                other.clear(ns)
        for crafted in hostile_names(ns, max_len=MAX_KEY):
            assert victim.get(crafted, "k") is None and victim.keys(crafted) == [], crafted
            assert victim.clear(crafted) == 0 and victim.delete(crafted, "k") is False, crafted
        assert victim.get_entry(ns, "k").value == {"v": 1}
        assert victim.get_entry(ns, "k").version == 1
        victim.clear(ns)

    def test_crafted_tenant_and_namespace_names_are_pairwise_distinct(
        self, root_store: Any
    ) -> None:
        run = uuid.uuid4().hex[:8]
        tenants = crafted_set(victim_name("state"), max_len=MAX_TENANT)
        spaces = crafted_set(victim_name("ns"), max_len=MAX_KEY)
        stores = [root_store.with_tenant(n) for n in tenants]
        home = root_store.with_tenant(f"t-{run}")
        try:
            for n, st in zip(tenants, stores):
                st.set(f"ns-{run}", "k", n)
            for ns in spaces:
                home.set(ns, "k", ns)
            for n, st in zip(tenants, stores):
                assert st.get(f"ns-{run}", "k") == n and st.keys(f"ns-{run}") == ["k"], n
            for ns in spaces:
                assert home.get(ns, "k") == ns and home.keys(ns) == ["k"], ns
        finally:
            for st in stores:
                st.clear(f"ns-{run}")
            for ns in spaces:
                home.clear(ns)

    def test_key_prefixes_are_literal(self, root_store: Any) -> None:
        store, ns = root_store.with_tenant(victim_name("state")), "ns"
        keys = ["k1", "k_2", "k%3", "k*4", "K5", "k?6", "k[7]", "k\\8", "x"]
        for k in keys:
            store.set(ns, k, k)
        for prefix in ["k_", "k%", "k*", "K", "k?", "k[", "k\\", "k", "[k]", "%", "_", "*", ""]:
            assert store.keys(ns, prefix=prefix) == sorted(
                k for k in keys if k.startswith(prefix)
            ), prefix

    def test_tenant_and_namespace_names_that_cannot_be_stored_are_refused(
        self, root_store: Any
    ) -> None:
        for crafted in refused_names(MAX_TENANT):
            with pytest.raises(InvalidInputError):
                root_store.with_tenant(crafted).set("ns", "k", 1)
        store = root_store.with_tenant(victim_name("state"))
        for crafted in refused_names(MAX_KEY):
            with pytest.raises(InvalidInputError):
                store.set(crafted, "k", 1)
            with pytest.raises(InvalidInputError):
                store.set("ns", crafted, 1)
        assert store.keys("ns") == []


# -- checkpoint stores (tenant) -----------------------------------------------------------------
class CheckpointTenancySuite(FactorySuite):
    """Tenants of a checkpoint store are sealed, by thread name and by checkpoint id."""

    def test_no_tenant_name_or_checkpoint_id_reaches_another_tenants_checkpoints(
        self, root_store: Any
    ) -> None:
        name, thread = victim_name("ck"), victim_name("thread")
        victim = root_store.with_tenant(name)
        first = victim.save(thread, {"step": 1}, tags=["t"])
        second = victim.save(thread, {"step": 2})
        ids = [first.id, second.id]
        for crafted in hostile_names(name, max_len=MAX_TENANT):
            other = root_store.with_tenant(crafted)
            try:
                for cid in ids:
                    for call in (
                        other.get,
                        other.info,
                        other.restore,
                        lambda c, o=other: o.branch(c, "stolen"),
                    ):
                        with pytest.raises(NotFoundError):
                            call(cid)
                    assert other.delete(cid) is False, crafted
                    with pytest.raises(NotFoundError):
                        other.save("mine", {}, parent_id=cid)
                with pytest.raises(NotFoundError):
                    other.diff(first.id, second.id)
                with pytest.raises(NotFoundError):
                    other.latest(thread)
                assert other.history(thread) == [] and thread not in other.threads(), crafted
                assert not {c.id for c in other.find(tags=["t"])} & set(ids), crafted
                other.prune(thread_id=thread, keep_last=1)
                assert other.delete_thread(thread) == 0, crafted
                assert other.save(thread, {"by": crafted}).seq == 0, crafted
            finally:
                other.delete_thread(thread)
                other.delete_thread("mine")
        assert [c.id for c in victim.history(thread)] == ids[::-1]
        assert victim.get(first.id).state == {"step": 1} and victim.latest(thread).id == second.id
        victim.delete_thread(thread)

    def test_no_thread_name_reaches_another_thread(self, root_store: Any) -> None:
        store, thread = root_store.with_tenant(victim_name("ck")), victim_name("thread")
        ck = store.save(thread, {"step": 1})
        for crafted in hostile_names(thread, max_len=MAX_KEY):
            with pytest.raises(NotFoundError):
                store.latest(crafted)
            assert store.history(crafted) == [] and store.delete_thread(crafted) == 0, crafted
        assert store.threads() == [thread] and store.latest(thread).id == ck.id

    def test_crafted_tenant_and_thread_names_are_pairwise_distinct(self, root_store: Any) -> None:
        run = uuid.uuid4().hex[:8]
        tenants = crafted_set(victim_name("ck"), max_len=MAX_TENANT)
        threads = crafted_set(victim_name("thread"), max_len=MAX_KEY)
        stores = [root_store.with_tenant(n) for n in tenants]
        home = root_store.with_tenant(f"t-{run}")
        try:
            for n, st in zip(tenants, stores):
                st.save(f"th-{run}", {"by": n})
            for th in threads:
                home.save(th, {"by": th})
            for n, st in zip(tenants, stores):
                assert st.latest(f"th-{run}").state == {"by": n}, n
                assert len(st.history(f"th-{run}")) == 1, n
            for th in threads:
                assert home.latest(th).state == {"by": th} and len(home.history(th)) == 1, th
            assert sorted(home.threads()) == sorted(threads)
        finally:
            for st in stores:
                st.delete_thread(f"th-{run}")
            for th in threads:
                home.delete_thread(th)

    def test_tenant_and_thread_names_that_cannot_be_stored_are_refused(
        self, root_store: Any
    ) -> None:
        for crafted in refused_names(MAX_TENANT):
            with pytest.raises(InvalidInputError):
                root_store.with_tenant(crafted).save("th", {})
        store = root_store.with_tenant(victim_name("ck"))
        for crafted in refused_names(MAX_KEY):
            with pytest.raises(InvalidInputError):
                store.save(crafted, {})
        assert store.threads() == []


# -- agent memory (user, agent, run) ------------------------------------------------------------
class AgentMemoryTenancySuite(FactorySuite):
    """Scopes of :class:`~vecmem.agent_memory.AgentMemory` are sealed, by name and by id.

    ``store_factory`` returns a fresh, empty agent memory."""

    def test_no_scope_name_reaches_another_scopes_memories(self, root_store: Any) -> None:
        am, user = root_store, victim_name("user")
        w = am.remember(
            "the vault combination is 31-41-59", user_id=user, agent_id="a1", run_id="r1"
        )
        u = am.update(w.memory_id, "the vault combination is 27-18-28", user_id=user)
        before = (
            [dict(v.state) for v in am.versions(w.memory_id, user_id=user)],
            [c.change_id for c in am.history(w.memory_id, user_id=user)],
        )
        for field in ("user_id", "agent_id", "run_id"):
            own = {"user_id": user, "agent_id": "a1", "run_id": "r1"}[field]
            for crafted in hostile_names(own, max_len=MAX_KEY):
                scope = {field: crafted}
                for mode in ("hybrid", "vector", "keyword"):
                    hits = am.recall("vault combination", mode=mode, **scope)
                    assert all(h.memory.id != w.memory_id for h in hits), (field, crafted)
                hits = am.recall("vault combination", filter={"$or": [{field: own}]}, **scope)
                assert all(h.memory.id != w.memory_id for h in hits), (field, crafted)
                for call in (
                    am.get,
                    am.versions,
                    am.history,
                    am.forget,
                    lambda i, **s: am.update(i, "overwritten", **s),
                ):
                    with pytest.raises(NotFoundError):
                        call(w.memory_id, **scope)
                for change in (w.change_id, u.change_id):
                    with pytest.raises(NotFoundError):
                        am.undo(change, **scope)
                am.consolidate(similarity=0.0, min_group=1, **scope)
        assert (
            [dict(v.state) for v in am.versions(w.memory_id, user_id=user)],
            [c.change_id for c in am.history(w.memory_id, user_id=user)],
        ) == before
        assert [h.memory.text for h in am.recall("vault", user_id=user)] == [
            "the vault combination is 27-18-28"
        ]

    def test_crafted_scope_names_are_pairwise_distinct(self, root_store: Any) -> None:
        am = root_store
        users = crafted_set(victim_name("user"), max_len=MAX_KEY)
        written = {
            u: am.remember(f"the locker code is {i:04d}", user_id=u).memory_id
            for i, u in enumerate(users)
        }
        for i, u in enumerate(users):
            hits = am.recall("locker code", user_id=u, k=50)
            assert [(h.memory.id, h.memory.text) for h in hits] == [
                (written[u], f"the locker code is {i:04d}")
            ], u

    def test_scope_names_that_cannot_be_stored_are_refused(self, root_store: Any) -> None:
        for crafted in refused_names(MAX_KEY):
            with pytest.raises(InvalidInputError):
                root_store.remember("x", user_id=crafted)
            with pytest.raises(InvalidInputError):
                root_store.recall("x", user_id=crafted)
        with pytest.raises(InvalidInputError):
            root_store.remember("x", user_id=None, agent_id=None, run_id=None)
