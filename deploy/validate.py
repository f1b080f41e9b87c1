"""Checks what can be checked of deploy/ without a container engine.

Every YAML document parses, the Grafana dashboard is valid JSON, the
example configuration is valid TOML, and every HOOKHUB_* variable the
compose file and Kubernetes manifests set is a setting the hub knows
(an unknown one is ignored by the hub, so a typo would silently do
nothing). Run from the repository root: python3 deploy/validate.py
"""
import glob
import json
import pathlib
import re
import sys
import tomllib

import yaml

root = pathlib.Path(__file__).resolve().parent.parent
settings_rs = (root / "src" / "settings.rs").read_text()
struct = settings_rs[settings_rs.index("pub struct Settings {"):]
struct = struct[: struct.index("\n}\n")]
known = {m.upper() for m in re.findall(r"pub (\w+):", struct)}
not_settings = {"CONFIG", "API_KEY", "HUB_URL"}

problems = []
for path in sorted(glob.glob(str(root / "deploy" / "**" / "*.y*ml"), recursive=True)):
    text = pathlib.Path(path).read_text()
    try:
        list(yaml.safe_load_all(text))
    except yaml.YAMLError as e:
        problems.append(f"{path}: {e}")
    for var in re.findall(r"\bHOOKHUB_([A-Z0-9_]+)\s*[:=]", text):
        if var not in known and var not in not_settings:
            problems.append(f"{path}: HOOKHUB_{var} is not a setting")
for path in glob.glob(str(root / "deploy" / "**" / "*.json"), recursive=True):
    try:
        json.loads(pathlib.Path(path).read_text())
    except json.JSONDecodeError as e:
        problems.append(f"{path}: {e}")
example = tomllib.loads((root / "deploy" / "hookhub.example.toml").read_text())
problems += [f"hookhub.example.toml: {k} is not a setting" for k in example if k.upper() not in known]

if problems:
    sys.exit("\n".join(problems))
print(f"deploy/ ok: {len(known)} settings known")
