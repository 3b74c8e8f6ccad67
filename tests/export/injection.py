"""The injection property (issue #10): for any strings in the user-controlled fields of an export (the plan's model
name and the weights' path), and every engine, either the export refuses them with one line (a control character,
a name the engine would read as a flag) or

- shell engines: `bash -n` (and dash) accept the script, and running it with stand-in engine binaries on PATH runs
  exactly the expected commands (`cat` for each config file, then the engine with the expected argv), prints
  nothing, and leaves only the config files;
- k8s: the manifest parses to exactly the documents and kinds of the same plan exported with neutral names, the
  user's text appearing (after Kubernetes' own $(VAR) expansion) only as the engine's arguments.

`check(engine, name, path, work)` returns None when the property holds, else what broke."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

import planner
from planner.errors import InputError
from planner.export.base import PLACEHOLDER_MODEL_DIR

from .shell import SHELLS, run_script, syntax_ok

ENGINES = ("vllm", "sglang", "trtllm", "k8s")
# characters that mean something to a shell, YAML, Kubernetes or a terminal, and every kind of line break
SPECIAL = list("\n\r\t\x00\x0b\x0c\x1b\x7f\x85\u2028\u2029\u202e\ufeff'\"`$()\\;&|<>#*?[]{}!~-:%@,=") + [
    "\ud800", "$(HF_TOKEN)", "${HOME}", "$$", "---", "...", "EOF", "'$(touch PWNED)'", "\ntouch PWNED\n#", " #"]
_ANY = st.one_of(st.characters(), st.characters(max_codepoint=0x7f), st.sampled_from(SPECIAL))
_PRINTABLE = st.one_of(st.characters(exclude_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")),
                       st.sampled_from([c for c in SPECIAL if c.isprintable()]))
# half the strings are printable (they must pass, and run only the engine), half may hold anything (most are refused)
texts = st.one_of(st.lists(_PRINTABLE, max_size=24), st.lists(_ANY, max_size=24)).map("".join)

_MODEL = None


def _model():
    global _MODEL
    if _MODEL is None:
        _MODEL = planner.load_model("llama-3.1-8b")
    return _MODEL


def k8s_expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' expansion of a container command string: $(VAR) of a defined VAR, and $$ -> $."""
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                  lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), text)


NEUTRAL_NAME, NEUTRAL_PATH = "neutral-name", "/neutral/path"


def _k8s_view(ex, env: dict[str, str], fix_command) -> tuple[list[Any], str]:
    """The manifest's documents with container commands as the container sees them (after Kubernetes' $(VAR)
    expansion, then `fix_command`) and the object name derived from the model name replaced by a placeholder."""
    docs = list(yaml.safe_load_all(ex.script()))
    obj_name = docs[0]["metadata"]["name"]

    def walk(obj: Any, key: str = "") -> Any:
        if isinstance(obj, dict):
            return {k: walk(v, k) for k, v in obj.items()}
        if isinstance(obj, list) and key in ("command", "args"):
            return fix_command([k8s_expand(a, env) for a in obj])
        if isinstance(obj, list):
            return [walk(v, key) for v in obj]
        return "<object-name>" if obj == obj_name else obj

    return walk(docs), obj_name


def _check_k8s(ex, plan: dict[str, Any], name: str, path: str) -> str | None:
    env = {"HF_TOKEN": "SECRET", "HOME": "/root", "LWS_LEADER_ADDRESS": "leader", "LWS_WORKER_INDEX": "1",
           "LWS_GROUP_SIZE": "2"}
    neutral_path = (NEUTRAL_NAME if path == name else NEUTRAL_PATH) if path else ""
    base = planner.export({**plan, "model": NEUTRAL_NAME}, "k8s", model=_model(), model_path=neutral_path or None)
    # the expected commands: the neutral export's, with the user's name and path where the neutral ones were
    user = {NEUTRAL_NAME: name, neutral_path or f"{PLACEHOLDER_MODEL_DIR}/{NEUTRAL_NAME}":
            path or f"{PLACEHOLDER_MODEL_DIR}/{name}"}
    want, _ = _k8s_view(base, env, lambda cmd: [user.get(a, a) for a in cmd])
    got, obj_name = _k8s_view(ex, env, lambda cmd: cmd)
    if not re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", obj_name) or len(obj_name) > 63:
        return f"object name {obj_name!r} is not a DNS-1035 label"
    if [d["kind"] for d in got] != [d["kind"] for d in want]:
        return f"documents {[d.get('kind') for d in got]}"
    if got != want:
        return "manifest differs from the expected one"
    return None


def check(engine: str, plan: dict[str, Any], name: str, path: str, work: Path, refused: Any = None) -> str | None:
    """None when the property holds for these strings; `refused` (a Counter) counts edge refusals."""
    try:
        ex = planner.export({**plan, "model": name}, engine, model=_model(), model_path=path or None)
    except InputError as e:
        if refused is not None:
            refused["refused"] += 1
        msg = str(e)
        if "\n" in msg or "\r" in msg or not msg:
            return f"error is not one line: {msg!r}"
        return None
    except Exception as e:  # noqa: BLE001
        return f"crash {type(e).__name__}: {e}"
    if engine == "k8s":
        return _check_k8s(ex, plan, name, path)
    user_args = ([name] if engine != "trtllm" else []) + ([path] if path else [])
    if any(a.startswith("-") for a in user_args):
        return f"a user string starts with '-' (a flag to the engine): {user_args}"
    script = ex.script()
    expected = [["cat"]] * len(ex.files) + [list(a) for a in ex.pre_argv] + [list(ex.launcher) + list(ex.argv)]
    if (engine != "trtllm" and name not in ex.argv) or (path and path not in ex.argv):
        return f"the name or path is not an argument of its own: {ex.argv}"
    for shell in SHELLS:
        if not syntax_ok(script, work, shell):
            return f"{shell} -n rejects the script"
        run = run_script(script, work, shell)
        if run.returncode or run.stdout or run.stderr:
            return f"{shell}: exit {run.returncode}, output {run.stdout[:100]!r} {run.stderr[:100]!r}"
        if run.calls != expected:
            return f"{shell} ran {run.calls}, expected {expected}"
        if run.new_files != sorted(ex.files):
            return f"{shell}: left files {run.new_files}"
    return None
