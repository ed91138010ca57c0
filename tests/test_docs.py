"""The documentation against the code: the generated options table, the README's size and
its links, and every relative link of the docs pages."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import torch_ltr
from ltr_common import TrainConfig
from ltr_common import options_table as options

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").glob("*.md"))
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_the_options_table_is_the_one_the_code_generates():
    page = options.PAGE.read_text()
    assert options.with_table(page) == page, (
        "docs/training.md's options table differs from TrainConfig: "
        "run `python -m ltr_common.options_table --write`"
    )


def test_the_options_table_has_a_row_per_field_with_its_default_and_layers(monkeypatch):
    rows = options.markdown_table().splitlines()[2:]
    assert [row.split("`")[1] for row in rows] == [f"--{f.name}" for f in dataclasses.fields(TrainConfig)]
    model_row = next(row for row in rows if row.startswith("| `--model`"))
    assert "`dot`" in model_row and "--task retrieve: `sequence`" in model_row
    # A default changed in the code changes the table, so the page comparison above fails.
    monkeypatch.setitem(options.TASK_DEFAULTS["rerank"], "embedding_dim", 7)
    assert "--task rerank: `7`" in options.markdown_table()


def test_a_page_without_the_markers_is_refused():
    with pytest.raises(ValueError, match="options-table:begin"):
        options.with_table("no table here\n")


def test_the_readme_is_short_and_links_every_docs_page():
    text = README.read_text()
    assert len(text.encode()) <= 8 * 1024, f"README.md is {len(text.encode())} bytes, over 8 KB"
    linked = {Path(target).name for target in LINK.findall(text) if target.startswith("docs/")}
    missing = {page.name for page in PAGES} - linked
    assert not missing, f"docs pages the README does not link: {sorted(missing)}"


@pytest.mark.parametrize("page", [README, *PAGES], ids=lambda p: p.name)
def test_relative_links_resolve(page):
    broken = [
        target
        for target in LINK.findall(page.read_text())
        if "://" not in target and not (page.parent / target).exists()
    ]
    assert not broken, f"{page.name}: links to missing files {broken}"


def test_the_readme_example_runs_and_matches_the_reference():
    block = re.search(r"```python\n(.*?)```", README.read_text(), re.S)
    assert block, "README.md has no ```python example"
    namespace: dict = {}
    exec(compile(block.group(1), "README.md example", "exec"), namespace)
    loss, grad, labels, where = (namespace[name] for name in ("loss", "grad", "labels", "where"))
    scores = torch.tensor(np.asarray(namespace["scores"]), requires_grad=True)
    reference = torch_ltr.listmle_loss(
        scores, torch.tensor(np.asarray(labels)), where=torch.tensor(np.asarray(where))
    )
    reference.backward()
    # float32, a handful of terms of magnitude < 10: a few ulps of 10 bound either side.
    np.testing.assert_allclose(float(loss), reference.item(), atol=1e-5)
    np.testing.assert_allclose(np.asarray(grad), scores.grad.numpy(), atol=1e-5)


@pytest.mark.parametrize("package", ["jax_ltr", "torch_ltr", "ltr_common"])
def test_each_public_example_imports_what_it_uses(package):
    """A public name's docstring example runs where it is copied after ``from package import
    name``: every other name it reads it imports or binds itself (the doctests run in the
    module's namespace, which would hide a missing import)."""
    import ast
    import builtins
    import doctest
    import importlib
    import inspect

    module = importlib.import_module(package)
    missing = {}
    for name in module.__all__:
        obj = getattr(module, name)
        if not (inspect.isfunction(obj) or inspect.isclass(obj)):
            continue
        for test in doctest.DocTestFinder(recurse=False).find(obj, name):
            tree = ast.parse("\n".join(example.source for example in test.examples))
            bound = {name, *dir(builtins)}
            for node in ast.walk(tree):
                if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
                    bound.add(node.id)
                elif isinstance(node, ast.Import | ast.ImportFrom):
                    bound |= {(a.asname or a.name).split(".")[0] for a in node.names}
                elif isinstance(node, ast.arg):
                    bound.add(node.arg)
            used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
            if used - bound:
                missing[name] = sorted(used - bound)
    assert not missing, f"examples reading names they do not import: {missing}"
