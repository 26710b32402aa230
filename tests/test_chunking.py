"""Chunkers: every chunk fits, the text is covered in order, overlap is carried; by characters
and by tokens of the real embedder's tokenizer; sentence and Markdown splitting."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vecmem.chunking import MarkdownSplitter, RecursiveSplitter, SentenceSplitter, split_sentences
from vecmem.errors import ConfigurationError

_W = re.compile(r"\w+")


def spans(text: str, chunks: list[str]) -> list[tuple[int, int]]:
    """Where each chunk's words sit in the text's word sequence: each chunk must be a contiguous
    run starting after the previous chunk's start (with repeated words, the placement that
    continues furthest from the previous chunk's end is taken)."""
    words = _W.findall(text)
    out: list[tuple[int, int]] = []
    prev_start, prev_end = -1, 0
    for c in chunks:
        cw = _W.findall(c)
        assert cw, f"empty chunk {c!r}"
        found = [
            p
            for p in range(prev_start + 1, len(words) - len(cw) + 1)
            if words[p : p + len(cw)] == cw
        ]
        assert found, f"chunk {c!r} is not a run of the text's words after #{prev_start}"
        within = [p for p in found if p <= prev_end]
        p = max(within) if within else found[0]
        out.append((p, p + len(cw)))
        prev_start, prev_end = p, p + len(cw)
    return out


def assert_covers(text: str, chunks: list[str]) -> list[tuple[int, int]]:
    s = spans(text, chunks)
    n = len(_W.findall(text))
    covered = set()
    for a, b in s:
        covered |= set(range(a, b))
    assert covered == set(range(n)), f"words {sorted(set(range(n)) - covered)[:5]} lost"
    return s


_word = st.text(alphabet="abcdefghij", min_size=1, max_size=8)
_sentence = st.lists(_word, min_size=1, max_size=12).map(lambda ws: " ".join(ws) + ".")
_paragraph = st.lists(_sentence, min_size=1, max_size=5).map(" ".join)
_document = st.lists(_paragraph, min_size=1, max_size=5).map("\n\n".join)


@settings(max_examples=200, deadline=None)
@given(text=_document, size=st.integers(20, 300), ratio=st.floats(0, 0.45))
def test_recursive_by_chars_fits_and_covers(text: str, size: int, ratio: float) -> None:
    overlap = int(size * ratio)
    chunks = RecursiveSplitter(size, overlap).split(text)
    assert chunks
    assert all(len(c) <= size for c in chunks)
    assert all(c == c.strip() for c in chunks)
    assert_covers(text, chunks)


@settings(max_examples=150, deadline=None)
@given(
    words=st.lists(_word, min_size=1, max_size=120),
    size=st.integers(40, 200),
    overlap=st.integers(8, 19),
)
def test_recursive_overlap_is_carried(words: list[str], size: int, overlap: int) -> None:
    """Consecutive chunks share their boundary words (at most ``overlap`` characters)."""
    text = " ".join(words)
    chunks = RecursiveSplitter(size, overlap).split(text)
    s = assert_covers(text, chunks)
    for (_a1, b1), (a2, _b2), c2 in zip(s, s[1:], chunks[1:]):
        assert a2 < b1, "no overlap between consecutive chunks"
        shared = " ".join(_W.findall(text)[a2:b1])
        assert c2.startswith(shared) and len(shared) <= overlap


def test_no_overlap_means_disjoint_chunks() -> None:
    text = " ".join(f"w{i}" for i in range(200))
    s = assert_covers(text, RecursiveSplitter(50, 0).split(text))
    assert all(a2 == b1 for (_, b1), (a2, _) in zip(s, s[1:]))


def test_prefers_paragraph_then_sentence_boundaries() -> None:
    para1 = "First paragraph sentence one. Sentence two is here."
    para2 = "Second paragraph. It has two sentences."
    chunks = RecursiveSplitter(60, 0).split(f"{para1}\n\n{para2}")
    assert chunks == [para1, para2]


def test_a_word_longer_than_the_size_is_cut() -> None:
    chunks = RecursiveSplitter(10, 2).split("x" * 35)
    assert all(len(c) <= 10 for c in chunks)
    assert "".join(c[2:] if i else c for i, c in enumerate(chunks)) == "x" * 35


