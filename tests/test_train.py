"""The trainer on small shapes tasks: it learns, it is deterministic, it stops cleanly, and it says why it stopped."""

from __future__ import annotations

import threading

import pytest
import torch

from tl_core.models.networks import ShapesNet
from tl_core.training.plan import make_plan
from tl_core.data.datasets import DataSpec, make_data
from tl_core.models.source import load_source_model
from tl_core.training.trainer import train


@pytest.fixture(scope="module")
def source() -> torch.nn.Module:
    return load_source_model().model


@pytest.fixture(scope="module")
def easy():
    return make_data(DataSpec(n_per_class=40, similarity=1.0, n_val_per_class=40, seed=1))


@pytest.fixture(scope="module")
def tiny():
    return make_data(DataSpec(n_per_class=8, similarity=1.0, n_val_per_class=10, seed=2))


def test_reaches_90_percent_on_an_easy_task_and_reports_everything(source, easy):
    tr, va = easy
    res = train(make_plan("finetune_top", epochs=5), tr, va, base=source)
    assert res.status == "finished" and res.evaluation.accuracy > 0.9
    ev = res.evaluation
    assert sum(map(sum, ev.confusion)) == len(va)
    assert set(ev.per_class) == set(va.classes) and all(0 <= a <= 1 for a in ev.per_class.values())
    assert all(t["true"] != t["pred"] for t in ev.top_losses)
    assert len(tr) == 160 and len(res.epochs) == 20  # 5 steps per epoch: 5 epochs raised to reach 100 steps
    assert any("instead of 5" in e.message for e in res.events)
    assert [e.epoch for e in res.epochs] == list(range(len(res.epochs)))
    assert res.epochs[-1].val_acc == pytest.approx(ev.accuracy)
    assert res.steps[0].grad_norm["block1"] is None and res.steps[0].grad_norm["head"] > 0
    assert res.steps[0].lr["block1"] == 0.0
    assert res.drift["block1"] == 0.0 < res.drift["block4"]
    assert res.trainable_params < res.total_params
    assert set(res.state_dict) == set(ShapesNet(4).state_dict())


def test_same_seed_same_metrics_on_the_cpu(source, tiny):
    tr, va = tiny
    plan = make_plan("finetune_all", epochs=2, min_steps=12, batch_size=8, seed=3)
    a, b = train(plan, tr, va, base=source), train(plan, tr, va, base=source)
    assert [s.loss for s in a.steps] == [s.loss for s in b.steps]
    assert a.evaluation.confusion == b.evaluation.confusion
    c = train(make_plan("finetune_all", epochs=2, min_steps=12, batch_size=8, seed=4), tr, va, base=source)
    assert [s.loss for s in c.steps] != [s.loss for s in a.steps]


def test_cached_frozen_prefix_trains_the_same_function(source, tiny):
    tr, va = tiny
    plan = make_plan("feature_extract", epochs=2, min_steps=10, batch_size=8)
    cached = train(plan, tr, va, base=source)
    naive = train(plan, tr, va, base=source, cache_frozen=False)
    assert cached.cached_prefix == ("block1", "block2", "block3", "block4") and naive.cached_prefix == ()
    assert [s.loss for s in cached.steps] == pytest.approx([s.loss for s in naive.steps], abs=1e-4)
    assert cached.evaluation.accuracy == naive.evaluation.accuracy
    assert any("once" in e.message for e in cached.events)


def test_cancel_from_another_thread_returns_partial_results(source, easy):
    tr, va = easy
    cancel = threading.Event()

    def on_record(r):
        if r.kind == "epoch" and r.epoch == 1:
            cancel.set()

    res = train(make_plan("finetune_all", epochs=20), tr, va, base=source, on_record=on_record, cancel=cancel)
    assert res.status == "cancelled" and "Stopped" in res.reason
    assert len(res.epochs) == 2 and 0 < len(res.steps) < 20 * 5
    assert res.evaluation is not None  # the partial model is still evaluated


@pytest.mark.parametrize("optimizer, lr", [("sgd", 1e6), ("adam", 10.0)])
def test_a_huge_learning_rate_stops_with_a_clear_reason(source, tiny, optimizer, lr):
    tr, va = tiny
    res = train(make_plan("finetune_all", optimizer=optimizer, lr=lr, epochs=3, batch_size=8), tr, va, base=source)
    assert res.status == "diverged"
    assert "learning rate" in res.reason and "too high" in res.reason
    assert res.evaluation is None and len(res.steps) < 10


def test_nan_inputs_are_caught_as_divergence(source, tiny):
    tr, va = tiny
    bad = type(tr)(tr.x.clone(), tr.y, tr.classes)
    bad.x[0, 0, 0, 0] = float("nan")
    res = train(make_plan("finetune_all", epochs=1, batch_size=32, min_steps=0), bad, va, base=source)
    assert res.status == "diverged" and "nan" in res.reason.lower()


def test_gradual_unfreezing_thaws_one_group_per_epoch(source, tiny):
    tr, va = tiny
    plan = make_plan("finetune_top", unfreeze_every=1, epochs=3, min_steps=0, batch_size=16)
    res = train(plan, tr, va, base=source)
    assert res.cached_prefix == ()  # a prefix that will thaw cannot be cached
    assert [e.thawed for e in res.epochs] == [(), ("block3",), ("block2",)]
    by_epoch = {e: [s for s in res.steps if s.epoch == e] for e in range(3)}
    assert all(s.grad_norm["block3"] is None for s in by_epoch[0])
    assert all(s.grad_norm["block3"] is not None for s in by_epoch[1])
    assert all(s.grad_norm["block2"] is None for s in by_epoch[1])
    assert all(s.grad_norm["block2"] is not None and s.grad_norm["block1"] is None for s in by_epoch[2])
    assert by_epoch[1][0].lr["block3"] > 0 == by_epoch[0][0].lr["block3"]
    assert res.drift["block1"] == 0.0 < res.drift["block2"]  # thawed groups drift from their pretrained weights
    assert torch.equal(res.state_dict["block1.0.weight"], source.block1[0].weight)


