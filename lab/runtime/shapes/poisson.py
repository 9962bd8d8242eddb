"""Poisson arrivals that any second of can be known at once: counts in a binary tree of time.

A Poisson process of rate λ has, in any interval, a Poisson count whose points are spread
uniformly; so each block of 2^24 s holds a Poisson(λ·2^24) count, and a node's count splits
between its two halves as a Binomial(n, ½). Every draw is seeded by the node it is for, so the
count before second k is a walk down 24 levels (O(log t), whatever k) and the same seed gives
the same schedule. Second k's arrivals are its count of uniform offsets, seeded by k.

Draws: Poisson by Knuth's product of uniforms below 30, else Hörmann's PTRS (exact, O(1));
Binomial(n, ½) as the number of ones in n random bits (exact) up to 2^20 trials, and past that
as a rounded normal of the same mean and variance (the binomial is symmetric: its distance from
the normal is O(1/n) in total variation, under 10⁻⁶ there). Pure: no I/O.
"""

from __future__ import annotations

import bisect
import math
import random

LEVELS = 24
BLOCK_S = 1 << LEVELS  # about 194 days
EXACT_BITS = 1 << 20


def poisson_draw(rng: random.Random, lam: float) -> int:
    """One draw of a Poisson count of mean `lam`."""
    if lam < 30:
        limit, k, product = math.exp(-lam), 0, rng.random()
        while product > limit:
            k += 1
            product *= rng.random()
        return k
    slam, loglam = math.sqrt(lam), math.log(lam)
    b = 0.931 + 2.53 * slam
    a = -0.059 + 0.02483 * b
    inv_alpha = 1.1239 + 1.1328 / (b - 3.4)
    vr = 0.9277 - 3.6224 / (b - 2)
    while True:
        u, v = rng.random() - 0.5, rng.random()
        us = 0.5 - abs(u)
        k = math.floor((2 * a / us + b) * u + lam + 0.43)
        if us >= 0.07 and v <= vr:
            return k
        if k < 0 or (us < 0.013 and v > us):
            continue
        if (math.log(v) + math.log(inv_alpha) - math.log(a / (us * us) + b)
                <= -lam + k * loglam - math.lgamma(k + 1)):  # fmt: skip
            return k


def half_of(rng: random.Random, n: int) -> int:
    """How many of `n` points fall in the first half: Binomial(n, ½)."""
    if n <= EXACT_BITS:
        return rng.getrandbits(n).bit_count() if n else 0
    drawn = round(rng.gauss(n / 2, math.sqrt(n) / 2))
    return min(n, max(0, drawn))


class Arrivals:
    """The arrivals of a Poisson process of `per_second` mean, seeded by `seed`."""

    def __init__(self, per_second: float, seed: int):
        self.per_second, self.seed = per_second, seed
        self._blocks: list[int] = []  # count of each whole block, in order
        self._second: tuple[int, int, int] = (-1, 0, 0)  # (k, before k, in k)
        self._offsets: tuple[int, list[float]] = (-1, [])

    def _rng(self, *node: int) -> random.Random:
        return random.Random(f"{self.seed}:poisson:" + ":".join(map(str, node)))

    def _block(self, b: int) -> int:
        while len(self._blocks) <= b:
            i = len(self._blocks)
            self._blocks.append(poisson_draw(self._rng(i), self.per_second * BLOCK_S))
        return self._blocks[b]

    def second(self, k: int) -> tuple[int, int]:
        """(arrivals before second k, arrivals in second k), for k ≥ 0."""
        if self._second[0] == k:
            return self._second[1], self._second[2]
        b, r = divmod(k, BLOCK_S)
        before = sum(self._block(i) for i in range(b))
        n, node = self._block(b), 0
        for level in range(LEVELS, 0, -1):  # a node of 2^level seconds: its halves
            left = half_of(self._rng(b, level, node), n)
            if r >> (level - 1) & 1:
                before, n, node = before + left, n - left, 2 * node + 1
            else:
                n, node = left, 2 * node
        self._second = (k, before, n)
        return before, n

    def offsets(self, k: int) -> list[float]:
        """Offsets (0 ≤ offset < 1) of the arrivals in second k, in order."""
        if self._offsets[0] != k:
            n = self.second(k)[1]
            rng = self._rng(-1, k)
            self._offsets = (k, sorted(rng.random() for _ in range(n)))
        return self._offsets[1]

    def count(self, t: float) -> float:
        """Arrivals in [0, t]."""
        t = max(t, 0.0)
        k = int(t)
        before, _ = self.second(k)
        return float(before + bisect.bisect_right(self.offsets(k), t - k))

    def seconds_until(self, jobs: float, after: float, look_s: int = 60) -> float | None:
        """When the count reaches `jobs`: exactly within `look_s` seconds of `after` (what the
        scheduler's next tick needs), else from the mean rate (an ETA)."""
        k = int(max(after, 0.0))
        for second in range(k, k + look_s):
            before, n = self.second(second)
            if before + n >= jobs:
                needed = int(math.ceil(jobs - before))
                offsets = self.offsets(second)
                return max(after, second + offsets[max(needed, 1) - 1])
        if self.per_second <= 0:
            return None
        before, n = self.second(k + look_s)
        return k + look_s + (jobs - before) / self.per_second
