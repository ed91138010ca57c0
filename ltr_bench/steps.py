"""The trainers' steps: lists per second of the JAX and PyTorch trainers over the same
batches, epoch by epoch (the first JAX epoch compiles; the later ones are the steady state)."""

from __future__ import annotations

import time

from ltr_common import load_split, temporal_split
from ltr_common.config import for_task
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
) -> list[dict]:
    """Lists/s of the JAX and PyTorch trainers over the same batches, epoch by epoch.

    Each task's default configuration for each model (None: the task's default model) at
    each batch size (None: the model's default), JAX's persistent compilation cache off: the
    first JAX epoch includes one compilation per batch width; later epochs are the steady
    state. Data: ML-100K, or with ``synthetic`` ``synthetic_ratings()`` (2,000 users, 20,000
    items, about 200,000 ratings), or the ``Ratings`` given, split the same way. A sequence
    model's "lists" are its users."""
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
        for framework in ("jax", "torch"):
            trainer = make_backend(framework, config, used.num_users, used.num_items)
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
                        "framework": framework,
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
