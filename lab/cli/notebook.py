"""`lab notebook`: JupyterLab on the notebooks folder, with a kernel that finds this lab."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from typing import Any

from lab.cli.arguments import positive_int
from lab.cli.terminal import say
from lab.config import Settings
from lab.extras import require


def register(sub: Any) -> None:
    nb = sub.add_parser("notebook", help="open JupyterLab on the notebooks folder")
    nb.add_argument("--ip", default="127.0.0.1", help="address to listen on (loopback by default)")
    nb.add_argument("--port", type=positive_int, default=8888, help="port to listen on")
    nb.add_argument("--no-browser", action="store_true", help="do not open a browser")
    nb.set_defaults(handler=cmd_notebook)


def cmd_notebook(args: argparse.Namespace, settings: Settings) -> int:
    from lab.config import kernel_env, project_root

    require("jupyterlab", "notebook", "lab notebook")

    folder = project_root() / "notebooks"
    argv = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--ServerApp.root_dir={folder}",
        f"--ServerApp.ip={args.ip}",
        f"--ServerApp.port={args.port}",
    ]
    if args.no_browser:
        argv.append("--no-browser")
    if os.geteuid() == 0:
        argv.append("--allow-root")  # e.g. in a container
    say("lab: JupyterLab on {}; open control.ipynb first", folder)
    env = kernel_env()
    if settings.notebook_token:
        env["JUPYTER_TOKEN"] = settings.notebook_token
    return subprocess.call(argv, env=env)
