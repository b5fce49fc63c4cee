"""InfoNCE against hand-computed values, masking, hard negatives and the symmetric term."""

from __future__ import annotations

import math

import pytest
import torch

from langmix.training.loss import InfoNCELoss


def test_hand_computed_example():
    # Two queries, two positives; cosine scores q0:[1, s], q1:[0, s] with s = sqrt(1/2).
    s = math.sqrt(0.5)
    queries = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    positives = torch.tensor([[1.0, 0.0], [s, s]])
    tau = 0.5
    expected = (math.log(1 + math.exp((s - 1) / tau)) + math.log(1 + math.exp((0 - s) / tau))) / 2
    loss = InfoNCELoss(tau)(queries, positives, torch.tensor([0, 1]))
    assert float(loss) == pytest.approx(expected, abs=1e-6)
    # Scale does not matter: scores are cosine similarities.
    assert float(
        InfoNCELoss(tau)(3 * queries, 0.1 * positives, torch.tensor([0, 1]))
    ) == pytest.approx(expected, abs=1e-6)


def test_same_item_columns_are_masked():
    # Queries 0 and 1 are translations (same item): each other's positive is not a negative,
    # so each query's only competitor is the positive of item 2.
    queries = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    positives = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    items = torch.tensor([5, 5, 9])
    tau = 0.1
    loss = InfoNCELoss(tau)(queries, positives, items)

    def cos(a, b):
        return float(torch.nn.functional.cosine_similarity(a, b, dim=0))

    def term(i, competitors):
        own = cos(queries[i], positives[i]) / tau
        others = [cos(queries[i], positives[j]) / tau for j in competitors]
        return -own + math.log(math.exp(own) + sum(math.exp(o) for o in others))

    expected = (term(0, [2]) + term(1, [2]) + term(2, [0, 1])) / 3
    assert float(loss) == pytest.approx(expected, abs=1e-5)
    unmasked = InfoNCELoss(tau)(queries, positives, torch.tensor([5, 6, 9]))
    assert float(unmasked) > float(loss)


def test_hard_negatives_are_extra_columns():
    torch.manual_seed(0)
    q, p, n = torch.randn(4, 8), torch.randn(4, 8), torch.randn(8, 8)
    items = torch.arange(4)
    tau = 0.05
    loss = InfoNCELoss(tau)(q, p, items, n)
    qn = torch.nn.functional.normalize(q, dim=-1)
    cands = torch.nn.functional.normalize(torch.cat([p, n]), dim=-1)
    expected = torch.nn.functional.cross_entropy(qn @ cands.T / tau, torch.arange(4))
    assert float(loss) == pytest.approx(float(expected), abs=1e-5)
    assert float(loss) > float(InfoNCELoss(tau)(q, p, items))


def test_symmetric_adds_passage_to_query_direction():
    torch.manual_seed(1)
    q, p = torch.randn(5, 8), torch.randn(5, 8)
    items = torch.arange(5)
    tau = 0.05
    qn, pn = (torch.nn.functional.normalize(x, dim=-1) for x in (q, p))
    forward = torch.nn.functional.cross_entropy(qn @ pn.T / tau, torch.arange(5))
    backward = torch.nn.functional.cross_entropy(pn @ qn.T / tau, torch.arange(5))
    loss = InfoNCELoss(tau, symmetric=True)(q, p, items)
    assert float(loss) == pytest.approx(float(forward + backward) / 2, abs=1e-5)


def test_bad_arguments():
    with pytest.raises(ValueError, match="temperature"):
        InfoNCELoss(0)
    with pytest.raises(ValueError, match="shape mismatch"):
        InfoNCELoss()(torch.zeros(2, 4), torch.zeros(3, 4), torch.arange(2))


@pytest.mark.parametrize(
    ("version", "functional"),
    [("2.13.0+cpu", True), ("2.14.1", True), ("2.12.1+cu128", False), ("2.13.0a0+git1", False)],
)
def test_gather_is_chosen_by_torch_version(version, functional):
    """all_gather_single (autograd-aware) from torch 2.13; torch.distributed.nn before."""
    from langmix.training.loss import gather_implementation

    chosen = gather_implementation(version).__name__
    assert chosen == ("_functional_gather" if functional else "_autograd_function_gather")
