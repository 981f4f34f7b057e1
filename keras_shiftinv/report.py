"""Reports of the metrics: a Markdown table and PNG plots (JSON: `saving.write_json`)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

COLUMNS = [
    ("consistency", "Consistency %", "{:.2f}"),
    ("circular_consistency", "Circ. consistency %", "{:.2f}"),
    ("mac", "MAC", "{:.4f}"),
    ("stability_std", "Stability std", "{:.4f}"),
    ("top1", "Top-1 %", "{:.2f}"),
    ("top5", "Top-5 %", "{:.2f}"),
    ("worst_case_accuracy", "Worst-case %", "{:.2f}"),
    ("flip_rate", "Flip %", "{:.2f}"),
    ("subpixel_consistency", "Half-px consistency %", "{:.2f}"),
    ("subpixel_mac", "Half-px MAC", "{:.4f}"),
    ("fractional_worst_case_accuracy", "Frac. worst-case %", "{:.2f}"),
]


def cell(value, fmt):
    """`mean ± std` for a {"mean", "std"} cell, the formatted number otherwise; `fmt(value)` for a function."""
    if callable(fmt):
        return fmt(value)
    if isinstance(value, dict):
        text = fmt.format(value["mean"])
        return text if len(value.get("values", [])) < 2 else f"{text} ± {fmt.format(value['std'])}"
    return fmt.format(value)


def markdown_table(rows, extra_columns=(), columns=COLUMNS, first="Model"):
    """rows: {name: {metric: number or {"mean", "std", "values"}}}.

    Args:
        rows: one row per name (a model, a method), in order.
        extra_columns: `(key, title, fmt)` columns after `columns`.
        columns: `(key, title, fmt)`; `fmt` is a format string or a function of the cell's value.
        first: the title of the names' column.
    """
    columns = list(columns) + list(extra_columns)
    lines = [f"| {first} | " + " | ".join(c[1] for c in columns) + " |"]
    lines.append("|---|" + "---:|" * len(columns))
    for name, metrics in rows.items():
        lines.append(f"| {name} | " + " | ".join(cell(metrics[c[0]], c[2]) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def plot_stability(curves_by_model, path, images=3):
    """True-class probability against shift position, one line per model."""
    n = min(images, min(len(c) for c in curves_by_model.values()))
    fig, axes = plt.subplots(1, n + 1, figsize=(4.2 * (n + 1), 3.4), squeeze=False)
    for i in range(n + 1):
        ax = axes[0, i]
        for name, curves in curves_by_model.items():
            y = curves.mean(axis=0) if i == n else curves[i]
            ax.plot(np.arange(len(y)), y, marker=".", linewidth=1.2, label=name)
        ax.set_title("mean over images" if i == n else f"image {i}")
        ax.set_xlabel("shift position (right, down, ...)")
        ax.set_ylim(-0.02, 1.02)
    axes[0, 0].set_ylabel("p(true class)")
    axes[0, n].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_consistency_vs_accuracy(rows, path):
    fig, ax = plt.subplots(figsize=(5.2, 4.2))
    for name, m in rows.items():
        x = m["top1"]["mean"] if isinstance(m["top1"], dict) else m["top1"]
        y = m["consistency"]["mean"] if isinstance(m["consistency"], dict) else m["consistency"]
        ax.scatter(x, y, s=40)
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel("top-1 accuracy (%)")
    ax.set_ylabel("consistency (%)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

