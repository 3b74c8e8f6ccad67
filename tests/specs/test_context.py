"""The engine's maximum sequence length (issue #10): the model's context with RoPE scaling applied, or the user's
max_model_len; ISL + OSL beyond it is an input error; one sequence of it must fit in memory."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from planner import api
from planner.cli import main
from planner.errors import InputError
from planner.specs.model import model_from_config
from planner.specs.workload import Workload

BASE = {"hidden_size": 1024, "num_hidden_layers": 4, "num_attention_heads": 8, "num_key_value_heads": 8,
        "intermediate_size": 4096, "vocab_size": 32000, "max_position_embeddings": 32768}


@pytest.mark.parametrize("rope, context", [
    (None, 32768),
    ({"rope_type": "linear", "factor": 4.0}, 131072),  # linear: 32768 x 4
    ({"type": "dynamic", "factor": 2.0}, 65536),  # the older "type" key
    ({"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}, 131072),  # Qwen2.5 long
    ({"rope_type": "yarn", "factor": 40, "original_max_position_embeddings": 4096}, 163840),  # DeepSeek-V3: 4096 x 40
    ({"rope_type": "llama3", "factor": 8.0, "original_max_position_embeddings": 8192}, 32768),  # already extended
    ({"rope_type": "longrope", "factor": 4.0}, 32768),
    ({"rope_type": "default"}, 32768),
])
def test_context_applies_rope_scaling(rope, context):
    assert model_from_config({**BASE, "rope_scaling": rope}, "m").max_context == context


def test_bad_rope_factor_is_an_input_error():
    with pytest.raises(InputError, match="rope_scaling.factor"):
        model_from_config({**BASE, "rope_scaling": {"rope_type": "linear", "factor": "x"}}, "m")


def test_presets_context():
    assert api.load_model("llama-3.1-8b").max_context == 131072
    assert api.load_model("deepseek-v3").max_context == 163840


def test_engine_max_len():
    m = api.load_model("llama-3.1-8b")
    assert Workload(isl=1000, osl=300).engine_max_len(m) == 131072
    assert Workload(isl=1000, osl=300, max_model_len=4096).engine_max_len(m) == 4096
    with pytest.raises(InputError, match="exceeds llama-3.1-8b's context of 131072"):
        Workload(isl=200_000, osl=100).engine_max_len(m)
    with pytest.raises(InputError, match="--max-model-len 1200"):
        Workload(isl=1000, osl=300, max_model_len=1200).engine_max_len(m)
    with pytest.raises(InputError, match="exceeds llama-3.1-8b's context"):
        Workload(isl=1000, osl=300, max_model_len=200_000).engine_max_len(m)


def test_one_sequence_of_the_maximum_length_must_fit():
    """Llama-3.1-8B bf16 on one L4 (24 GiB) at batch 1: the batch's KV (1200 tokens) fits, but one sequence of
    131072 tokens needs 131072 x 32 layers x 2 (K, V) x 8 heads x 128 x 2 B = 16.0 GiB of KV beside 15 GiB of
    weights, so vLLM would refuse to start; at max_model_len 8192 (1.0 GiB) it fits."""
    e = api.estimate("llama-3.1-8b", "l4", batch=1, isl=1000, osl=200)
    assert not e.fits and e.bottleneck == "memory_capacity"
    (msg,) = e.messages
    assert "131072 tokens" in msg and "KV 16.0 GiB" in msg
    assert api.estimate("llama-3.1-8b", "l4", batch=1, isl=1000, osl=200, max_model_len=8192).fits


def test_plan_honours_the_long_sequence():
    """The search applies the same check: on one L4 the 8B model in bf16 is infeasible at full context and plans at
    max_model_len 8192."""
    from planner.errors import InfeasibleError

    kw = dict(isl=1000, osl=200, gpus="l4", weights="bf16", kv="bf16", max_gpus=1, min_tokens_per_s_user=5,
              time_limit_s=20)
    with pytest.raises(InfeasibleError, match="memory"):
        api.plan("llama-3.1-8b", **kw)
    p = api.plan("llama-3.1-8b", max_model_len=8192, **kw).to_dict()
    assert p["total_gpus"] == 1 and p["workload"]["max_model_len"] == 8192


@pytest.mark.parametrize("argv", [
    ["plan", "--model", "llama-3.1-8b", "--isl", "200000", "--osl", "100"],
    ["plan", "--model", "llama-3.1-8b", "--isl", "1000", "--osl", "100", "--max-model-len", "200000"],
    ["plan", "--model", "llama-3.1-8b", "--isl", "1000", "--osl", "100", "--max-model-len", "500"],
    ["estimate", "--model", "gpt3-175b", "--gpu", "h100", "--batch", "1", "--isl", "2000", "--osl", "100"],
])
def test_beyond_the_context_is_one_line_exit_2(argv):
    res = CliRunner().invoke(main, argv)
    assert res.exit_code == 2 and len(res.stderr.strip().splitlines()) == 1, res.output
