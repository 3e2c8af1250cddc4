"""Preference tuning (brief 8.3.2, 9.4): DPO and ORPO on pairs of a chosen and a rejected answer.

    DPO   L = −log σ(β[(log πθ(y_w|x) − log πref(y_w|x)) − (log πθ(y_l|x) − log πref(y_l|x))])
    ORPO  L = −(1/|y_w|) log πθ(y_w|x) + λ·(−log σ(log odds(y_w|x) − log odds(y_l|x))),
          odds(y|x) = P / (1 − P),  P = exp((1/|y|) log πθ(y|x))   (length-normalised, as in
          the paper and TRL)

log π(y|x) sums the log-probabilities of the answer's tokens only (the assistant mask of the last
turn). DPO's reference is the model before tuning: its log-probabilities are computed once, before
the first step, so no second copy of the model is kept (under LoRA that is exactly the
adapter-disabled base, since the adapters start at zero). Logged as TRL names them:
rewards/chosen = β(log πθ(y_w|x) − log πref(y_w|x)) (ORPO: β·(1/|y_w|) log πθ(y_w|x)),
rewards/rejected likewise, rewards/margins = chosen − rejected, rewards/accuracies = the share of
pairs whose chosen reward is the higher.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from instructgen.config import to_dict
from instructgen.data.preferences import Pair
from instructgen.data.templates import Example, encode_example
from instructgen.errors import ConfigError, DataError
from instructgen.tokenizer import Tokenizer
from instructgen.train.loop import Forward, LossFn, TrainConfig
from instructgen.train.objectives import IGNORE, Batch
from instructgen.train.sft import (
    SFTOptions,
    builtin_world,
    epoch_indices,
    load_tunable,
    pad_batch,
    run_tuning,
    train_and_val,
)

METHODS = ("dpo", "orpo")


@dataclass
class PreferenceOptions:
    method: str = "dpo"
    beta: float = (
        0.1  # DPO's β (the strength of the pull towards the reference); ORPO's reward scale
    )
    orpo_lambda: float = 0.1  # ORPO's λ, the weight of the odds-ratio term

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(
                f"unknown method {self.method!r}; choose {', '.join(METHODS)}", field="method"
            )
        if self.beta <= 0:
            raise ConfigError(f"must be > 0, got {self.beta}", field="beta")
        if self.orpo_lambda < 0:
            raise ConfigError(f"must be >= 0, got {self.orpo_lambda}", field="orpo_lambda")


# ----------------------------------------------------------------------------------------------
# the losses, on per-sequence log-probabilities


def sequence_logps(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(Σ_t log p(y_t), #t) per row over the labelled positions (labels already shifted)."""
    scored = labels != IGNORE
    logp = torch.log_softmax(logits.float(), dim=-1)
    picked = logp.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (picked * scored).sum(-1), scored.sum(-1)


def dpo_loss(
    chosen: torch.Tensor,
    rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    beta: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mean L, rewards of chosen, rewards of rejected) for summed log-probabilities [B]:
    L = −log σ(β[(π_w − ref_w) − (π_l − ref_l)]), reward = β(π − ref)."""
    reward_chosen, reward_rejected = beta * (chosen - ref_chosen), beta * (rejected - ref_rejected)
    loss = -F.logsigmoid(reward_chosen - reward_rejected).mean()
    return loss, reward_chosen.detach(), reward_rejected.detach()


def orpo_loss(
    chosen_sum: torch.Tensor,
    chosen_len: torch.Tensor,
    rejected_sum: torch.Tensor,
    rejected_len: torch.Tensor,
    lam: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mean L, (1/|y_w|) log π(y_w), (1/|y_l|) log π(y_l)): L = NLL_w + λ·(−log σ(log odds_w −
    log odds_l)), log odds = a − log(1 − eᵃ) with a the length-normalised log-probability."""
    chosen = chosen_sum / chosen_len.clamp(min=1)
    rejected = rejected_sum / rejected_len.clamp(min=1)
    log_odds = (chosen - torch.log1p(-torch.exp(chosen).clamp(max=1 - 1e-6))) - (
        rejected - torch.log1p(-torch.exp(rejected).clamp(max=1 - 1e-6))
    )
    loss = (-chosen - lam * F.logsigmoid(log_odds)).mean()
    return loss, chosen.detach(), rejected.detach()


