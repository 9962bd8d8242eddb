"""The runtime (worker, scheduler, API, CLI, supervisor, stack) imports none of the optional
extras: a container with `pip install .` alone runs every pipeline process. Checked in a fresh
interpreter in which each extra's packages cannot be imported."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Import names of the packages the extras bring (distribution names differ for some).
EXTRA_MODULES = {
    "stack": ["noida_db"],
    "notebook": ["ipywidgets", "jupyterlab", "ipykernel", "matplotlib", "papermill", "nbconvert",
                 "nbformat", "pandas", "IPython"],
    "load": ["locust", "gevent"],
    "experiment": ["scipy", "pyarrow"],
}  # fmt: skip

RUNTIME = [
    "lab.runtime.worker", "lab.runtime.scheduler", "lab.runtime.events", "lab.runtime.history",
    "lab.api.app", "lab.ops.supervisor", "lab.ops.stack", "lab.ops.reset", "lab.cli",
    "lab.client", "workers.index", "workers.agent", "workers.sleep",
]  # fmt: skip

PROBE = """
import importlib, importlib.abc, sys
blocked = set(sys.argv[1].split(","))
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ImportError(f"{name} is an extra's package")
sys.meta_path.insert(0, Block())
for module in sys.argv[2].split(","):
    importlib.import_module(module)
import lab.cli
parser = lab.cli.build_parser()
for argv in (["worker"], ["scheduler"], ["api"], ["up"], ["stack", "up"], ["status"],
             ["run", "--x", "1", "--y", "1"], ["job", "list"], ["kind", "list"], ["reset"]):
    parser.parse_args(lab.cli.grammar.normalise(argv, lab.cli.reports.REPORTS))
print("ok")
"""


def test_the_extras_named_here_are_the_extras_pyproject_declares() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert set(EXTRA_MODULES) <= set(extras)
    assert set(extras["dev"][0][4:-1].split(",")) == set(EXTRA_MODULES)


def test_every_runtime_module_imports_without_any_extra() -> None:
    blocked = ",".join(m for modules in EXTRA_MODULES.values() for m in modules)
    done = subprocess.run(
        [sys.executable, "-c", PROBE, blocked, ",".join(RUNTIME)],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]


CLIENT = """
import sys
from lab.config import Settings
from lab.runtime.store import Store
Store(Settings())
loaded = sorted({"pyarrow", "numpy", "pandas"} & set(sys.modules))
import pyarrow
print(loaded, pyarrow.__name__)
"""


def test_the_elasticsearch_client_comes_without_the_pyarrow_it_would_load() -> None:
    """Installed (the experiment extra), pyarrow would be loaded by the client in every worker
    and API process, numpy with it; it stays importable by whatever asks for it after."""
    done = subprocess.run([sys.executable, "-c", CLIENT], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0 and done.stdout.split() == ["[]", "pyarrow"], done.stderr[-3000:]
