"""What every training run leaves in its output directory: metrics, curves, confusion matrices."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from classifier.metrics import IntArray, binary_metrics, confusion

logger = logging.getLogger(__name__)


def read_json_object(path: Path, error: type[Exception], missing: str) -> dict[str, Any]:
    """Read a JSON object, raising ``error`` (with ``missing`` when the file is absent) on any problem."""
    if not path.is_file():
        raise error(missing)
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise error(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(loaded, dict):
        raise error(f"{path} must hold a JSON object")
    return loaded


def write_json(path: Path, payload: Any) -> None:
    """Write JSON atomically, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)


def classification_report(labels: IntArray, predicted: IntArray, names: Sequence[str]) -> str:
    """A plain-text per-class precision/recall/F1/support table."""
    lines = [f"{'class':>14} {'precision':>9} {'recall':>9} {'f1':>9} {'support':>8}"]
    for k, name in enumerate(names):
        m = binary_metrics((labels == k).astype(np.int64), (predicted == k).astype(np.int64))
        support = int(np.sum(labels == k))
        lines.append(f"{name:>14} {m['precision']:9.4f} {m['recall']:9.4f} {m['f1']:9.4f} {support:8d}")
    lines.append(
        f"{'accuracy':>14} {'':9} {'':9} {float(np.mean(labels == predicted)):9.4f} {len(labels):8d}"
    )
    return "\n".join(lines)


def _series(history: Sequence[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    pts = [(float(h["step"]), float(h[key])) for h in history if key in h and h[key] is not None]
    return [p[0] for p in pts], [p[1] for p in pts]


def plot_curves(history: Sequence[dict[str, Any]], path: Path, title: str) -> None:
    """Train and eval loss, eval F1 and eval accuracy against the optimizer step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for key, label in (("loss", "train"), ("eval_loss", "eval")):
        x, y = _series(history, key)
        if x:
            axes[0].plot(x, y, label=label, marker="." if label == "eval" else None)
    axes[0].set_title("loss")
    axes[0].legend()
    for ax, key in ((axes[1], "eval_f1"), (axes[2], "eval_accuracy")):
        x, y = _series(history, key)
        if x:
            ax.plot(x, y, marker=".")
            best = int(np.argmax(y))
            ax.annotate(f"{y[best]:.3f}", (x[best], y[best]))
        ax.set_title(key.replace("eval_", "eval "))
    for ax in axes:
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_confusion(
    labels: IntArray, predicted: IntArray, names: Sequence[str], path: Path, title: str
) -> None:
    """A confusion-matrix heat map with counts in each cell."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = confusion(labels, predicted, len(names))
    fig, ax = plt.subplots(figsize=(1.6 * len(names) + 2.5, 1.4 * len(names) + 2))
    ax.imshow(m, cmap="Blues")
    ax.set_xticks(range(len(names)), names)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    peak = m.max() if m.size else 0
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(
                j, i, str(m[i, j]), ha="center", va="center", color="white" if m[i, j] > peak / 2 else "black"
            )
    ax.set_title(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