def test_batchnorm_policy_is_a_real_toggle(source):
    tr, va = make_data(DataSpec(n_per_class=10, similarity=0.5, n_val_per_class=10, seed=5))
    src_mean = source.block1[1].running_mean.clone()
    kept = train(make_plan("finetune_top", bn_policy="eval", epochs=1, min_steps=5), tr, va, base=source)
    moved = train(make_plan("finetune_top", bn_policy="train", epochs=1, min_steps=5), tr, va, base=source)
    assert torch.equal(kept.state_dict["block1.1.running_mean"], src_mean)
    assert not torch.allclose(moved.state_dict["block1.1.running_mean"], src_mean)
    assert torch.equal(moved.state_dict["block1.0.weight"], source.block1[0].weight)  # weights stay frozen
    assert torch.equal(source.block1[1].running_mean, src_mean)  # the shared base was never touched
    assert kept.bn_drift["block1"] == 0.0 < moved.bn_drift["block1"]  # "frozen" yet changed: the trap
    assert kept.drift["block1"] == moved.drift["block1"] == 0.0


class _OneTimeOOM(ShapesNet):
    """A model that runs out of memory once on a big batch, like a GPU would."""

    failed = False

    def forward(self, x):
        if x.shape[0] > 8 and not _OneTimeOOM.failed:
            _OneTimeOOM.failed = True
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return super().forward(x)


def test_out_of_memory_halves_the_batch_once(source, tiny):
    tr, va = tiny
    base = _OneTimeOOM(6)
    base.load_state_dict(source.state_dict())
    res = train(make_plan("finetune_all", epochs=1, min_steps=0, batch_size=16), tr, va, base=base)
    assert res.status == "finished"
    assert any("halved the batch size to 8" in e.message for e in res.events)
    assert res.steps_run == len(res.steps) == 4 > res.steps_scheduled == 2 and "halved to 8" in res.schedule_note


def test_bad_data_is_refused_before_training(source, tiny):
    tr, va = tiny
    with pytest.raises(ValueError, match="larger than the 32 training images"):
        train(make_plan("finetune_all", batch_size=64), tr, va, base=source)


def test_inception_trains_its_aux_head_at_299_pixels_and_caches_without_it():
    from tl_core.models.networks import build_model
    from tl_core.training.trainer import TensorData

    data = TensorData(torch.rand(4, 3, 32, 32), torch.arange(4) % 2, ("a", "b"))
    base = build_model("inception_v3", 10)
    full = train(make_plan("finetune_all", arch="inception_v3", epochs=1, min_steps=0, batch_size=2), data, data,
                 base=base, keep_weights=False)
    assert full.status == "finished" and full.steps[0].grad_norm["aux"] > 0  # the aux loss reached its head
    top = train(make_plan("finetune_top", arch="inception_v3", epochs=1, min_steps=0, batch_size=2), data, data,
                base=base, keep_weights=False)
    assert top.cached_prefix == ("stem", "mixed5", "mixed6") and top.steps[0].grad_norm["aux"] is None


def test_the_result_states_the_epochs_and_steps_really_run_and_why(source, tiny):
    tr, va = tiny  # 32 images: 4 steps per epoch in batches of 8
    records = []
    raised = train(make_plan("finetune_top", epochs=2, min_steps=12, batch_size=8), tr, va, base=source,
                   keep_weights=False, on_record=records.append)
    assert (raised.epochs_planned, raised.epochs_scheduled, raised.epochs_run) == (2, 3, 3) == \
        (2, 3, len(raised.epochs))
    assert (raised.steps_scheduled, raised.steps_run) == (12, 12) and len(raised.steps) == 12
    assert "running 3 epochs instead of 2" in raised.schedule_note and "at least 12 steps" in raised.schedule_note
    start = next(r for r in records if r.kind == "start")
    assert (start.epochs_planned, start.epochs, start.total_steps) == (2, 3, 12)
    assert start.schedule_note == raised.schedule_note

    plain = train(make_plan("finetune_top", epochs=3, min_steps=0, batch_size=8), tr, va, base=source,
                  keep_weights=False)
    assert (plain.epochs_planned, plain.epochs_run, plain.steps_run) == (3, 3, 12) and plain.schedule_note == ""

    cancel = threading.Event()
    stopped = train(make_plan("finetune_top", epochs=5, min_steps=0, batch_size=8), tr, va, base=source,
                    keep_weights=False, cancel=cancel,
                    on_record=lambda r: cancel.set() if r.kind == "epoch" and r.epoch == 1 else None)
    assert (stopped.status, stopped.epochs_run, stopped.steps_run, stopped.epochs_scheduled) == ("cancelled", 2, 8, 5)
    assert "stopped after 2 of 5 epochs (8 of 20 steps)" in stopped.schedule_note

    diverged = train(make_plan("finetune_all", optimizer="sgd", lr=1e6, epochs=3, batch_size=8), tr, va, base=source,
                     keep_weights=False)
    assert diverged.status == "diverged" and diverged.epochs_run == 0 < diverged.steps_run < 5
    assert "instead of 3" in diverged.schedule_note and "diverged after 0 of 25 epochs" in diverged.schedule_note
