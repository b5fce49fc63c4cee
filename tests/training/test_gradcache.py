"""GradCache gives the uncached loss's gradients, in one process, with a real encoder, and
replays dropout exactly (the 2-process DDP case is in test_ddp.py)."""

from __future__ import annotations

import pytest
import torch

from langmix.training.gradcache import grad_cache_step
from langmix.training.loss import InfoNCELoss


def _batch(seed: int = 0):
    # float64, so that the only difference left between the two paths would be a real one,
    # not float32 summation order amplified by the 1/0.05 temperature.
    g = torch.Generator().manual_seed(seed)
    queries, positives, negatives = (
        torch.randn(8, 16, generator=g, dtype=torch.float64) for _ in range(3)
    )
    items = torch.tensor([0, 1, 2, 3, 4, 2, 1, 7])  # two pairs of translations
    return queries, positives, negatives, items


def _encoder(dropout: float) -> torch.nn.Module:
    torch.manual_seed(0)
    layers = torch.nn.Sequential(
        torch.nn.Linear(16, 32), torch.nn.Dropout(dropout), torch.nn.Linear(32, 8)
    )
    return layers.double()


@pytest.mark.parametrize("chunk", [1, 3, 8, 100])
@pytest.mark.parametrize("symmetric", [False, True])
def test_gradients_equal_the_uncached_loss(chunk, symmetric):
    queries, positives, negatives, items = _batch()
    loss_fn = InfoNCELoss(0.05, symmetric=symmetric)

    plain = _encoder(0.0)
    expected = loss_fn(plain(queries), plain(positives), items, plain(negatives))
    expected.backward()

    cached = _encoder(0.0)
    got = grad_cache_step(
        [queries, positives, negatives],
        lambda g, x: cached(torch.stack(list(x))),
        lambda q, p, n: loss_fn(q, p, items, n),
        chunk,
    )
    assert float(got) == pytest.approx(float(expected.detach()), abs=1e-12)
    for a, b in zip(plain.parameters(), cached.parameters(), strict=True):
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-10, atol=1e-12)


def test_dropout_is_replayed_exactly():
    queries, positives, _, items = _batch(1)
    encoder = _encoder(0.5).train()
    seen: dict[tuple[int, int], list[torch.Tensor]] = {}

    def embed(group, inputs):
        out = encoder(torch.stack(list(inputs)))
        key = (group, int(inputs[0].sum() * 1000))
        seen.setdefault(key, []).append(out.detach().clone())
        return out

    grad_cache_step([queries, positives], embed, lambda q, p: InfoNCELoss()(q, p, items), 3)
    assert len(seen) == 6  # 2 groups x 3 chunks, each embedded twice
    for first, second in seen.values():
        assert torch.equal(first, second)  # same dropout masks in both passes


def test_real_encoder_gradients(offline_cache):
    from langmix.models import load_model

    model = load_model("offline:multilingual-e5-small@L1").eval()  # eval: no dropout
    queries = ["query: Wer schrieb Faust?", "query: who wrote Faust?", "query: ¿Dónde está?"] * 2
    passages = ["passage: Goethe schrieb Faust.", "passage: Goethe wrote it.", "passage: Aquí."] * 2
    items = torch.tensor([0, 0, 1, 2, 2, 3])

    def embed(texts):
        features = model.tokenize(list(texts))
        return model(features)["sentence_embedding"]

    loss_fn = InfoNCELoss()
    expected = loss_fn(embed(queries), embed(passages), items)
    expected.backward()
    reference = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)

    got = grad_cache_step(
        [queries, passages], lambda g, x: embed(x), lambda q, p: loss_fn(q, p, items), 2
    )
    assert float(got) == pytest.approx(float(expected.detach()), rel=1e-5)
    for name, param in model.named_parameters():
        if name in reference:
            # Chunks pad to their own length: equal up to float32 rounding.
            torch.testing.assert_close(param.grad, reference[name], rtol=1e-4, atol=1e-6)


def test_chunk_size_must_be_positive():
    with pytest.raises(ValueError, match="chunk_size"):
        grad_cache_step([[1]], lambda g, x: torch.zeros(1, 1), lambda a: a.sum(), 0)
