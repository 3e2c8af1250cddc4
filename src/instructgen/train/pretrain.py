"""Pretraining (brief 3.2): token shards → batches for each objective → the training loop → a model directory."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from instructgen.config import from_dict, to_dict
from instructgen.data.corpus import TokenShards
from instructgen.errors import ConfigError, DataError, UserError
from instructgen.model.checkpoint import load_model, provenance_history
from instructgen.model.transformer import Block
from instructgen.tokenizer import Tokenizer
from instructgen.train.loop import TrainConfig, train
from instructgen.train.objectives import (
    OBJECTIVES,
    Batch,
    clm_batch,
    copy_batch,
    mlm_batch,
    prefix_batch,
    with_task_prefix,
)
from instructgen.train.state import native_io


@dataclass
class MixtureEntry:
    """One task of a multitask mixture (brief 3.2.3)."""

    name: str
    objective: str = "clm"
    data: str | None = None  # shard directory; default: --data
    weight: float = 1.0
    prefix: str = ""  # task tag written at the start of every sequence, e.g. "[MLM] "


class ShardSource:
    """Chunks of seq_len+1 tokens at stride seq_len over the token stream, turned into batches.

    The last `val_fraction` of the chunks is held out for validation. Training sample i is
    chunk perm_e[i mod n] of epoch e = i div n, with perm_e a permutation seeded by (seed, e):
    any sample can be drawn again from its index alone, which is what makes resume exact.
    """

    def __init__(
        self,
        name: str,
        shards: TokenShards,
        *,
        objective: str,
        seq_len: int,
        val_fraction: float,
        seed: int,
        tokenizer: Tokenizer,
        vocab_size: int,
        mlm_probability: float = 0.15,
        prefix: str = "",
    ):
        if objective not in ("clm", "mlm", "prefix"):
            raise ConfigError(
                f"unknown objective {objective!r}; choose clm, mlm or prefix", field="objective"
            )
        if objective == "mlm" and tokenizer.mask_id is None:
            raise UserError("the mlm objective needs a tokenizer with a mask token")
        self.name, self.shards, self.objective, self.seq_len, self.seed = (
            name,
            shards,
            objective,
            seq_len,
            seed,
        )
        # MLM's random replacements: token ids of the tokenizer, not the model's padded vocabulary
        self.mask_id, self.vocab_size, self.mlm_probability = (
            tokenizer.mask_id,
            min(vocab_size, len(tokenizer)),
            mlm_probability,
        )
        self.protected = tuple(
            i for i in (tokenizer.eos_id, tokenizer.pad_id, tokenizer.bos_id) if i is not None
        )
        self.prefix_ids = tokenizer.encode(prefix) if prefix else []
        chunks = (len(shards) - 1) // seq_len
        self.n_val = max(1, round(chunks * val_fraction)) if chunks > 1 else 0
        self.n_train = chunks - self.n_val

    def check_batch(self, batch_size: int) -> None:
        if self.n_train < batch_size:
            raise UserError(
                f"the corpus ({len(self.shards):,} tokens) holds {self.n_train} training sequences of {self.seq_len} tokens, "
                f"fewer than a batch of {batch_size}; lower --batch-size or --seq-len, or add data"
            )

    @lru_cache(maxsize=2)  # noqa: B019 - two epochs at most are live at once
    def _permutation(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(self.n_train)

    def _chunks(self, indices) -> torch.Tensor:
        rows = [self.shards.window(int(c) * self.seq_len, self.seq_len + 1) for c in indices]
        return with_task_prefix(torch.from_numpy(np.stack(rows)), self.prefix_ids)

    def _batch(self, chunks: torch.Tensor, generator: torch.Generator) -> Batch:
        if self.objective == "clm":
            return clm_batch(chunks, task=self.name)
        if self.objective == "prefix":
            return prefix_batch(chunks, generator=generator, task=self.name)
        protected = self.protected + tuple(self.prefix_ids)
        return mlm_batch(
            chunks[:, :-1],
            mask_id=self.mask_id,
            vocab_size=self.vocab_size,
            generator=generator,
            probability=self.mlm_probability,
            protected_ids=protected,
            task=self.name,
        )

    def train_batch(self, first_sample: int, batch_size: int, generator: torch.Generator) -> Batch:
        indices = []
        for i in range(first_sample, first_sample + batch_size):
            epoch, position = divmod(i, self.n_train)
            indices.append(self._permutation(epoch)[position])
        return self._batch(self._chunks(indices), generator)

    def val_batches(self, batch_size: int, max_batches: int):
        generator = torch.Generator().manual_seed(self.seed)  # the same masks at every evaluation
        val = list(range(self.n_train, self.n_train + self.n_val))
        for b in range(min(max_batches, -(-len(val) // batch_size))):
            yield self._batch(self._chunks(val[b * batch_size : (b + 1) * batch_size]), generator)


class CopySource:
    """Copy drills (objectives.copy_batch) over the tokenizer's ordinary tokens; needs no data.
    A step's drills come from the step's generator, so a resumed run sees the same ones."""

    def __init__(self, name: str, *, seq_len: int, seed: int, tokenizer: Tokenizer):
        self.name, self.seq_len, self.seed = name, seq_len, seed
        special = tokenizer.special_ids
        self.token_ids = torch.tensor([i for i in range(len(tokenizer)) if i not in special])

    def check_batch(self, batch_size: int) -> None:
        pass

    def train_batch(self, first_sample: int, batch_size: int, generator: torch.Generator) -> Batch:
        return self._drills(batch_size, generator)

    def val_batches(self, batch_size: int, max_batches: int):
        generator = torch.Generator().manual_seed(self.seed)  # the same drills at every evaluation
        for _ in range(max_batches):
            yield self._drills(batch_size, generator)

    def _drills(self, batch_size: int, generator: torch.Generator) -> Batch:
        return copy_batch(
            batch_size, self.seq_len, token_ids=self.token_ids, generator=generator, task=self.name
        )


def open_shards(path: str | Path, tokenizer: Tokenizer, vocab_size: int) -> TokenShards:
    if not Path(path).is_dir():
        raise DataError(
            "data directory not found (make one with `instructgen data tokenize`)", file=str(path)
        )
    return TokenShards(path, expect_fingerprint=tokenizer.fingerprint(), vocab_size=vocab_size)


def pretrain(
    model_dir: str | Path,
    data_dir: str | Path | None,
    out_dir: str | Path,
    config: TrainConfig,
    *,
    resume: bool = False,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Pretrain the model in `model_dir` on token shards; the result is a model directory at `out_dir`."""
    if config.objective not in OBJECTIVES:
        raise ConfigError(
            f"unknown objective {config.objective!r}; choose {', '.join(OBJECTIVES)}",
            field="objective",
        )
    tokenizer = Tokenizer.from_dir(model_dir)
    model = load_model(model_dir, dtype="float32")
    if config.seq_len > model.config.max_seq_len:
        raise ConfigError(
            f"seq_len {config.seq_len} exceeds the model's context length {model.config.max_seq_len}",
            field="seq_len",
        )
    entries = mixture_entries(config)
    sources = {
        e.name: (task_source(e, data_dir, config, tokenizer, model.config.vocab_size), e.weight)
        for e in entries
    }

    stage = {
        "stage": "pretrain",
        "objective": config.objective,
        "data": [
            "copy drills" if e.objective == "copy" else str(e.data or data_dir) for e in entries
        ],
        "config": to_dict(config),
        "base_model": str(model_dir),
    }
    history = provenance_history(model_dir) + [stage]

    io = native_io(model, model_dir, {"history": history})
    return train(
        model,
        sources,
        config,
        out_dir,
        io=io,
        resume=resume,
        block_types=(Block,),
        show_progress=show_progress,
    )


