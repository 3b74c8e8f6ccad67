"""Independent checks of exported commands against the flag lists recorded in catalog/engines/<engine>.toml:
the tests read the TOML themselves and parse the generated text (shlex / YAML) rather than trusting the exporter."""
from __future__ import annotations

import shlex
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ENGINES_DIR = Path(__file__).resolve().parents[2] / "catalog" / "engines"


def engine_doc(engine: str) -> dict:
    return tomllib.loads((ENGINES_DIR / f"{engine}.toml").read_text(encoding="utf-8"))


def flag_table(engine: str) -> dict[str, dict]:
    """Every recorded spelling (name and aliases) -> its flag entry."""
    table = {}
    for f in engine_doc(engine)["flag"]:
        for name in [f["name"], *f.get("aliases", [])]:
            table[name] = f
    return table


def check_argv(engine: str, argv: list[str]) -> list[str]:
    """Problems with `argv` as a command of `engine`: the command prefix, then every flag recorded, every value of
    the recorded type and among the recorded choices. Values that are Kubernetes $(VAR) references are allowed."""
    doc, table = engine_doc(engine), flag_table(engine)
    problems = []
    cmd = doc["command"]
    if argv[:len(cmd)] != cmd:
        problems.append(f"command {argv[:len(cmd)]} is not {cmd}")
    i = len(cmd)
    while i < len(argv) and not argv[i].startswith("--"):
        i += 1  # positional model argument
    while i < len(argv):
        name = argv[i]
        f = table.get(name)
        if f is None:
            problems.append(f"{name} is not a recorded {engine} flag")
            i += 1
            continue
        if f.get("type") == "bool":
            i += 1
            continue
        if i + 1 >= len(argv):
            problems.append(f"{name} has no value")
            break
        value = argv[i + 1]
        if not value.startswith("$("):
            kind = f.get("type", "str")
            try:
                {"int": int, "float": float, "str": str}[kind](value)
            except ValueError:
                problems.append(f"{name} {value!r} is not {kind}")
            if f.get("choices") and value not in f["choices"]:
                problems.append(f"{name} {value!r} not in {f['choices']}")
        i += 2
    return problems


def script_commands(script: str) -> tuple[list[list[str]], dict[str, str], dict[str, str]]:
    """(commands, exported env, heredoc files) of a generated launch script, read with shlex as a shell would."""
    lines = script.splitlines()
    commands, env, files = [], {}, {}
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip() or line.startswith(("#", "set ", ": ")):
            i += 1
            continue
        if line.startswith("cat > ") and "<<'EOF'" in line:
            name = shlex.split(line[len("cat > "):line.index("<<")])[0]
            j = lines.index("EOF", i + 1)
            files[name] = "\n".join(lines[i + 1:j]) + "\n"
            i = j + 1
            continue
        if line.startswith("export "):
            k, _, v = line[len("export "):].partition("=")
            env[k] = shlex.split(v)[0]
            i += 1
            continue
        buf = line
        while buf.endswith("\\"):
            i += 1
            buf = buf[:-1] + lines[i]
        commands.append(shlex.split(buf))
        i += 1
    return commands, env, files


def yaml_keys(d: dict, prefix: str = "") -> list[str]:
    keys = []
    for k, v in d.items():
        keys.append(prefix + k)
        if isinstance(v, dict):
            keys += yaml_keys(v, prefix + k + ".")
    return keys


def checked_commands(engine: str, ex) -> dict[str, str]:
    """Check that an export's script runs exactly the export's commands and that every command (the main one and
    each other node's, Ray's own join commands aside) passes `check_argv`; return the files the script writes."""
    commands, _, files = script_commands(ex.script())
    assert commands == ex.pre_argv + [ex.launcher + ex.argv]
    assert check_argv(engine, ex.argv) == []
    for node in ex.other_nodes:
        if node["argv"][0] != "ray":  # vLLM's other nodes join the Ray cluster ([ray] in vllm.toml)
            assert check_argv(engine, node["argv"]) == []
    return files
