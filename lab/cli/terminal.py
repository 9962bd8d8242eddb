"""Where the command line writes: figures on stdout, everything else on stderr, and an error as
one line naming the problem (the traceback only with `lab -v`)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

console = Console(stderr=True)
out = Console(highlight=False)


def say_error(message: str, verbose: bool = False, bug: bool = False) -> int:
    """One line naming the problem; exit code 1."""
    if verbose:
        console.print_exception()
    hint = " (lab -v … shows where)" if bug and not verbose else ""
    first = message.strip().splitlines()[0] if message.strip() else "failed"
    console.print(f"[red]lab: {escape(first)}{hint}[/red]", highlight=False)
    return 1


def bad_input(message: str) -> int:
    """What was asked cannot be done as asked: one line, exit code 2 (as argparse does)."""
    say_error(message)
    return 2
