"""Every example plan (examples/*.toml) exports to all four targets, and every flag, environment variable, YAML
key and manifest field in the output is one recorded (with its source) in catalog/engines/<engine>.toml."""
from __future__ import annotations

import shlex

import pytest

from planner.errors import InputError
from planner.export import export, support

from .conftest import EXAMPLES
from .flags import check_argv, engine_doc, script_commands, yaml_keys

yaml = pytest.importorskip("yaml")


@pytest.mark.parametrize("engine", ["vllm", "sglang", "trtllm"])
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_exports_engine_command(path, engine, example_plan):
    plan = example_plan(path)
    refused = support.check(plan, engine)  # the support matrix (catalog/engines/support.toml)
    if refused:
        with pytest.raises(InputError) as e:
            export(plan, engine)
        assert refused[0].split(": ", 1)[1] in str(e.value) and "\n" not in str(e.value)
        return
    ex = export(plan, engine)
    commands, env, files = script_commands(ex.script())
    assert commands == ex.pre_argv + [ex.launcher + ex.argv], "the script runs exactly the exported commands"
    assert env == ex.env and files == ex.files
    assert check_argv(engine, ex.argv) == []
    for node in ex.other_nodes:  # the other nodes of a multi-node replica, as printed in the script's comments
        if node["argv"][0] != "ray":  # vLLM's other nodes join the Ray cluster (catalog/engines/vllm.toml [ray])
            assert check_argv(engine, node["argv"]) == []
    recorded_env = {e["name"] for e in engine_doc(engine).get("env", [])}
    assert set(ex.env) <= recorded_env
    lay = ex.layout["emitted"]
    args = dict(zip(ex.argv, ex.argv[1:]))
    tp_flag, pp_flag = {"vllm": ("--tensor-parallel-size", "--pipeline-parallel-size"),
                        "sglang": ("--tp-size", "--pp-size"), "trtllm": ("--tp_size", "--pp_size")}[engine]
    # SGLang and TensorRT-LLM count every GPU of a stage in their TP size when attention runs data parallel
    tp_size = lay["tp"] * lay["dp"] if engine in ("sglang", "trtllm") else lay["tp"]
    assert int(args[tp_flag]) == tp_size and int(args[pp_flag]) == lay["pp"]
    if lay["dp"] > 1:
        dp_flag = {"vllm": "--data-parallel-size", "sglang": "--dp-size"}.get(engine)
        assert dp_flag is None or int(args[dp_flag]) == lay["dp"]
    if engine == "trtllm":
        options = yaml.safe_load(files["extra-llm-api-options.yaml"])
        keys = {k["name"] for k in engine_doc("trtllm")["yaml_key"]}
        assert set(yaml_keys(options)) <= keys
        per_step = lay["micro_batch"] if lay["pp"] > 1 else lay["batch"]  # TRT-LLM counts it per micro-batch
        assert options["tensor_parallel_size"] == tp_size and options["max_batch_size"] == per_step
        assert options.get("enable_attention_dp", False) == (lay["dp"] > 1)
        assert options.get("enable_chunked_prefill") is (True if w_len(plan) > options["max_num_tokens"] else None)
        w = plan["workload"]
        assert options["kv_cache_config"]["max_tokens"] == max(lay["batch"] * (w["isl"] + w["osl"]),
                                                               w["max_model_len"])
        assert options["max_seq_len"] == w["max_model_len"]
    # the engine accepts any prompt up to the model's context (or the user's max_model_len), not just the mean
    len_flag = {"vllm": "--max-model-len", "sglang": "--context-length", "trtllm": "--max_seq_len"}[engine]
    assert int(args[len_flag]) == plan["workload"]["max_model_len"] >= plan["workload"]["isl"] + plan["workload"]["osl"]
    batch_flag = {"vllm": "--max-num-seqs", "sglang": "--max-running-requests", "trtllm": "--max_batch_size"}[engine]
    assert int(args[batch_flag]) == (lay["micro_batch"] if engine == "trtllm" and lay["pp"] > 1 else lay["batch"])
    if lay["pp"] > 1 and engine in ("vllm", "sglang"):
        assert [int(n) for n in next(iter(ex.env.values())).split(",")] == lay["layers_per_stage"]


def w_len(plan):
    return plan["workload"]["max_model_len"]


def _k8s_docs(ex):
    return [d for d in yaml.safe_load_all(ex.files["manifest.yaml"]) if d]


def _containers(doc):
    spec = doc["spec"]
    if doc["kind"] == "Deployment":
        return spec["template"]["spec"]["containers"]
    lwt = spec["leaderWorkerTemplate"]
    return lwt["leaderTemplate"]["spec"]["containers"] + lwt["workerTemplate"]["spec"]["containers"]


def _engine_argv(container, engine):
    cmd = container["command"]
    if cmd[:2] == ["sh", "-c"]:  # vLLM under LWS: Ray helper, then `exec vllm serve ...` on the leader
        tail = cmd[2].split("; exec ", 1)
        return shlex.split(tail[1]) if len(tail) == 2 else None
    return cmd


