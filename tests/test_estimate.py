"""Run-time estimates come from measured throughput and track the real run."""

from __future__ import annotations

import time

from tl_core.training.estimate import estimate_run
from tl_core.models.features import extract_features
from tl_core.models.networks import build_model
from tl_core.training.plan import make_plan
from tl_core.data.datasets import DataSpec, make_data
from tl_core.models.source import load_source_model
from tl_core.training.trainer import train


def test_estimate_is_in_the_right_ballpark_for_a_real_run():
    tr, va = make_data(DataSpec(n_per_class=30, similarity=1.0, n_val_per_class=10, seed=7))
    plan = make_plan("finetune_all", epochs=3, min_steps=0)
    base = load_source_model().model
    est = estimate_run(plan, len(tr), len(va), 4, 32, base=base)
    t0 = time.perf_counter()
    train(plan, tr, va, base=base, keep_weights=False)
    real = time.perf_counter() - t0
    assert est.total_steps == 3 * 4 and not est.cached and est.images_per_s > 0
    assert real / 10 < est.seconds < real * 10  # an order-of-magnitude guide, measured here


def test_feature_extraction_estimates_one_pass():
    plan = make_plan("feature_extract", arch="resnet18")
    est = estimate_run(plan, 200, 50, 3, 64, base=build_model("resnet18", 10))
    assert est.cached and "runs once over 250 images" in est.note and est.seconds > 0


def test_extract_features_matches_a_plain_eval_pass():
    import torch

    model = build_model("shapesnet", 4).eval()
    x = torch.rand(10, 3, 32, 32)
    with torch.inference_mode():
        ref = model(x)
    out = extract_features(model, x, batch_size=3)
    assert out.shape == (10, 4) and torch.allclose(out, ref, atol=1e-5)
