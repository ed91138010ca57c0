"""Full-catalog retrieval: the metrics equal a brute-force sort in both frameworks, and both
models score the catalog alike in JAX and PyTorch from the same weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import jax_ltr
import torch_ltr
from ltr_common import TrainConfig
from ltr_common.models import initial_weights, model_parameters
from ltr_common.weights import from_canonical
from parity_tests import _bounds
from parity_tests._references import retrieval

KS = (1, 3, 10)


def random_catalog(rng, users=9, items=14):
    scores = np.round(rng.normal(size=(users, items)) * 2) / 2  # ties on purpose
    relevant = rng.random((users, items)) < 0.2
    exclude = (rng.random((users, items)) < 0.3) & ~relevant
    relevant[0] = False  # a user with nothing relevant
    exclude[1, :-2] = True  # a user with fewer candidates than k
    relevant[1] = False
    relevant[1, -1] = True
    exclude[2], relevant[2] = True, False  # one candidate, relevant; an excluded relevant item
    exclude[2, -1], relevant[2, [0, -1]] = False, True
    return scores, relevant, exclude


@pytest.mark.parametrize("framework", ["jax", "torch"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_retrieval_metrics_equal_a_brute_force_sort(framework, dtype):
    rng = np.random.default_rng(31)
    scores, relevant, exclude = random_catalog(rng)
    expected = retrieval(scores, relevant, exclude, KS)
    if framework == "jax":
        import jax

        with jax.enable_x64(dtype == "float64"):
            out = jax_ltr.retrieval_metrics(scores.astype(dtype), relevant, exclude=exclude, ks=KS)
            out = {k: np.asarray(v) for k, v in out.items()}
    else:
        arrays = (
            torch.from_numpy(scores.astype(dtype)),
            torch.from_numpy(relevant),
            torch.from_numpy(exclude),
        )
        out = {
            k: v.numpy()
            for k, v in torch_ltr.retrieval_metrics(arrays[0], arrays[1], exclude=arrays[2], ks=KS).items()
        }
    assert set(out) == set(expected)
    for name, values in expected.items():
        assert out[name].dtype == np.dtype(dtype)
        np.testing.assert_allclose(out[name], values, rtol=1e-6, atol=1e-7, equal_nan=True, err_msg=name)
    assert np.isnan(out["ndcg@10"][0]) and not np.isnan(out["ndcg@10"][1:]).any()


@pytest.mark.parametrize("framework", ["jax", "torch"])
def test_signed_zeros_tie_and_go_to_the_lower_index(framework):
    module = jax_ltr if framework == "jax" else torch_ltr
    scores = np.array([[0.0, -0.0, 1.0, -0.0], [-0.0, 0.0, 1.0, 0.0]], np.float32)
    relevant = np.array([[False, True, False, False], [True, False, False, False]])
    if framework == "torch":
        scores, relevant = torch.from_numpy(scores), torch.from_numpy(relevant)
    out = module.retrieval_metrics(scores, relevant, ks=(2,))
    # Ranks 1, 2: item 2, then the first of the tied zeros, item 0 — whatever its sign.
    np.testing.assert_array_equal(np.asarray(out["hr@2"]), [0.0, 1.0])


@pytest.mark.parametrize("framework", ["jax", "torch"])
def test_a_nan_score_ranks_with_the_lowest(framework):
    # As in ranking_metrics, a NaN score goes last, not first as a top-k of floats takes it:
    # here below item 3's -inf (the tie goes to the lower index) and never into the top 2.
    module = jax_ltr if framework == "jax" else torch_ltr
    scores = np.array([[np.nan, 1.0, 0.5, -np.inf], [-np.inf, 2.0, np.nan, 1.0]], np.float32)
    relevant = np.array([[True, False, False, False], [False, False, True, False]])
    if framework == "torch":
        scores, relevant = torch.from_numpy(scores), torch.from_numpy(relevant)
    out = module.retrieval_metrics(scores, relevant, ks=(2, 3, 4))
    np.testing.assert_array_equal(np.asarray(out["hr@2"]), [0.0, 0.0])
    np.testing.assert_array_equal(np.asarray(out["hr@3"]), [1.0, 0.0])  # item 0 before item 3
    np.testing.assert_array_equal(np.asarray(out["hr@4"]), [1.0, 1.0])


@pytest.mark.parametrize("framework", ["jax", "torch"])
def test_an_excluded_item_ranks_after_a_nan_or_minus_infinite_score(framework):
    # Items 1 (-inf) and 2 (NaN) tie as the lowest scores, by index; excluded item 0 comes
    # after both, though its index is lower, and is never a hit.
    module = jax_ltr if framework == "jax" else torch_ltr
    scores = np.array([[0.0, -np.inf, np.nan], [0.0, 1.0, -np.inf]], np.float32)
    relevant = np.array([[False, True, True], [True, False, True]])
    exclude = np.array([[True, False, False], [True, False, False]])
    if framework == "torch":
        scores, relevant, exclude = (torch.from_numpy(x) for x in (scores, relevant, exclude))
    out = module.retrieval_metrics(scores, relevant, exclude=exclude, ks=(1, 2, 3))
    np.testing.assert_array_equal(np.asarray(out["hr@1"]), [1.0, 0.0])
    np.testing.assert_allclose(np.asarray(out["ndcg@2"]), [1.0, 1 / np.log2(3) / (1 + 1 / np.log2(3))])
    np.testing.assert_array_equal(np.asarray(out["recall@3"]), [1.0, 0.5])  # item 0 never a hit


@pytest.mark.parametrize("framework", ["jax", "torch"])
def test_retrieval_arguments_are_checked(framework):
    module = jax_ltr if framework == "jax" else torch_ltr
    scores, relevant = np.zeros((2, 3), np.float32), np.zeros((2, 3), bool)
    if framework == "torch":
        scores, relevant = torch.from_numpy(scores), torch.from_numpy(relevant)
    with pytest.raises(ValueError, match=r"relevant must be a boolean mask shaped like scores \(2, 3\)"):
        module.retrieval_metrics(scores, relevant[:, :2], ks=(1,))
    with pytest.raises(ValueError, match=r"ks must be a sequence of integers >= 1, got \(0,\)"):
        module.retrieval_metrics(scores, relevant, ks=(0,))


@pytest.mark.parametrize("model", ["mlp", "dot"])
def test_both_frameworks_score_the_catalog_alike(model):
    """Same weights, every user: one compiled JAX pass, one batched PyTorch pass."""
    import jax

    config = TrainConfig(model=model, embedding_dim=8, mlp_hidden=12, dropout=0.0)
    users, items = 70, 90  # more users than one MLP chunk of the catalog
    parameters = model_parameters(config, users, items)
    weights = initial_weights(parameters, seed=3)
    rng = np.random.default_rng(4)
    weights = {k: (v + rng.normal(0, 0.1, v.shape)).astype(np.float32) for k, v in weights.items()}
    flax_model = jax_ltr._train.make_model(config, users, items)
    torch_model = torch_ltr._train.make_model(config, users, items)
    state = from_canonical(weights, torch_model.LAYOUT)
    torch_model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    torch_model.eval()
    ids = np.arange(users, dtype=np.int32)
    ours = np.asarray(
        jax.jit(lambda p, u: flax_model.apply({"params": p}, u, method=flax_model.catalog_scores))(
            from_canonical(weights, flax_model.LAYOUT), ids
        )
    )
    with torch.no_grad():
        theirs = torch_model.catalog_scores(torch.from_numpy(ids).long()).numpy()
        per_list = torch_model(torch.from_numpy(ids).long(), torch.arange(items).repeat(users, 1)).numpy()
    assert ours.shape == (users, items)
    # Each score is a sum of products of weights and embeddings: ulps of their magnitude.
    magnitude = np.abs(theirs) + np.abs(per_list).max()
    np.testing.assert_array_less(np.abs(ours - theirs), _bounds.tolerance(magnitude, "float32") + 1e-30)
    np.testing.assert_allclose(theirs, per_list, rtol=1e-5, atol=1e-6)  # the catalog = every list
