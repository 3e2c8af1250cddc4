"""`instructgen quickstart`: the built-in world from data to a measured instruction follower.

By default it starts from the base model shipped with the package (SHIPPED_BASE, pretrained by
tools/base/build.sh on the built-in corpus with instructgen commands only):

    data builtin → finetune the shipped base → evaluate base vs tuned → report (Markdown, JSON, PNG)

`--from-scratch` (the SCRATCH plan) runs the whole pipeline instead:

    data builtin → tokenizer train → data tokenize → model init → copy drills → pretrain → finetune
    → evaluate base vs tuned on the held-out test split → report

Each stage records itself in OUT/stages.json when it finishes; a re-run reuses finished stages
whose settings did not change, so an interrupted quickstart continues where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from instructgen.errors import ConfigError
from instructgen.files import atomic_write_json, atomic_write_text

BRIEF_INSTRUCTION = "请用中文写一首关于春天的诗。"
# the pretrained base the full quickstart starts from; its card and loss curve lie beside it
SHIPPED_BASE = Path(__file__).parent / "base_model"


@dataclass(frozen=True)
class Plan:
    """Sizes of one quickstart: the full one (minutes on a laptop CPU) or --fast (for tests)."""

    size: int
    vocab_size: int
    model: dict[str, Any]
    drills: dict[str, Any]  # pretraining on copy drills first (train/objectives.copy_batch)
    pretrain: dict[str, Any]
    finetune: dict[str, Any]
    sft: dict[str, Any] = field(default_factory=dict)  # SFTOptions of the fine-tuning stage
    eval_limit: int | None = None  # test records evaluated (None: all)
    eval_max_tokens: int = 96  # answers are cut here (the longest reference, with room to spare)
    seed: int = 0
    made_share: float | None = None  # made-up entities in train and val (None: the generator's)
    name: str = "full"
    scale: float = 1.0  # the factor `scaled` applied to the training steps
    granularity: str = "words"  # what one tokenizer merge may join (tokenizer.GRANULARITIES)
    # a pretrained model directory to fine-tune ("shipped": SHIPPED_BASE); None trains one from
    # scratch (tokenizer, init, drills, pretrain), and vocab_size, model, drills, pretrain and
    # granularity apply only then
    base: str | None = None
    # `--align`: preference pairs from the tuned model's samples, then DPO (quickstart_align.py)
    align: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def digest(self, *keys: str) -> str:
        values = {k: asdict(self)[k] for k in keys}
        return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:12]


SCRATCH = Plan(
    name="scratch",
    size=20000,
    vocab_size=4096,
    model={
        "arch": "llama",
        "d_model": 256,
        "n_layer": 4,
        "n_head": 8,
        "n_kv_head": 4,
        "max_seq_len": 256,
    },
    # the induction circuit that copies names, numbers and topics from the instruction forms
    # here in ~400 steps; 600 steps of the corpus alone never formed it (second mentions of a
    # made-up name cost as much as the first)
    drills={
        "objective": "copy",
        "max_steps": 450,
        "batch_size": 16,
        "seq_len": 256,
        "lr": 1e-3,
        "min_lr_ratio": 1.0,
        "warmup_steps": 10,
        "eval_every": 150,
        "eval_batches": 4,
        "save_every": 150,
        "log_every": 10,
    },
    pretrain={
        "objective": "clm",
        "max_steps": 500,
        "batch_size": 16,
        "seq_len": 256,
        "lr": 2e-3,
        "warmup_steps": 30,
        "eval_every": 100,
        "save_every": 100,
        "log_every": 10,
    },
    finetune={
        "max_steps": 900,
        "batch_size": 16,
        "seq_len": 256,
        "lr": 1e-3,
        "warmup_steps": 30,
        "eval_every": 100,
        "save_every": 100,
        "log_every": 10,
        "early_stopping_patience": 4,
    },
    eval_limit=600,
    align={
        "prompts": 600,
        "samples": 4,
        "temperature": 1.0,
        "max_tokens": 160,
        "max_steps": 150,
        "batch_size": 4,
        "seq_len": 512,
        # measured on 443 pairs (test/val): lr 5e-6 β 0.1 +0.002/+0.009, 5e-5 β 0.1
        # −0.022/−0.026, 2e-5 β 0.5 +0.007/+0.013 (all within the ±0.016 noise of 600 items)
        "lr": 2e-5,
        "beta": 0.5,
        "warmup_steps": 10,
        "eval_every": 50,
        "save_every": 50,
        "log_every": 10,
    },
)
# the shipped base holds one token per character (records ~2.4x longer than with word tokens) and
# a context of 512, so fine-tuning rows are 512 long and answers may run longer. torch.compile
# fuses the llama block's elementwise work (RoPE, RMSNorm, SwiGLU): 1.33x the eager step here, for
# ~25 s of compiling. 1,800 steps over 80,000 best-fit packed records (generator 7: four in five
# entities made up) measured test/val 0.35/0.60 on 1,200 records each in 12.3 minutes (0.35-0.36
# on 2,400 test records, 0.33 with half made up); 2,400 steps +0.04 on test but 16.6 minutes.
# With greedy packing and half made up: 1,800 steps 0.35/0.59, 1,350 over 60,000 0.33/0.56 in
# 9.3; 900 over 40,000 0.29/0.51 in 6.7 (0.29/0.53 eager, 8.8) (benchmarks/quickstart_variant.py)
FULL = replace(
    SCRATCH,
    name="full",
    base="shipped",
    size=80000,
    finetune=SCRATCH.finetune
    | {
        "max_steps": 1800,
        "batch_size": 8,
        "seq_len": 512,
        "eval_every": 300,
        "save_every": 300,
        "compile": True,
    },
    eval_limit=1200,
    eval_max_tokens=200,
)
FAST = Plan(
    name="fast",
    size=400,
    vocab_size=1024,
    model={
        "arch": "llama",
        "d_model": 64,
        "n_layer": 2,
        "n_head": 4,
        "n_kv_head": 2,
        "max_seq_len": 256,
    },
    drills={
        "objective": "copy",
        "max_steps": 6,
        "batch_size": 4,
        "seq_len": 128,
        "lr": 1e-3,
        "min_lr_ratio": 1.0,
        "warmup_steps": 2,
        "eval_every": 6,
        "eval_batches": 1,
        "save_every": 6,
        "log_every": 2,
    },
    pretrain={
        "objective": "clm",
        "max_steps": 30,
        "batch_size": 8,
        "seq_len": 128,
        "lr": 2e-3,
        "warmup_steps": 5,
        "eval_every": 15,
        "save_every": 15,
        "log_every": 5,
    },
    finetune={
        "max_steps": 40,
        "batch_size": 8,
        "seq_len": 256,
        "lr": 2e-3,
        "warmup_steps": 5,
        "eval_every": 20,
        "save_every": 20,
        "log_every": 5,
    },
    eval_limit=84,
    align={
        "prompts": 16,
        "samples": 2,
        "temperature": 1.0,
        "max_tokens": 16,
        "max_steps": 4,
        "batch_size": 2,
        "seq_len": 256,
        "lr": 1e-5,
        "beta": 0.1,
        "warmup_steps": 1,
        "eval_every": 4,
        "save_every": 4,
        "log_every": 2,
    },
)

FAST_NOTE = (
    "--fast is a smoke test of every stage: its models are too small and too briefly trained to "
    "follow instructions, so its scores are near 0 by design. Run `instructgen quickstart` "
    "(the full plan) for a model that does."
)

TRAINING_STAGES = ("drills", "pretrain", "finetune")


def scaled(plan: Plan, factor: float) -> Plan:
    """`plan` with `factor` times the steps of every training stage (drills, pretrain, finetune);
    evaluations and checkpoints come as many times per stage as before."""
    if not (isinstance(factor, int | float) and math.isfinite(factor) and factor > 0):
        raise ConfigError(f"must be a number above 0, got {factor!r}", field="scale")
    if factor == 1:
        return plan

    def stage(settings: dict[str, Any]) -> dict[str, Any]:
        keys = ("max_steps", "eval_every", "save_every")
        return settings | {k: max(1, round(settings[k] * factor)) for k in keys}

    stages = {name: stage(getattr(plan, name)) for name in TRAINING_STAGES}
    return replace(plan, scale=plan.scale * factor, **stages)


# stage name -> the plan fields it depends on (a change re-runs it and every stage after it)
STAGES = {
    "data": ("size", "seed", "made_share"),
    "tokenizer": ("vocab_size", "granularity"),
    "shards": (),
    "init": ("model", "seed"),
    "drills": ("drills",),
    "pretrain": ("pretrain",),
    "finetune": ("finetune", "sft"),
    "preferences": ("align",),
    "align": ("align",),
    "evaluate": ("eval_limit", "eval_max_tokens"),
}
# a stage whose outputs changed shape gets a version here, so older runs redo it
STAGE_VERSIONS = {"evaluate": 2}


class Stages:
    """OUT/stages.json: which stages finished, with which settings, in how many seconds."""

    def __init__(self, out: Path, plan: Plan):
        self.path, self.plan = out / "stages.json", plan
        self.done: dict[str, dict[str, Any]] = (
            json.loads(self.path.read_text()) if self.path.is_file() else {}
        )
        self._chain = ""

    def note_base(self, base: Path) -> None:
        """Stages after this one depend on the base model's weights (a rebuilt base re-runs them)."""
        from instructgen.model.checkpoint import model_digest

        self._chain = hashlib.sha256(
            f"{self._chain}base:{model_digest(base)}".encode()
        ).hexdigest()[:12]

    def run(self, name: str, work: Callable[[], Any], *, key: str = "") -> float:
        """Run `work` unless this stage already finished with the same settings (and all before it);
        `key` adds what else the stage's output depends on (the data generator's version)."""
        version = f":v{STAGE_VERSIONS[name]}" if name in STAGE_VERSIONS else ""
        self._chain = hashlib.sha256(
            (self._chain + self.plan.digest(*STAGES[name]) + version + key).encode()
        ).hexdigest()[:12]
        record = self.done.get(name)
        if record and record.get("key") == self._chain:
            _say(f"[{name}] reused ({record['seconds']:.0f}s before)")
            return record["seconds"]
        _say(f"[{name}] ...")
        start = time.perf_counter()
        work()
        seconds = time.perf_counter() - start
        self.done[name] = {"key": self._chain, "seconds": seconds}
        atomic_write_json(self.path, self.done)
        _say(f"[{name}] done in {seconds:.1f}s")
        return seconds


