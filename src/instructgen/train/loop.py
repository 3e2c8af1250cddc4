"""The training loop shared by pretraining and fine-tuning.

AdamW (no weight decay on norms, biases and embeddings), linear warmup then cosine decay,
gradient accumulation and clipping, bf16 autocast where supported, periodic validation, atomic
checkpoints every N steps (keeping the last K and the best), and exact resume: the batch, the
masks and the dropout noise of step s are pure functions of (seed, rank, step), so a run killed
at any point and resumed from its last checkpoint ends with the same weights as one never stopped.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import torch
from torch import nn

from instructgen.config import to_dict
from instructgen.errors import ConfigError
from instructgen.train.distributed import Dist
from instructgen.train.objectives import IGNORE, Batch, generator_for, loss_and_count
from instructgen.train.report import MetricsLog, plot_losses, progress_bar
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
    """The language-modelling loss: mean NLL over the labelled tokens, or the batch's
    loss_weights on them (loss_and_count). A forward that has a cheaper way to the same loss
    names it as `forward.loss`: model_forward from the hidden states, without the [B, T, vocab]
    logits (model_loss); sft.hf_forward with logits at the labelled positions only."""
    if hasattr(forward, "loss"):
        return forward.loss

    def loss_fn(model: nn.Module, batch: Batch) -> tuple[torch.Tensor, int, dict[str, float]]:
        loss, count = loss_and_count(forward(model, batch), batch.labels, batch.loss_weights)
        return loss, count, {}

    return loss_fn


def model_forward(model: nn.Module, batch: Batch, **loss_inputs: Any) -> torch.Tensor:
    """Logits of an instructgen Transformer for a Batch (its loss, given labels=)."""
    return model(
        batch.input_ids,
        mask=batch.mask,
        attention_mask=batch.attention_mask,
        position_ids=batch.position_ids,
        prefix_lengths=batch.prefix_lengths,
        segment_ids=batch.segment_ids,
        role_ids=batch.role_ids,
        **loss_inputs,
    )


def model_loss(model: nn.Module, batch: Batch) -> tuple[torch.Tensor, int, dict[str, float]]:
    """token_loss of an instructgen Transformer (model/cross_entropy.linear_cross_entropy)."""
    loss = model_forward(model, batch, labels=batch.labels, loss_weights=batch.loss_weights)
    return loss, int((batch.labels != IGNORE).sum()), {}


model_forward.loss = model_loss  # type: ignore[attr-defined]


def lr_at(step: int, config: TrainConfig) -> float:
    """The learning rate of step s (counted from 0): linear warmup, then cosine decay.

    lr(s) = lr · (s + 1) / warmup                          for s < warmup
    lr(s) = min_lr + ½ (lr − min_lr) (1 + cos(π · p))      after, with
    p = min(1, (s − warmup) / max(1, max_steps − warmup)),  min_lr = lr · min_lr_ratio
    """
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = min(
        1.0, (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps)
    )
    min_lr = config.lr * config.min_lr_ratio
    return min_lr + 0.5 * (config.lr - min_lr) * (1 + math.cos(math.pi * progress))


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only: norms, biases and embeddings are not decayed.

    θ ← θ − lr·(m̂/(√v̂ + ε) + λθ), m and v the running means of g and g² (betas)."""
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
    params = decay + no_decay
    # torch's fused AdamW: one kernel over every tensor, 4-6x faster than foreach on a CPU (where
    # foreach is slower than the plain loop); sharded (DTensor) parameters keep foreach
    fused = all(
        type(p.data) is torch.Tensor and p.device.type in ("cpu", "cuda") and p.is_floating_point()
        for p in params
    )
    return torch.optim.AdamW(
        groups,
        lr=config.lr,
        betas=(config.beta1, config.beta2),
        fused=fused or None,
        foreach=None if fused else True,
    )


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


def autocast(device: torch.device, amp: torch.dtype | None) -> torch.autocast:
    """Autocast to `amp` on `device`; a no-op context when amp is None (plain fp32)."""
    return torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None)


def compiled(model: nn.Module, device: torch.device) -> nn.Module:
    """torch.compile(model), or the model itself on a CPU without the C++ compiler that torch's
    CPU kernels are built with (told on stderr)."""
    compiler = os.environ.get("CXX", "clang++" if sys.platform == "darwin" else "g++")
    if device.type == "cpu" and shutil.which(compiler) is None:
        print(f"compile: no C++ compiler ({compiler}) found; training uncompiled", file=sys.stderr)
        return model
    return torch.compile(model)


def cpu_has_native_bf16() -> bool:
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # older torch
        return False


