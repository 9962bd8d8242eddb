"""Where the command line writes: figures on stdout, everything else on stderr, and an error as
one line naming the problem (the traceback only with `lab -v`).

What came from a job, a message, a request, a file or a service is data, never markup: a line
is `say(template, *values)`, whose template is lab's own text and whose every value is `shown`,
and a table is a `DataTable`, whose title, headers and cells are `shown`.
"""

from __future__ import annotations

import json
import os
import re
import string
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.protocol import is_renderable
from rich.table import Table

# C0 and C1 control characters but tab and newline, DEL, and the bidirectional overrides that
# make text read in another order than it is stored.
CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _figures_width() -> int | None:
    """None (the terminal's own width) on a terminal or with COLUMNS set; piped or redirected,
    as wide as a table needs. A log or a pipe is read whole, so a figure is never cut to
    `2,51…` nor a row name to `endT…` there, as Rich's 80 columns for a file would do."""
    if os.environ.get("COLUMNS") or sys.stdout.isatty():
        return None
    return 1000


console = Console(stderr=True)
out = Console(highlight=False, width=_figures_width())


def plain(value: Any) -> str:
    """Text that came from a job, a message, a request or a service, fit for a terminal: no
    control character (an ESC could retitle the window or clear the screen) and no line break
    (a newline could forge a line of output)."""
    try:
        text = "" if value is None else str(value)
    except ValueError:  # an integer past Python's 4,300 digits has no str
        text = f"<{type(value).__name__} too large to show>"
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


class _Shown(string.Formatter):
    def format_field(self, value: Any, format_spec: str) -> str:
        try:
            return shown(format(value, format_spec))
        except (TypeError, ValueError):  # text where a number was expected: shown as it is
            return shown(value)


_SHOWN = _Shown()


def say(template: str, *values: Any, to: Console | None = None, **named: Any) -> None:
    """One line for people (on stderr, or `to`): `template` is lab's own text and may carry Rich
    markup; each value placed into it (`str.format` fields, specs and all) is `shown`, so a run
    id, a file name or an error prints as itself, whatever brackets or escapes it holds."""
    line = _SHOWN.vformat(template, values, named)
    (to or console).print(line, highlight=False, soft_wrap=True)


def note(line: Any) -> None:
    """A line that is data from end to end (what the stack or a trial says as it goes)."""
    say("{}", line)


def _cell(value: Any) -> Any:
    """A table cell: a Rich object lab made (a styled `Text`) as it is, anything else `shown`."""
    if value is None or (is_renderable(value) and not isinstance(value, str)):
        return value
    return shown(value)


class DataTable(Table):
    """A table whose title, headers and cells are data: each goes through `shown`, so nothing a
    job, a file or a service wrote is read as markup or reaches the terminal as a control
    sequence. A cell lab styles itself is a `rich.text.Text`."""

    def __init__(self, *headers: Any, title: Any = None, caption: Any = None, **kwargs: Any):
        super().__init__(*headers, title=_cell(title), caption=_cell(caption), **kwargs)

    def add_column(self, header: Any = "", *args: Any, **kwargs: Any) -> None:
        super().add_column(_cell(header), *args, **kwargs)

    def add_row(self, *cells: Any, **kwargs: Any) -> None:
        super().add_row(*(_cell(c) for c in cells), **kwargs)


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
