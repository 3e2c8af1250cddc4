"""The chunked cross-entropy equals torch's, values and gradients, in every dtype it meets."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from instructgen.train.cross_entropy import CHUNK, IGNORE, cross_entropy


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