def test_empty_text_gives_no_chunks() -> None:
    assert RecursiveSplitter(10, 0).split("   \n ") == []


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(chunk_size=0),
        dict(chunk_size=10, chunk_overlap=10),
        dict(chunk_overlap=-1),
        dict(unit="words"),
        dict(unit="tokens"),
    ],
)
def test_bad_settings_raise(kwargs: dict) -> None:
    with pytest.raises(ConfigurationError):
        RecursiveSplitter(**kwargs)


@pytest.mark.slow
def test_recursive_by_tokens_of_the_embedders_tokenizer() -> None:
    """unit='tokens' measures with the model's own tokenizer: every chunk fits the budget, the
    text is covered and consecutive chunks overlap."""
    from vecmem.testing.congruence import real_embedder

    emb = real_embedder()
    count = emb.count_tokens
    text = " ".join(
        f"in cohort {i} vaccination induced antibodies, aluminium hydroxide adjuvants potentiated "
        f"immunogenicity and monoclonal pharmacokinetics differed from small molecules;"
        for i in range(12)
    )
    size, overlap = 48, 12
    chunks = RecursiveSplitter(size, overlap, unit="tokens", length=count).split(text)
    assert len(chunks) > 3
    assert all(count(c) <= size for c in chunks)
    assert max(count(c) for c in chunks) > size // 2  # packed, not one word per chunk
    s = assert_covers(text, chunks)
    assert any(a2 < b1 for (_, b1), (a2, _) in zip(s, s[1:]))
    # characters would be a different budget: the same text by chars gives other chunks
    assert RecursiveSplitter(size, overlap).split(text) != chunks


# ----------------------------------------------------------------------------- sentences
def test_split_sentences() -> None:
    text = 'He said "stop." Then left! Really? Yes… 終わり。次の文。 Done (truly.) End'
    assert split_sentences(text) == [
        'He said "stop."',
        "Then left!",
        "Really?",
        "Yes…",
        "終わり。次の文。",
        "Done (truly.)",
        "End",
    ]
    assert split_sentences("  one.two three  ") == ["one.two three"]


@settings(max_examples=100, deadline=None)
@given(sentences=st.lists(_sentence, min_size=1, max_size=30), size=st.integers(60, 300))
def test_sentence_splitter_keeps_whole_sentences(sentences: list[str], size: int) -> None:
    text = " ".join(sentences)
    chunks = SentenceSplitter(size).split(text)
    assert all(len(c) <= size for c in chunks)
    assert_covers(text, chunks)
    if all(len(s) <= size for s in sentences):
        assert all(c.endswith(".") for c in chunks)  # no sentence is cut


def test_sentence_overlap() -> None:
    text = "One two three. Four five six. Seven eight nine. Ten eleven twelve."
    chunks = SentenceSplitter(36, overlap_sentences=1).split(text)
    assert chunks == [
        "One two three. Four five six.",
        "Four five six. Seven eight nine.",
        "Seven eight nine. Ten eleven twelve.",
    ]


# ----------------------------------------------------------------------------- markdown
def test_markdown_splits_at_headings_and_keeps_them() -> None:
    md = "# Title\nIntro line.\n\n## Install\npip install vecmem\n\n## Use\nCall search.\n"
    assert MarkdownSplitter(200, 0).split(md) == [
        "# Title\nIntro line.",
        "## Install\npip install vecmem",
        "## Use\nCall search.",
    ]


def test_markdown_does_not_split_inside_code_fences() -> None:
    md = "# A\ntext\n```python\n# a comment, not a heading\nx = 1\n```\nafter\n# B\nbody"
    chunks = MarkdownSplitter(500, 0).split(md)
    assert len(chunks) == 2 and "# a comment, not a heading" in chunks[0]
    assert chunks[1] == "# B\nbody"


def test_markdown_long_section_is_split_further() -> None:
    body = " ".join(f"word{i}" for i in range(100))
    chunks = MarkdownSplitter(120, 20).split(f"# Head\n{body}\n# Next\nshort")
    assert all(len(c) <= 120 for c in chunks)
    assert chunks[0].startswith("# Head") and chunks[-1] == "# Next\nshort"
    assert_covers(f"# Head\n{body}\n# Next\nshort", chunks)
