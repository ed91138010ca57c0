"""One configuration source: the dataclass; the CLI and config files derive from it."""

from __future__ import annotations

import dataclasses
import json

import pytest

from ltr_common import ConfigError, TrainConfig, parse_config


def test_cli_defaults_are_the_dataclass_defaults_under_the_tasks_and_models():
    from ltr_common.config import MODEL_DEFAULTS, TASK_DEFAULTS

    config, _ = parse_config([])
    model = TASK_DEFAULTS[TrainConfig().task]["model"]  # the main job's model
    assert config == dataclasses.replace(TrainConfig(model=model), **MODEL_DEFAULTS[model])
    assert parse_config(["--model", "dot"])[0] == TrainConfig()


def test_a_task_brings_its_own_defaults_and_flags_still_win(tmp_path):
    from ltr_common.config import TASK_DEFAULTS, for_task

    config, _ = parse_config(["--task", "rerank"])
    assert (
        config
        == for_task("rerank")
        == dataclasses.replace(TrainConfig(task="rerank"), **TASK_DEFAULTS["rerank"])
    )
    config, _ = parse_config(["--task", "rerank", "--weight_decay", "0.25"])
    assert (
        config.weight_decay == 0.25 and config.pointwise_weight == TASK_DEFAULTS["rerank"]["pointwise_weight"]
    )
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"task": "rerank", "embedding_dim": 16}))
    config, _ = parse_config(["--config", str(path)])
    assert config.embedding_dim == 16 and config.weight_decay == TASK_DEFAULTS["rerank"]["weight_decay"]
    with pytest.raises(ConfigError, match="--task: expected one of rerank, retrieve, got 'rank'"):
        for_task("rank")


def test_every_field_is_a_flag():
    config, _ = parse_config(
        [
            "--loss",
            "hybrid",
            "--hybrid_alpha",
            "0.5",
            "--top_k",
            "1",
            "10",
            "--length_bucketing",
            "false",
            "--data_dir",
            "/x",
            "--epochs",
            "2",
        ]
    )
    assert (config.loss, config.hybrid_alpha, config.top_k) == ("hybrid", 0.5, (1, 10))
    assert (config.length_bucketing, config.data_dir, config.epochs) == (False, "/x", 2)
    # a true/false option given alone is true, as baselines.py's --refit is
    bare, _ = parse_config(["--task", "rerank", "--refit", "--implicit", "false", "--compilation_cache"])
    assert (bare.refit, bare.implicit, bare.compilation_cache) == (True, False, True)


def test_config_file_then_flags(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"epochs": 3, "learning_rate": 0.01, "top_k": [10]}))
    config, _ = parse_config(["--config", str(path), "--epochs", "4"])
    assert (config.epochs, config.learning_rate, config.top_k) == (4, 0.01, (10,))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"learning_rate": -1.0}, "--learning_rate: expected a finite number > 0, got -1.0"),
        ({"learning_rate": float("inf")}, "--learning_rate: expected a finite number > 0, got inf"),
        ({"weight_decay": float("inf")}, "--weight_decay: expected a finite number >= 0, got inf"),
        ({"pointwise_weight": float("inf")}, "--pointwise_weight: expected a finite number >= 0, got inf"),
        ({"batch_size": 0}, "--batch_size: expected an integer >= 1, got 0"),
        ({"hybrid_alpha": 1.5}, "--hybrid_alpha: expected a number in [0, 1], got 1.5"),
        ({"top_k": (0, 5)}, "--top_k: expected one or more integers >= 1"),
        # validation NDCG@10 selects the checkpoint: every run needs that cut-off
        ({"top_k": (5,)}, "--top_k: expected one or more integers >= 1, 10 among them"),
        ({"top_k": (5, 20)}, "--top_k: expected one or more integers >= 1, 10 among them"),
        ({"seed": -1}, "--seed: expected an integer in [0, 2**63), got -1"),
        ({"seed": 2**63}, "--seed: expected an integer in [0, 2**63), got 9223372036854775808"),
        (
            {"loss": "listnet"},
            "--loss: expected one of listmle, pairwise_pl, hybrid, pointwise_mse, softmax, "
            "topk_listmle, position_listmle, approx_ndcg, sigmoid_ce, lambdaloss, got 'listnet'",
        ),
        ({"dropout": 1.0}, "--dropout: expected a number in [0, 1)"),
        ({"pairs_per_list": -2}, "--pairs_per_list: expected an integer >= 0"),
        ({"pairs_per_list": True}, "--pairs_per_list: expected an integer >= 0, got True"),
        ({"listmle_k": 0}, "--listmle_k: expected an integer >= 1, got 0"),
        ({"relevance_threshold": float("nan")}, "--relevance_threshold: expected a finite number, got nan"),
    ],
)
def test_impossible_values_name_the_option(override, message):
    with pytest.raises(ConfigError) as err:
        dataclasses.replace(TrainConfig(), **override)
    assert message in str(err.value)


