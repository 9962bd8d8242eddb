"""`lab completion bash|zsh`: a completion script made from the parser itself, so it knows every
command and option the installed `lab` has.

    eval "$(lab completion bash)"        # in ~/.bashrc
    eval "$(lab completion zsh)"         # in ~/.zshrc
"""

from __future__ import annotations

import argparse
from typing import Any

from lab.cli import grammar


def register(sub: Any) -> None:
    completion = sub.add_parser("completion", help="print a shell completion script")
    completion.add_argument("shell", choices=["bash", "zsh"], help="the shell it is for")
    completion.set_defaults(handler=cmd_completion)


def words(parser: argparse.ArgumentParser) -> dict[str, list[str]]:
    """Command path ("" for the top, "job add" …) → the words that may follow it."""
    table: dict[str, list[str]] = {}
    for path, child in [((), parser), *((p, c) for p, c, _ in grammar.walk(parser))]:
        options = [o for a in grammar.own_arguments(child) for o in a.option_strings]
        table[" ".join(path)] = [*grammar.subcommands(child), *options, "--help"]
    return table


def script(parser: argparse.ArgumentParser, shell: str) -> str:
    cases = "\n".join(
        f'        "{path}") words="{" ".join(found)}" ;;' for path, found in words(parser).items()
    )
    bash = f"""_lab_complete() {{
    local path="" word i
    for ((i = 1; i < COMP_CWORD; i++)); do
        word="${{COMP_WORDS[i]}}"
        case "$word" in -*) continue ;; esac
        case " $(_lab_words "$path") " in *" $word "*) path="${{path:+$path }}$word" ;; esac
    done
    COMPREPLY=($(compgen -W "$(_lab_words "$path")" -- "${{COMP_WORDS[COMP_CWORD]}}"))
}}
_lab_words() {{
    local words=""
    case "$1" in
{cases}
    esac
    echo "$words"
}}
complete -o default -F _lab_complete lab
"""
    if shell == "zsh":
        return "autoload -U +X bashcompinit && bashcompinit\n" + bash
    return bash


def cmd_completion(args: argparse.Namespace, _settings: Any) -> int:
    # The whole parser comes with the arguments (`build_parser` puts it there): this module is
    # one of its commands, so it cannot import the module that gathers them.
    print(script(args.parser, args.shell), end="")
    return 0
