"""OSWorld evaluator semantics: getters read state, metrics compare, `evaluate` combines them."""

from scoring.evaluate import evaluate
from scoring.result import EvalResult, MetricDetail

__all__ = ["EvalResult", "MetricDetail", "evaluate"]
