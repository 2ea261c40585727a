"""Samples to numbers: median, spread, speed relative to asyncio."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from tidal._tools.bench.registry import Metric

__all__ = ("Cell", "Overhead", "Summary", "overhead", "relative_speed", "summarize")


@dataclass
class Cell:
    """Everything measured for one workload on one runtime."""

    status: str = "pending"  # "ok", "n/a", "error", "timeout"
    samples: dict[str, list[float]] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    #: wall-clock seconds of each worker process, start-up included
    seconds: list[float] = field(default_factory=list)

    def add(self, record: dict[str, Any], seconds: float = 0.0) -> None:
        """Merge one worker's result record (and how long it took) into this cell."""
        self.seconds.append(round(seconds, 3))
        status = str(record.get("status", "error"))
        if status == "ok":
            for key, values in record.get("samples", {}).items():
                self.samples.setdefault(key, []).extend(float(v) for v in values)
            if self.status in ("pending", "n/a"):
                self.status = "ok"
            return
        reason = str(record.get("reason", ""))
        if reason and reason not in self.reasons:
            self.reasons.append(reason)
        # One good repetition is still a result; a failure beats "n/a".
        if self.status == "pending" or (self.status == "n/a" and status != "n/a"):
            self.status = status

    def to_json(self) -> dict[str, Any]:
        """The raw record: status, every sample, why it failed."""
        return {
            "status": self.status, "samples": self.samples, "reasons": self.reasons,
            "seconds": self.seconds,
        }


@dataclass(frozen=True)
class Summary:
    """The statistics of one metric's samples."""

    median: float
    low: float
    high: float
    q1: float
    q3: float
    count: int

    @property
    def spread_pct(self) -> float:
        """Half the min-max range, as a percentage of the median."""
        if not self.median:
            return 0.0
        return (self.high - self.low) / 2 / abs(self.median) * 100

    def to_json(self) -> dict[str, float]:
        """The statistics as a dict."""
        return {
            "median": self.median, "min": self.low, "max": self.high,
            "q1": self.q1, "q3": self.q3, "count": self.count,
        }


def summarize(values: list[float]) -> Summary | None:
    """Median, min, max and quartiles of *values* (None when there are none)."""
    if not values:
        return None
    ordered = sorted(values)
    if len(ordered) >= 2:
        q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    else:
        q1 = q3 = ordered[0]
    return Summary(statistics.median(ordered), ordered[0], ordered[-1], q1, q3, len(ordered))


def relative_speed(metric: Metric, value: float, baseline: float) -> float | None:
    """How many times faster than the baseline (x1.00 = the same, higher is faster)."""
    if value <= 0 or baseline <= 0:
        return None
    return value / baseline if metric.higher_is_better else baseline / value


@dataclass(frozen=True)
class Overhead:
    """What an instrumented runtime costs over its base, as a fraction (0.02 = 2 % slower)."""

    median: float
    #: quartiles of the per-round overheads (None when the samples cannot be paired)
    q1: float | None
    q3: float | None
    paired: bool


def _extra(metric: Metric, value: float, base: float) -> float:
    # Extra time (or memory) per op: for a rate, the time per request grows as base/value.
    return base / value - 1 if metric.higher_is_better else value / base - 1


def overhead(
    metric: Metric, values: list[float], base: list[float], paired: bool = True,
) -> Overhead | None:
    """The overhead of *values* over *base* samples of the same metric.

    Runs are interleaved, so sample i of two cells of one workload comes from
    the same round of the same machine: when both have as many samples, each
    pair gives one overhead and their median and quartiles are the result
    (a drift of the machine's load between rounds then cancels out);
    otherwise (or with *paired* False: a failed run shifted the rounds) the
    overhead of the medians, with no quartiles.
    """
    if not values or not base or any(v <= 0 for v in (*values, *base)):
        return None
    if paired and len(values) == len(base):
        pairs = sorted(_extra(metric, v, b) for v, b in zip(values, base, strict=True))
        summ = summarize(pairs)
        assert summ is not None
        return Overhead(summ.median, summ.q1, summ.q3, True)
    median = _extra(metric, statistics.median(values), statistics.median(base))
    return Overhead(median, None, None, False)
