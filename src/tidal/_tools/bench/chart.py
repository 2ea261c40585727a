"""``--chart``: relative speeds as a grouped bar chart (matplotlib, optional)."""

from __future__ import annotations

from typing import Any

from tidal._tools.bench.report import Results, _row_title
from tidal._tools.bench.stats import relative_speed

__all__ = ("draw_chart",)


def draw_chart(res: Results, path: str) -> str:
    """Draw each row's speed relative to asyncio into the PNG *path*.

    Returns a line telling what happened; matplotlib missing is not an
    error, only a chart not drawn.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display needed
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FuncFormatter
    except ImportError:
        return "chart skipped: matplotlib is not installed (pip install 'tidal[bench]')"

    titles: list[str] = []
    speeds: dict[str, list[float | None]] = {rt.name: [] for rt in res.runtimes}
    for wl, metric in res.rows():
        base = res.summary(wl.name, "asyncio", metric.key)
        if base is None:
            continue
        titles.append(_row_title(wl, metric))
        for rt in res.runtimes:
            summ = res.summary(wl.name, rt.name, metric.key)
            rel = relative_speed(metric, summ.median, base.median) if summ else None
            speeds[rt.name].append(rel)
    if not titles:
        return "chart skipped: no workload has an asyncio baseline"

    # asyncio is the line at x1, not bars of length zero.
    others = [rt for rt in res.runtimes if rt.name != "asyncio"]
    bar = 0.8 / max(len(others), 1)
    fig: Any
    fig, ax = plt.subplots(figsize=(10, 1.5 + 0.12 * max(len(others), 1) * len(titles)))
    top = len(titles) - 1
    for i, rt in enumerate(others):
        # Rows top to bottom in table order, bars within a row in runtime
        # order; each bar grows from 1 (= asyncio) to the runtime's speed, so
        # slower shows left of the line and faster right, on a log scale.
        rows = [(row, rel) for row, rel in enumerate(speeds[rt.name]) if rel is not None]
        ys = [top - row + 0.4 - bar * (i + 0.5) for row, _ in rows]
        ax.barh(ys, [rel - 1 for _, rel in rows], left=1, height=bar, label=rt.label)
    ax.axvline(1.0, color="black", linewidth=0.8, label="asyncio")
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"x{x:g}"))
    ax.set_yticks(range(len(titles)))
    ax.set_yticklabels(list(reversed(titles)), fontsize=8)
    ax.set_ylim(-0.6, top + 0.6)
    ax.set_xlabel("speed relative to asyncio (x1 = asyncio, right is faster; no bar = n/a)")
    machine = res.machine
    ax.set_title(
        f"tidal bench: {machine['python']}, {machine['cpu']}, {machine['cores']} cores",
        fontsize=9,
    )
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return f"chart written to {path}"
