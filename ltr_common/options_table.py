"""The options table of ``docs/training.md``, generated from ``TrainConfig`` and its layered
defaults, so that the page cannot drift from the code (``tests/test_docs.py`` compares them).

    python -m ltr_common.options_table           # print the table
    python -m ltr_common.options_table --write   # rewrite it in docs/training.md
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from ltr_common.config import MODEL_DEFAULTS, TASK_DEFAULTS, TASK_MODEL_DEFAULTS, TrainConfig
from ltr_common.files import atomic_write_text

PAGE = Path(__file__).resolve().parents[1] / "docs" / "training.md"
BEGIN, END = "<!-- options-table:begin -->", "<!-- options-table:end -->"


def _cell(value) -> str:
    if isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, tuple):
        text = " ".join(map(str, value))
    elif value is None:
        text = "none"
    else:
        text = str(value)
    return text.replace("|", "\\|")


def _layered(name: str) -> str:
    """Where a task, a model or a pair of them brings another default for option ``name``."""
    layers = [
        *((f"--task {task}", values) for task, values in TASK_DEFAULTS.items()),
        *((f"--model {model}", values) for model, values in MODEL_DEFAULTS.items()),
        *((f"--task {t} --model {m}", values) for (t, m), values in TASK_MODEL_DEFAULTS.items()),
    ]
    return "; ".join(f"{where}: `{_cell(values[name])}`" for where, values in layers if name in values)


def markdown_table() -> str:
    """One row per ``TrainConfig`` field: flag, default, other defaults, help (and choices)."""
    rows = [
        "| option | default | other defaults | what it sets |",
        "| --- | --- | --- | --- |",
    ]
    for field in dataclasses.fields(TrainConfig):
        help_text = field.metadata["help"]
        if "choices" in field.metadata:
            help_text += " (one of: " + ", ".join(map(str, field.metadata["choices"])) + ")"
        rows.append(
            f"| `--{field.name}` | `{_cell(field.default)}` | {_layered(field.name)} | {_cell(help_text)} |"
        )
    return "\n".join(rows) + "\n"


def with_table(page: str) -> str:
    """``page`` with the text between its two markers replaced by ``markdown_table()``."""
    if page.count(BEGIN) != 1 or page.count(END) != 1 or page.index(BEGIN) > page.index(END):
        raise ValueError(f"{PAGE}: expected one {BEGIN} line followed by one {END} line")
    head, rest = page.split(BEGIN)
    _, tail = rest.split(END)
    return f"{head}{BEGIN}\n{markdown_table()}{END}{tail}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--write", action="store_true", help=f"rewrite the table in {PAGE}")
    args = parser.parse_args(argv)
    if args.write:
        atomic_write_text(PAGE, with_table(PAGE.read_text()))
        print(f"wrote the options table of {PAGE}")
    else:
        print(markdown_table(), end="")


if __name__ == "__main__":
    main()
