"""The model interface (load, ready, infer) and the text-classification model built on it."""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod

import numpy as np

from .modeldir import ModelFiles
from .tokenization import Encoded, TextEncoder, pad_batch, plan_groups

log = logging.getLogger("kubeforge.serve")

# Texts for warm-up and for load-time checks of derived models (int8): varied length, topic and sentiment.
SAMPLE_TEXTS = (
    "The movie was wonderful, I loved every minute of it.",
    "Terrible service, the food was cold and the waiter was rude.",
    "It is raining in Berlin today.",
    "The quarterly report shows revenue grew by twelve percent.",
    "I am not sure whether I like this new phone or not.",
    "Absolutely the worst purchase I have ever made.",
    "What a fantastic performance by the whole team!",
    "The train was delayed by forty minutes again this morning.",
    "Kubernetes schedules pods onto nodes with enough free resources.",
    "She smiled, but her eyes told a different story.",
    "Nothing special, an average product at an average price.",
    "This is the best day of my life.",
    "ok",
    "The committee will meet on Tuesday to discuss the budget for next year and the hiring plan.",
    "I would not recommend this hotel to anyone.",
    "Great value, fast shipping, would buy again.",
)


class Backend(ABC):
    """One runtime executing the classifier graph: padded int64 token arrays in, logits [batch, labels] out."""

    runtime = "abstract"
    # Fixed cost of one model call, in padded-token slots: how eagerly a batch is split by length
    # (see tokenization.plan_groups). Accelerators: calls are dear, padding cheap; never split.
    call_cost_tokens = 10**9
    # A lone request of at most this many tokens may run on the event-loop thread (see batcher.py): only
    # where a small call is short and thread-agnostic (CPU). 0: always on the inference thread.
    inline_max_tokens = 0

    def __init__(self) -> None:
        self.ready = False

    @abstractmethod
    def load(self, samples: list[dict[str, np.ndarray]] | None = None) -> None:
        """Build or open the runtime's session; samples are padded batches for load-time checks."""

    @abstractmethod
    def infer(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """Run one padded batch; called from the single inference thread only."""

    def describe(self) -> dict:
        """What /v2/models/{name} reports about the resolved runtime."""
        return {"runtime": self.runtime}


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)  # no overflow for large logits
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


class TextClassificationModel:
    """Tokenizer + backend + label names: texts in, per-label probabilities out."""

    def __init__(self, name: str, files: ModelFiles, backend: Backend, max_seq_length: int | None = None,
                 notes: dict | None = None):
        self.name = name
        self.notes = notes or {}
        self.files = files
        self.backend = backend
        self.labels = files.labels
        self.max_seq_length = max_seq_length or files.max_seq_length
        self.encoder: TextEncoder | None = None
        self.load_seconds = 0.0
        self.ready = False

    def load(self, warmup_batch_size: int = 1) -> None:
        """Load tokenizer and backend, then run a warm-up inference: ready means the first request is fast."""
        start = time.perf_counter()
        self.encoder = TextEncoder(self.files.tokenizer_dir, self.max_seq_length)
        samples = [pad_batch(self.encoder.encode(list(SAMPLE_TEXTS[i:i + 4]), truncate=True), self.encoder.pad_id)
                   for i in range(0, len(SAMPLE_TEXTS), 4)]
        self.backend.load(samples)
        for size in sorted({1, warmup_batch_size}):
            texts = [SAMPLE_TEXTS[i % len(SAMPLE_TEXTS)] for i in range(size)]
            probs = self.infer(self.encoder.encode(texts, truncate=True))
            if probs.shape != (size, len(self.labels)):
                raise ValueError(f"model returned shape {probs.shape}; expected ({size}, {len(self.labels)} labels)")
        self.load_seconds = time.perf_counter() - start
        self.ready = True
        log.info("model %s ready: runtime=%s in %.2fs", self.name, self.backend.describe(), self.load_seconds)

    def encode(self, texts: list[str]) -> list[Encoded]:
        return self.encoder.encode(texts)

    def small_enough_inline(self, batch: list[Encoded]) -> bool:
        return sum(len(e.ids) for e in batch) <= self.backend.inline_max_tokens

    def infer(self, batch: list[Encoded]) -> np.ndarray:
        """Probabilities [len(batch), labels], in batch order, however the batch was split for padding."""
        probs = np.empty((len(batch), len(self.labels)), dtype=np.float32)
        for group in plan_groups([len(e.ids) for e in batch], self.backend.call_cost_tokens):
            logits = self.backend.infer(pad_batch([batch[i] for i in group], self.encoder.pad_id))
            probs[group] = softmax(np.asarray(logits, dtype=np.float32))
        return probs

    def metadata(self) -> dict:
        return {
            "name": self.name,
            "task": "text-classification",
            "labels": list(self.labels),
            "max_seq_length": self.max_seq_length,
            "layout": self.files.layout,
            **self.notes,
            **self.backend.describe(),
        }
