"""Dependencies point one way: ltr_common → jax_ltr / torch_ltr → ltr_train → ltr_bench, scripts.

Read from the source (every import statement, and every module name handed to importlib or
``__import__``), so a by-string import cannot hide a dependency either.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from ltr_common.loop import Backend

ROOT = Path(__file__).resolve().parents[1]
FRAMEWORKS = {"jax", "jaxlib", "flax", "optax", "chex", "rax", "torch"}
# package -> top-level modules it must never import
FORBIDDEN = {
    "ltr_common": FRAMEWORKS
    | {"jax_ltr", "torch_ltr", "ltr_train", "ltr_bench", "tensorboardX", "tqdm", "importlib"},
    "jax_ltr": {"torch", "torch_ltr", "ltr_train", "ltr_bench", "tensorboardX", "importlib"},
    "torch_ltr": {
        "jax",
        "jaxlib",
        "flax",
        "optax",
        "jax_ltr",
        "ltr_train",
        "ltr_bench",
        "tensorboardX",
        "importlib",
    },
    "ltr_train": {"ltr_bench", "importlib"},
}


def imported_modules(path: Path) -> set[str]:
    """Top-level names of every module ``path`` imports, statically or by a string literal."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
            "import_module",
            "__import__",
        ):
            names |= {arg.value.split(".")[0] for arg in node.args if isinstance(arg, ast.Constant)}
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_dependencies_point_one_way(package):
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, package
    for path in files:
        bad = imported_modules(path) & FORBIDDEN[package]
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_the_check_sees_imports_by_string(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("import importlib\nimportlib.import_module('jax_ltr._train')\nfrom torch import nn\n")
    assert imported_modules(source) == {"importlib", "jax_ltr", "torch"}


@pytest.mark.parametrize("framework", ["jax", "torch"])
def test_each_trainer_is_a_complete_backend(framework):
    from ltr_train import make_backend
    from tests._small import SMALL

    trainer = make_backend(framework, SMALL, 5, 7)
    assert isinstance(trainer, Backend)
    protocol = {name for name in vars(Backend) if not name.startswith("_")}
    missing = {name for name in protocol if not callable(getattr(trainer, name, None))}
    assert not missing, missing