def preference_loss(options: PreferenceOptions, forward: Forward) -> LossFn:
    """The training loss of a preference batch (2B rows: the B chosen, then the B rejected)."""

    def loss_fn(model: nn.Module, batch: Batch) -> tuple[torch.Tensor, int, dict[str, float]]:
        sums, lengths = sequence_logps(forward(model, batch), batch.labels)
        n = sums.size(0) // 2
        if options.method == "dpo":
            loss, good, bad = dpo_loss(
                sums[:n],
                sums[n:],
                batch.extra["ref_chosen"],
                batch.extra["ref_rejected"],
                options.beta,
            )
        else:
            loss, good, bad = orpo_loss(
                sums[:n], lengths[:n], sums[n:], lengths[n:], options.orpo_lambda
            )
            good, bad = options.beta * good, options.beta * bad
        metrics = {
            "rewards/chosen": good.mean().item(),
            "rewards/rejected": bad.mean().item(),
            "rewards/margins": (good - bad).mean().item(),
            "rewards/accuracies": (good > bad).float().mean().item(),
        }
        return loss, n, metrics

    return loss_fn


# ----------------------------------------------------------------------------------------------
# data


def encode_pair(tokenizer: Tokenizer, pair: Pair, max_len: int) -> tuple[Example, Example] | None:
    """The chosen and rejected conversations as examples scored on the answer only (assistant
    turns of the prompt are context); None when truncation leaves either answer no token."""
    context = len(tokenizer.encode_chat(pair.prompt).ids)
    out = []
    for conversation in pair.conversations():
        example = encode_example(tokenizer, conversation, max_len=max_len)
        if example is None:
            return None
        mask = [0] * min(context, len(example)) + example.loss_mask[context:]
        if not any(mask):
            return None
        out.append(Example(example.input_ids, mask, example.role_ids))
    return out[0], out[1]


