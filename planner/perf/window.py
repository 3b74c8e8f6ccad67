"""Attention spans of full, sliding-window and chunked layers: the cached tokens a query attends to (and a decode
step reads), and the tokens a layer holds per sequence.

A query at context c (c tokens in its sequence so far, itself included) attends to
  full:    c
  sliding: min(c, W)                    the last W tokens (Mistral-7B, Gemma-2/3, gpt-oss, Phi-3)
  chunked: ((c − 1) mod C) + 1          the tokens of its own C-token chunk (Llama-4's local layers)
A step's queries sit at contexts spread evenly over [c0, c1] (decode: a batch's sequences between prompt and
prompt + output; a prefill of n tokens: 0 … n), so the step's mean span is (F(c1) − F(c0)) / (c1 − c0), F the
integral of the span (continuous form):
  full:    F(c) = c²/2
  sliding: F(c) = c²/2 up to W, then W²/2 + W·(c − W)
  chunked: F(c) = ⌊c/C⌋·C²/2 + (c mod C)²/2
and the span at c0 itself when c1 = c0. Full attention gives n/2 over a prefill of n and isl + osl/2 over a
decode from isl to isl + osl, the model's means before windows.
A layer holds per sequence c (full), min(c, W) (sliding) or min(c, C) (chunked: up to one whole chunk) tokens.
Averages over a model's layers are exact: Σ over layer kinds (count × value) / L."""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..specs.model import LayerKind, ModelSpec


def _integral(kind: LayerKind, c):
    c = np.asarray(c, float)
    if kind.attention == "full":
        return c * c / 2.0
    w = float(kind.window)
    if kind.attention == "sliding":
        return np.where(c <= w, c * c / 2.0, w * w / 2.0 + w * (c - w))
    chunks = np.floor(c / w)
    rest = c - chunks * w
    return chunks * w * w / 2.0 + rest * rest / 2.0


def span_at(kind: LayerKind, context):
    """Keys one query at `context` attends to in a layer of this kind."""
    c = np.asarray(context, float)
    if kind.attention == "full":
        return c
    if kind.attention == "sliding":
        return np.minimum(c, kind.window)
    return np.where(c >= 1.0, np.mod(np.maximum(c, 1.0) - 1.0, kind.window) + 1.0, c)


def mean_span(kind: LayerKind, context_from, context_to):
    """Mean keys attended per query whose contexts spread evenly over [context_from, context_to]."""
    c0, c1 = np.asarray(context_from, float), np.asarray(context_to, float)
    width = c1 - c0
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = (_integral(kind, c1) - _integral(kind, c0)) / np.where(width > 0, width, 1.0)
    return np.where(width > 0, mean, span_at(kind, c0))


def held_tokens(kind: LayerKind, context):
    """Tokens a layer of this kind keeps in its KV cache for one sequence at `context`."""
    c = np.asarray(context, float)
    return c if kind.attention == "full" else np.minimum(c, kind.window)


def attention_spans(model: ModelSpec) -> dict[LayerKind, int]:
    """Layer counts by attention span alone (the MLP does not matter to attention), in first-appearance order."""
    return dict(_spans(model.layer_kinds))


@lru_cache(maxsize=256)
def _spans(layer_kinds: tuple[LayerKind, ...]) -> tuple[tuple[LayerKind, int], ...]:
    # once per model: every layer_step call asks (walking 61 layers cost ~0.2 ms a call, ~15 % of a DeepSeek-V3
    # simulation's per-step perf calls; #16)
    counts: dict[LayerKind, int] = {}
    for k in layer_kinds:
        key = LayerKind("dense", k.attention, k.window)
        counts[key] = counts.get(key, 0) + 1
    return tuple(counts.items())


def mean_held_tokens_per_layer(model: ModelSpec, context):
    """Σ over layers of held_tokens / L: the KV a sequence at `context` keeps, in tokens per average layer."""
    return sum(n * held_tokens(k, context) for k, n in attention_spans(model).items()) / model.num_layers


def attended_tokens_over_layers(model: ModelSpec, context_from, context_to):
    """Σ over layers of mean_span: keys one query attends to through the whole model (for attention FLOPs)."""
    return sum(n * mean_span(k, context_from, context_to) for k, n in attention_spans(model).items())
