"""Two-tower weights between the Flax parameter tree and the PyTorch state dict, as NumPy.

Flax ``Dense``/kernel matrices are [in, out]; PyTorch ``Linear.weight`` is [out, in], so
they transpose. Every array's shape is checked against the other side's; a round trip is
exact (transposes and copies only).
"""

from __future__ import annotations

import numpy as np

# (flax path, torch name, transpose)
_MAPPING = (
    (("user_embedding", "embedding"), "user_embedding.weight", False),
    (("item_embedding", "embedding"), "item_embedding.weight", False),
    (("hidden_kernel",), "hidden.weight", True),
    (("hidden_bias",), "hidden.bias", False),
    (("output", "kernel"), "output.weight", True),
    (("output", "bias"), "output.bias", False),
)


def _get(tree, path):
    for key in path:
        tree = tree[key]
    return np.asarray(tree)


def flax_to_torch(params, *, expected_shapes: dict[str, tuple] | None = None) -> dict[str, np.ndarray]:
    """Flax params tree → {torch name: array}. ``expected_shapes`` (a torch state dict's) are checked."""
    out = {}
    for path, name, transpose in _MAPPING:
        try:
            value = _get(params, path)
        except KeyError:
            raise ValueError(f"flax params have no {'/'.join(path)} (found {sorted(params)})") from None
        converted = value.T if transpose else value
        if expected_shapes is not None and tuple(expected_shapes[name]) != converted.shape:
            wanted = tuple(expected_shapes[name])
            raise ValueError(
                f"flax {'/'.join(path)}: expected shape {wanted[::-1] if transpose else wanted} "
                f"(for torch {name} {wanted}), found {value.shape}"
            )
        out[name] = np.array(converted, order="C", copy=True)
    return out


def torch_to_flax(state: dict, *, expected=None) -> dict:
    """{torch name: array} → Flax params tree; ``expected`` (a Flax tree) has its shapes checked."""
    tree: dict = {}
    for path, name, transpose in _MAPPING:
        if name not in state:
            raise ValueError(f"torch state has no {name} (found {sorted(state)})")
        original = np.asarray(state[name])
        value = np.array(original.T if transpose else original, order="C", copy=True)
        if expected is not None and _get(expected, path).shape != value.shape:
            wanted = _get(expected, path).shape
            raise ValueError(
                f"torch {name}: expected shape {wanted[::-1] if transpose else wanted} "
                f"(for flax {'/'.join(path)} {wanted}), found {original.shape}"
            )
        node = tree
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return tree


def initial_weights(seed: int, num_users: int, num_items: int, embedding_dim: int, mlp_hidden: int) -> dict:
    """Xavier-uniform embeddings and kernels, zero biases, drawn in NumPy from ``seed``.

    Both frameworks start from these (as a Flax tree, or converted with ``flax_to_torch``),
    so runs of the same seed begin from the same weights whichever framework trains them.
    """
    rng = np.random.default_rng([seed, 0x1D17])

    def xavier(shape):
        bound = np.sqrt(6.0 / (shape[0] + shape[1]))
        return rng.uniform(-bound, bound, size=shape).astype(np.float32)

    return {
        "user_embedding": {"embedding": xavier((num_users, embedding_dim))},
        "item_embedding": {"embedding": xavier((num_items, embedding_dim))},
        "hidden_kernel": xavier((2 * embedding_dim, mlp_hidden)),
        "hidden_bias": np.zeros(mlp_hidden, np.float32),
        "output": {"kernel": xavier((mlp_hidden, 1)), "bias": np.zeros(1, np.float32)},
    }
