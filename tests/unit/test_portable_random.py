"""The portable generator gives Random123's and FNV's published answers, its uniforms are 53-bit
and even, the synthetic kind keeps its semantics on it, the committed vectors are what Python
computes now, and the JavaScript port (run with `node --test`) gives the same answers."""

from __future__ import annotations

import json
import math
import runpy
import shutil
import subprocess
from pathlib import Path

import pytest

from lab.runtime import distributions, portable
from lab.runtime.distributions import LAST_U
from workers import synthetic

ROOT = Path(__file__).resolve().parents[2]
BULLMQ = ROOT / "targets" / "bullmq"
M64 = portable.MASK64


def test_philox_gives_random123s_known_answers() -> None:
    # From Random123's kat_vectors: philox2x64, 10 rounds, counter, key -> output.
    assert portable.philox2x64(0, 0, 0) == (0xCA00A0459843D731, 0x66C24222C9A845B5)
    assert portable.philox2x64(M64, M64, M64) == (0x65B021D60CD8310F, 0x4D02F3222F86DF20)
    assert portable.philox2x64(0x243F6A8885A308D3, 0x13198A2E03707344, 0xA4093822299F31D0) == (
        0x0A5E742C2997341C,
        0xB0F883D38000DE5D,
    )


def test_a_text_key_is_fnv1a_64_of_its_utf8_bytes() -> None:
    # The FNV reference's own answers.
    assert portable.fnv1a64(b"") == 0xCBF29CE484222325
    assert portable.fnv1a64(b"a") == 0xAF63DC4C8601EC8C
    assert portable.fnv1a64(b"foobar") == 0x85944171F73967E8
    assert portable.key64("foobar") == 0x85944171F73967E8
    assert portable.key64("日本") == portable.fnv1a64("日本".encode())
    assert portable.key64(12) == 12  # a seq is its own key


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ((-1, 0, 1, 0), ValueError),
        ((2**64, 0, 1, 0), ValueError),
        ((True, 0, 1, 0), ValueError),  # a bool is not a seed, though Python calls it an int
        ((0, -1, 1, 0), ValueError),
        ((0, 1.0, 1, 0), TypeError),
        ((0, "lone \ud800", 1, 0), ValueError),  # JavaScript would hash U+FFFD instead
        ((0, 0, 2**32, 0), ValueError),
        ((0, 0, 1, -1), ValueError),
    ],
)
def test_what_cannot_be_drawn_the_same_everywhere_is_refused(args: tuple, error: type) -> None:
    with pytest.raises(error):
        portable.u(*args)


def test_uniforms_are_53_bit_and_even_and_a_stream_reads_them_in_order() -> None:
    stream = portable.Stream(42, "job-1", 1)
    assert [stream.random() for _ in range(3)] == [portable.u(42, "job-1", 1, i) for i in (0, 1, 2)]
    n, bins = 40_000, 20
    draws = [portable.u(7, seq, 1, 0) for seq in range(n)]
    assert all(0 <= x <= LAST_U and (x * 2**53).is_integer() for x in draws)
    counts = [0] * bins
    for x in draws:
        counts[int(x * bins)] += 1
    chi2 = sum((c - n / bins) ** 2 / (n / bins) for c in counts)
    assert chi2 < 43.8, counts  # 99.9 % point of chi-square with 19 degrees of freedom
    # Neighbouring seqs, attempts and indices are not related (a bijection: never equal).
    pairs = [
        (portable.u(7, s, 1, 0), portable.u(7, s, 2, 0), portable.u(7, s, 1, 1))
        for s in range(n // 4)
    ]
    for i in range(3):
        for j in range(i + 1, 3):
            xs, ys = [p[i] for p in pairs], [p[j] for p in pairs]
            assert abs(correlation(xs, ys)) < 0.04
    assert len(set(draws)) == n


def correlation(xs: list[float], ys: list[float]) -> float:
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    cov = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    return cov / math.sqrt(sum((x - mx) ** 2 for x in xs) * sum((y - my) ** 2 for y in ys))


@pytest.mark.parametrize("kind", distributions.KINDS)
def test_a_draw_is_the_quantile_at_one_uniform(kind: str) -> None:
    spec = next(s for s in vectors_module()["SPECS"] if s["dist"] == kind)
    dist = distributions.parse(spec, synthetic.MAX_SERVICE_MS)
    for u in (0.0, 0.3, LAST_U):
        assert dist.sample(u) == dist.quantile(u)
    stream = portable.Stream(1, 2, 3)
    assert dist.sample(stream) == dist.sample(portable.u(1, 2, 3, 0))


PAYLOAD = {
    "serviceMs": {"dist": "lognormal", "median": 80, "p99": 1200},
    "docBytes": {"dist": "uniform", "min": 100, "max": 300},
    "seed": 42,
}


def test_each_synthetic_draw_has_its_own_index_and_the_gate_its_own_stream() -> None:
    for seq in range(200):
        plain = synthetic.draw(PAYLOAD, seq, 1)
        # Turning failures on changes whether a job fails, never what else it draws.
        gated = synthetic.draw({**PAYLOAD, "failRate": 0.5, "permanentFailRate": 0.5}, seq, 1)
        assert (plain["serviceMs"], plain["docBytes"]) == (gated["serviceMs"], gated["docBytes"])
        assert gated["permanent"] == (portable.u(42, seq, portable.GATE_ATTEMPT, 0) < 0.5)
        assert gated["fails"] == (portable.u(42, seq, 1, portable.FAIL) < 0.5)
        later = synthetic.draw({**PAYLOAD, "permanentFailRate": 1.0}, seq, 2)
        assert not later["permanent"]  # the gate is drawn on the first attempt only


def vectors_module() -> dict:
    return runpy.run_path(str(ROOT / "scripts" / "portable_vectors.py"))


def test_the_committed_vectors_are_what_python_computes() -> None:
    committed = (BULLMQ / "test" / "vectors.json").read_text(encoding="utf-8")
    assert committed == vectors_module()["render"](), (
        "targets/bullmq/test/vectors.json is stale: .venv/bin/python scripts/portable_vectors.py"
    )
    found = json.loads(committed)
    assert len(found["uniforms"]) >= 200
    assert {c["seed"] for c in found["uniforms"]} >= {"0", "1", str(2**63 - 1)}
    assert {c["attempt"] for c in found["uniforms"]} == {0, 1, 2, 3}


def test_the_javascript_port_gives_the_same_answers() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not on PATH: the JavaScript half is checked where it is")
    done = subprocess.run(
        [node, "--test", "targets/bullmq/test/"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "# fail 0" in done.stdout and "# pass " in done.stdout


def test_the_bullmq_package_declares_node_20_and_pins_its_dependencies() -> None:
    package = json.loads((BULLMQ / "package.json").read_text())
    assert package["name"] == "lab-bullmq" and package["private"] is True
    assert package["engines"] == {"node": ">=20"} and "test" in package["scripts"]
    assert set(package["dependencies"]) == {"bullmq", "ioredis"} and not package.get(
        "devDependencies"
    )
    assert all(v[0].isdigit() for v in package["dependencies"].values())  # exact versions
    lock = json.loads((BULLMQ / "package-lock.json").read_text())
    assert lock["packages"][""]["dependencies"] == package["dependencies"]
    assert "targets/bullmq/node_modules/" in (ROOT / ".gitignore").read_text().splitlines()
