"""Orders of labels for the listwise losses and the metrics, in JAX.

The stable descending order of a list's labels (valid items first, ties by an optional
``tie_break``, then by position) and each item's place in it: integer sorts of
order-preserving keys packed with positions (``descending_order``, ``stable_order``),
counting passes for small-integer labels such as ratings (``descending_places``,
``level_rank``, ``group_rank``), the first ``k`` places alone (``first_places``), and a
random order drawn as a ``tie_break`` of ranks costing no sort of its own
(``_places_by_tie_ranks``). Every path gives the permutation of one stable sort.
ListMLE takes it in whichever form its way finds, an order or places
(``label_arrangement``), and moves its lists by it (``to_columns``, ``to_rows``).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

_UNSIGNED = {4: jnp.uint32, 8: jnp.uint64}
# The scoped x64 switch: ``jax.enable_x64`` in current JAX, ``jax.experimental`` before it.
_enable_x64 = getattr(jax, "enable_x64", None)
if _enable_x64 is None:  # pragma: no cover (older JAX)
    from jax.experimental import enable_x64 as _enable_x64


def _compiled_per_sort(traced):
    """``traced(x, where, tie_break)`` as a jitted ``(x, where, tie_break, network)``.

    Compiled as one unit even when the caller runs eagerly (as ``_listmle_compiled``):
    op by op, the branches of ``lax.cond`` and the counting scan would be traced and compiled
    anew at every call. Under an outer jit it is inlined. How integers are sorted
    (``network_beats_sorting``, resolved by the caller) is a static argument, set for the
    trace (``sorting_network``): a trace made for one way is never reused for the other.
    """

    @functools.partial(jax.jit, static_argnums=3)
    def compiled(x, where, tie_break, network: bool):
        with sorting_network(network):
            return traced(x, where, tie_break)

    return compiled


def descending_order(keys, where, tie_break=None):
    """The permutation that sorts ``keys`` descending along the last axis, valid items first.

    Ties are broken by ascending ``tie_break`` (when given), then by position: a stable
    lexicographic sort. -0.0 and +0.0 tie, as in PyTorch.

    Computed without a multi-operand comparison sort (see ``stable_order``): the keys become
    unsigned integers in the same order, and a ``tie_break`` is applied first, as a stable
    sort of its own whose result the label sort keeps (least significant key first). For
    the places of small-integer labels a counting pass is faster: ``descending_places``.
    """
    return _descending_order(keys, where, tie_break, network_beats_sorting())


def _descending_order_traced(keys, where, tie_break):
    label_keys = sort_keys(keys, where, descending=True)
    if tie_break is None:
        return stable_order(label_keys, where)
    first = stable_order(sort_keys(tie_break, where, descending=False), where)
    second = stable_order(take(label_keys, first), take(where, first))
    return take(first, second)


_descending_order = _compiled_per_sort(_descending_order_traced)


def _sign_bit(unsigned):
    return jnp.asarray(1 << (8 * jnp.dtype(unsigned).itemsize - 1), unsigned)


def positive_zero(x):
    """Float ``x`` (32 or 64 bits) with -0.0 made +0.0, so that sorts and ``top_k`` (which
    order by bits) tie them. Done on the bits: XLA folds a ``+ 0.0`` away, and ``x == 0``
    holds for subnormals too on CPUs that flush them."""
    unsigned = _UNSIGNED[x.dtype.itemsize]
    bits = lax.bitcast_convert_type(x, unsigned)
    return jnp.where(bits == _sign_bit(unsigned), jnp.zeros((), x.dtype), x)


def counting_beats_sorting() -> bool:
    """Whether small-integer labels are placed by the counting pass (``group_rank``) rather
    than sorted, on the backend JAX computes on.

    On CPU, yes: at (1024, 200) the order took 1.3 ms counted against 5.0 ms sorted
    (``counted_levels``). On a GPU, no: the pass is L sequential steps, each its own kernel,
    while XLA hands a single-operand integer sort to a radix sort — on an H200
    (docs/gpu.md) ListMLE's value and gradient at (4096, 1000) took 17.3 ms counted on
    ratings against 1.1 ms sorted on continuous labels. TPUs, unmeasured, sort as GPUs do.
    """
    return jax.default_backend() == "cpu"


def descending_places(labels, where, tie_break=None):
    """Each item's place in ``descending_order(labels, where, tie_break)`` (its inverse
    permutation), computed as cheaply as the labels allow (``label_arrangement``; a sorted
    order is inverted by one scatter)."""
    return _as_places(*label_arrangement(labels, where, tie_break))


@jax.jit  # one unit when called eagerly: the branches are not traced anew at every call
def _as_places(index, is_order):
    return lax.cond(is_order, inverse_permutation, lambda places: places, index)


def label_arrangement(labels, where, tie_break=None):
    """``(index, is_order)``: the permutation of ``descending_order(labels, where,
    tie_break)`` in whichever form its way of finding it gives, with no scatter to turn one
    form into the other: the order itself (``is_order`` True: the item at each place) or
    each item's place (False). ``is_order`` is a scalar bool array; ``to_columns`` and
    ``to_rows`` move lists by either.

    Small-integer labels — ratings, grades, binary labels, at any offset: every valid label
    an integer less than ``counted_levels(L)`` below its list's top (``integer_groups``) —
    are placed by a counting pass (``group_rank``) where that beats a sort
    (``counting_beats_sorting``: on CPU); any others are sorted (``descending_order``). The
    test is one for the whole call, and ``lax.cond`` runs the branch it picks (under
    ``vmap`` with a batched condition, both); both give the same permutation.

    A ``tie_break`` that holds each item's rank in a random order of its list (a
    permutation of ``0 .. L-1`` along the last axis, as the trainers draw it) costs no sort
    of its own: see ``_places_by_tie_ranks``.
    """
    return _label_arrangement(labels, where, tie_break, network_beats_sorting())


def _label_arrangement_traced(labels, where, tie_break):
    length = labels.shape[-1]
    if length < 2:  # one order: the positions'
        return lax.broadcasted_iota(jnp.int32, labels.shape, labels.ndim - 1), jnp.asarray(False)
    if tie_break is not None:
        return _places_by_tie_ranks(labels, where, tie_break), jnp.asarray(False)
    if not counting_beats_sorting():
        return descending_order(labels, where), jnp.asarray(True)
    span = counted_levels(length)
    group, fits = integer_groups(labels, where, span)
    index = lax.cond(fits, lambda: group_rank(group, span), lambda: descending_order(labels, where))
    return index, ~fits


_label_arrangement = _compiled_per_sort(_label_arrangement_traced)


def to_columns(rows, arrangement):
    """Lists ``rows`` [N, L] moved into their label order and laid out one per column, [L,
    N]: ``out[p, r]`` is the item of list ``r`` at place ``p``, the layout of ListMLE's
    running sums (``jax_ltr._losses.listmle_rows``). ``arrangement`` is ``(index, is_order)``
    of ``label_arrangement`` (gathered by an order, scattered to places, each within its row:
    on CPU that and a transpose took 0.8 ms at (1024, 200) where writing or reading the
    columns' cells directly took 1.2 and 1.9 ms), or None for rows already in that order.
    ``to_rows`` is its inverse."""
    if arrangement is None:
        return rows.T
    index, is_order = arrangement
    return lax.cond(is_order, take, put, rows, index).T


def to_rows(columns, arrangement):
    """The inverse of ``to_columns``: lists laid out one per column, [L, N], each item moved
    back from its place in the label order to its position in its row, [N, L]."""
    if arrangement is None:
        return columns.T
    index, is_order = arrangement
    return lax.cond(is_order, put, take, columns.T, index)


def _places_by_tie_ranks(labels, where, tie_break):
    """``descending_places`` with ties broken by ``tie_break``, then by position.

    Ties ordered by ascending rank are ties ordered by position in the list permuted by
    those ranks: when ``tie_break`` is a permutation of ``0 .. L-1`` in every list (checked:
    whole numbers in range, and the scatter that inverts them hits every place), the labels
    are gathered into that order, placed with ties by position (the counting pass, or one
    sort), and the places gathered back — no sort for the tie order. Invalid items then take
    the places after the valid ones by position, as the sorts give them. Any other
    ``tie_break`` goes through the two sorts of ``descending_order``; both give the same
    places.
    """
    length = labels.shape[-1]
    whole = (tie_break == jnp.floor(tie_break)) & (tie_break >= 0) & (tie_break < length)
    rank = jnp.where(whole, tie_break, 0).astype(jnp.int32)
    order, hit = checked_inverse(rank)  # the item at each rank, if ranks are unique
    is_permutation = jnp.all(whole) & jnp.all(hit)

    def by_permutation():
        permuted = descending_places(take(labels, order), take(where, order))
        valid_places = take(permuted, rank)
        invalid_places = jnp.sum(where, axis=-1, keepdims=True) + jnp.cumsum(~where, axis=-1) - 1
        return jnp.where(where, valid_places, invalid_places.astype(jnp.int32))

    def by_sorts():
        return inverse_permutation(descending_order(labels, where, tie_break))

    return lax.cond(is_permutation, by_permutation, by_sorts)


def first_places(labels, where, k: int):
    """``(order, chosen)``: the first ``k`` items of ``descending_order(labels, where)`` and
    whether each is valid, without ordering the rest.

    ``k`` passes, each over the list: the smallest remaining key (``sort_keys``), its first
    position, then that item's key set to the largest value, so every pick is exact and ties
    go by position as in the full order. Where a list has fewer than ``k`` valid items the
    later picks are invalid (``chosen`` False; their positions carry no meaning). Also
    returns ``rest`` [..., L]: the valid items not picked.
    """
    # The list axis goes first: each pass's two reductions then run across the lists, in
    # vector lanes (on a 2-core CPU the ten passes of a (1024, 200) batch took 1.2 ms so,
    # against 2.9 ms reducing along each list).
    keys = jnp.moveaxis(sort_keys(labels, where, descending=True), -1, 0)
    length = keys.shape[0]
    position = lax.broadcasted_iota(jnp.int32, keys.shape, 0)
    used = jnp.asarray(jnp.iinfo(keys.dtype).max, keys.dtype)  # invalid items' key too

    def pick(remaining, _):
        smallest = jnp.min(remaining, axis=0)
        first = jnp.min(jnp.where(remaining == smallest, position, length), axis=0)
        return jnp.where(position == first, used, remaining), (first, smallest != used)

    remaining, (order, chosen) = lax.scan(pick, keys, None, length=k)
    return jnp.moveaxis(order, 0, -1), jnp.moveaxis(chosen, 0, -1), jnp.moveaxis(remaining != used, 0, -1)


def _as_key_float(x):
    """``x`` as the float type its order is taken in: float32 for narrower or integer types."""
    x = jnp.asarray(x)
    if x.dtype.itemsize < 4 or not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32)
    return x


def sort_keys(x, where, *, descending: bool):
    """Unsigned integers in the order of float ``x`` (reversed when ``descending``), every
    invalid item given the largest value and every valid one a smaller value (NaN the
    largest of those).

    The float bits are made order-preserving (flip all bits of negatives, set the sign bit of
    the rest); -0.0 and +0.0 are one key. Half-precision floats widen to
    float32 exactly; float64 (with x64 on) gives uint64.
    """
    x = _as_key_float(x)
    unsigned = _UNSIGNED[x.dtype.itemsize]
    sign = _sign_bit(unsigned)
    bits = lax.bitcast_convert_type(positive_zero(x), unsigned)
    ordered = jnp.where((bits & sign) != 0, ~bits, bits | sign)
    if descending:
        ordered = ~ordered
    last = jnp.asarray(jnp.iinfo(unsigned).max, unsigned)
    # A NaN at a valid position goes after every other valid item, whatever its sign bit, and
    # before the invalid ones (as the PyTorch reference's metrics rank a NaN score).
    valid = jnp.where(x != x, last - 1, jnp.minimum(ordered, last - 1))
    return jnp.where(where, valid, last)


def stable_order(keys, where):
    """The stable ascending order of unsigned ``keys`` [..., L] (``sort_keys``), from one
    single-operand integer sort of unique packed keys.

    The low bits of each packed key hold the item's position, so ties keep their positions'
    order and the sorted low bits are the permutation. Above them go:

    - the key's own high bits, when its low ``p = ceil(log2 L)`` bits carry no order (every
      valid item's are all zeros, or all ones, as for small-integer labels such as ratings,
      grades or tie ranks): one uint32 sort;
    - otherwise, for 32-bit keys, the whole key in the high half of a uint64 (x64 switched on
      for these few operations only, whatever the caller's setting);
    - for 64-bit keys, and on TPUs (which emulate 64-bit integers), the key's dense rank in
      its list, from a first sort and a vectorised binary search; lists longer than 65,536
      items there need x64, or fall back to the stable two-operand comparison sort.

    Every path gives the same permutation; ``lax.cond`` runs only the one the keys need.
    """
    axis = keys.ndim - 1
    length = keys.shape[-1]
    bits = max(length - 1, 0).bit_length()  # 0 for lists of one item or none
    position = lax.broadcasted_iota(jnp.int32, keys.shape, axis)
    if bits == 0:
        return position
    low = jnp.asarray((1 << bits) - 1, keys.dtype)
    own = keys & low
    high_max = jnp.asarray(jnp.iinfo(keys.dtype).max >> bits, keys.dtype)
    alike = (keys >> bits) != high_max  # valid items: high bits below the invalid ones'
    # Every valid item of the array with the same low bits, all zeros or all ones.
    uniform = jnp.all(alike & (own == 0) | ~where) | jnp.all(alike & (own == low) | ~where)

    def by_high_bits():
        return _packed_order((keys & ~low) | position.astype(keys.dtype), bits)

    def by_wide_key():  # a 32-bit key and the position in one uint64
        with _enable_x64(True):
            wide = (keys.astype(jnp.uint64) << 32) | position.astype(jnp.uint64)
            return _packed_order(wide, 32)

    def by_rank():
        packed = jnp.uint32 if 2 * bits <= 32 else jnp.uint64
        rank = _count_below(sorted_unsigned(keys), keys)
        return _packed_order((rank.astype(packed) << bits) | position.astype(packed), bits)

    def by_comparison():  # no integer wide enough for rank and position
        return lax.sort((keys, position), dimension=axis, is_stable=True, num_keys=1)[1]

    if keys.dtype == jnp.uint32 and jax.default_backend() != "tpu":  # TPUs emulate 64-bit integers
        general = by_wide_key
    elif 2 * bits <= 32 or jax.config.jax_enable_x64:
        general = by_rank
    else:
        general = by_comparison
    return lax.cond(uniform, by_high_bits, general)


def _packed_order(packed, bits: int):
    """The positions held in the low ``bits`` of unique ``packed`` keys, in sorted order."""
    ordered = sorted_unsigned(packed)  # unique keys: no order among equals to keep
    return (ordered & jnp.asarray((1 << bits) - 1, packed.dtype)).astype(jnp.int32)


_SORTING_NETWORK: contextvars.ContextVar[bool | None] = contextvars.ContextVar(
    "sorting_network", default=None
)


@contextlib.contextmanager
def sorting_network(enabled: bool | None):
    """Within it, label orders traced sort integers by the bitonic network (True), by XLA's
    sort (False), or as ``network_beats_sorting`` decides for the backend (None).

    The network costs about 0.6 s more compilation per program on a 2-core CPU than XLA's
    sort. A program run a few times (evaluation's metrics), or one whose sort is a branch
    never taken (a trainer whose labels are small integers, which are counted), is better
    off with XLA's. It is read when a function is traced, so it belongs around the first
    call of a jitted function, not inside its body.
    """
    token = _SORTING_NETWORK.set(enabled)
    try:
        yield
    finally:
        _SORTING_NETWORK.reset(token)


# "0": XLA's sort wherever ``sorting_network`` says nothing (programs compile faster: the
# test suite sets it, and its label-order tests unset it); "1": the network everywhere.
SORTING_NETWORK_ENV = "JAX_LTR_SORTING_NETWORK"


def network_beats_sorting() -> bool:
    """Whether unsigned integers are sorted by a bitonic network of vectorised operations
    (``bitonic_sort``) rather than by XLA's sort: as ``sorting_network`` says, else as the
    environment variable ``JAX_LTR_SORTING_NETWORK`` (0 or 1) says, else on the backend JAX
    computes on.

    On CPU, yes: XLA's CPU sort calls its comparator once per comparison, while the
    network's ``log2 n (log2 n + 1) / 2`` stages are vectorised passes over the whole array,
    two stages a pass. Measured on a 2-core CPU, the two sorts of (B, L) keys timed in turns
    in one run: uint32 (1024, 200) 1.5 ms against 5.0 ms, (1024, 1000) 13.8 against 33.2
    ms, (64, 2000) 1.1 against 4.8 ms; uint64 (1024, 200) 2.7 against 5.8 ms, (1024, 1000)
    26.2 against 33.9 ms, (2, 131072) 12.8 against 14.9 ms; but (2, 262144) 37.7 against
    31.0 ms (``NETWORK_MAX_LENGTH``). On GPUs XLA's sort of one integer operand is a radix
    sort, and TPUs, unmeasured, are left to XLA too.
    """
    chosen = _SORTING_NETWORK.get()
    if chosen is not None:
        return chosen
    setting = os.environ.get(SORTING_NETWORK_ENV, "")
    if setting in ("0", "1"):
        return setting == "1"
    if setting:
        raise ValueError(
            f"{SORTING_NETWORK_ENV} must be 0 or 1 (or unset: the backend decides), got {setting!r}"
        )
    return jax.default_backend() == "cpu"


# Lists longer than this go to XLA's sort even where the network is chosen: the network's
# stages grow as log2(L)^2, and at (2, 262144) its uint64 sort took 37.7 ms against 31.0 ms.
NETWORK_MAX_LENGTH = 1 << 17


def sorted_unsigned(keys):
    """Unsigned integer ``keys`` [..., L] sorted ascending along the last axis: by
    ``bitonic_sort`` where that beats XLA's sort (``network_beats_sorting``, and lists of
    at most ``NETWORK_MAX_LENGTH`` items), else by ``lax.sort``. The same values either way."""
    if network_beats_sorting() and keys.shape[-1] <= NETWORK_MAX_LENGTH:
        return bitonic_sort(keys)
    return lax.sort(keys, dimension=keys.ndim - 1, is_stable=False)


def bitonic_sort(keys):
    """Unsigned integer ``keys`` [..., L] sorted ascending along the last axis by Batcher's
    bitonic sorting network.

    The lists are laid out one item per row ([L', lists], L' the power of two at or above
    L, padded with the dtype's largest value, which sorts last and is cut off after), so
    that each compare-exchange stage is an elementwise minimum and maximum of blocks of
    rows across every list at once. Every stage sorts ascending: each merge first compares
    its two sorted runs with the second one reversed (which makes them one bitonic
    sequence), then halves. The network moves the whole array at each pass over it, so its
    cost is the passes, and a pass does two stages, each block of rows seen as four
    quarters (``_merge_pass``, ``_halving_pass``; where a merge's stages do not pair up, its
    last, at distance 1, has a pass of its own): 20 passes for 256 rows, where one stage a
    pass is 36. On a 2-core CPU, timed in turns (docs/performance.md), keys of (1024, 200)
    sorted in 2.2 ms (uint64) and 1.3 ms (uint32) two stages a pass, against 3.3 and 1.9
    ms one stage a pass; uint32 keys of (1024, 1000) in 13.6 against 17.2 ms; for 0.04 to
    0.15 s more compilation. Three stages a pass were slower: XLA computes each block of a
    pass's output on its own, the earlier stages again for each. A network sorts whatever
    the values: the result equals any sort's, equal keys being indistinguishable.
    """
    shape, length = keys.shape, keys.shape[-1]
    if length < 2:
        return keys
    size = 1 << (length - 1).bit_length()
    rows = rows_of(keys).T  # [L, lists]
    if size > length:
        pad = jnp.full((size - length, rows.shape[1]), jnp.iinfo(keys.dtype).max, keys.dtype)
        rows = jnp.concatenate([rows, pad])
    run = 1
    while run < size:  # merge sorted runs of ``run`` rows into runs of 2 * run
        rows = _merge_pass(rows, run)  # the stages at distances ``run`` (reversed) and run / 2
        half = run // 4
        while half:  # the rest of the halving, two stages a pass
            rows = _halving_pass(rows, half)
            half //= 4
        run *= 2
    return rows[:length].T.reshape(shape)


def _exchange(first, second):
    return jnp.minimum(first, second), jnp.maximum(first, second)


def _merge_pass(rows, run: int):
    """The first stage of merging sorted runs of ``run`` rows (each row of the first run
    against its mirror in the second, reversed) and, for runs of two or more, the halving
    stage after it (rows ``run / 2`` apart), in one pass. Each block of ``2 * run`` rows is
    seen as four quarters: the first against the reversed fourth, the second against the
    reversed third, then the first half's quarters against each other, and the second's."""
    if run == 1:  # one row against one: nothing to reverse
        return _halving_pass(rows, 1)
    size, lists = rows.shape
    quarters = rows.reshape(size // (2 * run), 2, 2, run // 2, lists)
    first, fourth = _exchange(quarters[:, 0, 0], quarters[:, 1, 1, ::-1])
    second, third = _exchange(quarters[:, 0, 1], quarters[:, 1, 0, ::-1])
    first, second = _exchange(first, second)
    third, fourth = _exchange(third[:, ::-1], fourth[:, ::-1])
    return jnp.stack([first, second, third, fourth], axis=1).reshape(size, lists)


def _halving_pass(rows, half: int):
    """The halving stages of a merge at distances ``half`` and ``half / 2`` in one pass (the
    one at distance 1 alone where ``half`` is 1)."""
    size, lists = rows.shape
    if half == 1:
        pairs = rows.reshape(size // 2, 2, lists)
        return jnp.stack(_exchange(pairs[:, 0], pairs[:, 1]), axis=1).reshape(size, lists)
    quarters = rows.reshape(size // (2 * half), 2, 2, half // 2, lists)
    first, third = _exchange(quarters[:, 0, 0], quarters[:, 1, 0])
    second, fourth = _exchange(quarters[:, 0, 1], quarters[:, 1, 1])
    first, second = _exchange(first, second)
    third, fourth = _exchange(third, fourth)
    return jnp.stack([first, second, third, fourth], axis=1).reshape(size, lists)


def _count_below(sorted_keys, keys):
    """For each key, how many of its list's ``sorted_keys`` are smaller: a branchless binary
    search, one gather per bit of the length, every item at once."""
    length = keys.shape[-1]
    count = jnp.zeros(keys.shape, jnp.int32)
    step = 1 << (length.bit_length() - 1)
    while step:
        candidate = count + step
        probe = jnp.take_along_axis(sorted_keys, jnp.minimum(candidate, length) - 1, axis=-1)
        count = jnp.where((candidate <= length) & (probe < keys), candidate, count)
        step >>= 1
    return count


@functools.partial(jax.jit, static_argnums=2)
def level_rank(labels, where, levels: tuple[float, ...]):
    """Each item's place in ``descending_order(labels, where)``, by a stable counting pass
    (``group_rank``) over the groups of the given ``levels``: the number of valid items on
    higher levels plus the number on its own level before it. The result is a permutation
    of ``0 .. L-1`` along the last axis for any labels, valid items first.
    """
    num = len(levels)
    above = jnp.sum(labels[..., None] > jnp.asarray(levels, labels.dtype), axis=-1)
    # A label outside ``levels`` (possible under jit, where it cannot be refused) still gets a
    # group in [0, num): the places stay a permutation, so the scatter's unique_indices
    # promise holds whatever the labels; the caller marks such a list NaN.
    group = jnp.where(where, jnp.clip(num - 1 - above, 0, num - 1), num).astype(jnp.int32)
    return group_rank(group, num)


def counted_on_host(labels, where) -> bool:
    """Whether ``descending_places`` would count these labels rather than sort them, told in
    NumPy: every valid label an integer less than ``counted_levels(L)`` below its list's top
    (``integer_groups``' test)."""
    labels, where = np.asarray(labels), np.asarray(where, bool)
    if not where.any():
        return True
    valid = labels[where]
    if not (np.isfinite(valid).all() and (valid == np.round(valid)).all()):
        return False
    top = np.max(np.where(where, labels, -np.inf), axis=-1, keepdims=True)
    below = np.where(where, top - labels, 0)
    return bool((below < counted_levels(labels.shape[-1])).all())


def counted_levels(length: int) -> int:
    """How many levels of small-integer labels a list of ``length`` items is counted for
    rather than sorted: as many as ``group_rank``'s counts fit in three 32-bit words, one
    count kept for the invalid items (11 levels for 64 to 255 items and more for shorter
    lists, 8 up to 1,023, 5 up to 65,535, 2 beyond: binary labels). More words make each of
    the L steps dearer: on the 2-core CPU of docs/benchmark.md the order alone of (16,
    10000) ratings took 7.2 ms counted in five words and 45 ms in nine, against 6.6 ms
    sorted; at (1024, 200), 1.3 ms in three words against 5.0 ms sorted."""
    return 3 * (32 // max(length, 1).bit_length()) - 1


def integer_groups(labels, where, span: int):
    """``(group, fits)`` for a counting pass over small-integer labels, whatever their values.

    ``group`` [..., L] int32: ``top - label`` for valid items, ``top`` the list's highest
    valid label (0 = the top level), and ``span`` for invalid items. ``fits`` (a scalar
    bool): every valid label is an integer less than ``span`` below its list's top —
    ratings, grades, binary labels and tie ranks, at any offset. The difference of two
    integer floats that is a small integer is exact, so a group is a label's exact level;
    NaN and infinite labels never fit, nor do subnormal ones (tested on the bits: XLA on
    CPU reads subnormals as zero in float arithmetic, which would tie 1e-45 with 0, where
    the sort orders them). Where ``fits`` is False the groups are still in ``[0, span]``
    (a permutation comes out of ``group_rank``) but carry no order.
    """
    labels = _as_key_float(labels)
    unsigned = _UNSIGNED[labels.dtype.itemsize]
    magnitude = lax.bitcast_convert_type(labels, unsigned) & ~_sign_bit(unsigned)
    tiny = jnp.asarray(jnp.finfo(labels.dtype).tiny, labels.dtype)  # the smallest normal
    smallest_normal = lax.bitcast_convert_type(tiny, unsigned)
    top = jnp.max(jnp.where(where, labels, -jnp.inf), axis=-1, keepdims=True, initial=-jnp.inf)
    below = top - labels
    inside = (labels == jnp.floor(labels)) & (below >= 0) & (below < span)
    inside &= (magnitude == 0) | (magnitude >= smallest_normal)
    fits = jnp.all(inside | ~where)
    group = jnp.where(where, jnp.where(inside, below, span - 1).astype(jnp.int32), span)
    return group, fits


def group_rank(group, num: int):
    """Each item's place when the items are ordered by ``group`` (int32 in ``[0, num]``)
    ascending, ties by position: a stable counting sort along the last axis.

    One pass along the list (a scan over positions, ``scan_in_place``) keeps a count per
    group and list, packed ``32 // b`` to a uint32 (``b`` bits hold a count up to L), the
    words of all lists one [words, lists] array, so a step is one fused read and one fused
    update whatever the number of groups (XLA's CPU loop costs a few microseconds per kernel
    a step: kept as one array per word, the counting of (1024, 200) took 1.18 ms against
    0.89 ms; written in place, 0.75-0.82 against 0.89-0.96 ms). An item's place is the
    number of items in lower groups (its group's first place, packed as the counts are and
    picked by a select per word) plus the number in its own group before it: 0.51 against
    0.64 ms for the pass and its places at (1024, 200), where the first places were gathered
    and the groups moved by a converting transpose. On CPU this is several times faster than
    XLA's sort of the same [B, L] (``counted_levels``).
    """
    length = group.shape[-1]
    if length < 2:  # one order: the positions'
        return lax.broadcasted_iota(jnp.int32, group.shape, group.ndim - 1)
    bits = length.bit_length()  # a count reaches L
    per_word = 32 // bits
    words = -(-(num + 1) // per_word)
    flat = lax.bitcast_convert_type(rows_of(group), jnp.uint32)
    # One column per list, so that a step reads a vector across them: a bitcast, not a
    # conversion, leaves XLA a plain transpose (0.10 ms at (1024, 200), not 0.19).
    columns = flat.T
    mask = jnp.asarray((1 << bits) - 1, jnp.uint32)
    word_index = lax.broadcasted_iota(jnp.uint32, (words, flat.shape[0]), 0)

    def field(word, shift):  # the count (or place) at ``shift`` in a word
        return (word >> shift) & mask

    def select(word_values, group):  # each item's field of its group, given its list's words
        word, shift = group // per_word, (group % per_word) * bits
        return field(sum(jnp.where(word == w, word_values[w], jnp.uint32(0)) for w in range(words)), shift)

    # The counts of every word in one [words, lists] array: a step is one fused update and
    # one fused read, not one of each per word. Each item's count of its group before it is
    # read after the update (less 1), so that writing it over the item's group comes after
    # the update's read of the group: otherwise XLA copies the whole array at every step.
    def step(counts, column):
        hit, shift = word_index == column // per_word, (column % per_word) * bits
        counts = counts + jnp.where(hit, jnp.left_shift(jnp.uint32(1), shift), jnp.uint32(0))
        return counts, select(counts, column) - 1

    counts, before = scan_in_place(step, jnp.zeros(word_index.shape, jnp.uint32), columns)
    first, placed = [jnp.zeros_like(counts[0]) for _ in range(words)], jnp.zeros_like(counts[0])
    for g in range(num + 1):  # each group's first place: the counts of the groups below it
        first[g // per_word] |= placed << ((g % per_word) * bits)
        placed = placed + field(counts[g // per_word], (g % per_word) * bits)
    rank = select([word[:, None] for word in first], flat) + before.T
    return lax.bitcast_convert_type(rank, jnp.int32).reshape(group.shape)


def inverse_permutation(rank, *, unique: bool = True):
    """The order whose places are ``rank`` (a permutation along the last axis): one scatter.
    ``unique=False`` for a ``rank`` that may repeat a place (then some places keep 0, and
    which of two items sent to one place lands there is unspecified)."""
    position = lax.broadcasted_iota(jnp.int32, rank.shape, rank.ndim - 1)
    return put(position, rank, unique=unique)


def checked_inverse(index):
    """``(inverse, hit)`` for an ``index`` [..., L] whose entries lie in ``[0, L)``: the order
    whose places are ``index`` (``inverse_permutation``, repeated places allowed) and, for
    each place, whether some item is sent to it. ``index`` is a permutation of its list
    exactly where every place is hit."""
    position = lax.broadcasted_iota(jnp.int32, index.shape, index.ndim - 1)
    inverse = inverse_permutation(index, unique=False)
    return inverse, take(index, inverse) == position


def put(values, places, unique: bool = True):
    """``values`` [..., L] moved along the last axis to ``places`` (each in ``[0, L)``); a
    place no item is sent to holds 0 (``unique=False``: places may repeat, and which of
    two items sent to one place lands there is unspecified; ``unique`` lets XLA skip
    ordering the writes). One scatter of flat indices, which XLA on CPU does a third faster
    than of (row, place) pairs (0.44 against 0.66 ms at (1024, 200) on a 2-core CPU); of
    pairs where a flat index would pass int32 (``FLAT_INDEX_MAX``)."""
    flat, rows = rows_of(places), rows_of(values)
    first = jnp.arange(flat.shape[0])[:, None]  # each row's index
    if flat.size == 0:  # no cell for a one-cell window
        return jnp.zeros(values.shape, values.dtype)
    if flat.size > FLAT_INDEX_MAX:
        out = jnp.zeros(flat.shape, values.dtype).at[first, flat]
        return out.set(rows, unique_indices=unique, mode="promise_in_bounds").reshape(values.shape)
    # Each value a window of one cell ([N L, 1], the form XLA rewrites every scatter into):
    # given as ``.at[index].set`` does, XLA on CPU copied the values into that form first
    # (0.43 against 0.38 ms at (1024, 200)).
    index = (flat + first.astype(flat.dtype) * flat.shape[1]).reshape(-1, 1)
    out = lax.scatter(
        jnp.zeros(flat.size, values.dtype),
        index,
        rows.reshape(-1, 1),
        _CELLS,
        unique_indices=unique,
        mode=lax.GatherScatterMode.PROMISE_IN_BOUNDS,
    )
    return out.reshape(values.shape)


_CELLS = lax.ScatterDimensionNumbers(
    update_window_dims=(1,), inserted_window_dims=(), scatter_dims_to_operand_dims=(0,)
)


# The largest flat index ``put`` computes in int32; bigger arrays scatter (row, place) pairs.
FLAT_INDEX_MAX = int(np.iinfo(np.int32).max)


def scan_in_place(step, carry, columns, *, reverse: bool = False):
    """``lax.scan(step, carry, columns, reverse=reverse)`` for a ``step`` whose output has
    a column's shape and dtype: each is written over the column it came from. Returns
    ``(carry, outputs)``. XLA keeps one [L, N] buffer where a scan's stacked outputs take a
    second one, zeroed and copied into the loop first: at (200, 1024) on a 2-core CPU a
    Kahan running sum and its exp and log took 0.71-0.74 ms so, against 0.83 ms."""
    length = columns.shape[0]
    if length == 0:  # nothing to scan (the body could not even be traced)
        return carry, columns

    def body(i, state):
        outputs, carry = state
        j = length - 1 - i if reverse else i
        carry, out = step(carry, lax.dynamic_index_in_dim(outputs, j, keepdims=False))
        if (out.shape, out.dtype) != (outputs.shape[1:], outputs.dtype):
            raise TypeError(
                f"scan_in_place: a step's output must be a column, {outputs.dtype}{list(outputs.shape[1:])}, "
                f"got {out.dtype}{list(out.shape)}"
            )
        return lax.dynamic_update_index_in_dim(outputs, out, j, 0), carry

    outputs, carry = lax.fori_loop(0, length, body, (columns, carry))
    return carry, outputs


def rows_of(x):
    """``x`` [..., L] as [N, L] (also for L = 0, where ``reshape(-1, L)`` cannot infer N)."""
    return x.reshape(math.prod(x.shape[:-1]), x.shape[-1])


def take(x, order):
    """``x`` gathered along the last axis at ``order``, whose every index must lie in
    ``[0, L)`` (a permutation, a sort's order, ``first_places``' picks): XLA then skips the
    bounds check, a quarter of the gather's time on CPU."""
    return jnp.take_along_axis(x, order, axis=-1, mode="promise_in_bounds")
