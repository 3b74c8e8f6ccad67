"""Issue #17 (export side): scripts start as printed. `set -u` with a clear message when the multi-node head address
is missing; TensorRT-LLM gets chunked prefill when prompts may exceed a step's token budget and its batch limit per
pipeline micro-batch."""
from __future__ import annotations

import pytest
import yaml

import planner

from .shell import SHELLS, run_script

pytestmark = pytest.mark.skipif(not SHELLS, reason="needs bash or dash")


@pytest.fixture(scope="module")
def multi_node_plan():
    """Llama-3.1-405B in bf16 on H100s: more GPUs per replica than a node holds."""
    p = planner.plan("llama-3.1-405b", disagg="off", isl=1000, osl=200, gpus="h100-sxm", weights="bf16", kv="bf16", pp=[2, 4],
                     min_tokens_per_s_user=10, time_limit_s=20).to_dict()
    assert p["gpus_per_replica"] > 8
    return p


def test_sglang_multi_node_script_needs_the_head_address(multi_node_plan, tmp_path):
    ex = planner.export(multi_node_plan, "sglang")
    script = ex.script()
    assert "set -eu" in script and ': "${HEAD_ADDR:?' in script
    run = run_script(script, tmp_path)  # HEAD_ADDR unset: stops before the engine, saying why
    assert run.returncode != 0 and run.calls == [] and "HEAD_ADDR" in run.stderr and "node 0" in run.stderr
    run = run_script(script, tmp_path, extra_env={"HEAD_ADDR": "10.0.0.1"})
    assert run.returncode == 0 and len(run.calls) == 1
    argv = run.calls[0]
    assert argv[argv.index("--dist-init-addr") + 1] == "10.0.0.1:20000"


def test_single_node_scripts_reference_no_variable(multi_node_plan):
    plan = planner.plan("llama-3.1-8b", disagg="off", isl=1000, osl=200, gpus="h100-sxm", time_limit_s=20).to_dict()
    for engine in ("vllm", "sglang", "trtllm"):
        script = planner.export(plan, engine).script()
        assert "set -eu" in script and ":?" not in script


def test_trtllm_chunked_prefill_and_per_micro_batch_limit(multi_node_plan):
    ex = planner.export(multi_node_plan, "trtllm")
    options = yaml.safe_load(ex.files["extra-llm-api-options.yaml"])
    lay = ex.layout["emitted"]
    assert lay["pp"] > 1
    assert options["max_batch_size"] == lay["micro_batch"] == lay["batch"] // lay["pp"]
    assert ex.argv[ex.argv.index("--max_batch_size") + 1] == str(lay["micro_batch"])
    # max_seq_len (the model's 131072) is above the 8192-token step budget: prompts longer than it need chunking
    assert options["max_seq_len"] == 131072 > options["max_num_tokens"]
    assert options["enable_chunked_prefill"] is True


def test_trtllm_without_long_prompts_needs_no_chunking():
    plan = planner.plan("llama-3.1-8b", disagg="off", isl=1000, osl=200, gpus="h100-sxm", max_model_len=4096,
                        time_limit_s=20).to_dict()
    options = yaml.safe_load(planner.export(plan, "trtllm").files["extra-llm-api-options.yaml"])
    assert options["max_seq_len"] == 4096 and "enable_chunked_prefill" not in options


def test_vllm_multi_node_script_starts_the_ray_head_then_vllm(multi_node_plan, tmp_path):
    ex = planner.export(multi_node_plan, "vllm")
    assert ex.pre_argv == [["ray", "start", "--head", "--port=6379"]]
    run = run_script(ex.script(), tmp_path)
    assert run.returncode == 0 and run.calls == [ex.pre_argv[0], ex.argv]
    assert "--distributed-executor-backend" in ex.argv
    nodes = ex.other_nodes
    assert nodes and all(n["argv"][:3] == ["ray", "start", "--address"] for n in nodes)
    # the other nodes' command, copied from the script's comment, expands HEAD_ADDR
    line = next(ln for ln in ex.script().splitlines() if ln.startswith("# node 1:"))
    assert '"${HEAD_ADDR}:6379"' in line and "--block" in line


def test_trtllm_multi_node_runs_under_srun_with_the_llmapi_launcher(multi_node_plan, tmp_path):
    ex = planner.export(multi_node_plan, "trtllm")
    lay = ex.layout["emitted"]
    nodes = int(ex.launcher[ex.launcher.index("--nodes") + 1])
    assert nodes > 1 and ex.launcher[-1] == "trtllm-llmapi-launch"
    assert ex.launcher[ex.launcher.index("--ntasks") + 1] == str(lay["tp"] * lay["pp"])
    assert int(ex.launcher[ex.launcher.index("--ntasks-per-node") + 1]) * nodes == lay["tp"] * lay["pp"]
    run = run_script(ex.script(), tmp_path)
    assert run.returncode == 0 and run.calls == [["cat"], ex.launcher + ex.argv]
