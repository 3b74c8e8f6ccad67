"""Kubernetes manifests: one pod group per replica. A replica that fits one node runs as a Deployment pod; one
whose GPUs span nodes (GPUs per replica > GPUs per node) runs as a LeaderWorkerSet group — a leader pod and
workers, `spec.replicas` groups of `size` pods — started with the serving engine's own multi-node mechanism
(SGLang: --dist-init-addr/--nnodes/--node-rank from the LWS environment; vLLM: a Ray cluster formed by the
helper script in its image, as in the LWS examples)."""
from __future__ import annotations

import dataclasses
import re
import shlex
from typing import Any

from . import yaml
from .base import SERVE_PORT, Context, Export, header, layout_record, resolve_layout
from .engines import ctx_nodes, gpus_per_node, sglang_command, two_batch_overlap_notes, vllm_command
from .spec import engine_spec

K8S_ENGINES = ("vllm", "sglang")


def dns_name(text: str) -> str:
    """A DNS-1035 label (Service names need it): lowercase letters, digits and '-', starting with a letter."""
    s = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    if not s or not s[0].isalpha():
        s = "m-" + s
    return s[:50].rstrip("-")


def k8s_literal(text: str) -> str:
    """`text` as a literal in a container's command: Kubernetes expands $(VAR) there and reads `$$` as `$`, so every
    `$` of user text is doubled (a model named `$(HF_TOKEN)` stays that name)."""
    return text.replace("$", "$$")


# A Secret name is a DNS-1123 subdomain (Kubernetes API conventions); the label value one of at most 63 characters
# of letters, digits, '-', '_' and '.', starting and ending with a letter or digit.
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")


def _container(name: str, image: str, command: list[str], env: dict[str, str], resource: str, gpus: int,
               leader: bool, hf_token: dict[str, str], health_path: str) -> dict[str, Any]:
    c: dict[str, Any] = {"name": name, "image": image, "command": command}
    c["env"] = [{"name": k, "value": v} for k, v in env.items()] + [
        {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {**hf_token, "optional": True}}}]
    # requests = limits: the scheduler reserves exactly the GPUs the engine uses
    c["resources"] = {"requests": {resource: str(gpus)}, "limits": {resource: str(gpus)}}
    if leader:
        c["ports"] = [{"containerPort": SERVE_PORT, "name": "http"}]
        # ready once the engine answers its health endpoint (weights loaded, KV cache allocated): minutes
        c["readinessProbe"] = {"httpGet": {"path": health_path, "port": SERVE_PORT}, "initialDelaySeconds": 30,
                               "periodSeconds": 10, "failureThreshold": 3}
    # NCCL and the engines' worker processes share tensors through /dev/shm
    c["volumeMounts"] = [{"mountPath": "/dev/shm", "name": "dshm"}]
    return c


def _pod_spec(container: dict[str, Any], node_selector: dict[str, str]) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [container]}
    if node_selector:
        spec["nodeSelector"] = node_selector
    spec["volumes"] = [{"name": "dshm", "emptyDir": {"medium": "Memory"}}]
    return spec


def node_selector(k8s: Any, gpu: Any, gpu_product: str | None) -> tuple[dict[str, str], list[str]]:
    """The node selector pinning pods to the plan's accelerator (catalog/engines/k8s.toml), and notes."""
    from ..errors import InputError

    key = k8s.doc.get("node_selector", {}).get(gpu.vendor)
    value = gpu_product or k8s.doc.get("gpu_product", {}).get(gpu.id)
    if gpu_product is not None and not (len(gpu_product) <= 63 and _LABEL_VALUE.fullmatch(gpu_product)):
        raise InputError(f"gpu_product (--gpu-product) must be a Kubernetes label value (letters, digits, '-', '_', "
                         f"'.', at most 63), got {gpu_product!r}"[:200])
    if key is None or not value:
        return {}, [f"no node selector recorded for {gpu.id} ({gpu.vendor or 'unknown vendor'}): the pods may land "
                    "on any GPU node; add a nodeSelector for your cluster's label of this accelerator"]
    return {key: value}, [f"pods are pinned to nodes labelled {key}={value}"
                          + (" (as given)" if gpu_product else " (GPU Feature Discovery's value for this part; "
                             "check `kubectl get nodes -L " + key + "` and pass --gpu-product if yours differs)")]


def _service(name: str, selector: dict[str, str], api: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": api["Service"], "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": selector, "ports": [{"name": "http", "port": SERVE_PORT, "targetPort": SERVE_PORT,
                                                      "protocol": "TCP"}], "type": "ClusterIP"}}


