"""Uniforms that every language lab drives computes bit for bit: `u(seed, key, attempt, index)`.

A job's draws must be the same whether a Python worker or a Node one runs it ("the same run
fails the same jobs"), so they cannot come from a language's own generator (Python's Mersenne
Twister seeded from a string hash has no JavaScript twin). They come from Philox-2x64-10
(Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011; the Random123
library): a counter-based generator, a keyed bijection of a 128-bit counter, so

* each draw is a pure function of its coordinates, with no state to carry or replay;
* within one seed two different `(key, attempt, index)` never share an output (a bijection);
* it needs 64-bit multiplication, xor and shifts only: exact with Python's integers and
  JavaScript's `BigInt`, and checked against Random123's own known answers.

The spec, with its byte order and constants, is `docs/reference/portable-random.md`; its twin
is `targets/bullmq/lib/portable.js`; `targets/bullmq/test/vectors.json` holds the answers both
must give. Pure: no I/O.

    philox key   = seed                               (0 ≤ seed < 2⁶⁴)
    counter      = (key64(key), attempt · 2³² + index) (attempt, index < 2³²)
    u            = (first output word >> 11) · 2⁻⁵³   (0 ≤ u ≤ 1 − 2⁻⁵³)
"""

from __future__ import annotations

from functools import lru_cache

MASK64 = (1 << 64) - 1
PHILOX_M = 0xD2B74407B1CE6E93  # Random123's PHILOX_M2x64_0
PHILOX_W = 0x9E3779B97F4A7C15  # Random123's PHILOX_W64_0 (the golden ratio), bumps the key
ROUNDS = 10
FNV_OFFSET = 0xCBF29CE484222325  # FNV-1a 64's offset basis
FNV_PRIME = 0x100000001B3
SCALE = 2.0**-53

# Which index each draw of a job uses, one place (the spec lists them too).
GATE_ATTEMPT = 0  # the permanent-failure gate's stream: attempt 0, which no delivery has
SERVICE, FAIL, DOC = 0, 1, 2  # the synthetic kind's draws within an attempt
AGENT_DRAWS = 5  # the agent kind: per step, action, ms, n, word, fail (index 5·(step−1) + j)


def fnv1a64(data: bytes) -> int:
    """FNV-1a, 64 bits, over `data`."""
    h = FNV_OFFSET
    for byte in data:
        h = ((h ^ byte) * FNV_PRIME) & MASK64
    return h


@lru_cache(maxsize=1024)
def _text_key(key: str) -> int:
    try:
        data = key.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate has no UTF-8 form; JavaScript would quietly write U+FFFD instead.
        raise ValueError("a key must be valid Unicode (it has a lone surrogate)") from None
    return fnv1a64(data)


def key64(key: int | str) -> int:
    """A job's key as 64 bits: an integer (a run's `seq`) as itself, a text (a single job's
    id) as FNV-1a 64 of its UTF-8 bytes."""
    if isinstance(key, str):
        return _text_key(key)
    if isinstance(key, bool) or not isinstance(key, int):
        raise TypeError(f"a key is an integer or a text, not {type(key).__name__}")
    if not 0 <= key <= MASK64:
        raise ValueError("an integer key is from 0 to 2^64 - 1")
    return key


@lru_cache(maxsize=256, typed=True)  # typed: True is not the seed 1
def _round_keys(seed: int) -> tuple[int, ...]:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MASK64:
        raise ValueError("a seed is an integer from 0 to 2^64 - 1")
    return tuple((seed + i * PHILOX_W) & MASK64 for i in range(ROUNDS))


def _words(c0: int, c1: int, keys: tuple[int, ...]) -> tuple[int, int]:
    for k in keys:
        product = PHILOX_M * c0
        c0, c1 = (product >> 64) ^ k ^ c1, product & MASK64
    return c0, c1


def philox2x64(c0: int, c1: int, key: int) -> tuple[int, int]:
    """Philox-2x64-10 of the counter `(c0, c1)` under `key`: Random123's `philox2x64`."""
    return _words(c0, c1, _round_keys(key))


def _counter_low(attempt: int, index: int) -> int:
    if not (0 <= attempt < 2**32 and 0 <= index < 2**32):
        raise ValueError("attempt and index are from 0 to 2^32 - 1")
    return attempt << 32 | index


def u(seed: int, key: int | str, attempt: int, index: int) -> float:
    """The uniform at `(seed, key, attempt, index)`: 53 bits, 0 ≤ u ≤ 1 − 2⁻⁵³."""
    return Stream(seed, key, attempt).at(index)


class Stream:
    """One attempt's uniforms: `at(index)` by position (what a kind uses, so a draw it skips
    shifts nothing), or `random()` for the next one from index 0 (what a distribution's
    `sample` also takes, like `random.Random`)."""

    __slots__ = ("_c0", "_high", "_keys", "_next")

    def __init__(self, seed: int, key: int | str, attempt: int):
        self._keys = _round_keys(seed)
        self._c0 = key64(key)
        self._high = _counter_low(attempt, 0)
        self._next = 0

    def at(self, index: int) -> float:
        if not 0 <= index < 2**32:
            raise ValueError("an index is from 0 to 2^32 - 1")
        return (_words(self._c0, self._high | index, self._keys)[0] >> 11) * SCALE

    def random(self) -> float:
        index, self._next = self._next, self._next + 1
        return self.at(index)
