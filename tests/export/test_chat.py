"""Instruct/chat checkpoints (catalog/models/chat.toml): a request that says chat (`chat = true`, `planner plan
--chat`) is recorded in the plan, and the export serves the preset's instruct repo instead of its base repo
(`planner export --chat` asks for it on any plan)."""
from __future__ import annotations

import json
import re

import jsonschema
import pytest
from click.testing import CliRunner

import planner
from planner.catalog import CATALOG, read_toml
from planner.cli import main
from planner.export.base import chat_repo, hf_repo
from planner.plan import plan_schema

CHAT = read_toml(CATALOG / "models" / "chat.toml", "chat.toml")


def test_every_chat_entry_is_a_preset_with_a_sourced_repo():
    assert len(CHAT) >= 12
    for preset, entry in CHAT.items():
        assert (CATALOG / "models" / f"{preset}.json").exists(), preset
        assert re.fullmatch(r"[\w.-]+/[\w.-]+", entry["repo"]), entry
        assert entry["source"].startswith(f"https://huggingface.co/{entry['repo']}"), entry
        base = hf_repo(preset)
        # a separate instruct repo differs from the preset's; `same` marks a preset that already is the chat model
        assert (entry["repo"] == base) == entry.get("same", False), (preset, base, entry["repo"])
    assert CHAT["llama-3.1-70b"]["repo"] == "meta-llama/Llama-3.1-70B-Instruct"
    assert chat_repo("Llama-3.1-8B") == "meta-llama/Llama-3.1-8B-Instruct"  # preset spellings resolve


def _run(*args):
    return CliRunner().invoke(main, list(args))


PLAN = ["plan", "--model", "llama-3.1-8b", "--gpus", "h100-sxm", "--isl", "1000", "--osl", "200", "--json"]


@pytest.fixture(scope="module")
def plans(tmp_path_factory):
    folder = tmp_path_factory.mktemp("chat")
    out = {}
    for name, extra in (("chat", ["--chat"]), ("base", [])):
        r = _run(*PLAN, *extra)
        assert r.exit_code == 0, r.stderr
        out[name] = folder / f"{name}.json"
        out[name].write_text(r.stdout, encoding="utf-8")
    return out


def test_plan_records_chat_and_every_export_serves_the_instruct_repo(plans):
    d = json.loads(plans["chat"].read_text(encoding="utf-8"))
    jsonschema.validate(d, plan_schema())
    assert d["chat"] is True
    assert "chat" not in json.loads(plans["base"].read_text(encoding="utf-8"))  # other plans are unchanged
    for engine in ("vllm", "sglang", "trtllm", "k8s"):
        r = _run("export", str(plans["chat"]), "--engine", engine)
        assert r.exit_code == 0, r.stderr
        assert "meta-llama/Llama-3.1-8B-Instruct" in r.stdout
        assert "meta-llama/Llama-3.1-8B " not in r.stdout and "meta-llama/Llama-3.1-8B\n" not in r.stdout


def test_export_chat_flag_and_model_path_override(plans):
    base = _run("export", str(plans["base"]), "--engine", "vllm").stdout
    assert "vllm serve meta-llama/Llama-3.1-8B " in base and "Instruct" not in base
    assert "vllm serve meta-llama/Llama-3.1-8B-Instruct " in _run("export", str(plans["base"]), "--chat").stdout
    # an explicit --model-path wins over the chat repo
    assert "vllm serve /w/llama " in _run("export", str(plans["chat"]), "--model-path", "/w/llama").stdout
    # the Python API takes chat= too
    assert planner.export(json.loads(plans["base"].read_text()), "sglang", chat=True).argv[
        planner.export(json.loads(plans["base"].read_text()), "sglang", chat=True).argv.index("--model-path") + 1
    ] == "meta-llama/Llama-3.1-8B-Instruct"


def test_a_preset_without_a_chat_checkpoint_says_so():
    d = planner.estimate("gpt3-175b", "h100-sxm", tp=8, batch=8, isl=500, osl=100).to_dict()
    ex = planner.export(d, "vllm", chat=True)
    assert any("no instruct/chat checkpoint is recorded for gpt3-175b" in n for n in ex.notes)


def test_request_file_key(tmp_path):
    f = tmp_path / "r.toml"
    f.write_text('model = "llama-3.1-8b"\ngpus = ["h100-sxm"]\nisl = 1000\nosl = 200\nchat = true\n', encoding="utf-8")
    assert planner.plan(str(f)).to_dict()["chat"] is True
    f.write_text('model = "llama-3.1-8b"\nisl = 1000\nosl = 200\nchat = "yes"\n', encoding="utf-8")
    r = _run("plan", str(f))
    assert r.exit_code == 2 and r.stderr.strip().count("\n") == 0
    assert "chat must be true or false" in r.stderr
