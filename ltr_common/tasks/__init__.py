"""Tasks: what a training list is and how a model is evaluated — one module each.

``rerank``: order each user's held-out rated items. ``retrieve``: rank the whole catalog for
each user, the held-out items relevant, training lists completed with sampled unrated items.
"""

from ltr_common.config import ConfigError, TrainConfig
from ltr_common.lists import Split
from ltr_common.tasks.base import Scorer, Task, host_inputs, random_order, shuffled
from ltr_common.tasks.rerank import RerankTask
from ltr_common.tasks.retrieve import RetrieveTask

TASKS = {"rerank": RerankTask, "retrieve": RetrieveTask}


def make_task(config: TrainConfig, split: Split) -> Task:
    if config.task not in TASKS:
        raise ConfigError(f"--task: expected one of {', '.join(TASKS)}, got {config.task!r}")
    return TASKS[config.task](config, split)


__all__ = [
    "TASKS",
    "RerankTask",
    "RetrieveTask",
    "Scorer",
    "Task",
    "host_inputs",
    "make_task",
    "random_order",
    "shuffled",
]
