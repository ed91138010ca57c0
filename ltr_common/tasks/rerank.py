"""Reranking: order each user's held-out rated items by score.

Training lists are the users' training ratings (labels 1..5); a validation or test list is
the user's next ratings in time, and the metrics are ``ranking_metrics`` over it (NDCG@k with
gain ``2^y - 1``, MRR, MAP, recall@k with relevance ``y >= 4``).
"""

from __future__ import annotations

from ltr_common.config import TrainConfig
from ltr_common.evaluation import EVAL_BATCH_SIZE, evaluate, per_list_metrics
from ltr_common.lists import Lists, Split
from ltr_common.tasks.base import Scorer, require_training_lists, training_inputs


class RerankTask:
    name = "rerank"

    def __init__(self, config: TrainConfig, split: Split):
        require_training_lists(config, split)
        self.config, self.split = config, split

    def lists(self, part: str) -> Lists:
        return getattr(self.split, part)

    def eval_batch_size(self) -> int:
        """Lists per evaluation call: a multiple of the training batch (so that it splits over
        the same devices), about ``EVAL_BATCH_SIZE``: a whole split in one or a few calls."""
        return self.config.batch_size * max(1, EVAL_BATCH_SIZE // self.config.batch_size)

    def steps_per_epoch(self) -> int:
        return -(-len(self.split.train) // self.config.batch_size)

    def epoch_inputs(self, *, epoch: int, start_batch: int = 0):
        return training_inputs(self.config, self.split.train, epoch=epoch, start_batch=start_batch)

    def per_list(self, scorer: Scorer, part: str, *, history: str = "all"):
        del history  # the reranker scores by user id: no history to show
        return per_list_metrics(scorer.batch_metrics, self.lists(part), batch_size=self.eval_batch_size())

    def evaluate(self, scorer: Scorer, part: str, *, history: str = "all"):
        del history
        return evaluate(scorer.batch_metrics, self.lists(part), batch_size=self.eval_batch_size())

    def counts(self, part: str):
        return {"lists": len(self.lists(part)), "left out": 0}
