"""The keyword leg's tokenizer: what it does to text, and that a store keeps the one it was built
with (its spec is recorded in the store's embedding space), so a keyword index is never queried
or extended with other tokens than it holds."""

from __future__ import annotations

from pathlib import Path

import pytest
from _fixtures import CountingEmbedder

from vecmem import VectorMemory
from vecmem.errors import ConfigurationError, EmbeddingSpaceMismatchError
from vecmem.stores.embedded import EmbeddedStore
from vecmem.tokenize import LUCENE_ENGLISH_STOP_WORDS, DefaultTokenizer, get_tokenizer


def test_default_stems_and_drops_lucene_stop_words() -> None:
    """Stemming is worth 0.03 nDCG@10 to the keyword leg on SciFact and NFCorpus (BENCHMARKS.md
    "fusion-levers-more"): plural, verb forms and case meet on one term."""
    tok = DefaultTokenizer()
    assert tok("The Vaccines are working") == ["vaccin", "work"]
    assert tok("vaccine vaccinated VACCINES") == ["vaccin", "vaccin", "vaccin"]
    assert tok("COVID-19 in 2020: IL-6 levels") == ["covid", "19", "2020", "il", "6", "level"]
    assert not set(tok(" ".join(sorted(LUCENE_ENGLISH_STOP_WORDS))))
    assert tok.spec == "default(stem=english,stop=lucene)"


@pytest.mark.parametrize(
    "tok",
    [DefaultTokenizer(), DefaultTokenizer(stem=None), DefaultTokenizer(stopwords=())],
    ids=["default", "no stemming", "no stop words"],
)
def test_a_recorded_spec_rebuilds_the_same_tokenizer(tok: DefaultTokenizer) -> None:
    again = get_tokenizer(tok.spec)
    assert again.spec == tok.spec
    text = "The vaccines are working against COVID-19"
    assert again(text) == tok(text)


def test_a_spec_that_cannot_be_rebuilt_is_a_configuration_error() -> None:
    custom = DefaultTokenizer(stopwords={"the"})
    with pytest.raises(ConfigurationError, match="pass the tokenizer object"):
        get_tokenizer(custom.spec)
    with pytest.raises(ConfigurationError, match="no stemmer"):
        DefaultTokenizer(stem="klingon")("text")


def test_a_store_refuses_another_tokenizer_and_keeps_its_own(tmp_path: Path) -> None:
    """A store built without stemming is not extended or searched with stemmed tokens: opening
    it with another tokenizer raises before anything is written, and it still answers with its
    own tokenizer afterwards."""
    plain = DefaultTokenizer(stem=None, stopwords=())
    mem = VectorMemory(
        EmbeddedStore(tmp_path / "kb"), embedder=CountingEmbedder(16), tokenizer=plain
    )
    mem.add(["the vaccines are working", "a quiet garden"], ids=["v", "g"])
    mem.close()

    other = VectorMemory(EmbeddedStore(tmp_path / "kb"), embedder=CountingEmbedder(16))
    with pytest.raises(EmbeddingSpaceMismatchError, match="tokenizer"):
        other.add(["vaccinated people"], ids=["x"])
    with pytest.raises(EmbeddingSpaceMismatchError, match="tokenizer"):
        other.search("vaccines", mode="keyword")
    other.close()

    again = VectorMemory(
        EmbeddedStore(tmp_path / "kb"), embedder=CountingEmbedder(16), tokenizer=plain
    )
    assert again.count() == 2
    assert [h.document_id for h in again.search("vaccines", mode="keyword")] == ["v"]
    assert again.search("vaccine", mode="keyword") == []  # unstemmed, as it was built
    again.close()
