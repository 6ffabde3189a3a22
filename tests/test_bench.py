"""The benchmarks' arithmetic (bench/harness.py): how a ratio against the relay is taken from
interleaved repetitions. The benchmarks themselves are programs (`make bench`), not tests."""

from __future__ import annotations

import operator
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from harness import paired  # noqa: E402


def test_a_ratio_pairs_each_repetition_with_the_relays_just_before_it() -> None:
    # The repetitions' ratios are 0.7, 1.1 and 0.8. The ratio of the two medians would set
    # Podium's second repetition against the relay's first (880 / 1,000 = 0.88).
    relay = [{"rps": 1000.0}, {"rps": 800.0}, {"rps": 1200.0}]
    podium = [{"rps": 700.0}, {"rps": 880.0}, {"rps": 960.0}]
    assert paired(relay, podium, "rps") == 0.8


def test_differences_are_paired_too_and_a_failed_measurement_is_left_out() -> None:
    relay = [{"p50_ms": 1.0}, {"p50_ms": 2.0}, {"p50_ms": 1.0}]
    podium = [{"p50_ms": 1.25}, {"p50_ms": None}, {"p50_ms": 1.5}]
    assert paired(relay, podium, "p50_ms", operator.sub) == 0.375  # median of 0.25 and 0.5
