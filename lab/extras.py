"""The optional parts of lab and what they need: one clear error when an extra is not installed.

`pip install .` is the runtime (worker, scheduler, API, CLI). The extras, declared in
pyproject.toml, add the rest: `stack` (a local Elasticsearch-API server for `lab stack up`),
`notebook` (JupyterLab, the control panel, `lab report`), `load` (Locust), `dev` (all of them
and the test tools).
"""

from __future__ import annotations

import importlib.util


class MissingExtra(RuntimeError):
    """A command needs a package of an extra that is not installed; the message says which."""


def require(module: str, extra: str, purpose: str) -> None:
    """Raise `MissingExtra` naming the install command when `module` cannot be imported."""
    if importlib.util.find_spec(module) is None:
        raise MissingExtra(
            f"{purpose} needs {module}, which is not installed: pip install 'lab[{extra}]' "
            f"(in a checkout: pip install -e '.[{extra}]')"
        )
