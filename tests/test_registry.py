"""Registries: names, aliases, URLs, thread safety, protected built-ins, and a real plugin
package (tests/fixtures/vecmem_plugin_example) installed with pip and found by entry point."""

from __future__ import annotations

import importlib
import importlib.util
import shutil
import subprocess
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vecmem.errors import ConfigurationError
from vecmem.registry import (
    CONVERSATION_STORES,
    FILE_STORES,
    KNOWLEDGE_STORES,
    STATE_STORES,
    Registry,
)
from vecmem.testing.state import StateStoreSuite

PLUGIN = Path(__file__).parent / "fixtures" / "vecmem_plugin_example"


def _factory(*, url: str | None = None, size: int = 1) -> dict[str, Any]:
    return {"url": url, "size": size}


@pytest.fixture
def reg() -> Registry[Any]:
    return Registry("widget", entry_point_group="vecmem.tests.no_such_group")


def test_register_create_and_list(reg: Registry[Any]) -> None:
    reg.register("Plain", _factory, aliases=("basic", "simple"))
    assert reg.create("plain", size=3) == {"url": None, "size": 3}
    assert reg.create("BASIC") == {"url": None, "size": 1}
    assert reg.create("plain://somewhere") == {"url": "plain://somewhere", "size": 1}
    assert reg.create("simple+driver://x")["url"] == "simple+driver://x"
    assert reg.list_registered() == ["plain"]
    assert reg.list_aliases() == {"basic": "plain", "simple": "plain"}
    assert "basic" in reg and "nope" not in reg
    reg.unregister("basic")  # an alias names its entry
    assert reg.list_registered() == [] and reg.list_aliases() == {}


def test_unknown_names_list_what_is_available(reg: Registry[Any]) -> None:
    reg.register("alpha", _factory, aliases=("a",))
    reg.register("beta", _factory)
    with pytest.raises(ConfigurationError) as err:
        reg.create("gamma")
    assert "alpha, beta" in str(err.value) and "a -> alpha" in str(err.value)
    assert "vecmem.tests.no_such_group" in str(err.value)
    with pytest.raises(ConfigurationError, match="available: alpha, beta"):
        reg.create("gamma://x")
    with pytest.raises(ConfigurationError):
        reg.unregister("gamma")


def test_duplicates_need_replace(reg: Registry[Any]) -> None:
    reg.register("x", _factory, aliases=("y",))
    with pytest.raises(ConfigurationError, match="already registered"):
        reg.register("x", lambda **kw: "new")
    with pytest.raises(ConfigurationError, match="already registered"):
        reg.register("z", lambda **kw: "new", aliases=("y",))
    reg.register("x", lambda *, url=None: "new", replace=True)
    assert reg.create("x") == "new"
    assert "y" not in reg  # the replaced entry's aliases went with it
    with pytest.raises(ConfigurationError):
        reg.register("bad://name", _factory)
    with pytest.raises(ConfigurationError):
        reg.register("notcallable", 3)  # type: ignore[arg-type]


def test_wrong_options_are_a_configuration_error(reg: Registry[Any]) -> None:
    reg.register("x", _factory)
    with pytest.raises(ConfigurationError, match="unexpected keyword"):
        reg.create("x", colour="red")


def test_builtins_cannot_be_replaced_silently() -> None:
    for registry in (STATE_STORES, CONVERSATION_STORES, FILE_STORES, KNOWLEDGE_STORES):
        with pytest.raises(ConfigurationError, match="built-in"):
            registry.register("memory", _factory)
        with pytest.raises(ConfigurationError, match="built-in"):
            registry.register("memory", _factory, replace=True)
        with pytest.raises(ConfigurationError, match="built-in"):
            registry.register("mine", _factory, aliases=("postgresql",))
        assert "mine" not in registry


def test_builtin_names_and_urls() -> None:
    assert {"memory", "sqlite", "postgres", "mysql", "redis"} <= set(STATE_STORES.list_registered())
    assert {"memory", "file", "sqlite", "postgres", "mysql"} <= set(
        CONVERSATION_STORES.list_registered()
    )
    assert {"memory", "sqlite", "postgres", "mysql", "disk", "redis"} <= set(
        FILE_STORES.list_registered()
    )
    assert STATE_STORES.list_aliases()["postgresql"] == "postgres"
    assert FILE_STORES.list_aliases()["file"] == "disk"
    assert type(STATE_STORES.create("memory://", tenant="a")).__name__ == "MemoryStateStore"
    for registry in (STATE_STORES, CONVERSATION_STORES, FILE_STORES):
        with pytest.raises(ConfigurationError, match="needs url"):
            registry.create("postgres")