def test_bad_config_files(tmp_path):
    with pytest.raises(ConfigError, match="--config: no such file"):
        parse_config(["--config", str(tmp_path / "missing.json")])
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="is not valid JSON"):
        parse_config(["--config", str(tmp_path / "bad.json")])
    (tmp_path / "unknown.json").write_text('{"epochz": 3}')
    with pytest.raises(ConfigError, match=r"unknown option.*epochz"):
        parse_config(["--config", str(tmp_path / "unknown.json")])


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"top_k": 5}, "--top_k: expected a list of integers, got 5"),
        ({"top_k": [5, 10.5]}, "--top_k: expected a list of integers, got [5, 10.5]"),
        ({"top_k": [True, 10]}, "--top_k: expected a list of integers, got [True, 10]"),
        ({"learning_rate": "fast"}, "--learning_rate: expected a number, got 'fast'"),
        ({"learning_rate": True}, "--learning_rate: expected a number, got True"),
        ({"length_bucketing": "no"}, "--length_bucketing: expected true or false, got 'no'"),
        ({"length_bucketing": 0}, "--length_bucketing: expected true or false, got 0"),
        ({"pairs_per_list": True}, "--pairs_per_list: expected an integer, got True"),
        ({"epochs": 2.5}, "--epochs: expected an integer, got 2.5"),
        ({"epochs": "3"}, "--epochs: expected an integer, got '3'"),
        ({"loss": 3}, "--loss: expected a string, got 3"),
        ({"data_dir": ["a"]}, "--data_dir: expected a string or null, got ['a']"),
    ],
)
def test_config_file_values_of_the_wrong_type_name_the_file_and_the_option(tmp_path, value, message):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(value))
    with pytest.raises(ConfigError) as err:
        parse_config(["--config", str(path)])
    assert str(err.value) == f"--config: {path}: {message}"


def test_a_config_file_may_write_integral_numbers_either_way(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"epochs": 3.0, "learning_rate": 1, "top_k": [10.0, 20], "data_dir": None}))
    config, _ = parse_config(["--config", str(path)])
    assert (config.epochs, config.learning_rate, config.top_k, config.data_dir) == (3, 1.0, (10, 20), None)
    assert type(config.epochs) is int and type(config.learning_rate) is float
    assert all(type(k) is int for k in config.top_k)


def test_a_run_config_of_the_wrong_type_names_the_file_and_the_option(tmp_path):
    from ltr_train import load_run_config

    saved = {"framework": "jax", **TrainConfig().to_dict()}
    for value, message in (
        ({"length_bucketing": "no"}, "--length_bucketing: expected true or false, got 'no'"),
        ({"pairs_per_list": True}, "--pairs_per_list: expected an integer, got True"),
        ({"top_k": 10}, "--top_k: expected a list of integers, got 10"),
    ):
        (tmp_path / "config.json").write_text(json.dumps({**saved, **value}))
        with pytest.raises(ConfigError) as err:
            load_run_config(tmp_path)
        assert str(err.value) == f"{tmp_path / 'config.json'}: {message}"


def test_a_model_brings_its_own_defaults_under_the_flags():
    from ltr_common.config import MODEL_DEFAULTS, parse_config

    config, _ = parse_config(["--model", "sequence"])
    assert all(getattr(config, k) == v for k, v in MODEL_DEFAULTS["sequence"].items())
    config, _ = parse_config(["--model", "sequence", "--learning_rate", "0.01", "--negatives", "50"])
    assert config.learning_rate == 0.01 and config.negatives == 50 and config.loss == "softmax"
    assert parse_config(["--model", "dot"])[0].negatives == TrainConfig().negatives
