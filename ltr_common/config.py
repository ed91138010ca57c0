"""The one source of configuration: a dataclass with the defaults; the CLI is derived from it.

Precedence: dataclass defaults < a JSON config file (``--config FILE``) < command-line
flags. Every value is checked before anything is loaded or trained, and a bad one
raises ``ConfigError`` naming the option.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import types
import typing
from collections.abc import Sequence
from pathlib import Path

from ltr_common.datasets import DATASETS
from ltr_common.interactions import DUPLICATES
from ltr_common.lists import MAX_LIST_SIZE, TEST_SIZE, VALIDATION_SIZE
from ltr_common.losses import LOSSES, objective_terms
from ltr_common.models import MODELS, SEQUENTIAL

TASKS = ("rerank", "retrieve")
# Validation NDCG at this cut-off selects the checkpoint and stops a run early: every run
# evaluates it, so ``top_k`` must hold it.
SELECTION_CUTOFF = 10
SELECTION_METRIC = f"ndcg@{SELECTION_CUTOFF}"
SEED_LIMIT = 2**63  # seeds are below it: JAX's keys take a signed 64-bit integer
# sizes and counts are below it: they size and index arrays, in int32 where JAX runs without x64
INT_LIMIT, INT_LIMIT_TEXT = 2**31, "an integer below 2**31 (a size or count of arrays indexed in int32)"


class ConfigError(ValueError):
    """An option with an impossible value."""


def _field(default, help: str, **kwargs):
    return dataclasses.field(default=default, metadata={"help": help, **kwargs})


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on."""

    task: str = _field(
        "retrieve",
        "rerank: order each user's held-out rated items; retrieve: rank the "
        "whole catalog for each user, held-out items relevant",
        choices=TASKS,
    )
    model: str = _field(
        "dot",
        "mlp: MLP over concatenated embeddings; dot: dot product + biases; sequence: a causal "
        "transformer over the user's history as the user vector, trained on next items",
        choices=tuple(MODELS),
    )
    loss: str = _field(
        "listmle",
        "training loss: " + "; ".join(f"{name}: {loss.summary}" for name, loss in LOSSES.items()),
        choices=tuple(LOSSES),
    )
    hybrid_alpha: float = _field(0.7, "weight of ListMLE in the hybrid loss, in [0, 1]")
    pointwise_weight: float = _field(0.0, "weight of the pointwise squared error added to the loss")
    listmle_k: int = _field(10, "topk_listmle: places of the label order in the likelihood")
    relevance_threshold: float = _field(
        1.0,
        "a label >= this is relevant to sigmoid_ce, and to rerank's MRR, MAP and recall "
        "(retrieve: any rating; rerank: 4, liked)",
    )
    negatives: int = _field(
        100,
        "retrieve: items a user never rated added to each training list, label 0 "
        "(sequence model: 0 = every item the user has not rated by then)",
    )
    embedding_dim: int = _field(64, "user and item embedding size")
    mlp_hidden: int = _field(128, "hidden units of the scoring MLP")
    dropout: float = _field(0.1, "dropout rate in the MLP and the sequence encoder, in [0, 1)")
    history_length: int = _field(200, "sequence: the newest items of a user's history the encoder reads")
    num_blocks: int = _field(2, "sequence: self-attention blocks")
    num_heads: int = _field(2, "sequence: attention heads (a divisor of embedding_dim)")
    next_items: int = _field(
        1, "sequence: the items after each history position that are its targets (the nearest ranked first)"
    )
    rating_levels: int = _field(
        0,
        "sequence: read each history item's rating too, an integer 1..N, as a learned embedding "
        "(N = this; 0: the items alone)",
    )
    epochs: int = _field(100, "training epochs")
    batch_size: int = _field(32, "lists per batch (at least an epoch's lists: one batch of them all)")
    learning_rate: float = _field(3e-3, "Adam learning rate")
    weight_decay: float = _field(0.5, "decoupled weight decay of the matrices (AdamW when > 0)")
    bias_weight_decay: float = _field(0.5, "decoupled weight decay of the biases (vectors)")
    grad_clip_norm: float = _field(5.0, "clip gradients to this global norm")
    seed: int = _field(42, "seed for initialisation, shuffling and pair sampling")
    max_list_size: int = _field(MAX_LIST_SIZE, "keep at most this many newest ratings per training list")
    test_size: int = _field(TEST_SIZE, "newest ratings per user held out for testing")
    validation_size: int = _field(VALIDATION_SIZE, "ratings per user before the test ones, for validation")
    pairs_per_list: int = _field(32, "sampled pairs per list for the pairwise loss; 0 = all pairs")
    length_bucketing: bool = _field(True, "group lists of similar length into batches")
    packed_batches: bool = _field(
        True,
        "sequence model, JAX: short histories share the rows of a training batch "
        "(the same losses, dropout's draws aside; PyTorch reads one user a row)",
    )
    eval_every: int = _field(400, "evaluate every this many steps (and at each epoch end)")
    early_stop_patience: int = _field(10, "stop after this many evaluations without improvement")
    top_k: tuple[int, ...] = _field((5, 10, 20), "NDCG/recall cut-offs")
    dataset: str | None = _field(
        None,
        "a MovieLens release, fetched from GroupLens, checked against its pinned SHA-256 and "
        "cached (none: ml-100k)",
        choices=DATASETS,
    )
    data: str | None = _field(
        None, "your own interactions instead: a CSV, TSV or Parquet table (user, item[, rating][, time])"
    )
    user_column: str | None = _field(None, "--data: the user id column (else found by its usual name)")
    item_column: str | None = _field(None, "--data: the item id column (else found by its usual name)")
    rating_column: str | None = _field(
        None, "--data: the rating column (else found; none: implicit feedback)"
    )
    timestamp_column: str | None = _field(
        None, "--data: the time column, unix seconds or ISO dates (else found; none: a random split)"
    )
    delimiter: str | None = _field(
        None, "--data: the field delimiter of a text table ('tab' for a tab; else found)"
    )
    duplicates: str = _field(
        "error",
        "--data: a user and item twice is an error, or keep the first or last interaction",
        choices=DUPLICATES,
    )
    implicit: bool = _field(False, "read every interaction as a positive, label 1 (retrieve only)")
    data_dir: str | None = _field(
        None,
        "folder with the data set's files, unpacked (u.data, ratings.dat or ratings.csv; else cache/fetch)",
    )
    cache_dir: str | None = _field(None, "data cache folder (default $XDG_CACHE_HOME/jax-ltr)")
    devices: int = _field(0, "JAX: devices to split each batch over (0 = every device JAX sees)")
    compilation_cache: bool = _field(
        True, "JAX: keep compiled steps on disk under <cache folder>/xla, for later runs"
    )
    refit: bool = _field(
        False, "train on training + validation ratings for exactly --epochs epochs, then test"
    )

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        def need(name: str, ok: bool, what: str) -> None:
            if not ok:
                raise ConfigError(f"--{name}: expected {what}, got {getattr(self, name)!r}")

        need("task", self.task in TASKS, f"one of {', '.join(TASKS)}")
        need("dataset", self.dataset is None or self.data is None, "no data set with --data (one source)")
        need(
            "data_dir",
            self.data_dir is None or self.data is None,
            "no folder with --data (the file says it all)",
        )
        for name in ("data_dir", "cache_dir"):  # one that does not exist yet is made when needed
            folder = getattr(self, name)
            need(
                name,
                folder is None or not Path(folder).exists() or Path(folder).is_dir(),
                "a folder, not a file",
            )
        for name in ("user_column", "item_column", "rating_column", "timestamp_column", "delimiter"):
            need(name, getattr(self, name) is None or self.data is not None, "a value only with --data")
        need("duplicates", self.duplicates in DUPLICATES, f"one of {', '.join(DUPLICATES)}")
        need("duplicates", self.duplicates == "error" or self.data is not None, "a value only with --data")
        need(
            "implicit",
            not (self.implicit and self.task == "rerank"),
            "false with --task rerank (reranking orders graded ratings; implicit data has none)",
        )
        need("model", self.model in MODELS, f"one of {', '.join(MODELS)}")
        need("loss", self.loss in LOSSES, f"one of {', '.join(LOSSES)}")
        need("pointwise_weight", 0 <= self.pointwise_weight < math.inf, "a finite number >= 0")
        need("hybrid_alpha", 0.0 <= self.hybrid_alpha <= 1.0, "a number in [0, 1]")
        need("relevance_threshold", math.isfinite(self.relevance_threshold), "a finite number")
        for name in (
            "embedding_dim",
            "mlp_hidden",
            "epochs",
            "batch_size",
            "max_list_size",
            "test_size",
            "validation_size",
            "eval_every",
            "early_stop_patience",
            "listmle_k",
            "history_length",
            "num_blocks",
            "num_heads",
            "next_items",
        ):
            value = getattr(self, name)
            need(
                name, isinstance(value, int) and not isinstance(value, bool) and value >= 1, "an integer >= 1"
            )
            need(name, value < INT_LIMIT, INT_LIMIT_TEXT)
        need(
            "negatives",
            isinstance(self.negatives, int)
            and not isinstance(self.negatives, bool)
            and self.negatives >= (0 if self.model in SEQUENTIAL else 1),
            "an integer >= 1 (0, the whole catalog, with --model sequence)",
        )
        need(
            "num_heads",
            self.model not in SEQUENTIAL  # only the sequence model has attention heads
            or not isinstance(self.num_heads, int)
            or self.embedding_dim % max(self.num_heads, 1) == 0,
            f"a divisor of --embedding_dim {self.embedding_dim}",
        )
        need("negatives", self.negatives < INT_LIMIT, INT_LIMIT_TEXT)
        for name in ("rating_levels", "devices", "pairs_per_list"):
            value = getattr(self, name)
            integer = isinstance(value, int) and not isinstance(value, bool)
            need(name, integer and value >= 0, "an integer >= 0")
            need(name, value < INT_LIMIT, INT_LIMIT_TEXT)
        need(
            "rating_levels",
            self.rating_levels == 0 or self.model in SEQUENTIAL,
            "0 unless --model sequence (only a history-reading model reads ratings)",
        )
        need(
            "seed",
            isinstance(self.seed, int) and not isinstance(self.seed, bool) and 0 <= self.seed < SEED_LIMIT,
            "an integer in [0, 2**63)",
        )
        need("dropout", 0.0 <= self.dropout < 1.0, "a number in [0, 1)")
        need("learning_rate", 0 < self.learning_rate < math.inf, "a finite number > 0")
        need("weight_decay", 0 <= self.weight_decay < math.inf, "a finite number >= 0")
        need("bias_weight_decay", 0 <= self.bias_weight_decay < math.inf, "a finite number >= 0")
        need("grad_clip_norm", self.grad_clip_norm > 0, "a number > 0 (inf: no clipping)")
        need(
            "top_k",
            len(self.top_k) > 0
            and all(isinstance(k, int) and not isinstance(k, bool) and 1 <= k < INT_LIMIT for k in self.top_k)
            and SELECTION_CUTOFF in self.top_k,
            f"one or more integers >= 1, {SELECTION_CUTOFF} among them (validation "
            f"{SELECTION_METRIC} selects the checkpoint)",
        )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def objective_terms(self) -> tuple[tuple[str, float], ...]:
        """The training objective: ``((registered loss, weight), ...)`` (``ltr_common.losses``)."""
        return objective_terms(
            self.loss, hybrid_alpha=self.hybrid_alpha, pointwise_weight=self.pointwise_weight
        )


