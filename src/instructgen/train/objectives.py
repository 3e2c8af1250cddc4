"""Pretraining objectives (brief 3.2 and 4.2): how a chunk of tokens becomes inputs, labels and a mask.

Every objective returns a `Batch`; the loss is the mean negative log-likelihood over the
positions whose label is not IGNORE:

    clm      L(θ) = -Σ_i log P(w_i | w_<i; θ)            causal mask, every next token scored
    mlm      L(θ) = -Σ_{i∈M} log P(w_i | w_\\M; θ)        bidirectional, only the masked positions M
    prefix   L(θ) = -Σ_{i≥p} log P(w_i | w_<i; θ)         bidirectional over w_<p, causal after it
    copy     L(θ) = -Σ_{i∈C} log P(w_i | w_<i; θ)         synthetic rows a a b b … of random spans,
                                                         C = the repeats (needs no data)
    mixture  several (objective, data, task prefix) entries sampled by weight (brief 3.2.3)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from instructgen.model.cross_entropy import IGNORE, cross_entropy

OBJECTIVES = ("clm", "mlm", "prefix", "copy", "mixture")


@dataclass
class Batch:
    input_ids: torch.Tensor  # [B, T]
    labels: torch.Tensor  # [B, T], IGNORE where no loss
    mask: str = "causal"  # causal | bidirectional | prefix
    prefix_lengths: torch.Tensor | None = None  # [B], prefix objective
    attention_mask: torch.Tensor | None = None  # [B, T], 1 = real token
    position_ids: torch.Tensor | None = None
    segment_ids: torch.Tensor | None = None  # [B, T], packed examples
    role_ids: torch.Tensor | None = None  # [B, T], learned role embeddings (instruction embedding)
    loss_weights: torch.Tensor | None = None  # [B, T], the loss's weight per label (None: mean)
    task: str = "main"
    extra: dict = field(default_factory=dict)

    def to(self, device) -> Batch:
        moved = {
            k: (v.to(device) if isinstance(v, torch.Tensor) else v)
            for k, v in self.__dict__.items()
        }
        return Batch(**moved)

    @property
    def num_targets(self) -> int:
        return int((self.labels != IGNORE).sum())


def clm_batch(chunks: torch.Tensor, *, task: str = "main") -> Batch:
    """L(θ) = -Σ log P(w_i | w_<i; θ): inputs w_0..w_{T-1} predict w_1..w_T under a causal mask."""
    return Batch(
        input_ids=chunks[:, :-1].contiguous(),
        labels=chunks[:, 1:].contiguous(),
        mask="causal",
        task=task,
    )


def mlm_batch(
    tokens: torch.Tensor,
    *,
    mask_id: int,
    vocab_size: int,
    generator: torch.Generator,
    probability: float = 0.15,
    protected_ids: tuple[int, ...] = (),
    task: str = "main",
) -> Batch:
    """L(θ) = -Σ_{i∈M} log P(w_i | w_\\M; θ), M = 15% of positions: 80% → [MASK], 10% → random, 10% kept."""
    labels = tokens.clone()
    chosen = torch.rand(tokens.shape, generator=generator) < probability
    for special in protected_ids:
        chosen &= tokens != special
    labels[~chosen] = IGNORE
    inputs = tokens.clone()
    roll = torch.rand(tokens.shape, generator=generator)
    inputs[chosen & (roll < 0.8)] = mask_id
    randomise = chosen & (roll >= 0.8) & (roll < 0.9)
    inputs[randomise] = torch.randint(0, vocab_size, tokens.shape, generator=generator)[randomise]
    return Batch(input_ids=inputs, labels=labels, mask="bidirectional", task=task)


def prefix_batch(chunks: torch.Tensor, *, generator: torch.Generator, task: str = "main") -> Batch:
    """Prefix-LM: a random prefix w_<p is read bidirectionally; only w_p..w_T are predicted.

    Position i predicts w_{i+1}; positions i < p-1 could see their own target inside the
    bidirectional prefix, so their labels are ignored.
    """
    inputs, labels = chunks[:, :-1].clone(), chunks[:, 1:].clone()
    B, T = inputs.shape
    prefix_lengths = torch.randint(1, T, (B,), generator=generator)
    positions = torch.arange(T).unsqueeze(0)
    labels[positions < (prefix_lengths.unsqueeze(1) - 1)] = IGNORE
    return Batch(
        input_ids=inputs, labels=labels, mask="prefix", prefix_lengths=prefix_lengths, task=task
    )


def with_task_prefix(chunks: torch.Tensor, prefix_ids: list[int]) -> torch.Tensor:
    """Replace the first len(prefix) tokens of every chunk by the task prefix (T5-style task tags)."""
    if not prefix_ids:
        return chunks
    out = chunks.clone()
    out[:, : len(prefix_ids)] = torch.tensor(prefix_ids, dtype=chunks.dtype)
    return out


def loss_and_count(
    logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None = None
) -> tuple[torch.Tensor, int]:
    """Mean negative log-likelihood over labelled positions (weighted by `weights` [B, T] when
    given), and how many there were."""
    count = int((labels != IGNORE).sum())
    flat = None if weights is None else weights.reshape(-1)
    loss = cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1), flat)
    return loss, count  # 0 (with a graph) when nothing in the batch is labelled


def per_example_weights(
    labels: torch.Tensor, segment_ids: torch.Tensor | None, power: float = 1.0
) -> torch.Tensor:
    """Loss weights [B, T] under which example e, with n_e labelled tokens, weighs n_e^(1−p):

        w_i = n_e(i)^(−p) / Σ_e n_e^(1−p)    on the labelled tokens, 0 elsewhere

    p = 1: every example alike, however long its answer; p = 0: every token alike (the plain
    mean); p = ½ between. An example is a (row, segment) pair (a row, without segment ids)."""
    scored = labels != IGNORE
    segments = torch.zeros_like(labels) if segment_ids is None else segment_ids
    rows = torch.arange(labels.size(0), device=labels.device).unsqueeze(1)
    example = rows * (int(segments.max()) + 1) + segments
    counts = torch.zeros(int(example.max()) + 1, device=labels.device)
    counts.index_add_(0, example[scored], torch.ones(int(scored.sum()), device=labels.device))
    weights = torch.where(scored, counts[example].clamp(min=1) ** -power, 0.0)
    return weights / weights.sum().clamp(min=1e-12)


def generator_for(seed: int, *keys: int) -> torch.Generator:
    """A torch.Generator determined by (seed, *keys): the same step always draws the same masks."""
    g = torch.Generator()
    value = seed
    for k in keys:
        value = (value * 1_000_003 + k) % (2**63 - 1)
    return g.manual_seed(value)


def copy_batch(
    batch_size: int,
    seq_len: int,
    *,
    token_ids: torch.Tensor,
    generator: torch.Generator,
    span: tuple[int, int] = (8, 24),
    task: str = "copy",
) -> Batch:
    """Copy drills: rows of random spans a, b, … of `token_ids`, each followed by itself (a a b b …).

    L(θ) = -Σ_{i∈C} log P(w_i | w_<i; θ) over the repeats C only: predicting them needs an
    induction circuit (find the earlier occurrence of the current token, read the token after it),
    which is how a small model repeats a name or a number from its instruction. Span lengths
    vary, so no fixed look-back offset can stand in for it. On ordinary text the circuit forms
    slowly; on these drills a 4M-parameter model gets it in a few hundred steps.
    """
    rows, labels = [], []
    for _ in range(batch_size):
        ids: list[int] = []
        target: list[int] = []
        while len(ids) < seq_len + 1:
            n = int(torch.randint(span[0], span[1] + 1, (1,), generator=generator))
            a = token_ids[torch.randint(len(token_ids), (n,), generator=generator)].tolist()
            ids += a + a
            target += [IGNORE] * n + a
        rows.append(ids[: seq_len + 1])
        labels.append(target[1 : seq_len + 1])
    return Batch(
        input_ids=torch.tensor(rows)[:, :-1].contiguous(),
        labels=torch.tensor(labels),
        mask="causal",
        task=task,
    )
