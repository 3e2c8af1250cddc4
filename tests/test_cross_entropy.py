"""The chunked cross-entropy equals torch's, values and gradients, in every dtype it meets; so
does the fused one that takes hidden states and the output layer instead of the logits."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from instructgen.model.cross_entropy import CHUNK, IGNORE, cross_entropy, linear_cross_entropy
from instructgen.model.transformer import ModelConfig, Transformer
from instructgen.train.objectives import loss_and_count, per_example_weights


def _labels(rows: int, vocab: int) -> torch.Tensor:
    labels = torch.randint(0, vocab, (rows,))
    labels[::3] = IGNORE
    return labels


@pytest.mark.parametrize("rows", [1, 7, CHUNK, CHUNK + 1, 2 * CHUNK + 5])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_loss_and_gradient_equal_torch(rows, dtype):
    torch.manual_seed(rows)
    logits = (torch.randn(rows, 97) * 3).to(dtype).requires_grad_()
    labels = _labels(rows, 97)
    labels[-1] = 5  # at least one labelled row
    ours = cross_entropy(logits, labels)
    (ours * 0.25).backward()
    ours_grad, logits.grad = logits.grad, None
    reference = F.cross_entropy(logits.float(), labels, ignore_index=IGNORE)
    (reference * 0.25).backward()
    assert ours.dtype == torch.float32
    assert torch.allclose(ours, reference, atol=1e-6)
    assert ours_grad.dtype == dtype
    tolerance = 1e-7 if dtype == torch.float32 else 1e-3
    assert torch.allclose(ours_grad.float(), logits.grad.float(), atol=tolerance)


def test_gradient_is_exact_in_float64():
    torch.manual_seed(0)
    logits = torch.randn(CHUNK + 3, 6, dtype=torch.float64, requires_grad=True)
    labels = _labels(CHUNK + 3, 6)
    assert torch.autograd.gradcheck(lambda z: cross_entropy(z, labels), logits)


def test_nothing_labelled_is_a_zero_with_a_zero_gradient():
    logits = torch.randn(4, 10, requires_grad=True)
    loss = cross_entropy(logits, torch.full((4,), IGNORE))
    loss.backward()
    assert loss.item() == 0.0
    assert torch.count_nonzero(logits.grad) == 0


def test_without_autograd_only_the_loss_is_computed():
    logits, labels = torch.randn(5, 11), torch.tensor([0, 1, IGNORE, 3, 10])
    with torch.no_grad():
        loss = cross_entropy(logits, labels)
    assert torch.allclose(loss, F.cross_entropy(logits, labels, ignore_index=IGNORE))


def test_backward_twice_through_the_same_loss():
    logits = torch.randn(3, 5, requires_grad=True)
    loss = cross_entropy(logits, torch.tensor([0, 1, 2]))
    loss.backward(retain_graph=True)
    first = logits.grad.clone()
    loss.backward()
    assert torch.allclose(logits.grad, 2 * first)


# ----------------------------------------------------------------------------------------------
# linear_cross_entropy: the loss of hidden · Wᵀ without the logits


def _head(rows: int, seed: int, weighted: bool = False):
    torch.manual_seed(seed)
    hidden = torch.randn(rows, 16, requires_grad=True)
    weight = torch.randn(97, 16, requires_grad=True)
    labels = _labels(rows, 97)
    labels[-1] = 5
    weights = torch.rand(rows) if weighted else None
    return hidden, weight, labels, weights


def _grads(loss_of, hidden, weight, amp: bool):
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
        loss = loss_of()
    (loss * 0.5).backward()
    grads = hidden.grad, weight.grad
    hidden.grad = weight.grad = None
    return loss.detach(), grads


@pytest.mark.parametrize("rows", [1, 7, CHUNK + 1, 2 * CHUNK + 5])
@pytest.mark.parametrize("amp", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_linear_loss_and_gradients_equal_the_logits_path(rows, amp, weighted):
    hidden, weight, labels, weights = _head(rows, rows, weighted)
    fused, (gh, gw) = _grads(
        lambda: linear_cross_entropy(hidden, weight, labels, weights), hidden, weight, amp
    )
    plain, (rh, rw) = _grads(
        lambda: cross_entropy(hidden @ weight.t(), labels, weights), hidden, weight, amp
    )
    # bf16 products: one bf16 rounding apart (∂L/∂W sums its chunks in float32, autograd rounds
    # the whole sum to bf16 once)
    tolerance = 1e-2 if amp else 1e-5
    assert torch.allclose(fused, plain, rtol=tolerance, atol=tolerance)
    assert gh.dtype == hidden.dtype and gw.dtype == weight.dtype
    for ours, reference in ((gh, rh), (gw, rw)):
        assert torch.allclose(ours, reference, atol=tolerance * max(1.0, reference.abs().max()))


def test_linear_gradients_are_exact_in_float64():
    torch.manual_seed(1)
    hidden = torch.randn(CHUNK + 3, 5, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    labels = _labels(CHUNK + 3, 6)
    assert torch.autograd.gradcheck(
        lambda h, w: linear_cross_entropy(h, w, labels), (hidden, weight)
    )


def test_linear_with_nothing_labelled_is_a_zero_with_zero_gradients():
    hidden, weight, _, _ = _head(4, 0)
    loss = linear_cross_entropy(hidden, weight, torch.full((4,), IGNORE))
    loss.backward()
    assert loss.item() == 0.0
    assert torch.count_nonzero(hidden.grad) == 0 and torch.count_nonzero(weight.grad) == 0


def test_linear_without_autograd_only_the_loss_is_computed():
    hidden, weight, labels, _ = _head(9, 2)
    with torch.no_grad():
        loss = linear_cross_entropy(hidden, weight, labels)
    reference = F.cross_entropy(hidden @ weight.t(), labels, ignore_index=IGNORE)
    assert not loss.requires_grad and torch.allclose(loss, reference)


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_the_models_loss_is_the_loss_of_its_logits(arch):
    """forward(labels=) gives the loss and parameter gradients of the logits path."""
    torch.manual_seed(0)
    config = ModelConfig(arch=arch, vocab_size=300, d_model=32, n_layer=2, n_head=4, max_seq_len=64)
    model = Transformer(config)
    ids = torch.randint(0, 300, (3, 40))
    labels = torch.where(torch.rand(3, 40) < 0.6, torch.randint(0, 300, (3, 40)), IGNORE)
    weights = per_example_weights(labels, None)

    def gradients(loss: torch.Tensor) -> dict[str, torch.Tensor]:
        model.zero_grad(set_to_none=True)
        loss.backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    fused = model(ids, labels=labels, loss_weights=weights)
    fused_grads = gradients(fused)
    plain, _ = loss_and_count(model(ids), labels, weights)
    plain_grads = gradients(plain)
    assert torch.allclose(fused, plain, atol=1e-6)
    assert fused_grads.keys() == plain_grads.keys()
    for name, grad in fused_grads.items():
        assert torch.allclose(grad, plain_grads[name], atol=1e-6), name
