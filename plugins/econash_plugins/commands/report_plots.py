"""The figures of `econash report`, each returned as a ``data:image/png;base64,...`` URI so the page
carries its images inside itself (no file next to it, no network when it is opened).

Compare's own plots (accuracy against tokens, scaling) are drawn by the functions compare uses
(plugins/econash_plugins/commands/report.py), so the report shows exactly what compare.png shows.
matplotlib is imported lazily and headless (Agg), as there.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import tempfile
from pathlib import Path
from typing import Any, Callable

from econash_plugins.commands import report as compare_report

#: metrics.jsonl fields worth a learning-curve panel, in this order (others are optimiser internals)
CURVE_FIRST = ("dev_score",)
CURVE_LAST = ("loss",)
MAX_PANELS = 4


def can_plot() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def png_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _figure_uri(fig: Any, plt: Any) -> str:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return png_uri(buffer.getvalue())


def _drawn_by(draw: Callable[[list[dict[str, Any]], Path, str], None], rows: list[dict[str, Any]], title: str) -> str:
    """A compare plot, drawn by compare's own function into a temporary file."""
    with tempfile.TemporaryDirectory(prefix="econash-report-") as folder:
        path = Path(folder) / "plot.png"
        draw(rows, path, title)
        return png_uri(path.read_bytes())


def accuracy_vs_tokens(rows: list[dict[str, Any]], title: str) -> str:
    return _drawn_by(compare_report.plot_accuracy_vs_tokens, rows, title)


def scaling(rows: list[dict[str, Any]], title: str) -> str:
    return _drawn_by(compare_report.plot_scaling, rows, title)


def role_bars(groups: dict[str, dict[str, float]], title: str, unit: str) -> str:
    """Horizontal bars of tokens per role, one bar per group (a method, or a run's phase), stacked by role."""
    plt = _pyplot()
    roles = sorted({role for by_role in groups.values() for role in by_role})
    fig, ax = plt.subplots(figsize=(7, 0.6 * len(groups) + 1.6), dpi=110)
    names = list(groups)
    left = [0.0] * len(names)
    for role in roles:
        values = [groups[name].get(role, 0.0) for name in names]
        bars = ax.barh(names, values, left=left, label=role)
        for bar, value, start in zip(bars, values, left):
            if value > 0:
                ax.text(start + value / 2, bar.get_y() + bar.get_height() / 2, f"{value:.0f}", ha="center",
                        va="center", fontsize=7, color="white")
        left = [a + b for a, b in zip(left, values)]
    ax.invert_yaxis()
    ax.set_xlabel(unit)
    ax.set_title(title, fontsize=10)
    ax.grid(True, axis="x", alpha=0.3)
    if roles:
        ax.legend(fontsize=8, loc="lower right")
    return _figure_uri(fig, plt)


def question_tokens(ids: list[str], tokens: list[int], correct: list[bool | None], title: str) -> str:
    """Tokens spent on each question, green when answered right and red when wrong."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.2), dpi=110)
    colours = ["#2a9d4b" if c else "#c0392b" if c is False else "#7f8c8d" for c in correct]
    ax.bar(range(len(ids)), tokens, color=colours)
    if len(ids) <= 30:
        ax.set_xticks(range(len(ids)), ids, rotation=60, ha="right", fontsize=6)
    else:
        ax.set_xlabel("question (in results order)")
    ax.set_ylabel("tokens")
    ax.set_title(title + " (green: right, red: wrong)", fontsize=10)
    ax.grid(True, axis="y", alpha=0.3)
    return _figure_uri(fig, plt)


def curve_fields(rows: list[dict[str, Any]]) -> list[str]:
    """The metrics.jsonl fields drawn as learning curves: the dev score, rewards, then the loss."""
    present = {key for row in rows for key, value in row.items()
               if isinstance(value, (int, float)) and not isinstance(value, bool)}
    rewards = sorted(key for key in present if "reward" in key)
    ordered = [key for key in CURVE_FIRST if key in present] + rewards + [key for key in CURVE_LAST if key in present]
    return ordered[:MAX_PANELS]


def learning_curves(rows: list[dict[str, Any]], title: str) -> str | None:
    """One panel per field of curve_fields against the learner update (None when there is nothing to draw)."""
    fields = curve_fields(rows)
    if not fields:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(fields), figsize=(3.4 * len(fields), 3), dpi=110, squeeze=False)
    for ax, field in zip(axes[0], fields):
        points = [(row.get("step", i + 1), row[field]) for i, row in enumerate(rows) if isinstance(row.get(field), (int, float))]
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o" if len(points) < 30 else None)
        ax.set_xlabel("update")
        ax.set_title(field, fontsize=9)
        ax.grid(True, alpha=0.3)
    fig.suptitle(title, fontsize=10)
    return _figure_uri(fig, plt)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
