"""The quickstart's optional last training stage (`quickstart --align`): preference pairs from the
tuned model's own samples on the train split, judged by the world's checkers, then DPO.

    preferences   K answers per train prompt (OUT/preferences.jsonl): chosen passes the
                  record's checker, rejected fails it; where all K fail, the record's reference
                  answer is chosen against the model's failing one; all-pass prompts skipped
    align         DPO from OUT/model to OUT/aligned, the tuned model as the reference
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

ALIGN_TRAIN_KEYS = (
    "max_steps",
    "batch_size",
    "seq_len",
    "lr",
    "warmup_steps",
    "eval_every",
    "save_every",
    "log_every",
)


def make_pairs(settings: dict[str, Any], data: Path, model: Path, out: Path) -> dict[str, Any]:
    """Sample `samples` answers for the first `prompts` train records and pair them."""
    from instructgen.data.builtin import load_split
    from instructgen.evaluate.preferences import make_preferences
    from instructgen.inference import load

    prompts = [
        {
            "id": r["id"],
            "prompt": r["messages"][:-1],
            "checker": r["checker"],
            "reference": r["messages"][-1]["content"],
        }
        for r in load_split(data, "train")
        if r.get("checker")
    ]
    out.unlink(missing_ok=True)  # a finished stage is reused whole; an unfinished one restarts
    out.with_name(out.name + ".progress.jsonl").unlink(missing_ok=True)
    with load(model) as llm:
        return make_preferences(
            llm,
            prompts,
            out,
            samples=settings["samples"],
            temperature=settings["temperature"],
            max_tokens=settings["max_tokens"],
            seed=settings.get("seed", 0),
            batch_size=settings.get("sample_batch", 32),
            limit=settings["prompts"],
            reference_chosen=True,
            progress=True,
        )


def run_dpo(
    settings: dict[str, Any], pairs: Path, model: Path, out: Path, *, seed: int, show_progress: bool
) -> dict[str, Any]:
    """DPO of the tuned model on the pairs (5% held out for validation)."""
    from instructgen.train.loop import TrainConfig
    from instructgen.train.preference import PreferenceOptions, align
    from instructgen.train.sft import SFTOptions

    config = TrainConfig(seed=seed, **{k: settings[k] for k in ALIGN_TRAIN_KEYS})
    return align(
        model,
        str(pairs),
        out,
        config,
        SFTOptions(),
        PreferenceOptions(method="dpo", beta=settings["beta"]),
        show_progress=show_progress,
    )
