"""Reranking: order each user's held-out rated items by score.

Training lists are the users' training ratings (labels 1..5); a validation or test list is
the user's next ratings in time, and the metrics are ``ranking_metrics`` over it (NDCG@k with
gain ``2^y - 1``, MRR, MAP, recall@k with relevance ``y >= --relevance_threshold``, 4 by
default). A list without a relevant item scores 0 on MRR, MAP and recall, and counts.
"""

from __future__ import annotations

from loguru import logger

from ltr_common.config import TrainConfig
from ltr_common.evaluation import EVAL_BATCH_SIZE, evaluate, per_list_metrics
from ltr_common.lists import Lists, Split
from ltr_common.models import SEQUENTIAL
from ltr_common.sequences import trainable
from ltr_common.tasks.base import Scorer, check_split, require_sequences, sequence_inputs, training_inputs


class RerankTask:
    name = "rerank"

    def __init__(self, config: TrainConfig, split: Split):
        check_split(config, split)
        self.config, self.split = config, split
        self._warn_of_lists_without_order(config, split)
        if self.sequential:
            histories = split.history("validation")
            require_sequences(config, histories)
            self._sequences = trainable(histories)

    @staticmethod
    def _warn_of_lists_without_order(config: TrainConfig, split: Split) -> None:
        """Warn where the lists the run selects on (validation; a refit's test) leave nothing
        to order: one item each, or no rating at ``--relevance_threshold`` or above."""
        part = "validation" if len(split.validation) else "test"
        lists = getattr(split, part)
        if not len(lists):
            return
        if lists.lengths.max() < 2:
            logger.warning(
                "every {} list holds one item (--{}_size {}): there is no order to rank, so every "
                "ranking metric is the same for any model (NDCG 1; MRR, MAP and recall 1 or 0 by the "
                "item's rating)",
                part,
                part,
                getattr(config, f"{part}_size"),
            )
        if not (lists.labels >= config.relevance_threshold).any():
            logger.warning(
                "--relevance_threshold {:g}: no {} list holds a rating that high, so MRR, MAP and "
                "recall are 0 on every list; set it to what is liked on your ratings' scale (they run "
                "from {:g} to {:g})",
                config.relevance_threshold,
                part,
                float(lists.labels.min()),
                float(lists.labels.max()),
            )

    def lists(self, part: str) -> Lists:
        return getattr(self.split, part)

    def eval_batch_size(self) -> int:
        """Lists per evaluation call: a multiple of the training batch (so that it splits over
        the same devices), about ``EVAL_BATCH_SIZE``: a whole split in one or a few calls."""
        return self.config.batch_size * max(1, EVAL_BATCH_SIZE // self.config.batch_size)

    @property
    def sequential(self) -> bool:
        return self.config.model in SEQUENTIAL

    def _sequence_lists(self) -> Lists:
        if not hasattr(self, "_sequences"):
            self._sequences = trainable(self.split.history("validation"))
        return self._sequences

    def training_lists(self) -> int:
        return len(self._sequence_lists()) if self.sequential else len(self.split.train)

    def steps_per_epoch(self) -> int:
        return -(-self.training_lists() // self.config.batch_size)

    def epoch_inputs(self, *, epoch: int, start_batch: int = 0):
        if self.sequential:
            return sequence_inputs(
                self.config,
                self._sequence_lists(),
                self.split.num_items,
                epoch=epoch,
                start_batch=start_batch,
            )
        return training_inputs(self.config, self.split.train, epoch=epoch, start_batch=start_batch)

    def _metric_fn(self, scorer: Scorer, part: str, history: str):
        """``scorer.batch_metrics``; a sequence model reads the history shown before ``part``."""
        if not self.sequential:
            return scorer.batch_metrics
        shown = self.split.history("validation" if history == "train" else part)
        return lambda batch: scorer.batch_metrics(batch, history=shown)

    def per_list(self, scorer: Scorer, part: str, *, history: str = "all"):
        metric_fn = self._metric_fn(scorer, part, history)
        return per_list_metrics(metric_fn, self.lists(part), batch_size=self.eval_batch_size())

    def evaluate(self, scorer: Scorer, part: str, *, history: str = "all"):
        metric_fn = self._metric_fn(scorer, part, history)
        return evaluate(metric_fn, self.lists(part), batch_size=self.eval_batch_size())

    def counts(self, part: str):
        return {"lists": len(self.lists(part)), "left out": 0}
