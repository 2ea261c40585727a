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
    except ImportError:
        return "chart skipped: matplotlib is not installed (pip install 'tidal[bench]')"

    titles: list[str] = []
    speeds: dict[str, list[float]] = {rt.name: [] for rt in res.runtimes}
    for wl, metric in res.rows():
        base = res.summary(wl.name, "asyncio", metric.key)
        if base is None:
            continue
        titles.append(_row_title(wl, metric))
        for rt in res.runtimes:
            summ = res.summary(wl.name, rt.name, metric.key)
            rel = relative_speed(metric, summ.median, base.median) if summ else None
            speeds[rt.name].append(rel if rel is not None else 0.0)
    if not titles:
        return "chart skipped: no workload has an asyncio baseline"

    count = len(res.runtimes)
    bar = 0.8 / count
    fig: Any
    fig, ax = plt.subplots(figsize=(10, 1.0 + 0.25 * count * len(titles)))
    for i, rt in enumerate(res.runtimes):
        # Rows top to bottom in table order; bars within a row in runtime order.
        ys = [len(titles) - 1 - row + 0.4 - bar * (i + 0.5) for row in range(len(titles))]
        ax.barh(ys, speeds[rt.name], height=bar, label=rt.label)
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(titles)))
    ax.set_yticklabels(list(reversed(titles)), fontsize=8)
    ax.set_xlabel("speed relative to asyncio (x1.00 = asyncio, higher is faster; 0 = n/a)")
    machine = res.machine
    ax.set_title(
        f"tidal bench: {machine['python']}, {machine['cpu']}, {machine['cores']} cores",
        fontsize=9,
    )
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return f"chart written to {path}"
