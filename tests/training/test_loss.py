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


def _reference_loss(queries, candidates, target_of, allowed, tau):
    """-log softmax over the allowed candidates, by hand, averaged over queries."""
    q = torch.nn.functional.normalize(queries, dim=-1)
    c = torch.nn.functional.normalize(candidates, dim=-1)
    total = 0.0
    for i in range(q.shape[0]):
        logits = [float(q[i] @ c[j]) / tau for j in allowed[i]]
        own = float(q[i] @ c[target_of[i]]) / tau
        total += -(own - math.log(sum(math.exp(x) for x in logits)))
    return total / q.shape[0]


def test_identical_positive_texts_are_not_negatives():
    # Rows 0 and 1 are different questions (items 3 and 4) whose positive is the same
    # sentence (equal text key 77): each is relevant to the other, so it is masked; row 2's
    # positive is a real negative for both.
    torch.manual_seed(0)
    queries, positives = torch.randn(3, 8), torch.randn(3, 8)
    positives[1] = positives[0]
    items, keys = torch.tensor([3, 4, 5]), torch.tensor([77, 77, 12])
    tau = 0.2
    loss_fn = InfoNCELoss(tau)
    masked = loss_fn(queries, positives, items, positive_keys=keys)
    expected = _reference_loss(queries, positives, [0, 1, 2], [[0, 2], [1, 2], [0, 1, 2]], tau)
    assert float(masked) == pytest.approx(expected, abs=1e-5)
    assert loss_fn.last_masked == {"translations": 0, "same_text": 2, "hard_negatives": 0}
    # Without keys the duplicate counts as a negative, and the loss is larger.
    unmasked = InfoNCELoss(tau)(queries, positives, items)
    assert float(unmasked) > float(masked) + 1e-3


def test_hard_negatives_equal_to_a_rows_positive_are_masked():
    # Row 1's hard negative is row 0's positive text: a negative for row 1, relevant to row 0.
    torch.manual_seed(1)
    queries, positives, negatives = torch.randn(2, 8), torch.randn(2, 8), torch.randn(2, 8)
    negatives[1] = positives[0]
    items, keys, negative_keys = (
        torch.tensor([0, 1]),
        torch.tensor([10, 11]),
        torch.tensor([90, 10]),
    )
    tau = 0.3
    loss_fn = InfoNCELoss(tau)
    loss = loss_fn(
        queries, positives, items, negatives, positive_keys=keys, negative_keys=negative_keys
    )
    candidates = torch.cat([positives, negatives])
    # Candidates: 0, 1 positives; 2 = row 0's negative; 3 = row 1's negative (= positive 0).
    expected = _reference_loss(queries, candidates, [0, 1], [[0, 1, 2], [0, 1, 2, 3]], tau)
    assert float(loss) == pytest.approx(expected, abs=1e-5)
    assert loss_fn.last_masked["hard_negatives"] == 1


def test_text_keys_are_stable_and_distinct():
    from langmix.training.loss import text_key

    texts = [f"sentence {i}" for i in range(1000)]
    keys = [text_key(t) for t in texts]
    assert len(set(keys)) == len(texts) and all(0 <= k < 2**63 for k in keys)
    assert keys[3] == text_key("sentence 3")
