"""Server-side tokenization: the tokenizer saved next to the model, per-text limits, and per-batch padding."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np

from .errors import InvalidInput, ModelLoadError


@dataclass(frozen=True)
class Encoded:
    """One text's token ids (special tokens included), ready to be padded into a batch."""

    ids: tuple[int, ...]
    type_ids: tuple[int, ...]


def _load_backend_tokenizer(tokenizer_dir: str):
    """The fast (Rust) tokenizer: tokenizer.json directly, else via transformers' converter."""
    path = os.path.join(tokenizer_dir, "tokenizer.json")
    if os.path.isfile(path):
        from tokenizers import Tokenizer

        return Tokenizer.from_file(path)
    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(tokenizer_dir, use_fast=True).backend_tokenizer
    except Exception as exc:  # transformers raises many kinds for a bad dir
        raise ModelLoadError(f"cannot load a fast tokenizer from {tokenizer_dir!r}: {exc}") from exc


def _pad_token_id(tokenizer, tokenizer_dir: str) -> int:
    config_path = os.path.join(tokenizer_dir, "tokenizer_config.json")
    pad = "[PAD]"
    if os.path.isfile(config_path):
        with open(config_path, encoding="utf-8") as f:
            pad = json.load(f).get("pad_token") or pad
        pad = pad["content"] if isinstance(pad, dict) else pad
    found = tokenizer.token_to_id(pad)
    return 0 if found is None else found


class TextEncoder:
    """Tokenizes texts and refuses those longer than the served sequence length (400, not silent truncation)."""

    def __init__(self, tokenizer_dir: str, max_seq_length: int):
        self._tok = _load_backend_tokenizer(tokenizer_dir)
        # A saved tokenizer.json may carry the trainer's padding/truncation; the server pads per batch instead.
        self._tok.no_padding()
        self._tok.no_truncation()
        self.pad_id = _pad_token_id(self._tok, tokenizer_dir)
        self.max_seq_length = max_seq_length

    def encode(self, texts: list[str], truncate: bool = False) -> list[Encoded]:
        """Encode; too long a text is a client error unless truncate (the server's own sample texts)."""
        # One text at a time: encode_batch hands even a single text to the tokenizer's rayon pool, whose
        # threads then spin on the cores ONNX Runtime needs; requests here carry one or a few short texts.
        encodings = [self._tok.encode(text) for text in texts]
        if truncate:
            return [_truncated(Encoded(tuple(e.ids), tuple(e.type_ids)), self.max_seq_length) for e in encodings]
        for i, enc in enumerate(encodings):
            if len(enc.ids) > self.max_seq_length:
                raise InvalidInput(
                    f"text {i} is {len(enc.ids)} tokens long; the limit is {self.max_seq_length} tokens"
                )
        return [Encoded(tuple(e.ids), tuple(e.type_ids)) for e in encodings]


def _truncated(enc: Encoded, limit: int) -> Encoded:
    if len(enc.ids) <= limit:
        return enc
    # Keep the closing special token ([SEP]) the model was trained to see last.
    return Encoded(enc.ids[:limit - 1] + enc.ids[-1:], enc.type_ids[:limit - 1] + enc.type_ids[-1:])


def pad_batch(batch: list[Encoded], pad_id: int) -> dict[str, np.ndarray]:
    """Right-pad to the longest sequence in this batch (not to the model maximum): short batches stay cheap."""
    length = max(len(e.ids) for e in batch)
    input_ids = np.full((len(batch), length), pad_id, dtype=np.int64)
    type_ids = np.zeros((len(batch), length), dtype=np.int64)
    mask = np.zeros((len(batch), length), dtype=np.int64)
    for row, enc in enumerate(batch):
        n = len(enc.ids)
        input_ids[row, :n] = enc.ids
        type_ids[row, :n] = enc.type_ids
        mask[row, :n] = 1
    return {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": type_ids}


def plan_groups(lengths: list[int], call_cost_tokens: int) -> list[list[int]]:
    """Split one batch into length-sorted groups, each padded to its own longest text.

    Minimises padded tokens plus a fixed per-call cost (in token slots): on a CPU, where
    compute is proportional to padded tokens, a batch mixing 5- and 16-token texts wastes a
    third of its work on padding; on a GPU the call cost dominates and the batch stays whole.
    Exact dynamic programme over the sorted lengths (n <= maxBatchSize, O(n^2)).
    """
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    best = [0] + [float("inf")] * len(order)
    cut = [0] * (len(order) + 1)
    for j in range(1, len(order) + 1):
        for i in range(j):
            cost = best[i] + (j - i) * lengths[order[j - 1]] + call_cost_tokens
            if cost < best[j]:
                best[j], cut[j] = cost, i
    groups, j = [], len(order)
    while j > 0:
        groups.append(order[cut[j]:j])
        j = cut[j]
    return groups[::-1]
