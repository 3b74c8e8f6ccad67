"""Issue #10's injection: a model folder named `evil<LF>touch PWNED<LF>#` put `touch PWNED` on a line of its own in
the launch script's comments (and a second YAML document into the manifest). User text with control characters is
refused where it enters; text that reaches a comment is escaped as well, so neither layer alone is trusted."""
from __future__ import annotations

import json
import shutil

import pytest
import yaml
from click.testing import CliRunner

import planner
from planner.catalog import CATALOG
from planner.cli import main

from .shell import SHELLS, run_script, syntax_ok

EVIL = "evil\ntouch PWNED\n#"
EVIL_YAML = "x\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: attacker\n#"

pytestmark = pytest.mark.skipif(not SHELLS, reason="needs bash or dash")


@pytest.fixture(scope="module")
def small_plan():
    return planner.plan("llama-3.1-8b", isl=1000, osl=200, gpus="h100-sxm", time_limit_s=20).to_dict()


def _evil_folder(tmp_path, name=EVIL):
    d = tmp_path / name
    d.mkdir()
    shutil.copy(CATALOG / "models" / "llama-3.1-8b.json", d / "config.json")
    return d


def _one_line_exit_2(res):
    assert res.exit_code == 2, res.output
    assert res.stdout == "" and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "Traceback" not in res.stderr


def test_plan_refuses_a_model_folder_whose_name_has_a_line_break(tmp_path):
    d = _evil_folder(tmp_path)
    res = CliRunner().invoke(main, ["plan", "--model", str(d), "--isl", "1000", "--osl", "200", "--json"])
    _one_line_exit_2(res)
    assert "control character" in res.stderr and not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("engine", ["vllm", "sglang", "trtllm", "k8s"])
def test_export_refuses_a_plan_file_whose_model_has_a_line_break(tmp_path, small_plan, engine):
    d = _evil_folder(tmp_path)
    p = tmp_path / "p.json"
    p.write_text(json.dumps({**small_plan, "model": EVIL}))
    res = CliRunner().invoke(main, ["export", str(p), "--engine", engine, "--model", str(d / "config.json")])
    _one_line_exit_2(res)


MARK = "/weights/MARK"


@pytest.mark.parametrize("engine", ["vllm", "sglang", "trtllm"])
def test_user_text_in_comments_and_arguments_stays_inert(tmp_path, small_plan, engine):
    """Past the edge checks (an API caller editing an Export): the script still runs only the engine."""
    ex = planner.export(small_plan, engine, model_path=MARK)
    evil_arg = EVIL + "'$(touch PWNED2)`touch PWNED3`${HOME}"
    ex.argv = [evil_arg if a == MARK else a for a in ex.argv]
    ex.notes.append(EVIL)
    ex.header.append(EVIL + "\r\x85\u2028" + EVIL)
    script = ex.script()
    for shell in SHELLS:
        assert syntax_ok(script, tmp_path, shell)
        run = run_script(script, tmp_path, shell)
        assert run.returncode == 0 and run.stderr == "" and run.stdout == "", run
        assert run.calls == [["cat"]] * len(ex.files) + [ex.argv]
        assert run.new_files == sorted(ex.files)


def k8s_expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' expansion of a container command string: $(VAR) of a defined VAR, and $$ -> $."""
    import re

    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                  lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), text)


@pytest.mark.parametrize("k8s_engine", ["vllm", "sglang"])
def test_manifest_comments_and_values_cannot_add_documents(small_plan, k8s_engine):
    path = "x: y --- # kind: Pod $(HF_TOKEN) $$(HOME) '\"{[&*!|>%@`"
    ex = planner.export(small_plan, "k8s", k8s_engine=k8s_engine, model_path=path)
    ex.notes.append(EVIL_YAML)
    ex.header.append(EVIL_YAML + "\r\x85\u2028\u2029" + EVIL_YAML)
    docs = list(yaml.safe_load_all(ex.script()))
    assert [d["kind"] for d in docs] == ["Deployment", "Service"]
    command = docs[0]["spec"]["template"]["spec"]["containers"][0]["command"]
    expanded = [k8s_expand(a, {"HF_TOKEN": "secret", "HOME": "/root"}) for a in command]
    assert path in expanded and "secret" not in " ".join(expanded)


@pytest.mark.parametrize("text", ["description = \"a\\nb\"", "model = \"llama-3.1-8b\\u202e\"",
                                  "gpus = [\"h100\\u0085\"]"])
def test_request_file_text_with_control_characters_is_one_line_exit_2(tmp_path, text):
    req = tmp_path / "r.toml"
    req.write_text(f"model = \"llama-3.1-8b\"\nisl = 100\nosl = 10\n{text}\n".replace(
        "model = \"llama-3.1-8b\"\n", "", 1 if text.startswith("model") else 0))
    res = CliRunner().invoke(main, ["plan", str(req)])
    _one_line_exit_2(res)
    assert "control character" in res.stderr


def test_user_catalog_name_with_a_line_break_is_one_line_exit_2(tmp_path):
    cat = tmp_path / "c.toml"
    cat.write_text('[[accelerator]]\nid = "h100-sxm"\nname = "H100\\ntouch PWNED"\n')
    res = CliRunner().invoke(main, ["estimate", "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--batch", "1",
                                    "--isl", "10", "--osl", "10", "--catalog", str(cat)])
    _one_line_exit_2(res)