def mixture_entries(config: TrainConfig) -> list[MixtureEntry]:
    """The tasks to train on: the `mixture:` list for the mixture objective, else one task."""
    if config.objective != "mixture":
        return [MixtureEntry(name=config.objective, objective=config.objective)]
    if not config.mixture:
        raise ConfigError(
            "the mixture objective needs a `mixture:` list of tasks in --config", field="mixture"
        )
    return [from_dict(MixtureEntry, e, source="mixture") for e in config.mixture]


def task_source(
    entry: MixtureEntry,
    data_dir: str | Path | None,
    config: TrainConfig,
    tokenizer: Tokenizer,
    vocab_size: int,
) -> ShardSource | CopySource:
    """The batch source of one task: copy drills, or the task's shards (default: `data_dir`),
    checked to hold at least one batch."""
    if entry.objective == "copy":
        return CopySource(entry.name, seq_len=config.seq_len, seed=config.seed, tokenizer=tokenizer)
    data = entry.data or data_dir
    if data is None:
        raise ConfigError(
            f"task {entry.name!r} names no data directory and --data is not given", field="data"
        )
    source = ShardSource(
        entry.name,
        open_shards(data, tokenizer, vocab_size),
        objective=entry.objective,
        seq_len=config.seq_len,
        val_fraction=config.val_fraction,
        seed=config.seed,
        tokenizer=tokenizer,
        vocab_size=vocab_size,
        mlm_probability=config.mlm_probability,
        prefix=entry.prefix,
    )
    source.check_batch(config.batch_size)
    return source
