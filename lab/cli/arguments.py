"""Argument types every command shares: a bad value is refused by argparse with its name and why,
before any service is touched."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from lab import targets

Number = TypeVar("Number", int, float)


def number(
    convert: Callable[[str], Number], noun: str, accept: Callable[[Number], bool], rule: str
) -> Callable[[str], Number]:
    """An argument type for numbers: `convert` the text, refused as not `noun` when it cannot
    be, then refused unless `accept`ed, saying what it must be (`rule`)."""

    def check(text: str) -> Number:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {noun}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"{text!r} must be {rule}")
        return value

    return check


positive_int = number(int, "a whole number", lambda v: v > 0, "greater than 0")
non_negative_int = number(int, "a whole number", lambda v: v >= 0, "0 or more")
# NaN and infinity convert, and are refused here: no count, rate or duration is either.
positive_float = number(
    float, "a number", lambda v: 0 < v < float("inf"), "a finite number greater than 0"
)


def moment(text: str) -> str:
    """A time the API takes (epoch ms or ISO 8601), checked here so a typo is named even when
    the API is down; passed on as written."""
    from lab.runtime.search import BadQuery, epoch_ms

    try:
        epoch_ms(text, "time")
    except BadQuery:
        raise argparse.ArgumentTypeError(
            f"{text[:40]!r} is not a time: give epoch milliseconds or ISO 8601 "
            "(2026-12-04T09:30:00Z)"
        ) from None
    return text


def kind_name(text: str) -> str:
    """A job kind of this lab's `workers/`, checked locally (`lab kind list` shows them)."""
    from lab.cli.kinds import check_kind

    problem = check_kind(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


def json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:  # not JSON, or an integer past Python's 4,300 digits
        raise argparse.ArgumentTypeError(f"payload is not JSON: {str(exc)[:200]}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("payload must be a JSON object, e.g. '{\"a\": 1}'")
    return value


def json_of(kind: type) -> Any:
    """An argument type for JSON text of one `kind` (list or dict)."""
    noun = "list" if kind is list else "object"

    def parse(text: str) -> Any:
        try:
            value = json.loads(text)
        except ValueError as exc:  # not JSON, or an integer past Python's 4,300 digits
            raise argparse.ArgumentTypeError(f"not JSON: {str(exc)[:200]}") from None
        if not isinstance(value, kind):
            raise argparse.ArgumentTypeError(f"must be a JSON {noun}")
        return value

    return parse


def service_names(choices: Iterable[str]) -> Callable[[str], tuple[str, ...]]:
    """A comma-separated subset of the services `choices` (`redis,rabbitmq`)."""
    allowed = tuple(choices)

    def parse(text: str) -> tuple[str, ...]:
        names = tuple(n.strip() for n in text.split(",") if n.strip())
        unknown = [n for n in names if n not in allowed]
        if unknown or not names:
            raise argparse.ArgumentTypeError(
                f"unknown service(s) {', '.join(unknown) or text!r}; "
                f"choose from {', '.join(allowed)}"
            )
        return names

    return parse


def positive_ints(text: str) -> list[int]:
    """`1000,2000` → [1000, 2000]."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: whole numbers, comma-separated") from None
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: one or more numbers greater than 0")
    return values


WORKER_FLAGS = ("prefetch", "batch", "linger_ms", "concurrency")
"""Flags that override a worker's settings wherever they appear (`lab worker`, `lab up`, bench)."""


def worker_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prefetch", type=positive_int, help="deliveries in hand (LAB_PREFETCH)")
    parser.add_argument(
        "--batch",
        type=positive_int,
        help="deliveries per Elasticsearch bulk request; 1 = per message (LAB_BATCH)",
    )
    parser.add_argument(
        "--linger-ms", type=positive_int, help="how long a batch may wait to fill (LAB_LINGER_MS)"
    )
    parser.add_argument(
        "--concurrency",
        type=positive_int,
        help="jobs of one-by-one kinds (e.g. agent) run at once per worker (LAB_CONCURRENCY)",
    )
    parser.add_argument(
        "--target",
        choices=targets.names(),
        help="whose workers to run: lab (its own worker, the default) or another framework's "
        "(lab target list)",
    )


def worker_args(args: argparse.Namespace) -> list[str]:
    """The worker flags given, as `lab worker` takes them (for the processes `lab up` starts)."""
    out = []
    for flag in WORKER_FLAGS:
        value = getattr(args, flag, None)
        if value is not None:
            out += [f"--{flag.replace('_', '-')}", str(value)]
    if getattr(args, "target", None) not in (None, targets.DEFAULT):
        out += ["--target", args.target]
    return out
