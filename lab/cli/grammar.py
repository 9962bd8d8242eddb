"""The one shape every `lab` command has: `lab NOUN VERB [options]`, global flags anywhere.

Kept apart from the commands so the parser, the completion scripts, the CLI reference
(`docs/reference/cli.md`) and the test that walks the docs all read the same tree:

- `normalise(argv)` turns the short forms people already type into the full ones: the run verbs
  that were top-level (`lab status`, `lab stop`, `lab runs`, `lab pause`, `lab resume`), `lab run`
  with run options and no verb (`lab run start`), `lab capacity` with options and no verb
  (`lab capacity run`), `lab report NAME` (`lab report run NAME`);
- `finish(parser)` gives every command its description, shows every argument's default, and
  accepts the global flags after the command too (`lab run status -v`);
- `walk(parser)` yields every command with its path, for the completion, the reference and tests;
- `noun(sub, name, help)` adds a NOUN whose VERBs its module then adds.
"""

from __future__ import annotations

import argparse
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

ALIASES = {
    "status": ["run", "status"],
    "stop": ["run", "stop"],
    "runs": ["run", "list"],
    "pause": ["run", "pause"],
    "resume": ["run", "resume"],
}
"""Top-level verbs kept from before the noun-verb grammar, and what they stand for."""

OPTIONS_FIRST = {"run": "start", "capacity": "run"}
"""Nouns given options straight away, and the verb that stands for (`lab run --x N`)."""

GLOBAL_TAKING_VALUE = ("--log-file",)
HELP = ("-h", "--help")


def normalise(argv: Sequence[str], drills: Collection[str] = ()) -> list[str]:
    """`argv` with the short forms spelt out (see the module's docstring)."""
    args = list(argv)
    at = _command_index(args)
    if at is None:
        return args
    command = args[at]
    if command in ALIASES:
        return args[:at] + ALIASES[command] + args[at + 1 :]
    after = args[at + 1] if at + 1 < len(args) else None
    if (
        command in OPTIONS_FIRST
        and after is not None
        and after.startswith("-")
        and (after not in HELP)
    ):
        return args[: at + 1] + [OPTIONS_FIRST[command]] + args[at + 1 :]
    if command == "report" and after in drills:
        return args[: at + 1] + ["run"] + args[at + 1 :]
    return args


def _command_index(args: list[str]) -> int | None:
    """Where the command word is: the first argument that is neither a global flag nor its
    value."""
    skip = False
    for i, arg in enumerate(args):
        if skip:
            skip = False
            continue
        if arg in GLOBAL_TAKING_VALUE:
            skip = True
            continue
        if not arg.startswith("-"):
            return i
    return None


class HelpFormatter(argparse.HelpFormatter):
    """argparse's own, with each argument's default shown when it has a meaningful one."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        # `is`, not `in`: 0 == False, and a default of 0 is worth showing.
        if "%(default)" in text or any(default is v for v in (None, False, argparse.SUPPRESS)):
            return text
        if isinstance(default, (list, tuple)):
            if not default:
                return text
            default = ",".join(str(d) for d in default)
        elif isinstance(default, Path):
            default = str(default)
        return f"{text} (default: {str(default).replace('%', '%%')})"


def noun(
    sub: Any, name: str, help: str, dest: str = "action", metavar: str = "ACTION", **defaults: Any
) -> Any:
    """`lab NAME VERB`: the noun's parser under `sub`, with `defaults` (one `handler` for all its
    verbs, say), and the subparsers its verbs go into (a verb is required; `args.<dest>` names
    the one given)."""
    parser = sub.add_parser(name, help=help)
    parser.set_defaults(**defaults)
    return parser.add_subparsers(dest=dest, required=True, metavar=metavar)


def global_flags(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """`-v` and `--log-file`: on the top parser with their defaults, on every command with none
    (so a flag given before the command is not reset by the command's parser)."""
    extra: dict[str, Any] = {"default": argparse.SUPPRESS} if suppress else {}
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="debug logging; errors show where", **extra
    )
    parser.add_argument(
        "--log-file",
        type=Path,
        metavar="PATH",
        help="also log to this file, rotated past LAB_LOG_MAX_BYTES",
        **extra,
    )


def subcommands(parser: argparse.ArgumentParser) -> dict[str, tuple[argparse.ArgumentParser, str]]:
    """A parser's commands: name → (parser, one-line help)."""
    out: dict[str, tuple[argparse.ArgumentParser, str]] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, child in action.choices.items():
                out[name] = (child, helps.get(name, ""))
    return out


def walk(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser, str]]:
    """Every command under `parser`, depth first: (path, parser, help)."""
    for name, (child, text) in subcommands(parser).items():
        yield (*path, name), child, text
        yield from walk(child, (*path, name))


def finish(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Descriptions, shown defaults and global flags for every command under `parser`."""
    parser.formatter_class = HelpFormatter
    for _path, child, text in walk(parser):
        child.formatter_class = HelpFormatter
        if not child.description:
            child.description = text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")
        global_flags(child, suppress=True)
    return parser


def own_arguments(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """A command's arguments other than help and its subcommands."""
    return [
        a
        for a in parser._actions
        if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))
    ]


def catalogue(sub: Any, name: str, help: str, item: str, listed: tuple[str, Any],
              shown: tuple[str, Any]) -> None:  # fmt: skip
    """`lab NAME list|show ITEM`, each with `--json`: a catalogue of what this lab offers (kinds,
    targets), read locally. `listed` and `shown` are each a verb's help and its handler."""
    actions = noun(sub, name, help)
    verb = actions.add_parser("list", help=listed[0])
    verb.add_argument("--json", action="store_true", help=f"every {name} described, as JSON")
    verb.set_defaults(handler=listed[1])
    verb = actions.add_parser("show", help=shown[0])
    verb.add_argument(item, help=f"a {name} (see lab {name} list)")
    verb.add_argument("--json", action="store_true", help="as JSON")
    verb.set_defaults(handler=shown[1])