def export_k8s(ctx: Context, engine: str = "vllm", gpu_product: str | None = None,
               hf_token_secret: str | None = None) -> Export:
    if engine not in K8S_ENGINES:
        from ..errors import InputError

        raise InputError(f"k8s: the engine inside the pods must be one of {', '.join(K8S_ENGINES)}, got {engine!r}")
    k8s = ctx.spec
    inner = dataclasses.replace(ctx, spec=engine_spec(engine), notes=list(ctx.notes), literal=k8s_literal)
    res = resolve_layout(inner)
    lay = res.emitted
    nodes = ctx_nodes(inner, res)
    per_pod = lay.gpus // nodes
    api = k8s.doc["api_version"]
    resource = k8s.doc["gpu_resource"].get(ctx.gpu.vendor, "nvidia.com/gpu")
    image = inner.spec.image_for(ctx.gpu.vendor)
    name = dns_name(f"{ctx.plan['model']}-{ctx.gpu.id}-{engine}")
    notes: list[str] = []
    selector, selector_notes = node_selector(k8s, ctx.gpu, gpu_product)
    token = {"name": hf_token_secret or k8s.doc["hf_token"]["secret"], "key": k8s.doc["hf_token"]["key"]}
    if len(token["name"]) > 253 or not _DNS_SUBDOMAIN.fullmatch(token["name"]):
        from ..errors import InputError

        raise InputError(f"hf_token_secret (--hf-token-secret) must be a Kubernetes Secret name (lowercase "
                         f"letters, digits, '-' and '.'), got {token['name']!r}"[:200])
    health = inner.spec.doc["health_path"]
    extra = dict(hf_token=token, health_path=health)
    docs: list[dict[str, Any]] = []
    if nodes == 1:
        if engine == "vllm":
            argv, env, notes = vllm_command(inner, res)
        else:
            argv, env, notes = sglang_command(inner, res)
        labels = {"app": name}
        pod = _pod_spec(_container(engine, image, argv, env, resource, per_pod, leader=True, **extra), selector)
        docs.append({"apiVersion": api["Deployment"], "kind": "Deployment",
                     "metadata": {"name": name, "labels": labels},
                     "spec": {"replicas": lay.replicas, "selector": {"matchLabels": labels},
                              "template": {"metadata": {"labels": labels}, "spec": pod}}})
        docs.append(_service(name, labels, api))
        kind = f"Deployment of {lay.replicas} pod(s) x {per_pod} GPU(s)"
    else:
        set_label = k8s.doc["labels"]["set_name"]
        for var in ("LWS_LEADER_ADDRESS", "LWS_GROUP_SIZE", "LWS_WORKER_INDEX"):
            k8s.env_var(var)
        if engine == "vllm":
            argv, env, notes = vllm_command(inner, res, nodes)
            script = k8s.doc["vllm_multinode"]["script"]
            leader_cmd = ["sh", "-c", f"bash {script} leader --ray_cluster_size=$(LWS_GROUP_SIZE); "
                                      f"exec {shlex.join(argv)}"]
            worker_cmd = ["sh", "-c", f"bash {script} worker --ray_address=$(LWS_LEADER_ADDRESS)"]
        else:
            port = k8s.doc["sglang_multinode"]["dist_init_port"]
            argv, env, notes = sglang_command(inner, res, nodes, "$(LWS_WORKER_INDEX)",
                                              f"$(LWS_LEADER_ADDRESS):{port}")
            leader_cmd = worker_cmd = argv
        leader = _container(f"{engine}-leader", image, leader_cmd, env, resource, per_pod, leader=True, **extra)
        worker = _container(f"{engine}-worker", image, worker_cmd, env, resource, per_pod, leader=False, **extra)
        docs.append({"apiVersion": api["LeaderWorkerSet"], "kind": "LeaderWorkerSet", "metadata": {"name": name},
                     "spec": {"replicas": lay.replicas, "leaderWorkerTemplate": {
                         "size": nodes, "restartPolicy": "RecreateGroupOnPodRestart",
                         "leaderTemplate": {"metadata": {"labels": {"role": "leader"}},
                                            "spec": _pod_spec(leader, selector)},
                         "workerTemplate": {"spec": _pod_spec(worker, selector)}}}})
        docs.append(_service(name, {set_label: name, "role": "leader"}, api))
        kind = (f"LeaderWorkerSet of {lay.replicas} group(s) x {nodes} pods x {per_pod} GPU(s): a replica's "
                f"{lay.gpus} GPUs exceed the {gpus_per_node(inner)} GPUs of one {ctx.gpu.id} node")
        if lay.tp > per_pod:
            notes.append(f"TP {lay.tp} spans {-(-lay.tp // per_pod)} pods: it needs a scale-up fabric across nodes "
                         f"(e.g. multi-node NVLink), which the plan assumed for {ctx.gpu.id}")
    if ctx.gpu.vendor in inner.spec.doc.get("images_note", {}):
        notes.append(f"image {image}: {inner.spec.doc['images_note'][ctx.gpu.vendor]}")
    notes += two_batch_overlap_notes(inner, res) + selector_notes + [
        f"HF_TOKEN comes from the Secret {token['name']!r} (key {token['key']!r}) if it exists, for gated weights: "
        f"kubectl create secret generic {token['name']} --from-literal={token['key']}=hf_..."]
    hdr = header(inner, lay, "Kubernetes manifest") + [kind]
    hdr[1] = (f"{engine} {inner.spec.version} in {image}; {k8s.version}; flags checked against "
              f"catalog/engines/{engine}.toml, manifest fields against catalog/engines/k8s.toml")
    return Export(engine="k8s", version=f"{k8s.version} + {engine} {inner.spec.version}", docs=k8s.docs, argv=[],
                  env={}, files={"manifest.yaml": yaml.dump_all(docs)}, notes=inner.notes + res.notes + notes,
                  layout=layout_record(res), reestimate=res.reestimate, header=hdr)
