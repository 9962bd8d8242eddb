"""Where the command line writes: figures on stdout, everything else on stderr, and an error as
one line naming the problem (the traceback only with `lab -v`)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

# C0 and C1 control characters but tab and newline, DEL, and the bidirectional overrides that
# make text read in another order than it is stored.
CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

console = Console(stderr=True)
out = Console(highlight=False)


def plain(value: Any) -> str:
    """Text that came from a job, a message, a request or a service, fit for a terminal: no
    control character (an ESC could retitle the window or clear the screen) and no line break
    (a newline could forge a line of output)."""
    text = "" if value is None else str(value)
    return CONTROLS.sub("\ufffd", text).replace("\n", " ").replace("\t", " ")


def shown(value: Any) -> str:
    """`plain`, escaped for Rich, so `[/x]` or `[link=…]` in a job's text prints as itself."""
    return escape(plain(value))


def say_error(message: str, verbose: bool = False, bug: bool = False) -> int:
    """One line naming the problem; exit code 1."""
    if verbose:
        console.print_exception()
    hint = " (lab -v … shows where)" if bug and not verbose else ""
    first = message.strip().splitlines()[0] if message.strip() else "failed"
    # soft_wrap: the terminal may fold it, but lab inserts no line break at any width
    console.print(f"[red]lab: {shown(first)}{hint}[/red]", highlight=False, soft_wrap=True)
    return 1


def bad_input(message: str) -> int:
    """What was asked cannot be done as asked: one line, exit code 2 (as argparse does)."""
    say_error(message)
    return 2


class DataTable(Table):
    """A table whose cells are data: every cell goes through `shown`, so nothing a job or a
    service wrote is read as markup or reaches the terminal as a control sequence."""

    def add_row(self, *cells: Any, **kwargs: Any) -> None:
        super().add_row(*(shown(c) if isinstance(c, str) else c for c in cells), **kwargs)


def listing(as_json: bool, data: Any, title: str, columns: Sequence[str],
            rows: Iterable[Sequence[Any]]) -> int:  # fmt: skip
    """A listing: the raw data as JSON with `--json`, else a table of `rows` (cells shown as
    data) on stdout. Exit code 0."""
    if as_json:
        print(json.dumps(data, indent=2))
        return 0
    table = DataTable(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    out.print(table)
    return 0
