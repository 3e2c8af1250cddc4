"""The training loop shared by pretraining and fine-tuning.

AdamW (no weight decay on norms, biases and embeddings), linear warmup then cosine decay,
gradient accumulation and clipping, bf16 autocast where supported, periodic validation, atomic
checkpoints every N steps (keeping the last K and the best), and exact resume: the batch, the
masks and the dropout noise of step s are pure functions of (seed, rank, step), so a run killed
at any point and resumed from its last checkpoint ends with the same weights as one never stopped.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import torch
from torch import nn

from instructgen.config import to_dict
from instructgen.errors import ConfigError
from instructgen.train.distributed import Dist
from instructgen.train.objectives import Batch, generator_for, loss_and_count
from instructgen.train.state import (
    ModelIO,
    find_latest,
    gather_full_state,
    load_checkpoint,
    prune,
    restore_full_state,
    save_checkpoint,
)


@dataclass
class TrainConfig:
    objective: str = "clm"
    max_steps: int = 1000
    batch_size: int = 8  # sequences per micro-batch per process
    grad_accum: int = 1
    seq_len: int = 256
    lr: float = 3e-4
    min_lr_ratio: float = 0.1
    warmup_steps: int = 50
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    eval_every: int = 200
    eval_batches: int = 16
    save_every: int = 200
    keep_last: int = 2
    log_every: int = 10
    seed: int = 0
    dtype: Literal["auto", "fp32", "bf16"] = "auto"
    val_fraction: float = 0.02
    mlm_probability: float = 0.15
    fsdp: bool = False
    compile: bool = False
    early_stopping_patience: int = 0  # evaluations without improvement before stopping (0 = never)
    mixture: list[dict] = field(default_factory=list)  # [{name, objective, data, weight, prefix}]

    def __post_init__(self) -> None:
        for name in (
            "max_steps",
            "batch_size",
            "grad_accum",
            "seq_len",
            "eval_every",
            "save_every",
            "keep_last",
            "log_every",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"must be at least 1, got {getattr(self, name)}", field=name)
        if not 0 < self.lr < 1:
            raise ConfigError(f"learning rate {self.lr} is out of range", field="lr")
        if self.early_stopping_patience < 0:
            raise ConfigError(
                f"must be 0 (never stop early) or more, got {self.early_stopping_patience}",
                field="early_stopping_patience",
            )


class BatchSource(Protocol):
    """Where batches come from: sample i of the run is a pure function of i."""

    name: str

    def train_batch(
        self, first_sample: int, batch_size: int, generator: torch.Generator
    ) -> Batch: ...

    def val_batches(self, batch_size: int, max_batches: int) -> Iterator[Batch]: ...


Forward = Callable[[nn.Module, Batch], torch.Tensor]
# (loss to minimise, how many targets it averages over, extra metrics to log as averages)
LossFn = Callable[[nn.Module, Batch], tuple[torch.Tensor, int, dict[str, float]]]


def token_loss(forward: Forward) -> LossFn:
    """The language-modelling loss: mean NLL over the labelled tokens (loss_and_count)."""

    def loss_fn(model: nn.Module, batch: Batch) -> tuple[torch.Tensor, int, dict[str, float]]:
        loss, count = loss_and_count(forward(model, batch), batch.labels)
        return loss, count, {}

    return loss_fn


def model_forward(model: nn.Module, batch: Batch) -> torch.Tensor:
    """Logits of an instructgen Transformer for a Batch."""
    return model(
        batch.input_ids,
        mask=batch.mask,
        attention_mask=batch.attention_mask,
        position_ids=batch.position_ids,
        prefix_lengths=batch.prefix_lengths,
        segment_ids=batch.segment_ids,
        role_ids=batch.role_ids,
    )


def lr_at(step: int, config: TrainConfig) -> float:
    """lr·step/warmup during warmup, then min_lr + ½(lr − min_lr)(1 + cos(π·progress))."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = min(
        1.0, (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps)
    )
    min_lr = config.lr * config.min_lr_ratio
    return min_lr + 0.5 * (config.lr - min_lr) * (1 + math.cos(math.pi * progress))


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only: norms, biases and embeddings are not decayed."""
    decay, no_decay = [], []
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    for p in model.parameters():
        if not p.requires_grad:
            continue
        (decay if p.ndim >= 2 and id(p) not in embeddings else no_decay).append(p)
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.lr, betas=(config.beta1, config.beta2), foreach=True)


def autocast_dtype(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    """bf16 autocast when asked, or under "auto" where the hardware runs bf16 matmuls natively
    (CUDA with bf16, CPUs with AVX512-BF16 or AMX); None means plain fp32."""
    if config.dtype == "fp32":
        return None
    if config.dtype == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    return torch.bfloat16 if cpu_has_native_bf16() else None


def cpu_has_native_bf16() -> bool:
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # older torch
        return False


def _step_seed(seed: int, rank: int, step: int) -> int:
    return (seed * 1_000_003 + rank * 7919 + step) % (2**62)


class MetricsLog:
    """metrics.jsonl: one JSON object per logged step or evaluation (lines past a resume point dropped)."""

    def __init__(self, path: Path, *, resume_step: int | None, enabled: bool):
        self.path, self.enabled, self.rows = path, enabled, []
        if not enabled:
            return
        if resume_step is not None and path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                row = json.loads(line) if line.strip() else None
                if row and row["step"] <= resume_step:
                    self.rows.append(row)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(r) + "\n" for r in self.rows), encoding="utf-8")

    def write(self, row: dict) -> None:
        if self.enabled:
            self.rows.append(row)
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")


def train(
    model: nn.Module,
    sources: dict[str, tuple[BatchSource, float]],
    config: TrainConfig,
    out_dir: str | Path,
    *,
    io: ModelIO,
    forward: Forward = model_forward,
    loss_fn: LossFn | None = None,
    resume: bool = False,
    dist: Dist | None = None,
    block_types: tuple[type, ...] = (),
    show_progress: bool = True,
) -> dict[str, Any]:
    """Train `model` on batches drawn from `sources` ({name: (source, weight)}); returns a summary.

    The loss is `loss_fn(model, batch)` (default: token_loss(forward)); the extra metrics it
    returns are averaged over each logging window and written beside the loss.

    Writes out_dir/checkpoints/step_N (model dir + optimizer + state), out_dir/metrics.jsonl,
    out_dir/loss_curve.png and, at the end, the final model files in out_dir itself.
    """
    dist = dist or Dist.from_env()
    loss_fn = loss_fn or token_loss(forward)
    out_dir = Path(out_dir)
    ckpt_root = out_dir / "checkpoints"
    model.to(dist.device)
    trained = dist.wrap(model, fsdp=config.fsdp, block_types=block_types)
    optimizer = make_optimizer(model, config)  # after wrapping: FSDP2 replaces the parameters
    if config.compile:
        trained = torch.compile(trained)

    start_step, best, bad_evals = 0, {"val_loss": math.inf, "step": None}, 0
    latest = find_latest(ckpt_root) if resume else None
    if latest is not None:
        optim_state, state, _ = load_checkpoint(latest)
        restore_full_state(model, optimizer, io.load_state(latest), optim_state, strict=io.strict)
        start_step, best, bad_evals = state["step"], state["best"], state.get("bad_evals", 0)
    log = MetricsLog(
        out_dir / "metrics.jsonl", resume_step=start_step if latest else None, enabled=dist.main
    )
    if dist.main and latest is not None:
        print(f"resumed from {latest} (step {start_step})", file=sys.stderr)

    names = list(sources)
    weights = torch.tensor([sources[n][1] for n in names], dtype=torch.float64)
    global_batch = config.batch_size * config.grad_accum * dist.world
    amp = autocast_dtype(config, dist.device)
    tokens_per_step = global_batch * config.seq_len
    progress = _progress(config.max_steps, start_step, enabled=show_progress and dist.main)
    window_start, window_tokens = time.perf_counter(), 0
    model.train()
    step = start_step
    stopped_early = False
    for step in range(start_step, config.max_steps):
        lr = lr_at(step, config)
        for group in optimizer.param_groups:
            group["lr"] = lr
        torch.manual_seed(_step_seed(config.seed, dist.rank, step))  # dropout noise of this step
        task_sums: dict[str, list[float]] = {n: [0.0, 0.0] for n in names}
        extra_sums: dict[str, float] = {}
        for micro in range(config.grad_accum):
            generator = generator_for(config.seed, step, micro, dist.rank)
            name = (
                names[int(torch.multinomial(weights, 1, generator=generator))]
                if len(names) > 1
                else names[0]
            )
            first = step * global_batch + (micro * dist.world + dist.rank) * config.batch_size
            batch = (
                sources[name][0].train_batch(first, config.batch_size, generator).to(dist.device)
            )
            sync = micro == config.grad_accum - 1 or not hasattr(trained, "no_sync")
            with (
                trained.no_sync() if not sync else _nullcontext(),
                torch.autocast(
                    dist.device.type, dtype=amp or torch.float32, enabled=amp is not None
                ),
            ):
                loss, count, extras = loss_fn(trained, batch)
            (loss / config.grad_accum).backward()
            task_sums[name][0] += loss.item() * count
            task_sums[name][1] += count
            for key, value in extras.items():
                extra_sums[key] = extra_sums.get(key, 0.0) + value * count
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        window_tokens += tokens_per_step

        done = step + 1
        if done % config.log_every == 0 or done == config.max_steps:
            keys = sorted(extra_sums)
            flat = dist.all_reduce_sum(
                [v for n in names for v in task_sums[n]] + [extra_sums[k] for k in keys]
            )
            sums = {n: (flat[2 * i], flat[2 * i + 1]) for i, n in enumerate(names)}
            total, count = sum(s for s, _ in sums.values()), sum(c for _, c in sums.values())
            elapsed = time.perf_counter() - window_start
            row = {
                "step": done,
                "loss": total / max(count, 1),
                "lr": lr,
                "grad_norm": float(grad_norm),
                "tokens_per_s": window_tokens / max(elapsed, 1e-9),
            }
            if len(names) > 1:
                row["task_loss"] = {n: s / c for n, (s, c) in sums.items() if c}
            extras_row = {k: v / max(count, 1) for k, v in zip(keys, flat[2 * len(names) :])}
            row.update(extras_row)
            log.write(row)
            progress.update(done - progress.n)
            progress.set_postfix(
                loss=f"{row['loss']:.3f}",
                lr=f"{lr:.2e}",
                tok_s=f"{row['tokens_per_s']:.0f}",
                **{k.rsplit("/", 1)[-1]: f"{v:.3f}" for k, v in extras_row.items()},
            )
            window_start, window_tokens = time.perf_counter(), 0

        evaluate_now = done % config.eval_every == 0 or done == config.max_steps
        if evaluate_now:
            val = evaluate(trained, sources, config, dist, loss_fn, amp)
            model.train()
            if val:
                log.write({"step": done, **val})
                if val["val_loss"] < best["val_loss"]:
                    best, bad_evals = {"val_loss": val["val_loss"], "step": done}, 0
                else:
                    bad_evals += 1
        stop = config.early_stopping_patience > 0 and bad_evals >= config.early_stopping_patience
        if done % config.save_every == 0 or done == config.max_steps or stop:
            state = {
                "step": done,
                "best": best,
                "bad_evals": bad_evals,
                "config": to_dict(config),
                "world_size": dist.world,
            }
            _checkpoint(model, optimizer, ckpt_root, done, state, io.save, dist, config)
        if stop:
            stopped_early = True
            break
    progress.close()

    final_step = step + 1 if config.max_steps > start_step else start_step
    if dist.main:
        chosen = best["step"] if io.publish == "best" and best["step"] else final_step
        io.publish_dir(
            ckpt_root / f"step_{chosen:07d}",
            out_dir,
            {"best_checkpoint": best, "published_step": chosen},
        )
        _plot(log.rows, out_dir / "loss_curve.png")
    dist.barrier()
    return {"steps": final_step, "best": best, "stopped_early": stopped_early, "metrics": log.rows}


def evaluate(
    model: nn.Module, sources, config: TrainConfig, dist: Dist, loss_fn: LossFn, amp
) -> dict[str, float]:
    """Validation loss and perplexity exp(loss) per source and overall, and the loss's extra
    metrics as val_<name>; batches split over ranks."""
    model.eval()
    sums: list[float] = []
    extra_sums: dict[str, float] = {}
    with (
        torch.no_grad(),
        torch.autocast(dist.device.type, dtype=amp or torch.float32, enabled=amp is not None),
    ):
        for source, _ in sources.values():
            total = count = 0.0
            for i, batch in enumerate(
                source.val_batches(config.batch_size, config.eval_batches * dist.world)
            ):
                if i % dist.world != dist.rank:
                    continue
                batch = batch.to(dist.device)
                loss, n, extras = loss_fn(model, batch)
                total, count = total + loss.item() * n, count + n
                for key, value in extras.items():
                    extra_sums[key] = extra_sums.get(key, 0.0) + value * n
            sums += [total, count]
    keys = sorted(extra_sums)
    flat = dist.all_reduce_sum(sums + [extra_sums[k] for k in keys])
    sums, extra = flat[: len(sums)], flat[len(sums) :]
    if sum(sums[1::2]) == 0:
        return {}
    out: dict[str, Any] = {}
    loss = sum(sums[0::2]) / sum(sums[1::2])
    out["val_loss"], out["val_ppl"] = loss, math.exp(min(loss, 50))
    out.update({f"val_{k}": v / sum(sums[1::2]) for k, v in zip(keys, extra)})
    if len(sources) > 1:
        out["task_val_loss"] = {
            n: sums[2 * i] / sums[2 * i + 1] for i, n in enumerate(sources) if sums[2 * i + 1]
        }
    return out


def _checkpoint(
    model,
    optimizer,
    root: Path,
    step: int,
    state: dict,
    save_model_dir,
    dist: Dist,
    config: TrainConfig,
) -> None:
    model_state, optim_state = gather_full_state(model, optimizer)  # collective
    if dist.main:
        save_checkpoint(
            root,
            step,
            model_state=model_state,
            optim_state=optim_state,
            trainer_state=state,
            save_model_dir=save_model_dir,
        )
        best = state["best"]["step"]
        prune(root, config.keep_last, {best} if best else set())
    dist.barrier()


def _plot(rows: list[dict], path: Path) -> None:
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


def _progress(total: int, initial: int, *, enabled: bool):
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


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