class PairSource:
    """Preference batches: sample i is pair perm_e[i mod n] (epoch e = i div n), as in
    ExampleSource, so resume is exact; reference log-probabilities ride along in batch.extra."""

    def __init__(
        self,
        train: list[tuple[Example, Example]],
        val: list[tuple[Example, Example]],
        *,
        pad_id: int,
        roles: bool,
        seed: int,
    ):
        self.name, self.pad_id, self.roles, self.seed = "preference", pad_id, roles, seed
        order = list(range(len(train)))
        random.Random(seed).shuffle(order)
        self.train, self.val = [train[i] for i in order], val
        self.n_train = len(self.train)
        self.ref = {"train": torch.zeros(self.n_train, 2), "val": torch.zeros(len(val), 2)}

    def _batch(self, split: str, indices: list[int]) -> Batch:
        pairs = self.train if split == "train" else self.val
        rows = [pairs[i][0] for i in indices] + [pairs[i][1] for i in indices]
        tensors = pad_batch(rows, self.pad_id)
        if not self.roles:
            tensors.pop("role_ids")
        ref = self.ref[split][indices]
        extra = {"ref_chosen": ref[:, 0], "ref_rejected": ref[:, 1]}
        return Batch(**tensors, mask="causal", task=self.name, extra=extra)

    def train_batch(self, first_sample: int, batch_size: int, generator: torch.Generator) -> Batch:
        return self._batch(
            "train", epoch_indices(first_sample, batch_size, self.n_train, self.seed)
        )

    def val_batches(self, batch_size: int, max_batches: int):
        for b in range(min(max_batches, -(-len(self.val) // batch_size))):
            yield self._batch(
                "val", list(range(b * batch_size, min(len(self.val), (b + 1) * batch_size)))
            )

    @torch.no_grad()
    def compute_reference(
        self, model: nn.Module, forward: Forward, batch_size: int, samples: int, val_pairs: int
    ) -> None:
        """Summed answer log-probabilities of the model as it is now (the reference), in eval
        mode, for the pairs a run of `samples` training samples and `val_pairs` validation pairs
        will draw (a short run over a large file scores only what it uses)."""
        needed = {
            "train": sorted(epoch_indices(0, min(samples, self.n_train), self.n_train, self.seed)),
            "val": list(range(min(val_pairs, len(self.val)))),
        }
        was_training = model.training
        model.eval()
        for split, rows in needed.items():
            for start in range(0, len(rows), batch_size):
                indices = rows[start : start + batch_size]
                batch = self._batch(split, indices)
                sums, _ = sequence_logps(forward(model, batch), batch.labels)
                n = len(indices)
                self.ref[split][indices] = torch.stack([sums[:n], sums[n:]], dim=1).float()
        model.train(was_training)


def load_pairs(
    data: str, options: SFTOptions, *, seed: int, cache_dir: Path
) -> tuple[list[Pair], list[Pair]]:
    """(train, val) pairs from a preference file, or from the built-in world ("builtin": the
    reference answer chosen, another answer of the same family, which its checker rejects)."""
    from instructgen.data.preferences import read_pairs

    if data == "builtin":
        from instructgen.data.builtin import load_split
        from instructgen.data.builtin_preferences import builtin_pairs

        world = builtin_world(cache_dir, options, seed)
        return (
            builtin_pairs(load_split(world, "train"), seed=seed),
            builtin_pairs(load_split(world, "val"), seed=seed),
        )
    return train_and_val(data, options, seed, read_pairs)


# ----------------------------------------------------------------------------------------------
# the recipe


def align(
    model_dir: str | Path,
    data: str,
    out_dir: str | Path,
    config: TrainConfig,
    options: SFTOptions,
    preference: PreferenceOptions,
    *,
    resume: bool = False,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Preference-tune the model in `model_dir` on pairs; the result is a model (or adapter)
    directory, as finetune's is."""
    out_dir = Path(out_dir)
    tunable = load_tunable(model_dir, options, config)
    tokenizer = tunable.tokenizer
    train_pairs, val_pairs = load_pairs(data, options, seed=config.seed, cache_dir=out_dir / "data")
    encode = [encode_pair(tokenizer, p, config.seq_len) for p in train_pairs]
    train_examples = [e for e in encode if e is not None]
    val_examples = [e for p in val_pairs if (e := encode_pair(tokenizer, p, config.seq_len))]
    if len(train_examples) < config.batch_size:
        raise DataError(
            f"{len(train_examples)} usable training pairs are fewer than a batch of "
            f"{config.batch_size}; lower --batch-size (pairs whose answers do not fit "
            f"--seq-len {config.seq_len} are dropped)",
            file=data,
        )
    source = PairSource(
        train_examples,
        val_examples,
        pad_id=tokenizer.pad_id or 0,
        roles=tunable.roles,
        seed=config.seed,
    )
    stage = {
        "stage": "align",
        "method": preference.method,
        "data": data,
        "template": options.template or "model's",
        "lora": options.lora,
        "config": to_dict(config),
        "options": to_dict(options),
        "preference": to_dict(preference),
        "base_model": str(model_dir),
        "pairs": len(train_examples),
    }

    def reference(model: nn.Module, forward: Forward) -> None:
        if preference.method == "dpo":
            world = int(os.environ.get("WORLD_SIZE", "1"))
            per_step = config.batch_size * config.grad_accum * world
            source.compute_reference(
                model,
                forward,
                config.batch_size,
                samples=config.max_steps * per_step,
                val_pairs=config.eval_batches * world * config.batch_size,
            )

    return run_tuning(
        tunable,
        options,
        config,
        stage,
        {"preference": (source, 1.0)},
        out_dir,
        resume=resume,
        show_progress=show_progress,
        make_loss=lambda forward: preference_loss(preference, forward),
        prepare=reference,
    )
