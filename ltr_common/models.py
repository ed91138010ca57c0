"""Model parameters, framework-neutral: canonical names, shapes and initialisation.

A model's parameters have canonical names and shapes here (matrices ``[in, out]``). Each
framework's model class maps those names to its own parameter paths (its ``LAYOUT``), which
is all the weight converter (``ltr_common.weights``) needs; and both frameworks start from the
same NumPy-drawn ``initial_weights``, so runs of one seed begin alike whichever trains them.
A new model is one entry in ``MODELS`` plus one model class per framework.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np


@dataclasses.dataclass(frozen=True)
class Parameter:
    shape: tuple[int, ...]
    init: str  # "xavier_uniform", "normal" (standard deviation ``std``), "zeros" or "ones"
    std: float = 0.0


def two_tower_mlp(
    num_users: int, num_items: int, *, embedding_dim: int, mlp_hidden: int
) -> dict[str, Parameter]:
    """``s(u, i) = MLP([user_emb(u); item_emb(i)])``: one hidden ReLU layer, a scalar output."""
    d, h = embedding_dim, mlp_hidden
    return {
        "user_embedding": Parameter((num_users, d), "xavier_uniform"),
        "item_embedding": Parameter((num_items, d), "xavier_uniform"),
        "hidden_kernel": Parameter((2 * d, h), "xavier_uniform"),
        "hidden_bias": Parameter((h,), "zeros"),
        "output_kernel": Parameter((h, 1), "xavier_uniform"),
        "output_bias": Parameter((1,), "zeros"),
    }


def dot_product(num_users: int, num_items: int, *, embedding_dim: int) -> dict[str, Parameter]:
    """``s(u, i) = <e_u, e_i> + b_i + b_u``: a true two tower, the catalog one matrix product."""
    return {
        "user_embedding": Parameter((num_users, embedding_dim), "xavier_uniform"),
        "item_embedding": Parameter((num_items, embedding_dim), "xavier_uniform"),
        "user_bias": Parameter((num_users,), "zeros"),
        "item_bias": Parameter((num_items,), "zeros"),
    }


def sequence_encoder(
    num_users: int,
    num_items: int,
    *,
    embedding_dim: int,
    history_length: int,
    num_blocks: int,
    rating_levels: int = 0,
) -> dict[str, Parameter]:
    """``s(u, i) = <h_u, e_i> + b_i``, the user vector ``h_u`` a causal transformer over the
    user's newest ``history_length`` items (SASRec, Kang & McAuley 2018): item embeddings
    (shared with the item tower) plus learned positions — and, with ``rating_levels`` N > 0,
    a learned embedding of each history item's rating 1..N —, ``num_blocks`` pre-norm blocks
    of self-attention and a feed-forward layer, a final layer norm. No parameter depends on
    the user count: a new user is their history."""
    del num_users
    d = embedding_dim
    parameters = {  # embeddings as SASRec's: unit-variance dot products at the start
        "item_embedding": Parameter((num_items, d), "normal", std=d**-0.5),
        "item_bias": Parameter((num_items,), "zeros"),
        "position_embedding": Parameter((history_length, d), "normal", std=0.02),
    }
    if rating_levels:
        parameters["rating_embedding"] = Parameter((rating_levels, d), "normal", std=0.02)
    for block in range(num_blocks):
        prefix = f"block{block}_"
        parameters |= {
            prefix + "attention_norm_scale": Parameter((d,), "ones"),
            prefix + "attention_norm_bias": Parameter((d,), "zeros"),
            **{prefix + f"{part}_kernel": Parameter((d, d), "xavier_uniform") for part in ATTENTION_PARTS},
            **{prefix + f"{part}_bias": Parameter((d,), "zeros") for part in ATTENTION_PARTS},
            prefix + "feedforward_norm_scale": Parameter((d,), "ones"),
            prefix + "feedforward_norm_bias": Parameter((d,), "zeros"),
            prefix + "feedforward_in_kernel": Parameter((d, d), "xavier_uniform"),
            prefix + "feedforward_in_bias": Parameter((d,), "zeros"),
            prefix + "feedforward_out_kernel": Parameter((d, d), "xavier_uniform"),
            prefix + "feedforward_out_bias": Parameter((d,), "zeros"),
        }
    return parameters | {
        "final_norm_scale": Parameter((d,), "ones"),
        "final_norm_bias": Parameter((d,), "zeros"),
    }


ATTENTION_PARTS = ("query", "key", "value", "output")

MODELS: dict[str, Callable[..., dict[str, Parameter]]] = {
    "mlp": two_tower_mlp,
    "dot": dot_product,
    "sequence": sequence_encoder,
}
SEQUENTIAL = ("sequence",)  # models whose user vector is read from the user's history


def model_dimensions(config) -> dict[str, int]:
    """The keyword arguments the model a ``TrainConfig`` names takes from it."""
    if config.model == "mlp":
        return {"embedding_dim": config.embedding_dim, "mlp_hidden": config.mlp_hidden}
    if config.model == "sequence":
        return {
            "embedding_dim": config.embedding_dim,
            "history_length": config.history_length,
            "num_blocks": config.num_blocks,
            "rating_levels": config.rating_levels,
        }
    return {"embedding_dim": config.embedding_dim}


def model_options(config) -> dict:
    """The keyword arguments a framework's model class takes from a ``TrainConfig``."""
    options = model_dimensions(config)
    if config.model in ("mlp", "sequence"):
        options["dropout"] = config.dropout
    if config.model == "sequence":
        options["num_heads"] = config.num_heads
    return options


def model_parameters(config, num_users: int, num_items: int) -> dict[str, Parameter]:
    """The canonical parameters of the model a ``TrainConfig`` describes."""
    return MODELS[config.model](num_users, num_items, **model_dimensions(config))


def weight_decay(config, shape: tuple[int, ...]) -> float:
    """The decoupled weight decay of a parameter of ``shape``: ``config.weight_decay`` for
    matrices (embeddings, kernels), ``config.bias_weight_decay`` for vectors (biases), whose
    values carry an item's or a user's level rather than a direction."""
    return config.weight_decay if len(shape) >= 2 else config.bias_weight_decay


def initial_weights(parameters: dict[str, Parameter], seed: int) -> dict[str, np.ndarray]:
    """Float32 initial values of ``parameters``, drawn in NumPy from ``seed`` in their order.

    Xavier-uniform: ``U(-b, b)``, ``b = sqrt(6 / (shape[0] + shape[1]))``; normal: ``N(0, std^2)``;
    zeros and ones.

    Example:
      >>> w = initial_weights(two_tower_mlp(3, 4, embedding_dim=2, mlp_hidden=5), seed=0)
      >>> {k: v.shape for k, v in w.items()}["hidden_kernel"]
      (4, 5)
    """
    rng = np.random.default_rng([seed, 0x1D17])
    out = {}
    for name, parameter in parameters.items():
        if parameter.init in ("zeros", "ones"):
            out[name] = np.full(parameter.shape, float(parameter.init == "ones"), np.float32)
        elif parameter.init == "normal":
            out[name] = rng.normal(0.0, parameter.std, size=parameter.shape).astype(np.float32)
        elif parameter.init == "xavier_uniform":
            bound = np.sqrt(6.0 / (parameter.shape[0] + parameter.shape[1]))
            out[name] = rng.uniform(-bound, bound, size=parameter.shape).astype(np.float32)
        else:
            raise ValueError(f"{name}: unknown init {parameter.init!r}")
    return out
