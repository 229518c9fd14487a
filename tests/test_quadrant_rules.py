"""The size-vs-similarity quadrant, measured: each of the seed course's four rules holds in the shapes world.

Fixed seeds, the app's default plans, the same data for every strategy. "Similar" is the new target shapes
drawn like the source (similarity 1.0); "different" is similarity 0.25, where the target task is the
orientation of a fine background grating behind noisy, low-contrast shapes (a low-level cue).
"""

from __future__ import annotations

import functools

import pytest

from tl_core.training.plan import make_plan
from tl_core.data.datasets import DataSpec, make_data
from tl_core.models.source import load_source_model
from tl_core.training.trainer import train

LITTLE, LOTS = 20, 250  # images per class
SIMILAR, DIFFERENT = 1.0, 0.25


@functools.lru_cache(maxsize=None)
def accuracy(n: int, similarity: float, strategy: str, cut_after: str | None = None) -> float:
    tr, va = make_data(DataSpec(n_per_class=n, similarity=similarity, n_val_per_class=50, seed=0))
    plan = make_plan(strategy, cut_after=cut_after, seed=0)
    res = train(plan, tr, va, base=load_source_model().model, keep_weights=False, max_val_evals=1)
    assert res.ok, res.reason
    return res.final_val_acc


def test_little_similar_freezing_beats_scratch_by_a_wide_margin():
    scratch = accuracy(LITTLE, SIMILAR, "scratch")
    frozen = max(accuracy(LITTLE, SIMILAR, "feature_extract"), accuracy(LITTLE, SIMILAR, "finetune_top"))
    assert frozen >= scratch + 0.3, (frozen, scratch)


def test_lots_similar_finetune_all_is_at_least_as_good_as_frozen_and_all_near_ceiling():
    ft_all, frozen = accuracy(LOTS, SIMILAR, "finetune_all"), accuracy(LOTS, SIMILAR, "feature_extract")
    assert ft_all >= frozen - 0.01, (ft_all, frozen)
    for strategy in ("scratch", "finetune_all", "finetune_top", "feature_extract"):
        assert accuracy(LOTS, SIMILAR, strategy) >= 0.9, strategy


def test_little_different_a_classifier_on_early_layers_beats_the_final_frozen_features():
    early = accuracy(LITTLE, DIFFERENT, "early_classifier", "block2")
    final = accuracy(LITTLE, DIFFERENT, "feature_extract")
    assert early >= final + 0.1, (early, final)


def test_lots_different_scratch_matches_finetune_all_and_both_beat_frozen():
    scratch, ft_all = accuracy(LOTS, DIFFERENT, "scratch"), accuracy(LOTS, DIFFERENT, "finetune_all")
    frozen = accuracy(LOTS, DIFFERENT, "feature_extract")
    assert abs(scratch - ft_all) <= 0.05, (scratch, ft_all)
    assert min(scratch, ft_all) >= frozen + 0.1, (scratch, ft_all, frozen)


@pytest.mark.parametrize("n, similarity", [(LITTLE, SIMILAR), (LITTLE, DIFFERENT)])
def test_pretrained_weights_help_with_little_data(n, similarity):
    assert accuracy(n, similarity, "finetune_all") > accuracy(n, similarity, "scratch") + 0.1
