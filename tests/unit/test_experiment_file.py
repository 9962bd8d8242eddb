"""The experiment file is read like a request: whatever it holds, reading it raises only
`SpecError` naming the key (random TOML-ish data and text, huge numbers, `inf` and `nan`,
non-ASCII digits, deep nesting); the plan's size is refused from the level counts before any
configuration is built; a process setting's level is accepted exactly when the processes
accept it."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lab import config
from lab.experiment.factors import FACTORS, Setting
from lab.experiment.plan import estimate_s
from lab.experiment.spec import Spec, SpecError

BACKSTOP = "cannot be read as an experiment"  # the catch-all: no input may need it
BASE = {"name": "t", "repetitions": 1, "run": {"x": 100}}
# Each factor that sets the trial's processes → the `Settings` field it is (bounds: lab.config).
PROCESS_FACTORS = {c.type: c.setting for c in FACTORS if issubclass(c, Setting)}

NUMBERS = st.one_of(
    st.integers(),
    st.integers(min_value=10**60, max_value=10**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 1, 2**53, 2**53 + 1, 10_000_001, 65536, 1e400]),
)
TEXT = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["٣", "²", "ramp:٦٠٠..1200:60s", "ramp:600..1200:60s", "[/]", "=1+1",
                     "es-slow", "quorum", "index", "{\"type\": \"constant\", \"y\": NaN}",
                     "{" * 400, "1" * 450]),
)  # fmt: skip
LEAF = st.one_of(NUMBERS, TEXT, st.booleans())
VALUE = st.recursive(
    LEAF,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)
# Every registered factor (a new one is fuzzed too), payload names and a name no factor has.
FACTOR = st.sampled_from([*FACTORS.names, "payload.a", "payload.a.b", "payload..", "magic"])
DOCUMENT = st.fixed_dictionaries(
    {},
    optional={
        "name": st.one_of(st.just("t"), TEXT),
        "repetitions": st.one_of(st.just(2), NUMBERS),
        "order": st.one_of(st.just("random"), TEXT),
        "seed": NUMBERS,
        "warmupSeconds": NUMBERS,
        "procedure": st.sampled_from(["run", "throughput", "other"]),
        "run": st.one_of(
            st.dictionaries(
                st.sampled_from(["x", "y", "shape", "kind", "payload", "seed"]), VALUE, max_size=4
            ),
            VALUE,
        ),  # fmt: skip
        "factors": st.one_of(
            st.dictionaries(FACTOR, st.lists(VALUE, max_size=4), max_size=4), VALUE
        ),  # fmt: skip
        "slo": VALUE,
    },
)


def _only_spec_error(call: Callable[[], Spec]) -> None:
    try:
        spec = call()
    except SpecError as exc:
        assert BACKSTOP not in str(exc), str(exc)
        return
    for levels in spec.configurations[:20]:  # what a trial makes of an accepted file
        spec.setup(levels)
    estimate_s(spec)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DOCUMENT)
def test_any_data_gives_a_spec_or_a_spec_error(data: dict) -> None:
    _only_spec_error(lambda: Spec.of(data))


FRAGMENTS = st.sampled_from([
    "name = \"t\"\n", "[run]\n", "[factors]\n", "[[slo]]\n", "x = ", "y = ", "lingerMs = ",
    "workers = ", "\"payload.a\" = ", "shape = ", "1", "-1", "0", "inf", "-nan", "+inf", "1e400",
    "1" * 50, "0x" + "f" * 60, "٣", "[", "]", "{", "}", "a = ", ", ", "\n", "\"", "'", "'''",
    "\"\"\"", "#", "1979-05-27T07:32:00Z", "true", "[/]", "a.b.c.d = 1\n", ".", "=",
])  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.lists(FRAGMENTS, max_size=40).map("".join) | st.text(max_size=200))
def test_any_text_gives_a_spec_or_a_spec_error(text: str) -> None:
    _only_spec_error(lambda: Spec.from_bytes(text.encode()))


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[run]\nx = " + "1" * 5000, "run.x: a number of at most 40"),
        ("[run]\nx = inf", "run.x: inf is not a finite number"),
        ("[run]\nx = 5\ny = nan", "run.y: nan is not a finite number"),
        ("[run]\nx = 5\ny = 1e400", "run.y: 1e400 is not a finite number"),
        ("[run]\nx = 5\n[factors]\ny = [60, -inf]", r"factors.y\[1\]: -inf is not a finite"),
        ("[run]\nx = 5\npayload = { a = " + "[" * 40 + "]" * 40 + " }", "run.payload: nested"),
        ("[run]\nx = 5\n" + "a." * 40 + "b = 1", "run.a.a.a"),
        ("[run]\nx = 5\n[factors]\nshape = ['ramp:٦٠٠..1200:60s']", r"factors.shape\[0\]: a short"),
        ("[run]\nx = 5\nseed = 9007199254740993", "run.seed: a whole number from -2"),
        ("[run]\nx = 5\n[factors]\nworkers = [1, 2]\nworkers = [3]", "file: not TOML"),
        ("[run]\nx = 5\n[factors]\n'payload.a' = [1]\n'payload.a.b' = [2]", "factors.payload.a.b"),
        ("[run]\nx = 5\npayload = {a = 1}\n[factors]\n'payload.a.b' = [2]", "factors.payload.a.b"),
    ],
)
def test_a_number_or_nesting_the_file_cannot_hold_is_refused_naming_its_key(
    text: str, key: str
) -> None:
    with pytest.raises(SpecError, match=f"^{key}"):
        Spec.from_bytes(f'name = "t"\n{text}'.encode())


def test_a_huge_plan_is_refused_from_its_level_counts_before_anything_is_built() -> None:
    levels = list(range(100))
    factors = {f"payload.f{i}": levels for i in range(4)}  # 10^8 configurations: ~20 GB built
    tracemalloc.start()
    try:
        with pytest.raises(SpecError) as refused:
            Spec.of({**BASE, "repetitions": 3, "factors": factors})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(refused.value) == (
        "factors: payload.f0 (100) × payload.f1 (100) × payload.f2 (100) × payload.f3 (100) × "
        "3 repetitions = 300,000,000 trials; at most 10,000"
    )
    assert peak < 1024 * 1024, peak  # the counts were multiplied, no configuration was made
    spec = Spec.of({**BASE, "repetitions": 2, "factors": {"workers": [1, 2], "batch": [1, 5]}})
    assert spec.trial_count == 8 == len(spec.configurations) * 2


@pytest.mark.parametrize("factor", [f for f in PROCESS_FACTORS if f != "queueType"])
def test_a_process_setting_is_accepted_exactly_when_the_processes_accept_it(factor: str) -> None:
    setting = PROCESS_FACTORS[factor]
    low, high = config.RANGES[setting]
    for level in (low - 1, low, low + 1, high - 1, high, high + 1, -5, 2**40):
        try:
            config.load({f"LAB_{setting.upper()}": str(level)})
            processes = True
        except config.ConfigError:
            processes = False
        try:
            Spec.of({**BASE, "factors": {factor: [level]}})
            experiment = True
        except SpecError as exc:
            assert str(exc).startswith(f"factors.{factor}[0]: LAB_{setting.upper()}="), exc
            experiment = False
        assert experiment == processes, (factor, level)
    with pytest.raises(SpecError, match=r"^factors.lingerMs\[0\]: LAB_LINGER_MS='0'"):
        Spec.of({**BASE, "factors": {"lingerMs": [0]}})
    with pytest.raises(SpecError, match=rf"^factors.{factor}\[0\]: whole numbers"):
        Spec.of({**BASE, "factors": {factor: [2.0]}})  # LAB_…=2.0 is not a whole number either
    with pytest.raises(SpecError, match=r"^factors.queueType\[1\]: LAB_QUEUE_TYPE='fast'"):
        Spec.of({**BASE, "factors": {"queueType": ["quorum", "fast"]}})


def test_the_documented_ranges_are_the_declared_ones() -> None:
    example = (Path(__file__).resolve().parents[2] / ".env.example").read_text()
    for setting, (low, high) in config.RANGES.items():
        comment = example.split(f"\nLAB_{setting.upper()}=")[0].rsplit("\n", 1)[-1]
        assert comment.endswith(f"{low} to {high}"), (setting, comment)