# The defaults that differ by task: the dataclass's are retrieval's, the main job's. Each set
# was chosen on the validation lists (docs/results.md), and --task picks its own.
TASK_DEFAULTS: dict[str, dict] = {
    # the main job: the history-aware model, which beats every peer here (docs/results.md)
    "retrieve": {"model": "sequence"},
    "rerank": {
        "embedding_dim": 128,
        "weight_decay": 2.0,
        "bias_weight_decay": 0.0,
        "pointwise_weight": 1.0,
        "relevance_threshold": 4.0,
    },
}
# The defaults that differ by model, over the task's: the sequence model's (its objective
# chosen on the validation lists, the encoder's settings SASRec's; docs/results.md); --model
# picks its own.
MODEL_DEFAULTS: dict[str, dict] = {
    "sequence": {
        "loss": "softmax",
        "negatives": 0,
        "learning_rate": 1e-3,
        "weight_decay": 0.0,
        "bias_weight_decay": 0.0,
        "batch_size": 64,
        "dropout": 0.2,
        "length_bucketing": False,
    },
}


# And where a task and a model need more of their own: the sequence reranker learns the order
# of the next items' ratings.
TASK_MODEL_DEFAULTS: dict[tuple[str, str], dict] = {
    ("rerank", "sequence"): {"loss": "listmle", "next_items": 10},
}


