"""Writes `targets/bullmq/test/vectors.json`: the answers lab's Python gives for the portable
generator, the distributions and the kinds' draws, which the JavaScript port must give too.

    .venv/bin/python scripts/portable_vectors.py          # rewrite the file
    .venv/bin/python scripts/portable_vectors.py --check  # exit 1 if it is stale

`tests/unit/test_portable_random.py` fails when the committed file differs from what this
writes, and runs `node --test targets/bullmq/test/`, which checks JavaScript against it.
Integers that JSON numbers cannot hold exactly in JavaScript (seeds, big keys, 64-bit words) are
written as decimal or hex text.
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lab.runtime import distributions, portable  # noqa: E402
from lab.runtime.distributions import LAST_U, DistributionError  # noqa: E402
from lab.runtime.handlers import handler_for  # noqa: E402
from lab.runtime.payload import PayloadError  # noqa: E402
from workers import agent, synthetic  # noqa: E402

OUT = ROOT / "targets" / "bullmq" / "test" / "vectors.json"
M64 = portable.MASK64

# Random123's own known answers for philox2x64 with 10 rounds (its kat_vectors file).
PHILOX_KAT = [
    ((0, 0), 0, (0xCA00A0459843D731, 0x66C24222C9A845B5)),
    ((M64, M64), M64, (0x65B021D60CD8310F, 0x4D02F3222F86DF20)),
    ((0x243F6A8885A308D3, 0x13198A2E03707344), 0xA4093822299F31D0,
     (0x0A5E742C2997341C, 0xB0F883D38000DE5D)),
]  # fmt: skip
SEEDS = [0, 1, 42, 2**31 - 1, 2**53 - 1, 2**53 + 1, 2**63 - 1, M64]
TEXT_KEYS = ["", "job-1", "r-20240101-3", "日本語のジョブ", "rocket 🚀", "caf\u00e9", "cafe\u0301",
             "a" * 128]  # fmt: skip
INT_KEYS = [0, 1, 9_999_999, 2**32, 2**53 + 1, M64]
INDEXES = [0, 1, 2, 3, 4, 7, 1000, 2**32 - 1]
UNIFORMS = [0.0, 2**-53, 1e-9, 0.01, 0.25, 0.5, 0.9, 0.99, 0.999999, LAST_U]
HIGH = synthetic.MAX_SERVICE_MS
SPECS = [
    {"dist": "fixed", "value": 80},
    {"dist": "uniform", "min": 20, "max": 200},
    {"dist": "uniform", "min": 0.1, "max": 0.3},
    {"dist": "exponential", "mean": 80},
    {"dist": "exponential", "mean": 0.001},
    {"dist": "lognormal", "median": 80, "p99": 1200},
    {"dist": "lognormal", "median": 0.001, "p99": 600_000},
    {"dist": "pareto", "min": 20, "alpha": 1.5},
    {"dist": "pareto", "min": 0.5, "alpha": 0.1},
    {"dist": "pareto", "min": 20, "alpha": 100},
    {"dist": "empirical", "values": [12, 40, 41, 300]},
    {"dist": "empirical", "values": [0.5, 7, 7, 7, 1e5, 3, 0]},
]
REFUSED = [
    "not an object",
    {"dist": "gamma"},
    {"dist": "fixed", "value": "80"},
    {"dist": "fixed", "value": 10**9},
    {"dist": "uniform", "min": 9, "max": 3},
    {"dist": "lognormal", "median": 80, "p99": 50},
    {"dist": "lognormal", "median": 0.0001, "p99": 50},
    {"dist": "pareto", "min": 0, "alpha": 1.5},
    {"dist": "pareto", "min": 20, "alpha": 0.09},
    {"dist": "empirical", "values": []},
    {"dist": "empirical", "values": [1, -1]},
    {"dist": "exponential", "mean": 80, "rate": 2},
]
PAYLOADS = [
    {},
    {"serviceMs": {"dist": "lognormal", "median": 80, "p99": 1200}, "failRate": 0.05,
     "permanentFailRate": 0.01, "docBytes": {"dist": "uniform", "min": 100, "max": 300}},
    {"serviceMs": {"dist": "exponential", "mean": 50}, "failRate": 0.5,
     "permanentFailRate": 0.3, "docBytes": {"dist": "empirical", "values": [0, 10, 1000]}},
    {"serviceMs": {"dist": "pareto", "min": 20, "alpha": 1.5}, "failRate": 1.0,
     "docBytes": {"dist": "exponential", "mean": 2000}, "cpuShare": 0.5},
]  # fmt: skip
REFUSED_PAYLOADS = [
    ("synthetic", {"serviceMs": 80}),
    ("synthetic", {"serviceMs": {"dist": "lognormal", "median": 80, "p99": 50}}),
    ("synthetic", {"docBytes": {"dist": "empirical", "values": [1, -1]}}),
    ("synthetic", {"failRate": 1.5}),
    ("synthetic", {"cpuShare": -0.1}),
    ("synthetic", {"seed": -1}),
    ("synthetic", {"speed": 3}),
    ("sleep", {"seconds": 61}),
    ("sleep", {"seconds": "1"}),
    ("index", {"failAttempts": 1.5}),
    ("index", {"data": {"deep": [[[[[[[[[1]]]]]]]]]}}),
    ("index", {"data": {f"k{i}": i for i in range(101)}}),
    ("agent", {"durationSeconds": 0.5, "stepIntervalSeconds": 1}),
    ("agent", {"durationSeconds": 3600, "stepIntervalSeconds": 0.01}),
    ("agent", {"failAtStep": 0}),
    ("agent", {"url": 3}),
]


def hex64(x: int) -> str:
    return f"{x:016x}"


def uniform_cases() -> list[dict[str, Any]]:
    keys: list[tuple[str, Any]] = [("int", k) for k in INT_KEYS] + [("text", k) for k in TEXT_KEYS]
    cases = []
    for i, (seed, (kind, key)) in enumerate(itertools.product(SEEDS, keys)):
        for j in range(2):  # 8 seeds × 14 keys × 2: every attempt and index meets every key
            attempt, index = (i + j) % 4, INDEXES[(2 * i + j) % len(INDEXES)]
            x0 = portable.philox2x64(portable.key64(key), attempt << 32 | index, seed)[0]
            cases.append({
                "seed": str(seed), "keyType": kind, "key": str(key), "attempt": attempt,
                "index": index, "x0": hex64(x0), "bits": str(x0 >> 11),
                "u": portable.u(seed, key, attempt, index),
            })  # fmt: skip
    return cases


def quantile_cases() -> list[dict[str, Any]]:
    cases = []
    for spec in SPECS:
        dist = distributions.parse(spec, HIGH)
        stream = portable.Stream(7, "quantiles", 1)
        us = UNIFORMS + [stream.random() for _ in range(6)]
        cases.append({
            "spec": spec, "high": HIGH, "exact": spec["dist"] in ("fixed", "uniform", "empirical"),
            "at": [[u, dist.sample(u)] for u in us], "mean": dist.mean(),
        })  # fmt: skip
    return cases


def refused_cases() -> list[dict[str, Any]]:
    cases = []
    for spec in REFUSED:
        try:
            distributions.parse(spec, HIGH)
        except DistributionError as exc:
            cases.append({"spec": spec, "high": HIGH, "field": exc.field, "message": str(exc)})
            continue
        raise AssertionError(f"{spec} was accepted")
    return cases


def synthetic_cases() -> list[dict[str, Any]]:
    cases = []
    keys: list[Any] = [0, 1, 2, 3, 17, 9_999_999, "job-1", "r-1-42"]
    for n, payload in enumerate(PAYLOADS):
        for seed in (0, 42, 2**63 - 1) if n else (0,):
            for key, attempt in itertools.product(keys, (1, 2, 3)):
                drawn = synthetic.draw({**payload, "seed": seed}, key, attempt)
                cases.append({
                    "payload": payload, "seed": str(seed), "key": key, "attempt": attempt,
                    "drawn": drawn,
                    "exact": all(payload.get(f, {}).get("dist") in (None, "fixed", "uniform",
                                 "empirical") for f in ("serviceMs", "docBytes")),
                })  # fmt: skip
    return cases


def refused_payload_cases() -> list[dict[str, Any]]:
    cases = []
    for kind, payload in REFUSED_PAYLOADS:
        try:
            handler_for(kind).check(payload)
        except PayloadError as exc:
            cases.append({"kind": kind, "payload": payload, "field": exc.field})
            continue
        raise AssertionError(f"{kind} accepted {payload}")
    return cases


def vectors() -> dict[str, Any]:
    """Everything the JavaScript port is held to, in the order the spec explains it."""
    return {
        "about": "written by scripts/portable_vectors.py; see docs/reference/portable-random.md",
        "philox2x64_10": [
            {
                "counter": [hex64(c[0]), hex64(c[1])],
                "key": hex64(k),
                "out": [hex64(o[0]), hex64(o[1])],
            }
            for c, k, o in PHILOX_KAT
        ],
        "fnv1a64": [
            {"text": t, "hash": hex64(portable.key64(t))} for t in ["a", "foobar", *TEXT_KEYS]
        ],
        "uniforms": uniform_cases(),
        "z99": distributions.Z99,
        "normalInvCdf": [
            [p, distributions.NormalDist().inv_cdf(p)]
            for p in (2**-54, 1e-300, 1e-12, 0.001, 0.02, 0.075, 0.5, 0.6, 0.925, 0.99, LAST_U)
        ],
        "quantiles": quantile_cases(),
        "refused": refused_cases(),
        "synthetic": synthetic_cases(),
        "refusedPayloads": refused_payload_cases(),
        "agent": [
            {
                "jobId": job_id,
                "attempt": attempt,
                "steps": [
                    list(agent.step(job_id, attempt, n, "https://example.com/"))
                    for n in range(1, 13)
                ],
            }
            for job_id, attempt in (("job-1", 1), ("job-1", 2), ("r-7-3", 1), ("ジョブ", 3))
        ],
        "round3": [
            [x, round(x, 3)]
            for x in (2.0625, 0.0625, 1.0005, 0.1235, 2.5, 33.268441225130815, 1e-4, 599999.9995)
        ],
        "roundEven": [[x, round(x)] for x in (0.5, 1.5, 2.5, 3.49, 4.5000001, 10.0)],
    }


def render() -> str:
    return json.dumps(vectors(), indent=1, ensure_ascii=False) + "\n"


def main() -> int:
    text = render()
    if "--check" in sys.argv[1:]:
        stale = not OUT.is_file() or OUT.read_text(encoding="utf-8") != text
        print(f"{OUT.relative_to(ROOT)} is {'stale' if stale else 'current'}")
        return 1 if stale else 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