def quickstart(
    out_dir: str | Path = "runs/quickstart",
    *,
    fast: bool = False,
    scale: float = 1.0,
    from_scratch: bool = False,
    align: bool = False,
    plan: Plan | None = None,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Run (or continue) the quickstart in `out_dir`; returns the report (also OUT/report.json).
    `scale` multiplies the training steps (see `scaled`); `plan` replaces FULL / FAST;
    `from_scratch` trains the base too (SCRATCH, or `plan` without its base); `align` adds
    preference pairs from the tuned model and DPO (OUT/aligned), evaluated beside the rest."""
    from instructgen.data.builtin import GENERATOR_VERSION, write_builtin
    from instructgen.train.loop import TrainConfig
    from instructgen.train.sft import SFTOptions, finetune

    if plan is None:
        plan = FAST if fast else SCRATCH if from_scratch else FULL
    if from_scratch:
        plan = replace(plan, base=None)
    plan = scaled(plan, scale)
    start = _base_dir(plan.base) if plan.base else None
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError("exists and is not a directory (--out)", file=str(out))
    out.mkdir(parents=True, exist_ok=True)
    stages = Stages(out, plan)
    data, model = out / "data", out / "model"
    seconds: dict[str, float] = {}
    started = time.perf_counter()

    made_share = {} if plan.made_share is None else {"made_share": plan.made_share}
    seconds["data"] = stages.run(
        "data",
        lambda: write_builtin(data, seed=plan.seed, size=plan.size, **made_share),
        key=f":generator {GENERATOR_VERSION}",
    )
    if start is None:
        start = out / "pretrained"
        seconds |= _pretrain_from_scratch(plan, out, stages, show_progress)
    else:
        stages.note_base(start)
    options = SFTOptions(val_data=str(data / "val.jsonl"), **plan.sft)
    seconds["finetune"] = stages.run(
        "finetune",
        lambda: finetune(
            start,
            str(data / "train.jsonl"),
            model,
            TrainConfig(**{"seed": plan.seed, **plan.finetune}),  # a stage's seed wins
            options,
            show_progress=show_progress,
        ),
    )
    aligned = None
    if align:
        from instructgen.quickstart_align import make_pairs, run_dpo

        aligned, pairs = out / "aligned", out / "preferences.jsonl"
        seconds["preferences"] = stages.run(
            "preferences", lambda: make_pairs(plan.align, data, model, pairs)
        )
        seconds["align"] = stages.run(
            "align",
            lambda: run_dpo(
                plan.align, pairs, model, aligned, seed=plan.seed, show_progress=show_progress
            ),
        )
    seconds["evaluate"] = stages.run(
        "evaluate", lambda: _evaluate(plan, data, start, model, out / "eval", aligned)
    )
    from instructgen.quickstart_report import next_steps, write_report

    report = write_report(out, plan, start, seconds, time.perf_counter() - started)
    _say(next_steps(out, report))
    return report


def _pretrain_from_scratch(
    plan: Plan, out: Path, stages: Stages, show_progress: bool
) -> dict[str, float]:
    """tokenizer → shards → init → copy drills → pretrain, into OUT/{tokenizer,...,pretrained}."""
    from instructgen.data.corpus import tokenize_corpus
    from instructgen.tokenizer import train_tokenizer
    from instructgen.train.loop import TrainConfig
    from instructgen.train.pretrain import pretrain

    data, tok, shards, init, drilled, pre = (
        out / n for n in ("data", "tokenizer", "shards", "init", "drilled", "pretrained")
    )
    seconds = {}
    seconds["tokenizer"] = stages.run(
        "tokenizer",
        lambda: train_tokenizer(
            [data / "corpus.txt", data / "train.jsonl"],
            plan.vocab_size,
            tok,
            granularity=plan.granularity,
            show_progress=show_progress,
        ),
    )
    seconds["shards"] = stages.run(
        "shards",
        lambda: tokenize_corpus([data / "corpus.txt"], tok, shards, show_progress=show_progress),
    )
    seconds["init"] = stages.run("init", lambda: _init_model(plan, tok, init))

    def pretraining(start: Path, shard_dir: Path | None, out_dir: Path, settings: dict):
        config = TrainConfig(**{"seed": plan.seed, **settings})
        return lambda: pretrain(start, shard_dir, out_dir, config, show_progress=show_progress)

    seconds["drills"] = stages.run("drills", pretraining(init, None, drilled, plan.drills))
    seconds["pretrain"] = stages.run("pretrain", pretraining(drilled, shards, pre, plan.pretrain))
    return seconds


def _base_dir(base: str) -> Path:
    path = SHIPPED_BASE if base == "shipped" else Path(base)
    from instructgen.model.model_dir import CONFIG_FILE

    if not (path / CONFIG_FILE).is_file():
        raise ConfigError(
            f"no model directory at {path} (build the shipped one with `bash tools/base/build.sh`, "
            "or run `instructgen quickstart --from-scratch`)",
            field="base",
        )
    return path


def _init_model(plan: Plan, tok: Path, out: Path) -> None:
    import torch

    from instructgen.config import from_dict
    from instructgen.model.checkpoint import save_model
    from instructgen.model.transformer import ModelConfig, Transformer
    from instructgen.tokenizer import Tokenizer

    tokenizer = Tokenizer.from_dir(tok)
    values = dict(
        plan.model,
        vocab_size=64 * -(-len(tokenizer) // 64),
        bos_token_id=tokenizer.bos_id,
        eos_token_id=tokenizer.eos_id,
        pad_token_id=tokenizer.pad_id,
    )
    torch.manual_seed(plan.seed)
    model = Transformer(from_dict(ModelConfig, values, source="quickstart"))
    save_model(
        model,
        out,
        tokenizer=tokenizer,
        provenance={"history": [{"stage": "init", "config": values, "seed": plan.seed}]},
    )


def _evaluate(
    plan: Plan, data: Path, base: Path, tuned: Path, out: Path, aligned: Path | None = None
) -> None:
    """Base and tuned on the held-out test split; the tuned model also on the val split, whose
    phrasings and entities come from training's pools (the gap between the two is how much of
    what was learnt carries over to unseen wording and names); the aligned model, when there is
    one, on both."""
    from instructgen.data.builtin import load_split
    from instructgen.evaluate.builtin_suite import run_builtin
    from instructgen.evaluate.runner import spread
    from instructgen.inference import load

    def split(name: str) -> list[dict[str, Any]]:
        records = load_split(data, name)
        return records if plan.eval_limit is None else spread(records, plan.eval_limit)

    out.mkdir(parents=True, exist_ok=True)
    results = {}
    models = {base: load(base), tuned: load(tuned)}
    runs = [("base", base, "test"), ("tuned", tuned, "test"), ("tuned_seen", tuned, "val")]
    if aligned is not None:
        models[aligned] = load(aligned)
        runs += [("aligned", aligned, "test"), ("aligned_seen", aligned, "val")]
    for name, path, split_name in runs:
        llm = models[path]
        result = run_builtin(
            llm,
            split(split_name),
            max_tokens=plan.eval_max_tokens,
            progress=_progress_printer(f"evaluate {name}"),
        )
        if split_name == "test":
            poem = llm.chat(
                [{"role": "user", "content": BRIEF_INSTRUCTION}],
                max_tokens=plan.eval_max_tokens,
                temperature=0.0,
            ).text
            result["brief_example"] = {"instruction": BRIEF_INSTRUCTION, "output": poem}
        atomic_write_text(
            out / f"{name}.jsonl",
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in result.pop("rows")),
        )
        results[name] = result
    atomic_write_json(out / "scores.json", results)


def _progress_printer(label: str):
    def show(done: int, total: int) -> None:
        print(
            f"\r{label}: {done}/{total}",
            end="\n" if done == total else "",
            file=sys.stderr,
            flush=True,
        )

    return show


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