def defaults_for(values: dict) -> dict:
    """The defaults under ``values`` (options given so far): its task's, then its model's
    (the model given, else the task's default model, else the dataclass's), then the pair's."""
    task = values.get("task", TrainConfig.task)
    by_task = TASK_DEFAULTS.get(task, {})
    model = values.get("model", by_task.get("model", TrainConfig.model))
    return {**by_task, **MODEL_DEFAULTS.get(model, {}), **TASK_MODEL_DEFAULTS.get((task, model), {})}


def _base_type(annotation) -> type:
    hint = annotation
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    return hint


def _kind(hint) -> str:
    """What a configuration file must hold for a field annotated ``hint``, in words."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return f"{_kind(_base_type(hint))} or null"
    if typing.get_origin(hint) is tuple:
        return "a list of " + {int: "integers", float: "numbers", str: "strings"}[typing.get_args(hint)[0]]
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}[hint]


def _typed(hint, value):
    """``value`` as a field annotated ``hint`` holds it; ``TypeError`` when it is not one.

    Strict, as JSON is read: a bool is neither an integer nor a number, a string is never a
    number or a bool, and an integer field takes a float only when it is integral (``3.0``).
    """
    if typing.get_origin(hint) in (typing.Union, types.UnionType):  # ``X | None``
        if value is None:
            return None
        hint = _base_type(hint)
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, (list, tuple)):
            raise TypeError
        return tuple(_typed(typing.get_args(hint)[0], item) for item in value)
    if hint is bool and isinstance(value, bool):
        return value
    if hint is str and isinstance(value, str):
        return value
    if not isinstance(value, bool):
        if hint is int and isinstance(value, int):
            return value
        if hint is int and isinstance(value, float) and value.is_integer():
            return int(value)
        if hint is float and isinstance(value, (int, float)):
            try:
                return float(value)
            except OverflowError:
                raise TypeError from None
    raise TypeError


def typed_values(values: dict, cls=TrainConfig) -> dict:
    """``values`` with each of ``cls``'s fields converted to the type its annotation names
    (``_typed``); other keys are left as they are. A value of another type raises
    ``ConfigError`` naming the option, what it expected and what it found."""
    hints = typing.get_type_hints(cls)
    out = dict(values)
    for name, value in values.items():
        if name in hints:
            try:
                out[name] = _typed(hints[name], value)
            except TypeError:
                raise ConfigError(f"--{name}: expected {_kind(hints[name])}, got {value!r}") from None
    return out


def parse_bool(text: str) -> bool:
    """A true/false flag's value: 1/true/yes/on or 0/false/no/off, any case."""
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


