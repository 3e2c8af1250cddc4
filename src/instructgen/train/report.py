"""What a training run leaves for people to read: metrics.jsonl, the loss curve, the progress bar."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from instructgen.jsonl import read_json_lines


class MetricsLog:
    """metrics.jsonl: one JSON object per logged step or evaluation (lines past a resume point dropped)."""

    def __init__(self, path: Path, *, resume_step: int | None, enabled: bool):
        self.path, self.enabled, self.rows = path, enabled, []
        if not enabled:
            return
        if resume_step is not None and path.is_file():
            text = path.read_text(encoding="utf-8")
            for _, row in read_json_lines(text, lenient=True):  # a killed run's torn line
                if row and row["step"] <= resume_step:
                    self.rows.append(row)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(r) + "\n" for r in self.rows), encoding="utf-8")

    def write(self, row: dict) -> None:
        """Append one row (on the main process only)."""
        if self.enabled:
            self.rows.append(row)
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")


def plot_losses(rows: list[dict], path: Path) -> None:
    """loss_curve.png: the training loss and the validation loss of the metrics rows, by step."""
    if not rows:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    train = [(r["step"], r["loss"]) for r in rows if "loss" in r]
    val = [(r["step"], r["val_loss"]) for r in rows if "val_loss" in r]
    if train:
        ax.plot(*zip(*train), label="train loss")
    if val:
        ax.plot(*zip(*val), "o-", label="validation loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats/token)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)


def progress_bar(total: int, initial: int, *, enabled: bool):
    """A tqdm bar on stderr counting steps from `initial` to `total` (silent unless enabled)."""
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        initial=initial,
        disable=not enabled,
        desc="train",
        unit="step",
        dynamic_ncols=True,
        file=sys.stderr,
    )
