"""Reading traced programs: which primitives a jaxpr holds, its inner jaxprs included."""

from __future__ import annotations

import jax.extend


def equations(jaxpr, primitive: str, *, outermost: bool = False):
    """Every ``primitive`` equation of a jaxpr, inner jaxprs (cond branches, scans, custom
    derivatives, nested jits) included; ``outermost``: not those within another one (a
    cond in a cond's branch)."""
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == primitive:
            yield eqn
            if outermost:
                continue
        for inner in jax.extend.core.jaxprs_in_params(eqn.params):
            yield from equations(inner, primitive, outermost=outermost)