def _step_seed(seed: int, rank: int, step: int) -> int:
    return (seed * 1_000_003 + rank * 7919 + step) % (2**62)


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
    returns are averaged over the logged step's targets and written beside the loss.

    Writes out_dir/checkpoints/step_N (model dir + optimizer + state), out_dir/metrics.jsonl,
    out_dir/loss_curve.png and, at the end, the final model files in out_dir itself.
    """
    run = _Run(
        model,
        sources,
        config,
        Path(out_dir),
        io=io,
        loss_fn=loss_fn or token_loss(forward),
        resume=resume,
        dist=dist or Dist.from_env(),
        block_types=block_types,
        show_progress=show_progress,
    )
    step, stopped_early = run.start_step, False
    for step in range(run.start_step, config.max_steps):
        lr = lr_at(step, config)
        stats = run.optimizer_step(step, lr)
        done = step + 1
        if _due(done, config.log_every, config):
            run.log(done, lr, stats)
        if _due(done, config.eval_every, config):
            run.evaluate(done)
        stop = run.patience_spent()
        if _due(done, config.save_every, config) or stop:
            run.checkpoint(done)
        if stop:
            stopped_early = True
            break
    return run.finish(step, stopped_early)


def _due(done: int, every: int, config: TrainConfig) -> bool:
    """Whether a periodic action (log, evaluation, checkpoint) falls after step `done`: every
    `every` steps, and always after the last step."""
    return done % every == 0 or done == config.max_steps


@dataclass
class _StepStats:
    """What one optimizer step measured on this rank: [Σ loss·count, Σ count] per source, the
    loss's extra metrics as Σ value·count, and the gradient norm before clipping."""

    task_sums: dict[str, list[float]]
    extra_sums: dict[str, float] = field(default_factory=dict)
    grad_norm: float | torch.Tensor = 0.0

    def add(self, name: str, loss: float, count: int, extras: dict[str, float]) -> None:
        """Count one micro-batch of source `name`: its mean loss over `count` targets."""
        self.task_sums[name][0] += loss * count
        self.task_sums[name][1] += count
        for key, value in extras.items():
            self.extra_sums[key] = self.extra_sums.get(key, 0.0) + value * count