# A true/false flag's ``add_argument`` options: a value, or none for true (``--refit`` is
# ``--refit true``).
BOOL_FLAG = {"type": parse_bool, "metavar": "{true,false}", "nargs": "?", "const": True}


def for_task(task: str, **overrides) -> TrainConfig:
    """The configuration of ``task`` with its own defaults (``TASK_DEFAULTS``), then ``overrides``.

    Example:
      >>> for_task("rerank").pointwise_weight == TASK_DEFAULTS["rerank"]["pointwise_weight"]
      True
    """
    if task not in TASKS:
        raise ConfigError(f"--task: expected one of {', '.join(TASKS)}, got {task!r}")
    values = {"task": task, **overrides}
    return _build(TrainConfig, {**defaults_for(values), **values}, origin="for_task")


def add_config_arguments(parser: argparse.ArgumentParser, cls=TrainConfig, *, only=None) -> None:
    """One flag per field of ``cls`` (of the fields ``only``, when given: no ``--config``
    then); defaults are left to the dataclass (``None`` = not given)."""
    hints = typing.get_type_hints(cls)
    if only is None:
        parser.add_argument(
            "--config",
            type=Path,
            default=None,
            help="JSON file whose keys override the defaults (flags override it)",
        )
    for field in dataclasses.fields(cls):
        if only is not None and field.name not in only:
            continue
        hint = _base_type(hints[field.name])
        by_task = "".join(
            f"; with --{kind} {name}: {values[field.name]}"
            for kind, table in (("task", TASK_DEFAULTS), ("model", MODEL_DEFAULTS))
            for name, values in table.items()
            if field.name in values and cls is TrainConfig
        )
        kwargs = {"default": None, "help": f"{field.metadata['help']} (default: {field.default}{by_task})"}
        if typing.get_origin(hint) is tuple:
            kwargs.update(type=int, nargs="+")
        elif hint is bool:
            kwargs.update(BOOL_FLAG)
        else:
            kwargs["type"] = hint
        if "choices" in field.metadata:
            kwargs["choices"] = field.metadata["choices"]
        parser.add_argument(f"--{field.name}", **kwargs)