@pytest.mark.parametrize("inner", ["vllm", "sglang"])
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_exports_k8s_manifest(path, inner, example_plan):
    plan = example_plan(path)
    ex = export(plan, "k8s", k8s_engine=inner)
    k8s = engine_doc("k8s")
    docs = _k8s_docs(ex)
    assert ex.script().endswith(ex.files["manifest.yaml"])
    for d in docs:
        assert d["apiVersion"] == k8s["api_version"][d["kind"]]
    lay = ex.layout["emitted"]
    per_node = k8s["gpus_per_node"][plan["gpu"]]
    workloads = [d for d in docs if d["kind"] in ("Deployment", "LeaderWorkerSet")]
    assert len(workloads) == 1 and sum(d["kind"] == "Service" for d in docs) == 1
    w = workloads[0]
    resource = k8s["gpu_resource"]["AMD" if plan["gpu"].startswith("mi") else "NVIDIA"]
    pods = 1
    if lay["tp"] * lay["dp"] * lay["pp"] > per_node:
        assert w["kind"] == "LeaderWorkerSet", "a replica spanning nodes is one LWS group"
        fields = {f["name"] for f in k8s["field"]}
        assert {"spec." + k for k in yaml_keys(w["spec"]) if k.count(".") < 2 and not k.startswith(
            ("leaderWorkerTemplate.leaderTemplate.", "leaderWorkerTemplate.workerTemplate."))} <= fields
        lwt = w["spec"]["leaderWorkerTemplate"]
        pods = lwt["size"]
        assert lwt["restartPolicy"] in next(f for f in k8s["field"] if f["name"].endswith("restartPolicy"))["choices"]
        svc = next(d for d in docs if d["kind"] == "Service")
        assert svc["spec"]["selector"][k8s["labels"]["set_name"]] == w["metadata"]["name"]
    else:
        assert w["kind"] == "Deployment"
    assert w["spec"]["replicas"] == lay["replicas"], "one pod group per replica"
    gpus = 0
    for c in _containers(w):
        gpus += int(c["resources"]["limits"][resource]) * (1 if "leader" in c["name"] or pods == 1 else pods - 1)
        argv = _engine_argv(c, inner)
        if argv is not None:
            assert check_argv(inner, argv) == [], c["name"]
        for e in c.get("env", []):
            if e["name"] == "HF_TOKEN":  # from an optional Secret, never a literal
                assert e["valueFrom"]["secretKeyRef"] == {"name": "hf-token", "key": "token", "optional": True}
                continue
            assert e["name"] in {x["name"] for x in engine_doc(inner).get("env", [])}
        assert c["resources"]["requests"] == c["resources"]["limits"]
    assert gpus == lay["tp"] * lay["dp"] * lay["pp"], "the pods of a group hold exactly one replica's GPUs"
    pod_specs = ([w["spec"]["template"]["spec"]] if w["kind"] == "Deployment" else
                 [w["spec"]["leaderWorkerTemplate"][t]["spec"] for t in ("leaderTemplate", "workerTemplate")])
    for spec in pod_specs:  # pinned to the planned GPU, with a memory-backed /dev/shm
        if plan["gpu"] in k8s["gpu_product"]:
            assert spec["nodeSelector"] == {"nvidia.com/gpu.product": k8s["gpu_product"][plan["gpu"]]}
        assert {"name": "dshm", "emptyDir": {"medium": "Memory"}} in spec["volumes"]
    (leader,) = [c for c in _containers(w) if "readinessProbe" in c]
    assert leader["readinessProbe"]["httpGet"] == {"path": "/health", "port": 8000}
    assert any("nvidia.com/gpu.product" in n or "no node selector" in n for n in ex.notes)


def test_gpt4_moe_example_is_a_leaderworkerset(example_plan):
    """The 1.8T MoE example needs 32 H100s per replica: 4 nodes of 8, one LeaderWorkerSet group of size 4."""
    plan = example_plan(next(p for p in EXAMPLES if p.stem == "gpt4-moe-a100-vs-h100"))
    assert plan["gpus_per_replica"] > 8
    (lws,) = [d for d in _k8s_docs(export(plan, "k8s")) if d["kind"] == "LeaderWorkerSet"]
    assert lws["apiVersion"] == "leaderworkerset.x-k8s.io/v1"
    assert lws["spec"]["leaderWorkerTemplate"]["size"] == plan["gpus_per_replica"] // 8


@pytest.mark.parametrize("engine", ["vllm", "sglang", "trtllm"])
def test_chat_70b_export_accepts_the_models_whole_context(engine, example_plan):
    """Issue #10: the engine's maximum length was mean ISL + OSL (1300); Llama-3.1-70B's context is 131072."""
    plan = example_plan(next(p for p in EXAMPLES if p.name == "chat-70b.toml"))
    argv = export(plan, engine).argv
    flag = {"vllm": "--max-model-len", "sglang": "--context-length", "trtllm": "--max_seq_len"}[engine]
    assert argv[argv.index(flag) + 1] == "131072"
    old = {**plan, "workload": {k: v for k, v in plan["workload"].items() if k != "max_model_len"}}
    assert export(old, engine).argv == argv  # a plan file from before the field: the model's context


def test_max_model_len_from_the_request_reaches_the_export():
    from planner import api

    p = api.plan("llama-3.1-8b", isl=1000, osl=200, gpus="h100-sxm", max_model_len=8192, time_limit_s=20).to_dict()
    assert p["workload"]["max_model_len"] == 8192
    argv = export(p, "vllm").argv
    assert argv[argv.index("--max-model-len") + 1] == "8192"
