"""Every generated Kubernetes manifest validates against the schemas of its kinds (tests/export/k8s_schemas/, source
and version in SOURCE.md): Deployment, Service, LeaderWorkerSet, and the PodTemplateSpec inside them."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from planner import api
from planner.export import export

from .conftest import EXAMPLES

jsonschema = pytest.importorskip("jsonschema")
referencing = pytest.importorskip("referencing")

SCHEMAS = Path(__file__).parent / "k8s_schemas"
KINDS = {"Deployment": "deployment-apps-v1.json", "Service": "service-v1.json",
         "LeaderWorkerSet": "leaderworkerset-v1.json"}


def _validator(kind: str):
    from referencing.jsonschema import DRAFT7

    docs = {p.name: DRAFT7.create_resource(json.loads(p.read_text())) for p in SCHEMAS.glob("*.json")}
    registry = referencing.Registry().with_resources(docs.items())
    return jsonschema.Draft7Validator(json.loads((SCHEMAS / KINDS[kind]).read_text()), registry=registry)


VALIDATORS = {kind: _validator(kind) for kind in KINDS}


def _problems(manifest: str) -> list[str]:
    out = []
    for doc in yaml.safe_load_all(manifest):
        v = VALIDATORS.get(doc.get("kind"))
        if v is None:
            out.append(f"unexpected kind {doc.get('kind')!r}")
            continue
        out += [f"{doc['kind']} {'.'.join(map(str, e.absolute_path))}: {e.message}"[:300] for e in v.iter_errors(doc)]
    return out


@pytest.mark.parametrize("inner", ["vllm", "sglang"])
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_manifests_validate(path, inner, example_plan):
    ex = export(example_plan(path), "k8s", k8s_engine=inner, gpu_product="NVIDIA-H100-80GB-HBM3",
                hf_token_secret="my-hf.token")
    assert _problems(ex.files["manifest.yaml"]) == []


def test_the_schemas_catch_a_broken_manifest(example_plan):
    ex = export(example_plan(EXAMPLES[0]), "k8s")
    docs = list(yaml.safe_load_all(ex.files["manifest.yaml"]))
    docs[0]["spec"]["template"]["spec"]["containers"][0]["resources"]["limit"] = {}  # misspelled field
    docs[1]["spec"]["ports"][0]["port"] = "http"
    problems = _problems(yaml.safe_dump_all(docs))
    assert any("limit" in p for p in problems) and any("port" in p for p in problems)
    lws = {"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet", "metadata": {"name": "x"},
           "spec": {"leaderWorkerTemplate": {"size": 2, "restartPolicy": "RecreateGroupAfterStart",
                                             "workerTemplate": {"spec": {"containers": []}}}}}
    assert any("restartPolicy" in p for p in _problems(yaml.safe_dump(lws)))


def test_bad_secret_name_and_gpu_product_are_input_errors(example_plan):
    from planner.errors import InputError

    plan = example_plan(EXAMPLES[0])
    with pytest.raises(InputError, match="Secret name"):
        export(plan, "k8s", hf_token_secret="Bad_Name")
    with pytest.raises(InputError, match="label value"):
        export(plan, "k8s", gpu_product="a b")
    ex = export(plan, "k8s", gpu_product="NVIDIA-H100-NVL")
    assert "nvidia.com/gpu.product: NVIDIA-H100-NVL" in ex.files["manifest.yaml"]


def test_multi_node_manifest_validates():
    """A replica larger than a node: Llama-3.1-405B in bf16 on H100s is a LeaderWorkerSet group."""
    p = api.plan("llama-3.1-405b", disagg="off", isl=1000, osl=200, gpus="h100-sxm", weights="bf16", kv="bf16", pp=[2, 4],
                 min_tokens_per_s_user=10, time_limit_s=20).to_dict()
    for inner in ("vllm", "sglang"):
        manifest = export(p, "k8s", k8s_engine=inner).files["manifest.yaml"]
        assert "LeaderWorkerSet" in manifest and _problems(manifest) == []