def config_from_args(args: argparse.Namespace, cls=TrainConfig):
    """Defaults (the task's own first), then the ``--config`` file, then the flags given."""
    values: dict = {}
    if args.config is not None:
        # A run's own config.json serves too: its framework is the default of --framework.
        values.update(
            load_config_file(args.config, cls, allow={"framework"} if cls is TrainConfig else set())
        )
        args.config_framework = values.pop("framework", None)  # checked by the script that reads it
    for field in dataclasses.fields(cls):
        given = getattr(args, field.name)
        if given is not None:
            values[field.name] = given
    if cls is TrainConfig:
        values = {**defaults_for(values), **values}
    return _build(cls, values, origin="command line")


def load_config_file(
    path: Path, cls=TrainConfig, *, allow: set[str] = frozenset(), flag: str | None = "--config"
) -> dict:
    """Read a JSON object of overrides, rejecting unknown keys and values of the wrong type
    (``typed_values``); errors start with ``flag`` (the option that named the file) when there
    is one, and always name the file."""
    prefix = f"{flag}: " if flag else ""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{prefix}no such file {path}") from None
    except json.JSONDecodeError as err:
        raise ConfigError(f"{prefix}{path} is not valid JSON ({err})") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{prefix}{path} is not UTF-8 text ({err})") from None
    except OSError as err:  # a folder, no permission
        raise ConfigError(f"{prefix}{path} cannot be read ({err.strerror or err})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix}{path} must hold a JSON object, found {type(data).__name__}")
    known = {f.name for f in dataclasses.fields(cls)} | set(allow)
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{prefix}{path} has unknown option(s) {', '.join(unknown)}")
    try:
        return typed_values(data, cls)
    except ConfigError as err:
        raise ConfigError(f"{prefix}{path}: {err}") from None


def _build(cls, values: dict, *, origin: str):
    if "top_k" in values:
        values["top_k"] = tuple(values["top_k"])
    try:
        return cls(**values)
    except TypeError as err:
        raise ConfigError(f"{origin}: {err}") from None


class ArgumentParser(argparse.ArgumentParser):
    """``argparse``'s parser, whose usage error is the error line alone, after a pointer to
    ``--help``, where the usage would run past three lines (``train.py``'s runs to 35); and
    whose flags read alike with ``-`` or ``_`` between words (``--learning-rate`` is
    ``--learning_rate``, ``--run_dir`` is ``--run-dir``).

    Example:
      >>> parser = ArgumentParser(prog="p")
      >>> _ = parser.add_argument("--learning_rate", type=float)
      >>> parser.parse_args(["--learning-rate=0.1"]).learning_rate
      0.1
    """

    def parse_known_args(self, args=None, namespace=None):
        args = sys.argv[1:] if args is None else list(args)
        end = args.index("--") if "--" in args else len(args)  # past it: no flags
        return super().parse_known_args([*map(self._spelt, args[:end]), *args[end:]], namespace)

    def _spelt(self, arg):
        """``arg`` as the flag it names, spelt as the parser knows it (else as given)."""
        if not isinstance(arg, str) or not arg.startswith("--") or len(arg) < 4:
            return arg
        name, equals, value = arg.partition("=")
        if name in self._option_string_actions:
            return arg
        for spelt in ("--" + name[2:].replace("-", "_"), "--" + name[2:].replace("_", "-")):
            if spelt in self._option_string_actions:
                return spelt + equals + value
        return arg

    def error(self, message):
        usage = self.format_usage()
        if usage.count("\n") > 3:
            usage = f"usage: {self.prog} --help lists every option\n"
        self.exit(2, f"{usage}{self.prog}: error: {message}\n")


def parse_config(
    argv: Sequence[str] | None = None,
    *,
    description: str = "",
    cls=TrainConfig,
    parser: argparse.ArgumentParser | None = None,
):
    """Build the parser from ``cls``, parse ``argv`` and return ``(config, args)``."""
    parser = parser or ArgumentParser(description=description)
    add_config_arguments(parser, cls)
    args = parser.parse_args(argv)
    return config_from_args(args, cls), args
