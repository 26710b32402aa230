"""Bootstrapping a knowledge store: a starting layout written once, before an actor first runs.

AG2 (``ag2.knowledge``) gives each agent a store and, the first time the agent runs, writes a
sentinel ``/.initialized`` holding the agent's name and then calls its bootstrap, which for
``DefaultBootstrap`` lays out ``/log/``, ``/artifacts/`` and ``/memory/`` with a ``SKILL.md`` in
each directory telling the model what the directory is for. vecmem does the same with the same
sentinel and the same texts, so a store bootstrapped here is not bootstrapped again by AG2 and
vice versa.

* :class:`Bootstrap`: the protocol, ``bootstrap(store, actor)``; write your own for a custom
  layout, or use :class:`LayoutBootstrap` with a ``{path: text}`` mapping.
* :func:`bootstrap_once`: runs a bootstrap unless the store already has its sentinel. The claim
  is an atomic ``append`` (offset 0 wins), so of several processes starting the same actor at
  once exactly one bootstraps; a bootstrap that raises removes the sentinel so the next run
  tries again.

One store (tenant) per actor, as in AG2: ``bootstrap_once(kb.with_tenant(actor), actor)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from vecmem.errors import InvalidInputError
from vecmem.knowledge_fs.base import KnowledgeStore
from vecmem.knowledge_fs.paths import file_path

SENTINEL = "/.initialized"
"""AG2's sentinel file: present once a store has been bootstrapped; holds the actor's name."""

MAX_ACTOR = 255


def check_actor(actor: object) -> str:
    """An actor name: a non-empty string of at most 255 characters on one line."""
    if not isinstance(actor, str) or not actor.strip():
        raise InvalidInputError(f"actor must be a non-empty string, got {actor!r}")
    if len(actor) > MAX_ACTOR or any(c in actor for c in "\n\r\x00"):
        raise InvalidInputError(
            f"actor must be one line of at most {MAX_ACTOR} characters without NUL: {actor!r}"
        )
    return actor


@runtime_checkable
class Bootstrap(Protocol):
    """Writes a store's starting layout for ``actor`` (called once per store)."""

    def bootstrap(self, store: KnowledgeStore, actor: str) -> None: ...


class DefaultBootstrap:
    """AG2's standard layout: ``/SKILL.md`` naming the actor, and a ``SKILL.md`` in ``/log/``,
    ``/artifacts/`` and ``/memory/`` (texts as in ``ag2.knowledge.DefaultBootstrap``).

    ``mention_tool=False`` leaves out the sentence that points the model to the ``knowledge``
    tool (for stores not exposed to it as a tool).

    >>> from vecmem.knowledge_fs import MemoryKnowledgeStore
    >>> kb = MemoryKnowledgeStore()
    >>> bootstrap_once(kb, "alice"), bootstrap_once(kb, "alice")
    (True, False)
    >>> kb.list("/")
    ['.initialized', 'SKILL.md', 'artifacts/', 'log/', 'memory/']
    """

    def __init__(self, *, mention_tool: bool = True) -> None:
        self.mention_tool = mention_tool

    def files(self, actor: str) -> dict[str, str]:
        """The files this bootstrap writes, path to text."""
        if self.mention_tool:
            intro = (
                "This is your persistent knowledge store. Use the `knowledge` tool to manage it."
            )
        else:
            intro = (
                "This is the agent's persistent knowledge store. "
                "It is read and written by framework policies and "
                "aggregation strategies — there is no tool exposed to "
                "the model for direct access."
            )
        return {
            "/SKILL.md": f"# {actor} Knowledge Store\n\n{intro}\n\n## Directories\n"
            "- `/log/` -- Conversation history (auto-managed)\n"
            "- `/artifacts/` -- External files and data\n"
            "- `/memory/` -- Working memory and summaries (auto-managed)\n",
            "/log/SKILL.md": "Conversation logs. Each file is a JSONL record of one "
            "conversation's events. Auto-populated by the framework after each conversation.",
            "/artifacts/SKILL.md": "External data: uploaded files, downloaded content, reference "
            "materials. Write here to store data you want to reference later.",
            "/memory/SKILL.md": "Working memory and conversation summaries. `working.md` "
            "contains your current persistent state. `conversations/` contains "
            "per-conversation summaries. Both are auto-updated by aggregation strategies.",
        }

    def bootstrap(self, store: KnowledgeStore, actor: str) -> None:
        for path, text in self.files(check_actor(actor)).items():
            store.write(path, text)


class LayoutBootstrap:
    """A custom layout from a ``{path: text}`` mapping; ``{actor}`` in a text is replaced by
    the actor's name (other braces are left as they are).

    >>> from vecmem.knowledge_fs import MemoryKnowledgeStore
    >>> layout = LayoutBootstrap({"/SKILL.md": "# {actor}", "/plans/SKILL.md": "Plans."})
    >>> kb = MemoryKnowledgeStore()
    >>> bootstrap_once(kb, "bob", bootstrap=layout)
    True
    >>> kb.read("/SKILL.md"), kb.list("/")
    (b'# bob', ['.initialized', 'SKILL.md', 'plans/'])
    """

    def __init__(self, files: Mapping[str, str]) -> None:
        if not isinstance(files, Mapping) or not files:
            raise InvalidInputError("files must be a non-empty mapping of path to text")
        checked: dict[str, str] = {}
        for path, text in files.items():
            if not isinstance(text, str):
                raise InvalidInputError(f"the text of {path!r} must be a str")
            checked[file_path(path)] = text
        if SENTINEL in checked:
            raise InvalidInputError(f"{SENTINEL} is the bootstrap's own sentinel")
        self.files = checked

    def bootstrap(self, store: KnowledgeStore, actor: str) -> None:
        actor = check_actor(actor)
        for path, text in self.files.items():
            store.write(path, text.replace("{actor}", actor))


def bootstrap_once(
    store: KnowledgeStore, actor: str, *, bootstrap: Bootstrap | None = None
) -> bool:
    """Bootstrap ``store`` for ``actor`` unless it already was; True if this call did it.

    ``bootstrap`` defaults to :class:`DefaultBootstrap`. Of concurrent callers (threads or
    processes on a shared backend) exactly one runs the bootstrap; the others return False
    at once, possibly before the layout is complete.
    """
    actor = check_actor(actor)
    layout = bootstrap if bootstrap is not None else DefaultBootstrap()
    if not isinstance(layout, Bootstrap):
        raise InvalidInputError(
            f"bootstrap must have a bootstrap(store, actor) method, got {type(layout).__name__}"
        )
    if store.exists(SENTINEL):
        return False
    if store.append(SENTINEL, actor) != 0:  # another caller claimed it first
        return False
    try:
        layout.bootstrap(store, actor)
    except BaseException:
        store.delete(SENTINEL)  # let the next run try again
        raise
    return True