def test_sqlite_urls_share_one_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/all.db"
    state = STATE_STORES.create(url, tenant="t")
    conv = CONVERSATION_STORES.create(url, tenant="t")
    kb = FILE_STORES.create(url, tenant="t")
    state.set("ns", "k", 1)
    kb.write("/a", "x")
    from vecmem.conversations import Message

    conv.add_messages("u", "s", [Message("user", "hi")])
    import sqlalchemy as sa

    names = set(sa.inspect(sa.create_engine(url)).get_table_names())
    assert {"vecmem_schema", "vecmem_state", "vecmem_conv_messages", "vecmem_kfs_files"} <= names
    for s in (state, conv, kb):
        s.close()


def test_registry_is_thread_safe(reg: Registry[Any]) -> None:
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for i in range(50):
                reg.register(f"n{k}-{i}", _factory, aliases=(f"a{k}-{i}",))
                assert reg.create(f"a{k}-{i}", size=i)["size"] == i
                reg.list_aliases()
            reg.list_registered()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(reg.list_registered()) == 300


def test_importing_the_registries_loads_no_database_driver() -> None:
    code = (
        "import sys, vecmem.registry, vecmem.state, vecmem.conversations, "
        "vecmem.knowledge_fs, vecmem.checkpoints; "
        "print(sorted(m for m in ('sqlalchemy', 'redis', 'psycopg', 'pymysql', 'watchdog', "
        "'zstandard', 'cryptography') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]"


# -- a real plugin package ------------------------------------------------------------------
@pytest.fixture(scope="module")
def plugin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """pip-install the example plugin into a private target folder put on sys.path."""
    work = tmp_path_factory.mktemp("plugin")
    src = work / "src"
    shutil.copytree(PLUGIN, src, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    target = work / "site"
    offline = ["--no-index", "--no-build-isolation"]  # build with this venv's setuptools
    if importlib.util.find_spec("setuptools") is None:  # (Python >= 3.12 venvs lack it)
        offline = []
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            *offline,
            "--disable-pip-version-check",
            "--target",
            str(target),
            str(src),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert list(target.glob("vecmem_plugin_example-*.dist-info"))
    sys.path.insert(0, str(target))
    importlib.invalidate_caches()
    try:
        yield target
    finally:
        for registry, names in (
            (STATE_STORES, ["example"]),
            (FILE_STORES, ["example"]),
            (CONVERSATION_STORES, ["example", "broken"]),
        ):
            for name in names:
                if name in registry:
                    registry.unregister(name)
        sys.path.remove(str(target))
        sys.modules.pop("vecmem_plugin_example", None)
        importlib.invalidate_caches()


def test_plugin_is_found_by_entry_point_and_created_by_name(plugin: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        store = STATE_STORES.create("example", tenant="acme")
        kb = FILE_STORES.create("example", greeting="bonjour")
        conv = CONVERSATION_STORES.create("example")
        knowledge_names = FILE_STORES.list_registered()
    assert type(store).__name__ == "ExampleStateStore" and store.tenant == "acme"
    assert store.set("ns", "k", 1) == 1
    assert kb.read("/README") == b"bonjour"
    assert conv.plugin == "vecmem-plugin-example"
    assert "example" in STATE_STORES.list_registered() and "example" in knowledge_names
    by_url = STATE_STORES.create("example://anything")
    assert by_url.url == "example://anything"
    # the plugin's claim on the built-in name "memory" is refused, with a warning
    assert any("memory" in str(w.message) and "built-in" in str(w.message) for w in caught)
    assert type(FILE_STORES.create("memory")).__name__ == "MemoryKnowledgeStore"


def test_broken_plugin_fails_when_created_not_when_listed(plugin: Path) -> None:
    assert "broken" in CONVERSATION_STORES.list_registered()
    with pytest.raises(ConfigurationError, match="cannot load conversation store plugin"):
        CONVERSATION_STORES.create("broken")
    assert type(CONVERSATION_STORES.create("memory")).__name__ == "MemoryConversationStore"


class TestPluginStatePassesTheSuite(StateStoreSuite):
    @pytest.fixture
    def store_factory(self, plugin: Path) -> Any:
        return lambda: STATE_STORES.create("example")
