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
from .engines import ctx_nodes, gpus_per_node, sglang_command, vllm_command
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


def _container(name: str, image: str, command: list[str], env: dict[str, str], resource: str, gpus: int,
               leader: bool) -> dict[str, Any]:
    c: dict[str, Any] = {"name": name, "image": image, "command": command}
    if env:
        c["env"] = [{"name": k, "value": v} for k, v in env.items()]
    c["resources"] = {"limits": {resource: str(gpus)}}
    if leader:
        c["ports"] = [{"containerPort": SERVE_PORT}]
        c["readinessProbe"] = {"tcpSocket": {"port": SERVE_PORT}, "initialDelaySeconds": 15, "periodSeconds": 10}
    # NCCL and the engines' worker processes share tensors through /dev/shm
    c["volumeMounts"] = [{"mountPath": "/dev/shm", "name": "dshm"}]
    return c


def _pod_spec(container: dict[str, Any]) -> dict[str, Any]:
    return {"containers": [container], "volumes": [{"name": "dshm", "emptyDir": {"medium": "Memory"}}]}


def _service(name: str, selector: dict[str, str], api: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": api["Service"], "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": selector, "ports": [{"name": "http", "port": SERVE_PORT, "targetPort": SERVE_PORT,
                                                      "protocol": "TCP"}], "type": "ClusterIP"}}


def export_k8s(ctx: Context, engine: str = "vllm") -> Export:
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
    image = inner.spec.image
    name = dns_name(f"{ctx.plan['model']}-{ctx.gpu.id}-{engine}")
    notes: list[str] = []
    docs: list[dict[str, Any]] = []
    if nodes == 1:
        if engine == "vllm":
            argv, env, notes = vllm_command(inner, res)
        else:
            argv, env, notes = sglang_command(inner, res)
        labels = {"app": name}
        pod = _pod_spec(_container(engine, image, argv, env, resource, per_pod, leader=True))
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
        leader = _container(f"{engine}-leader", image, leader_cmd, env, resource, per_pod, leader=True)
        worker = _container(f"{engine}-worker", image, worker_cmd, env, resource, per_pod, leader=False)
        docs.append({"apiVersion": api["LeaderWorkerSet"], "kind": "LeaderWorkerSet", "metadata": {"name": name},
                     "spec": {"replicas": lay.replicas, "leaderWorkerTemplate": {
                         "size": nodes, "restartPolicy": "RecreateGroupOnPodRestart",
                         "leaderTemplate": {"metadata": {"labels": {"role": "leader"}}, "spec": _pod_spec(leader)},
                         "workerTemplate": {"spec": _pod_spec(worker)}}}})
        docs.append(_service(name, {set_label: name, "role": "leader"}, api))
        kind = (f"LeaderWorkerSet of {lay.replicas} group(s) x {nodes} pods x {per_pod} GPU(s): a replica's "
                f"{lay.gpus} GPUs exceed the {gpus_per_node(inner)} GPUs of one {ctx.gpu.id} node")
        if lay.tp > per_pod:
            notes.append(f"TP {lay.tp} spans {-(-lay.tp // per_pod)} pods: it needs a scale-up fabric across nodes "
                         f"(e.g. multi-node NVLink), which the plan assumed for {ctx.gpu.id}")
    hdr = header(inner, lay, "Kubernetes manifest") + [kind]
    hdr[1] = (f"{engine} {inner.spec.version} in {image}; {k8s.version}; flags checked against "
              f"catalog/engines/{engine}.toml, manifest fields against catalog/engines/k8s.toml")
    return Export(engine="k8s", version=f"{k8s.version} + {engine} {inner.spec.version}", docs=k8s.docs, argv=[],
                  env={}, files={"manifest.yaml": yaml.dump_all(docs)}, notes=inner.notes + res.notes + notes,
                  layout=layout_record(res), reestimate=res.reestimate, header=hdr)
