"""Splitting documents into chunks.

* :class:`RecursiveSplitter` -- tries paragraph, line, sentence, word boundaries in turn, with
  overlap; measures length in characters or in tokens of the embedder's tokenizer.
* :class:`SentenceSplitter` -- packs whole sentences up to the size.
* :class:`MarkdownSplitter` -- splits at headings first, then recursively.
* :func:`split_elements` -- a loaded file's structure (pages, slides, sheets, sections, tables)
  first, then any chunker inside each part.

A chunker has a ``spec`` string recorded in the store, and ``split(text) -> list[str]``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from vecmem.errors import ConfigurationError
from vecmem.types import Element

LengthFn = Callable[[str], int]


@runtime_checkable
class Chunker(Protocol):
    spec: str

    def split(self, text: str) -> list[str]: ...


_SENTENCE_END = re.compile(r"[.!?…。！？][\"')\]]*(\s+)(?=\S)")


def split_sentences(text: str) -> list[str]:
    """Split after ``. ! ? …`` (and closing quotes/brackets, which stay with their sentence)
    followed by whitespace."""
    text = text.strip()
    parts: list[str] = []
    start = 0
    for m in _SENTENCE_END.finditer(text):
        parts.append(text[start : m.start(1)])
        start = m.end(1)
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def _merge(pieces: Sequence[str], sep: str, size: int, overlap: int, length: LengthFn) -> list[str]:
    """Greedily pack pieces (each <= size) into chunks <= size, carrying ``overlap`` worth of
    trailing pieces into the next chunk."""
    out: list[str] = []
    window: list[str] = []
    total = 0
    sep_len = length(sep) if sep else 0
    for piece in pieces:
        plen = length(piece)
        if window and total + sep_len + plen > size:
            out.append(sep.join(window))
            while window and (total > overlap or total + sep_len + plen > size):
                total -= length(window[0]) + (sep_len if len(window) > 1 else 0)
                window.pop(0)
        total += plen + (sep_len if window else 0)
        window.append(piece)
    if window:
        out.append(sep.join(window))
    return out


class RecursiveSplitter:
    """Recursive splitting on ``separators`` until every chunk fits ``chunk_size``.

    ``unit="chars"`` measures characters; ``unit="tokens"`` needs ``length`` (for example
    ``embedder.count_tokens``) and measures tokens of that tokenizer.

    >>> RecursiveSplitter(chunk_size=20, chunk_overlap=0).split("aaaa bbbb cccc dddd eeee ffff")
    ['aaaa bbbb cccc dddd', 'eeee ffff']
    """

    def __init__(
        self,
        chunk_size: int = 1000,
        chunk_overlap: int = 100,
        *,
        separators: Sequence[str] = ("\n\n", "\n", ". ", " ", ""),
        unit: str = "chars",
        length: LengthFn | None = None,
    ) -> None:
        if chunk_size <= 0:
            raise ConfigurationError(f"chunk_size must be > 0, got {chunk_size}")
        if not 0 <= chunk_overlap < chunk_size:
            raise ConfigurationError("chunk_overlap must be >= 0 and < chunk_size")
        if unit not in ("chars", "tokens"):
            raise ConfigurationError(f"unit must be 'chars' or 'tokens', not {unit!r}")
        if unit == "tokens" and length is None:
            raise ConfigurationError(
                "unit='tokens' needs a length function, e.g. embedder.count_tokens"
            )
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap
        self.separators = tuple(separators)
        self.length: LengthFn = length or len
        self.spec = f"recursive(size={chunk_size},overlap={chunk_overlap},unit={unit})"

    def split(self, text: str) -> list[str]:
        text = text.strip()
        if not text:
            return []
        return [c.strip() for c in self._split(text, self.separators) if c.strip()]

    def _split(self, text: str, separators: Sequence[str]) -> list[str]:
        if self.length(text) <= self.chunk_size:
            return [text]
        for i, sep in enumerate(separators):
            if sep == "":
                return self._hard_split(text)
            if sep in text:
                # a separator's visible part (the "." of ". ") stays with the text before it
                keep = sep.rstrip()
                joiner = sep[len(keep) :] if keep else sep
                parts = text.split(sep)
                parts = [p + keep for p in parts[:-1]] + parts[-1:]
                pieces: list[str] = []
                for part in parts:
                    if not part.strip():
                        continue
                    if self.length(part) > self.chunk_size:
                        pieces.extend(self._split(part, separators[i + 1 :]))
                    else:
                        pieces.append(part)
                return _merge(pieces, joiner, self.chunk_size, self.chunk_overlap, self.length)
        return self._hard_split(text)

    def _hard_split(self, text: str) -> list[str]:
        """Cut by characters when no separator helps (binary search for token lengths)."""
        out: list[str] = []
        start = 0
        step = self.chunk_size - self.chunk_overlap
        while start < len(text):
            end = min(len(text), start + self.chunk_size)
            while end > start + 1 and self.length(text[start:end]) > self.chunk_size:
                end = start + max(1, (end - start) * 3 // 4)
            out.append(text[start:end])
            if end >= len(text):
                break
            start = max(start + 1, end - (self.chunk_overlap if step > 0 else 0))
        return out


class SentenceSplitter:
    """Packs whole sentences into chunks of at most ``chunk_size`` (a longer sentence is split
    recursively), with ``overlap_sentences`` carried over.

    >>> SentenceSplitter(chunk_size=30).split("One two. Three four five. Six seven eight nine.")
    ['One two. Three four five.', 'Six seven eight nine.']
    """

    def __init__(
        self, chunk_size: int = 1000, *, overlap_sentences: int = 0, length: LengthFn | None = None
    ) -> None:
        if chunk_size <= 0:
            raise ConfigurationError("chunk_size must be > 0")
        self.chunk_size = chunk_size
        self.overlap_sentences = overlap_sentences
        self.length: LengthFn = length or len
        self._fallback = RecursiveSplitter(
            chunk_size, 0, length=self.length, unit="tokens" if length else "chars"
        )
        self.spec = f"sentence(size={chunk_size},overlap={overlap_sentences})"

    def split(self, text: str) -> list[str]:
        sentences: list[str] = []
        for s in split_sentences(text):
            sentences.extend(self._fallback.split(s) if self.length(s) > self.chunk_size else [s])
        out: list[str] = []
        window: list[str] = []
        for s in sentences:
            if window and self.length(" ".join([*window, s])) > self.chunk_size:
                out.append(" ".join(window))
                window = window[-self.overlap_sentences :] if self.overlap_sentences else []
                while window and self.length(" ".join([*window, s])) > self.chunk_size:
                    window.pop(0)
            window.append(s)
        if window:
            out.append(" ".join(window))
        return out


_HEADING = re.compile(r"^(#{1,6})\s+\S", re.MULTILINE)


class MarkdownSplitter:
    """Splits Markdown at headings, keeping each section's heading with its body, then splits
    long sections recursively. Code fences are never split at a ``#`` line inside them.

    >>> MarkdownSplitter(chunk_size=200).split("# A\\nalpha\\n\\n## B\\nbeta")
    ['# A\\nalpha', '## B\\nbeta']
    """

    def __init__(
        self, chunk_size: int = 1000, chunk_overlap: int = 100, *, length: LengthFn | None = None
    ) -> None:
        self._inner = RecursiveSplitter(
            chunk_size, chunk_overlap, length=length, unit="tokens" if length else "chars"
        )
        self.spec = f"markdown(size={chunk_size},overlap={chunk_overlap})"

    def split(self, text: str) -> list[str]:
        sections: list[str] = []
        current: list[str] = []
        fenced = False
        for line in text.splitlines():
            if line.lstrip().startswith("```"):
                fenced = not fenced
            if not fenced and _HEADING.match(line) and any(x.strip() for x in current):
                sections.append("\n".join(current))
                current = []
            current.append(line)
        if any(x.strip() for x in current):
            sections.append("\n".join(current))
        return [c for s in sections for c in self._inner.split(s)]


def _part_key(e: Element) -> tuple[Any, ...]:
    return (e.record, e.page, e.slide, e.sheet, e.heading)


def split_elements(
    elements: Sequence[Element], chunker: Chunker
) -> list[tuple[str, dict[str, Any]]]:
    """Chunks of a loaded file as ``(text, location metadata)``: no chunk crosses a page, slide,
    sheet, section (heading path) or record, and a table is chunked alone, at row boundaries
    when ``chunker`` splits on lines (the recursive splitters do), with its first row (the
    header) repeated at the top of each later chunk.

    >>> parts = split_elements([Element("Intro", kind="heading", page=1, heading=("Intro",)),
    ...                         Element("Hello there.", page=1, heading=("Intro",)),
    ...                         Element("Next page.", page=2, heading=("Intro",))],
    ...                        RecursiveSplitter(100, 0))
    >>> [(t, m["page"]) for t, m in parts]
    [('Intro\\n\\nHello there.', 1), ('Next page.', 2)]
    """
    out: list[tuple[str, dict[str, Any]]] = []
    run: list[Element] = []
    titles: list[str] = []  # headings with no body of their own, carried into the next part

    def emit(pieces: list[str], where: dict[str, Any]) -> None:
        if titles and pieces:  # a heading is no chunk of its own: it leads the first one
            pieces[0] = "\n\n".join([*titles, pieces[0]])
            titles.clear()
        out.extend((piece, where) for piece in pieces)

    def flush(*, last: bool = False) -> None:
        lead = 0
        while lead < len(run) and run[lead].kind == "heading":
            lead += 1
        titles.extend(e.text.strip() for e in run[:lead])
        body = "\n\n".join(e.text.strip() for e in run[lead:])
        if body:
            emit(chunker.split(body), run[-1].location())
        elif last and titles:
            out.append(("\n\n".join(titles), run[-1].location() if run else {}))
            titles.clear()
        run.clear()

    for e in elements:
        if not e.text.strip():
            continue
        if e.kind == "table":
            flush()
            header = e.text.strip().split("\n", 1)[0]
            pieces = chunker.split(e.text)
            emit(
                [
                    p if i == 0 or p.startswith(header) else f"{header}\n{p}"
                    for i, p in enumerate(pieces)
                ],
                e.location(),
            )
            continue
        if run and _part_key(run[0]) != _part_key(e):
            flush()
        run.append(e)
    flush(last=True)
    return out
