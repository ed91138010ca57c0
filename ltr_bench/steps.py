"""The trainers' steps: lists per second of the JAX and PyTorch trainers over the same
batches, epoch by epoch (the first JAX epoch compiles; the later ones are the steady state)."""

from __future__ import annotations

import dataclasses
import time

from ltr_common import load_split, temporal_split
from ltr_common.config import for_task
from ltr_common.models import SEQUENTIAL
from ltr_common.synthetic import synthetic_ratings
from ltr_common.tasks import make_task
from ltr_train import make_backend

DEFAULT_TASKS = ("retrieve",)
DEFAULT_EPOCHS = 3  # one that compiles, two steady


def train_throughput(
    batch_sizes=(None,),
    *,
    synthetic: bool = False,
    epochs: int = DEFAULT_EPOCHS,
    tasks=DEFAULT_TASKS,
    ratings=None,
    models=(None,),
    unpacked: bool = False,
) -> list[dict]:
    """Lists/s of the JAX and PyTorch trainers over the same batches, epoch by epoch.

    Each task's default configuration for each model (None: the task's default model) at
    each batch size (None: the model's default), JAX's persistent compilation cache off: the
    first JAX epoch includes one compilation per batch width; later epochs are the steady
    state. Data: ML-100K, or with ``synthetic`` ``synthetic_ratings()`` (2,000 users, 20,000
    items, about 200,000 ratings), or the ``Ratings`` given, split the same way. A sequence
    model's "lists" are its users; with ``unpacked``, its JAX trainer is timed a second time
    reading one user a row (``--packed_batches false``), the layout PyTorch reads."""
    rows = []
    for task, model, batch_size in ((t, m, b) for t in tasks for m in models for b in batch_sizes):
        given = {k: v for k, v in (("model", model), ("batch_size", batch_size)) if v is not None}
        config = for_task(task, compilation_cache=False, **given)
        data, used = "ml-100k", ratings
        if used is not None or synthetic:
            data = "synthetic" if used is None else used.source
            used = synthetic_ratings() if used is None else used
            split = temporal_split(used, max_list_size=config.max_list_size)
        else:
            used, split = load_split(config)
        trainers = [("jax", "jax", config), ("torch", "torch", config)]
        if unpacked and config.model in SEQUENTIAL:
            unpacked_config = dataclasses.replace(config, packed_batches=False)
            trainers.insert(1, ("jax, one user a row", "jax", unpacked_config))
        for name, framework, trainer_config in trainers:
            trainer = make_backend(framework, trainer_config, used.num_users, used.num_items)
            for epoch in range(epochs):
                lists, metrics = 0, []
                start = time.perf_counter()
                for batch, pairs in make_task(config, split).epoch_inputs(epoch=epoch):
                    metrics.append(trainer.train_step(batch, pairs))
                    lists += int((batch.list_ids >= 0).sum())
                trainer.metrics_to_host(metrics)  # waits for the last step
                seconds = time.perf_counter() - start
                rows.append(
                    {
                        "data": data,
                        "task": task,
                        "model": config.model,
                        "batch_size": config.batch_size,
                        "framework": name,
                        "epoch": epoch,
                        "seconds": seconds,
                        "lists_per_s": lists / seconds,
                    }
                )
    return rows


def steps_table(rows: list[dict]) -> str:
    """``train_throughput``'s rows as a markdown table, a line per trainer and epoch."""
    lines = [
        "| data | task | model | batch | trainer | epoch | seconds | lists/s |",
        "| --- | --- | --- | ---: | --- | ---: | ---: | ---: |",
    ]
    for row in rows:
        lines.append(
            f"| {row['data']} | {row['task']} | {row['model']} | {row['batch_size']} "
            f"| {row['framework']} | {row['epoch']} "
            f"| {row['seconds']:.2f} | {row['lists_per_s']:.0f} |"
        )
    return "\n".join(lines)
