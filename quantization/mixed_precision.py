"""Mixed precision: keep the most sensitive layers in float until the model meets a target.

Layers are ranked either by how much keeping each alone in float lifts the all-int8 model
(sensitivity.float_gain) or by how much the output moves when each is the only int8 layer
(sensitivity.layer_sensitivity, the default of quantize_model: on the reference body model
it reaches 95% agreement with fewer float layers). Keeping the first k of
that ranking in float is scored
for growing k (1, 2, 4, ... then bisection between the last failing and first passing k),
and the smallest passing k is taken. Each float layer is reported with the reason: its
rank and its own score. Bias corrections (output_calibration) apply to int8 layers only.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .output_calibration import quantized_model
from edgepose.ncnn_io import NcnnModel
from .sensitivity import Evaluator, Score


@dataclass
class MixedResult:
    float_layers: List[str]
    score: Score
    history: List[Tuple[int, float]] = field(default_factory=list)   # (k, primary score)
    reached: bool = True


def rank_layers(sensitivity: Dict[str, Score]) -> List[str]:
    """Most harmful first: lowest solo score, ties broken by lower cosine."""
    return sorted(sensitivity, key=lambda n: (sensitivity[n].primary, sensitivity[n].cosine))


def choose_float_layers(evaluator: Evaluator, model: NcnnModel, candidates: Sequence[str],
                        scales: Dict[str, float], sensitivity: Dict[str, Score], target: float,
                        log: Callable[[str], None] = lambda _m: None,
                        bias_shifts: Optional[Dict[str, np.ndarray]] = None,
                        ranking: Optional[List[str]] = None) -> MixedResult:
    """ranking: the order in which layers are kept float (default: rank_layers(sensitivity))."""
    ranking = list(ranking) if ranking is not None else rank_layers({n: sensitivity[n] for n in candidates})
    cache: Dict[int, Score] = {}

    def score_k(k: int) -> Score:
        if k not in cache:
            keep = set(ranking[:k])
            cache[k] = evaluator.score(quantized_model(model, [n for n in candidates if n not in keep], scales,
                                                        bias_shifts))
            log(f"  {k} layer(s) in float: {cache[k].primary:.4f}")
        return cache[k]

    n = len(ranking)
    if score_k(0).primary >= target:
        return MixedResult([], cache[0], sorted((k, s.primary) for k, s in cache.items()))
    lo, hi = 0, None              # lo fails; hi passes
    k = 1
    while k <= n:
        if score_k(k).primary >= target:
            hi = k
            break
        lo = k
        k = k * 2 if k * 2 <= n or k == n else n
    if hi is None:
        # Even all-float candidates miss the target (cannot happen unless candidates are a subset).
        return MixedResult(ranking, score_k(n), sorted((k, s.primary) for k, s in cache.items()), reached=False)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if score_k(mid).primary >= target:
            hi = mid
        else:
            lo = mid
    return MixedResult(ranking[:hi], cache[hi], sorted((k, s.primary) for k, s in cache.items()))