class _Run:
    """One call of train(): the model and its optimizer, the sources, the metrics log, and the
    state a checkpoint carries (the best validation loss, evaluations without improvement)."""

    def __init__(
        self,
        model: nn.Module,
        sources: dict[str, tuple[BatchSource, float]],
        config: TrainConfig,
        out_dir: Path,
        *,
        io: ModelIO,
        loss_fn: LossFn,
        resume: bool,
        dist: Dist,
        block_types: tuple[type, ...],
        show_progress: bool,
    ):
        self.model, self.sources, self.config, self.out_dir = model, sources, config, out_dir
        self.io, self.loss_fn, self.dist = io, loss_fn, dist
        self.ckpt_root = out_dir / "checkpoints"
        model.to(dist.device)
        self.trained = dist.wrap(model, fsdp=config.fsdp, block_types=block_types)
        self.optimizer = make_optimizer(model, config)  # after wrapping: FSDP2 replaces parameters
        if config.compile:
            self.trained = compiled(self.trained, dist.device)
        latest = find_latest(self.ckpt_root) if resume else None
        self._restore(latest)
        self.metrics = MetricsLog(
            out_dir / "metrics.jsonl",
            resume_step=self.start_step if latest else None,
            enabled=dist.main,
        )
        if dist.main and latest is not None:
            print(f"resumed from {latest} (step {self.start_step})", file=sys.stderr)
        self.names = list(sources)
        self.weights = torch.tensor([sources[n][1] for n in self.names], dtype=torch.float64)
        self.global_batch = config.batch_size * config.grad_accum * dist.world
        self.amp = autocast_dtype(config, dist.device)
        self.progress = progress_bar(
            config.max_steps, self.start_step, enabled=show_progress and dist.main
        )
        self.window_start, self.window_tokens = time.perf_counter(), 0
        model.train()

    def _restore(self, latest: Path | None) -> None:
        """Start from scratch, or from checkpoint `latest`: weights, optimizer and trainer state."""
        self.start_step, self.best, self.bad_evals = 0, {"val_loss": math.inf, "step": None}, 0
        if latest is None:
            return
        optim_state, state, _ = load_checkpoint(latest)
        restore_full_state(
            self.model,
            self.optimizer,
            self.io.load_state(latest),
            optim_state,
            strict=self.io.strict,
        )
        self.start_step, self.best = state["step"], state["best"]
        self.bad_evals = state.get("bad_evals", 0)

    def optimizer_step(self, step: int, lr: float) -> _StepStats:
        """Step `step` at learning rate `lr`: grad_accum micro-batches, each loss divided by
        grad_accum so the gradients add up to the mean's, then clipping and one AdamW update.
        The dropout noise is seeded by (seed, rank, step), which makes resume exact."""
        config = self.config
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        torch.manual_seed(_step_seed(config.seed, self.dist.rank, step))
        stats = _StepStats({n: [0.0, 0.0] for n in self.names})
        for micro in range(config.grad_accum):
            name, batch = self._micro_batch(step, micro)
            loss, count, extras = self._forward(batch, sync=micro == config.grad_accum - 1)
            (loss / config.grad_accum).backward()
            stats.add(name, loss.item(), count, extras)
        stats.grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.window_tokens += self.global_batch * config.seq_len
        return stats

    def _micro_batch(self, step: int, micro: int) -> tuple[str, Batch]:
        """(source name, batch) of micro-batch `micro` of step `step` on this rank: the source is
        drawn by weight and the samples indexed, both from (seed, step, micro, rank) alone."""
        config, dist, names = self.config, self.dist, self.names
        generator = generator_for(config.seed, step, micro, dist.rank)
        name = (
            names[int(torch.multinomial(self.weights, 1, generator=generator))]
            if len(names) > 1
            else names[0]
        )
        first = step * self.global_batch + (micro * dist.world + dist.rank) * config.batch_size
        batch = self.sources[name][0].train_batch(first, config.batch_size, generator)
        return name, batch.to(self.dist.device)

    def _forward(self, batch: Batch, *, sync: bool) -> tuple[torch.Tensor, int, dict[str, float]]:
        """The loss of one micro-batch under autocast; DDP syncs gradients only when `sync`."""
        sync = sync or not hasattr(self.trained, "no_sync")
        with (
            self.trained.no_sync() if not sync else nullcontext(),
            autocast(self.dist.device, self.amp),
        ):
            return self.loss_fn(self.trained, batch)

    def log(self, done: int, lr: float, stats: _StepStats) -> None:
        """Write the metrics row of step `done` (its loss over every rank's micro-batches, per
        source when there are several, its extra metrics, lr, gradient norm, tokens/s since the
        last row) and show it on the progress bar."""
        keys, names = sorted(stats.extra_sums), self.names
        flat = self.dist.all_reduce_sum(
            [v for n in names for v in stats.task_sums[n]] + [stats.extra_sums[k] for k in keys]
        )
        sums = {n: (flat[2 * i], flat[2 * i + 1]) for i, n in enumerate(names)}
        total, count = sum(s for s, _ in sums.values()), sum(c for _, c in sums.values())
        elapsed = time.perf_counter() - self.window_start
        row = {
            "step": done,
            "loss": total / max(count, 1),
            "lr": lr,
            "grad_norm": float(stats.grad_norm),
            "tokens_per_s": self.window_tokens / max(elapsed, 1e-9),
        }
        if len(names) > 1:
            row["task_loss"] = {n: s / c for n, (s, c) in sums.items() if c}
        extras = {k: v / max(count, 1) for k, v in zip(keys, flat[2 * len(names) :])}
        row.update(extras)
        self.metrics.write(row)
        self._show(done, row, extras)
        self.window_start, self.window_tokens = time.perf_counter(), 0

    def _show(self, done: int, row: dict[str, Any], extras: dict[str, float]) -> None:
        """Advance the progress bar to step `done` and show the row's loss, lr and throughput."""
        self.progress.update(done - self.progress.n)
        self.progress.set_postfix(
            loss=f"{row['loss']:.3f}",
            lr=f"{row['lr']:.2e}",
            tok_s=f"{row['tokens_per_s']:.0f}",
            **{k.rsplit("/", 1)[-1]: f"{v:.3f}" for k, v in extras.items()},
        )

    def evaluate(self, done: int) -> None:
        """Validate after step `done`, log the result, and keep the best validation loss and the
        count of evaluations since it improved (early stopping's patience)."""
        val = evaluate(self.trained, self.sources, self.config, self.dist, self.loss_fn, self.amp)
        self.model.train()
        if not val:
            return
        self.metrics.write({"step": done, **val})
        if val["val_loss"] < self.best["val_loss"]:
            self.best, self.bad_evals = {"val_loss": val["val_loss"], "step": done}, 0
        else:
            self.bad_evals += 1

    def patience_spent(self) -> bool:
        """Early stopping: `early_stopping_patience` evaluations in a row without a new best."""
        patience = self.config.early_stopping_patience
        return patience > 0 and self.bad_evals >= patience

    def checkpoint(self, done: int) -> None:
        """Save checkpoints/step_<done> with the trainer state that resuming reads back."""
        state = {
            "step": done,
            "best": self.best,
            "bad_evals": self.bad_evals,
            "config": to_dict(self.config),
            "world_size": self.dist.world,
        }
        _checkpoint(
            self.model,
            self.optimizer,
            self.ckpt_root,
            done,
            state,
            self.io.save,
            self.dist,
            self.config,
        )

    def finish(self, step: int, stopped_early: bool) -> dict[str, Any]:
        """Publish the last (or, io.publish == "best", the best) checkpoint into out_dir, plot the
        loss curve, and return the run's summary."""
        self.progress.close()
        start, best = self.start_step, self.best
        final_step = step + 1 if self.config.max_steps > start else start
        if self.dist.main:
            chosen = best["step"] if self.io.publish == "best" and best["step"] else final_step
            self.io.publish_dir(
                self.ckpt_root / f"step_{chosen:07d}",
                self.out_dir,
                {"best_checkpoint": best, "published_step": chosen},
            )
            plot_losses(self.metrics.rows, self.out_dir / "loss_curve.png")
        self.dist.barrier()
        return {
            "steps": final_step,
            "best": best,
            "stopped_early": stopped_early,
            "metrics": self.metrics.rows,
        }


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
        autocast(dist.device, amp),
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
