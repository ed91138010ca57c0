"""Model weights between a framework's parameter tree and the canonical, framework-neutral form.

A model class declares its ``LAYOUT``: for each canonical parameter (``ltr_common.models``),
its path in the framework's parameters (nested keys for a Flax tree, one dotted name for a
PyTorch state dict) and whether it is stored transposed (PyTorch ``Linear.weight`` is
``[out, in]``; canonical matrices are ``[in, out]``). Converting between frameworks is
``from_canonical(to_canonical(params, source_layout), target_layout)``: transposes and
copies only, so a round trip is exact. Every array's shape is checked, and an error names
the parameter, the expected and the found shape.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ltr_common.models import Parameter

# canonical name -> (path in the framework's parameters, stored transposed)
Layout = Mapping[str, tuple[tuple[str, ...], bool]]


def identity_layout(parameters: Mapping[str, Parameter]) -> dict[str, tuple[tuple[str, ...], bool]]:
    """The layout of a model that stores every canonical parameter under its own name, as
    is: the sequence encoder in both frameworks."""
    return {name: ((name,), False) for name in parameters}


def _get(tree, path: tuple[str, ...]):
    for key in path:
        tree = tree[key]
    return tree


def _stored_shape(shape: tuple[int, ...], transposed: bool) -> tuple[int, ...]:
    return shape[::-1] if transposed else tuple(shape)


def to_canonical(
    params, layout: Layout, *, parameters: Mapping[str, Parameter] | None = None, source: str = "params"
) -> dict[str, np.ndarray]:
    """A framework's parameters (nested mapping) → ``{canonical name: NumPy array}``.

    ``parameters`` (the model's canonical shapes) are checked when given; ``source`` names the
    parameters in errors ("torch", "flax", a file).
    """
    out = {}
    for name, (path, transposed) in layout.items():
        try:
            value = np.asarray(_get(params, path))
        except (KeyError, TypeError):
            raise ValueError(f"{source} parameters have no {'/'.join(path)} (for {name})") from None
        if parameters is not None:
            expected = _stored_shape(parameters[name].shape, transposed)
            if value.shape != expected:
                raise ValueError(
                    f"{source} {'/'.join(path)}: expected shape {expected} (for {name} "
                    f"{parameters[name].shape}), found {value.shape}"
                )
        out[name] = np.array(value.T if transposed else value, order="C", copy=True)
    return out


def from_canonical(
    weights: Mapping[str, np.ndarray],
    layout: Layout,
    *,
    parameters: Mapping[str, Parameter] | None = None,
    target: str = "params",
) -> dict:
    """``{canonical name: array}`` → the framework's parameters, a nested dict laid out by ``layout``."""
    tree: dict = {}
    for name, (path, transposed) in layout.items():
        if name not in weights:
            raise ValueError(
                f"weights have no {name} (found {sorted(weights)}) for {target} {'/'.join(path)}"
            )
        value = np.asarray(weights[name])
        if parameters is not None and value.shape != tuple(parameters[name].shape):
            raise ValueError(
                f"{name}: expected shape {parameters[name].shape} for {target} {'/'.join(path)}, "
                f"found {value.shape}"
            )
        node = tree
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = np.array(value.T if transposed else value, order="C", copy=True)
    return tree


def convert(params, source: Layout, target: Layout, *, parameters=None, source_name: str = "params") -> dict:
    """One framework's parameters → the other's, through the canonical form."""
    return from_canonical(to_canonical(params, source, parameters=parameters, source=source_name), target)
