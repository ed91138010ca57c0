"""Pair sampling for the pairwise loss, framework-neutral and vectorised.

Per list, up to ``pairs_per_list`` pairs are drawn uniformly without replacement among the
valid pairs whose labels differ: equal-label pairs are never drawn, so lists with few
distinct ratings still get their share. Each eligible pair gets an independent uniform key
and the smallest keys win, which is a uniform random subset.
"""

from __future__ import annotations

import numpy as np

# Rows are processed in chunks so the [rows, L, L] key array stays near this many entries.
_CHUNK_ENTRIES = 1 << 22


def sample_pairs(
    labels: np.ndarray, where: np.ndarray, *, pairs_per_list: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw ``pairs_per_list`` pairs per list, oriented so that ``labels[i] > labels[j]``.

    Args:
      labels: [B, L] labels.
      where: [B, L] bool, True = valid item.
      pairs_per_list: pairs per list (>= 1).
      rng: the generator; the same state gives the same pairs.

    Returns:
      ``(list_index, i_index, j_index)``, each [B * pairs_per_list] int32, list by list. A list
      with fewer eligible pairs is filled with ``(b, 0, 0)``, which counts as nothing.

    Example:
      >>> import numpy as np
      >>> rng = np.random.default_rng(0)
      >>> labels, where = np.array([[3.0, 3.0, 1.0]]), np.ones((1, 3), bool)
      >>> b, i, j = sample_pairs(labels, where, pairs_per_list=3, rng=rng)
      >>> sorted(zip(i.tolist(), j.tolist()))
      [(0, 0), (0, 2), (1, 2)]
    """
    labels, where = np.asarray(labels), np.asarray(where, dtype=bool)
    if labels.ndim != 2 or labels.shape != where.shape:
        raise ValueError(f"labels {labels.shape} and where {where.shape} must be the same [B, L] shape")
    if int(pairs_per_list) != pairs_per_list or pairs_per_list < 1:
        raise ValueError(f"pairs_per_list must be an integer >= 1, got {pairs_per_list!r}")
    batch, length = labels.shape
    k = pairs_per_list
    i_index = np.zeros((batch, k), np.int32)
    j_index = np.zeros((batch, k), np.int32)
    take = min(k, length * length)
    upper = np.triu(np.ones((length, length), bool), 1)
    rows = max(1, _CHUNK_ENTRIES // max(length * length, 1))
    for lo in range(0, batch, rows):
        y, w = labels[lo : lo + rows], where[lo : lo + rows]
        eligible = upper & w[:, :, None] & w[:, None, :] & (y[:, :, None] != y[:, None, :])
        keys = rng.random(eligible.shape, dtype=np.float32)
        keys[~eligible] = 2.0
        flat = keys.reshape(len(y), -1)
        chosen = (
            np.argpartition(flat, take - 1, axis=1)[:, :take]
            if take < flat.shape[1]
            else (np.broadcast_to(np.arange(flat.shape[1]), flat.shape))
        )
        ok = np.take_along_axis(flat, chosen, axis=1) <= 1.0
        first, second = np.divmod(chosen, length)
        swap = np.take_along_axis(y, first, 1) < np.take_along_axis(y, second, 1)
        i_index[lo : lo + rows, :take] = np.where(ok, np.where(swap, second, first), 0)
        j_index[lo : lo + rows, :take] = np.where(ok, np.where(swap, first, second), 0)
    list_index = np.repeat(np.arange(batch, dtype=np.int32), k)
    return list_index, i_index.reshape(-1), j_index.reshape(-1)
