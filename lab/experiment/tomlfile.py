"""An experiment file's text into data, every number bounded before anything converts it.

`tomllib` turns a 5,000-digit integer into a `ValueError` of Python's own and `x = inf` into a
float no check expects, so before it runs, one linear pass over the text (`scan`) refuses a
number longer than `MAX_NUMBER_CHARS`, a value nested deeper than `MAX_DEPTH` and a key of more
parts; tomllib then hands every float over as text (`Float`), and `bounded` turns each into a
finite float, or names its key. `bounded` also checks what `Spec.of` is given in code: whole
numbers within 2^53, finite floats, text keys, at most `MAX_DEPTH` deep. Only ASCII counts as a
digit here (TOML's own grammar; `str.isdigit` is not used).
"""

from __future__ import annotations

import math
import re
import tomllib
from pathlib import Path
from typing import Any

MAX_FILE_BYTES = 256 * 1024  # a long experiment file is a few KB
MAX_NUMBER_CHARS = 40  # a date-time with an offset and fractional seconds fits
MAX_DEPTH = 32
MAX_WHOLE_BITS = 53  # the whole numbers a float and JSON hold exactly
DIGITS = frozenset("0123456789")
TOO_LONG = f"a number of at most {MAX_NUMBER_CHARS} characters"


class TomlError(ValueError):
    """The file's text cannot be an experiment; the message starts with the key at fault."""

    def __init__(self, where: str, problem: str):
        super().__init__(f"{(where or 'file')[:80]}: {problem}")


class Float:
    """A TOML float as its text, until `bounded` has checked it (tomllib calls `float` on
    whatever it finds, `inf` and `nan` included)."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text

    def number(self, where: str) -> float:
        try:
            value = float(self.text) if len(self.text) <= MAX_NUMBER_CHARS else math.inf
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise TomlError(where, f"{self.text[:20]} is not a finite number")
        return value


def read(path: str | Path) -> bytes:
    """The file's bytes, at most `MAX_FILE_BYTES` of them."""
    try:
        with Path(path).open("rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise TomlError("file", f"cannot be read ({exc.strerror})") from None
    if len(raw) > MAX_FILE_BYTES:
        raise TomlError("file", f"larger than {MAX_FILE_BYTES:,} bytes")
    return raw


def loads(raw: bytes) -> dict[str, Any]:
    """An experiment file's data, floats still `Float` (see `bounded`)."""
    if len(raw) > MAX_FILE_BYTES:
        raise TomlError("file", f"larger than {MAX_FILE_BYTES:,} bytes")
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        raise TomlError("file", "not UTF-8 text") from None
    scan(text)
    try:
        return tomllib.loads(text, parse_float=Float)
    except (ValueError, RecursionError) as exc:  # TOMLDecodeError is a ValueError
        raise TomlError("file", f"not TOML ({str(exc)[:120]})") from None


# One token of TOML's text: strings as TOML reads them (multi-line forms first; one left open
# runs to where tomllib will refuse it), comments, bare words (keys, numbers, dates, booleans).
TOKEN = re.compile(
    r"""
    (?P<space>[^\[\]{}=\n\#"'A-Za-z0-9_+\-.:]+)  # nothing that opens, closes or names
    | (?P<comment>\#[^\n]*)
    | (?P<newline>\n)
    | (?P<string>"{3}(?:[^"\\]|\\.|"(?!""))*(?:"{3,5})?
                | '{3}(?:[^']|'(?!''))*(?:'{3,5})?
                | "(?:[^"\\\n]|\\.)*"?
                | '[^'\n]*'?)
    | (?P<bare>[A-Za-z0-9_+\-.:]+)
    | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)


def scan(text: str) -> None:
    """Refuse, naming the key, a number longer than `MAX_NUMBER_CHARS`, arrays or inline tables
    nested deeper than `MAX_DEPTH`, or a key of more parts, before tomllib reads the text.
    Strings and comments are skipped as TOML reads them; one pass, linear in the text."""
    table, key, depth, in_value = "", "", 0, False
    i, n = 0, len(text)
    while i < n:
        token = TOKEN.match(text, i)
        assert token is not None  # `other` matches any character
        kind, word, i = token.lastgroup, token.group(), token.end()
        if kind == "newline" and depth == 0:
            key, in_value = "", False
        elif kind in ("string", "bare") and not in_value:
            key += word
        elif kind == "bare" and len(word) > MAX_NUMBER_CHARS and word.lstrip("+-")[:1] in DIGITS:
            raise TomlError(_where(table, key), TOO_LONG)
        elif kind != "other":
            continue
        elif not in_value and word == "[" and not key:  # a table header: [run], [[slo]]
            end = _line_end(text, i)
            table = text[i - 1 : end].split("]")[0].lstrip("[ \t").strip()
            _parts(table, "")
            i = end
        elif not in_value and word == "=":
            _parts(table, key)
            in_value = True
        elif in_value and word in ("[", "{"):
            depth += 1
            if depth + _parts(table, key) > MAX_DEPTH:
                raise TomlError(_where(table, key), f"nested more than {MAX_DEPTH} deep")
        elif in_value and word in ("]", "}"):
            depth = max(0, depth - 1)


def _where(table: str, key: str) -> str:
    return ".".join(part for part in (table, key) if part)


def _parts(table: str, key: str) -> int:
    """How deep a key reaches (its dotted parts and its table's), refused past `MAX_DEPTH`."""
    parts = (table.count(".") + 1 if table else 0) + (key.count(".") + 1 if key else 0)
    if parts > MAX_DEPTH:
        raise TomlError(_where(table, key), f"nested more than {MAX_DEPTH} deep")
    return parts


def _line_end(text: str, i: int) -> int:
    end = text.find("\n", i)
    return len(text) if end < 0 else end


def bounded(value: Any, where: str = "", depth: int = 0) -> Any:
    """`value` with every `Float` a checked float; `TomlError` naming the key for a whole
    number past 2^53, a float that is not finite, a key that is not text, or nesting deeper
    than `MAX_DEPTH`. Recursion stops at that depth, so it cannot exhaust the stack."""
    if depth > MAX_DEPTH:
        raise TomlError(where, f"nested more than {MAX_DEPTH} deep")
    if isinstance(value, Float):
        return value.number(where)
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        if value.bit_length() > MAX_WHOLE_BITS:
            raise TomlError(where, f"a whole number from -2^{MAX_WHOLE_BITS} to 2^{MAX_WHOLE_BITS}")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TomlError(where, f"{value} is not a finite number")
        return value
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TomlError(where, "keys are text")
            out[key] = bounded(item, f"{where}.{key}" if where else key, depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        return [bounded(item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value)]
    return value  # a TOML date or time: refused by the key's own check as the wrong type
