"""`import lab` is the public API: every name of `lab.__all__` imports, is documented in
`docs/reference/python.md` (and nothing else is listed there as a name), and importing `lab`
loads none of the notebook's libraries, so a worker stays small."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import lab

DOC = Path(__file__).resolve().parents[2] / "docs" / "reference" / "python.md"


def test_every_public_name_imports_and_is_documented() -> None:
    documented = set(re.findall(r"^\| `(\w+)` \|", DOC.read_text(), re.M))
    assert documented == set(lab.__all__)
    for name in lab.__all__:
        assert getattr(lab, name) is not None


def test_importing_lab_loads_no_notebook_library() -> None:
    code = "import sys, lab; print(sorted({'httpx', 'pandas', 'ipywidgets'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_lab_s_own_kinds_take_a_kind_s_names_from_the_public_api() -> None:
    workers = Path(__file__).resolve().parents[2] / "workers"
    for module in ("sleep", "agent", "index", "synthetic"):
        text = (workers / f"{module}.py").read_text()
        assert "from lab import " in text, module
        assert "lab.runtime.payload import Field" not in text, module
