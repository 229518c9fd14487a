"""Every registry architecture x every strategy x augmentation on/off x both BatchNorm policies either trains or is
refused by the plan with a reason.

Training here means one real optimizer step on a tiny batch: the loss is finite, and at that step every group's
requires_grad and every BatchNorm layer's mode are what the plan says. Each architecture's "pretrained" base is
randomly initialised once (no downloads) and shared by its 20 runs; one thread computes (batches of two images). Inception v3 used to crash here with
augmentation on or BatchNorm re-estimation under "fine-tune only the final layers" or "fixed feature extraction"
(its frozen auxiliary head ran in train mode on 80-pixel inputs).
"""

from __future__ import annotations

import functools
import math

import pytest
import torch

from tl_core.data.datasets import TensorData
from tl_core.models.networks import build_model
from tl_core.models.registry import ARCHS
from tl_core.training.freeze import batchnorm_modes
from tl_core.training.plan import BN_POLICIES, STRATEGIES, make_plan
from tl_core.training.records import StepRecord
from tl_core.training.trainer import Trainer

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny batches (conftest)


REFUSED: dict[tuple[str, str, bool, str], str] = {}  # (arch, strategy, augment, bn_policy) -> the plan's reason


NARROW_FC = 64  # units of fc6 and fc7 in the stand-in VGG and AlexNet bases


@functools.lru_cache(maxsize=1)
def _base(arch: str) -> torch.nn.Module:
    """The architecture's stand-in "pretrained" model: random weights, 10 classes (one at a time in memory).

    VGG's and AlexNet's fc6 and fc7 hold 120 of their 138 million weights; the stand-in keeps every layer (and so
    every stage, group and cut point) but narrows those two to NARROW_FC units, so that copying the base for each
    run is cheap. Scratch runs build the real network.
    """
    model = build_model(arch, 10, init=False, meta=True)  # shapes only: filled below, without torchvision's init
    if ARCHS[arch].family in ("vgg", "alexnet"):
        c = model.classifier
        fc6, fc7, head = [i for i, m in enumerate(c) if isinstance(m, torch.nn.Linear)]
        c[fc6] = torch.nn.Linear(c[fc6].in_features, NARROW_FC, device="meta")
        c[fc7] = torch.nn.Linear(NARROW_FC, NARROW_FC, device="meta")
        c[head] = torch.nn.Linear(NARROW_FC, 10, device="meta")
    model = model.to_empty(device="cpu")
    torch.manual_seed(0)
    for m in model.modules():
        if hasattr(m, "reset_parameters"):  # PyTorch's default init of each layer; BatchNorm statistics reset
            m.reset_parameters()
    return model


@functools.lru_cache(maxsize=1)
def _data() -> TensorData:
    g = torch.Generator().manual_seed(0)
    return TensorData(torch.rand(2, 3, 32, 32, generator=g), torch.tensor([0, 1]), ("a", "b"))


def _expected_modes(trainer: Trainer) -> dict[str, list[bool]]:
    """BatchNorm modes the plan asks for: train in trainable groups; frozen groups in eval under the "eval" policy."""
    gm = trainer.gm
    train_frozen = trainer.plan.bn_policy == "train"
    return {g: [g not in gm.frozen or train_frozen] * len(modes) for g, modes in batchnorm_modes(gm).items()}


@pytest.mark.parametrize("arch", list(ARCHS))
def test_every_strategy_augmentation_and_batchnorm_policy_trains_or_is_refused(arch: str) -> None:
    data = _data()
    outcomes = {}
    for strategy in STRATEGIES:
        for augment in (False, True):
            for bn_policy in BN_POLICIES:
                key = (arch, strategy, augment, bn_policy)
                try:
                    plan = make_plan(strategy, arch=arch, augment=augment, bn_policy=bn_policy, epochs=1,
                                     min_steps=0, batch_size=2, device="cpu")
                    trainer = Trainer(plan, data, data, base=_base(arch), keep_weights=False, ratio_every=0)
                except ValueError as e:
                    assert key in REFUSED and REFUSED[key] in str(e), (key, str(e))
                    outcomes[key] = "refused"
                    continue
                assert key not in REFUSED, key
                seen: dict[str, object] = {}

                def at_step(rec, trainer=trainer, seen=seen) -> None:
                    if isinstance(rec, StepRecord) and "modes" not in seen:  # inside the run, at the step
                        gm = trainer.gm
                        seen["grad"] = {g: {p.requires_grad for p in ps} for g, ps in gm.params.items()}
                        seen["modes"] = batchnorm_modes(gm)
                        seen["expected_modes"] = _expected_modes(trainer)

                trainer.on_record = at_step
                res = trainer.run()
                assert res.status == "finished", (key, res.reason)
                assert len(res.steps) == 1 and math.isfinite(res.steps[0].loss), key
                assert res.groups == plan.groups, key
                assert seen["grad"] == {g: {g not in plan.frozen} for g in plan.groups}, key
                assert seen["modes"] == seen["expected_modes"], key
                assert res.evaluation is not None and math.isfinite(res.evaluation.loss), key
                outcomes[key] = "trained"
    assert len(outcomes) == len(STRATEGIES) * 2 * len(BN_POLICIES)


def test_a_frozen_inception_aux_head_never_runs_so_it_adds_nothing_to_the_loss_at_299_pixels() -> None:
    """At 299 px the frozen random aux head used to run and add 0.4x its cross-entropy to the reported loss."""
    torch.manual_seed(0)
    base = build_model("inception_v3", 10, init=False)
    calls: list[int] = []
    base.AuxLogits.register_forward_hook(lambda module, args, out: calls.append(1))  # copied with the base
    data = TensorData(torch.rand(2, 3, 299, 299, generator=torch.Generator().manual_seed(1)), torch.tensor([0, 1]),
                      ("a", "b"))
    for strategy, aux_runs in (("finetune_top", False), ("finetune_all", True)):
        calls.clear()
        plan = make_plan(strategy, arch="inception_v3", augment=True, bn_policy="train", epochs=1, min_steps=0,
                         batch_size=2)
        res = Trainer(plan, data, data, base=base, keep_weights=False, ratio_every=0).run()
        assert res.status == "finished" and math.isfinite(res.steps[0].loss)
        assert bool(calls) == aux_runs == plan.trains_aux, strategy  # runs only while it trains
        assert (res.steps[0].grad_norm["aux"] is not None) == aux_runs
