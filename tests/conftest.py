"""Shared fixtures: the shipped catalog (loaded once), model presets, and a synthetic dense 1T-parameter config;
and Hypothesis drawing the same examples whatever ran before (below)."""
from __future__ import annotations

import json
from functools import lru_cache

import pytest

from planner.catalog import load_catalog, load_model
from planner.perf.params import PerfParams


def _draw_without_the_loaded_modules_literals() -> None:
    """Hypothesis (6.131+) sometimes draws a literal found in the local modules loaded at that moment
    (hypothesis/internal/constants_ast.py). Which planner modules are loaded depends on which tests ran before, so
    a property test's examples changed with the order: test_a_looser_request_never_costs_more drew factor 0.95 alone
    and 0.3 after tests/export, a 30 s CP-SAT solve. Drawing from Hypothesis' own constants only makes a
    derandomized test's examples a function of the test (and the Hypothesis version); tests/reliability/
    test_properties.py checks it. The hook is internal: where a later Hypothesis lacks it, nothing is changed."""
    try:
        from hypothesis.internal.conjecture import providers
    except ImportError:  # pragma: no cover
        return
    if callable(getattr(providers, "_get_local_constants", None)) and hasattr(providers, "Constants"):
        none = providers.Constants()
        providers._get_local_constants = lambda: none


_draw_without_the_loaded_modules_literals()


@pytest.fixture(scope="session")
def catalog():
    return load_catalog()


@pytest.fixture(scope="session")
def h100(catalog):
    return catalog.gpu("h100-sxm")


@lru_cache(maxsize=None)
def _preset(name: str):
    return load_model(name)


@pytest.fixture(scope="session")
def preset():
    """`preset("llama-3.1-70b")`: a model preset, parsed once per test session."""
    return _preset


@pytest.fixture
def round_params() -> PerfParams:
    """Perf parameters with round values, so that hand computations are easy to follow. The kernel-shape terms
    (planner/perf/kernels.py) and the per-layer overhead are off here; tests/perf/test_kernels.py checks them."""
    return PerfParams(hbm_efficiency=0.8, flops_efficiency=0.5, prefill_flops_efficiency=0.5,
                      attention_flops_efficiency=0.5,
                      gemm_tile_tokens=0.0, gemm_tile_cols=0.0, attention_ctas_per_sm=0.0, layer_overhead_s=0.0,
                      step_overhead_s=0.002, link_efficiency=0.8,
                      allreduce_latency_s=8e-6, p2p_latency_s=15e-6, memory_reserve_fraction=0.10,
                      max_batched_tokens=8192, head_stage_overhead_s=0.0, max_batch=2048)


# A dense ~1T-parameter decoder (Llama-style, GQA, SwiGLU), sized by hand:
#   attention / layer = 2·h² (q, o) + 2·h·8·128 (k, v)      = 1,310,720,000 + 52,428,800 = 1,363,148,800
#   MLP / layer       = 3·h·83,968                           = 6,448,742,400
#   norms / layer     = 2·h                                  = 51,200
#   × 128 layers                                             = 999,928,627,200
#   embedding + untied LM head = 2·128,256·25,600 + final norm 25,600 = 6,566,732,800
#   total                                                    = 1,006,495,360,000  (≈ 1.0T)
DENSE_1T_CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "hidden_size": 25600,
    "num_hidden_layers": 128,
    "num_attention_heads": 200,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "intermediate_size": 83968,
    "hidden_act": "silu",
    "vocab_size": 128256,
    "max_position_embeddings": 8192,
    "tie_word_embeddings": False,
}
DENSE_1T_PARAMS = 1_006_495_360_000


@pytest.fixture
def dense_1t_path(tmp_path):
    """A folder holding the synthetic 1T model's config.json."""
    folder = tmp_path / "dense-1t"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(DENSE_1T_CONFIG), encoding="utf-8")
    return folder


@pytest.fixture
def dense_1t_params() -> int:
    return DENSE_1T_PARAMS
