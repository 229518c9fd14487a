"""Freezing: requires_grad per group under every strategy, frozen BatchNorm stays in eval, optimizer LRs follow the plan."""

from __future__ import annotations

import pytest
import torch

from tl_core.training.freeze import (batchnorm_modes, build_optimizer, next_to_thaw, set_learning_rates,
                                    set_train_mode, thaw)
from tl_core.models.networks import build_model
from tl_core.training.plan import STRATEGIES, make_plan
from tl_core.training.trainer import build_for_plan


@pytest.fixture(scope="module")
def base() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("shapesnet", 6)


@pytest.mark.parametrize("arch", ["shapesnet", "resnet18"])
@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_requires_grad_for_every_group_under_every_strategy(arch, strategy):
    torch.manual_seed(0)
    plan = make_plan(strategy, arch=arch)
    built = build_for_plan(plan, 4, 32, base=build_model(arch, 10))
    assert built.grouped.groups == plan.groups
    for group, params in built.grouped.params.items():
        flags = {p.requires_grad for p in params}
        assert flags == {group not in plan.frozen}, (group, flags)
    n_trainable = sum(p.numel() for p in built.model.parameters() if p.requires_grad)
    expected = sum(p.numel() for g in plan.trainable for p in built.grouped.params[g])
    assert n_trainable == expected > 0


def test_frozen_batchnorm_stays_in_eval_after_train(base):
    built = build_for_plan(make_plan("finetune_top", freeze_first=2), 4, 32, base=base)
    built.model.train()  # a plain train() would wake every BatchNorm up ...
    assert all(all(m) for m in batchnorm_modes(built.grouped).values())
    set_train_mode(built.grouped)  # ... the policy puts the frozen ones back to eval
    modes = batchnorm_modes(built.grouped)
    assert modes["block1"] == [False] and modes["block2"] == [False]
    assert modes["block3"] == [True] and modes["block4"] == [True]


def test_train_bn_policy_keeps_frozen_batchnorm_in_train_mode(base):
    built = build_for_plan(make_plan("finetune_top", freeze_first=2, bn_policy="train"), 4, 32, base=base)
    set_train_mode(built.grouped)
    assert batchnorm_modes(built.grouped)["block1"] == [True]
    assert not any(p.requires_grad for p in built.grouped.params["block1"])  # weights stay frozen


def test_optimizer_groups_match_the_plan_and_thaw(base):
    plan = make_plan("finetune_top", lr=0.01, lr_decay=0.5, unfreeze_every=1)
    built = build_for_plan(plan, 4, 32, base=base)
    opt = build_optimizer(built.grouped, plan)
    lrs = {pg["name"]: pg["lr"] for pg in opt.param_groups}
    assert list(lrs) == list(plan.groups)  # one parameter group per layer group, all up front
    for g in plan.groups:
        assert lrs[g] == (0.0 if g in plan.frozen else pytest.approx(plan.lr_for(g)))
    g = next_to_thaw(built.grouped)
    assert g == "block3"  # the deepest frozen group thaws first
    thaw(built.grouped, g)
    assert {pg["name"]: pg["lr"] for pg in opt.param_groups}["block3"] == 0.0  # thaw writes no learning rate
    set_learning_rates(opt, built.grouped, 1.0)  # the one writer of learning rates gives it its planned LR
    assert {pg["name"]: pg["lr"] for pg in opt.param_groups}["block3"] == pytest.approx(plan.lr_for("block3"))
    assert all(p.requires_grad for p in built.grouped.params["block3"])
    assert len(opt.param_groups) == len(plan.groups)  # no group was added mid-run


def test_every_step_s_learning_rates_come_from_the_plan_the_schedule_and_the_frozen_set(base):
    from tl_core.data.datasets import DataSpec, make_data
    from tl_core.training.freeze import schedule_factor
    from tl_core.training.trainer import train

    tr, va = make_data(DataSpec(n_per_class=4, similarity=1.0, n_val_per_class=2, seed=9))  # 16 images
    plan = make_plan("finetune_top", lr=0.01, lr_decay=0.5, unfreeze_every=1, epochs=3, min_steps=0, batch_size=8)
    res = train(plan, tr, va, base=base, keep_weights=False)
    total = len(res.steps)
    assert total == 6 and schedule_factor(plan, 0, total) == 1.0 and schedule_factor(plan, total, total) == 0.0
    frozen = set(plan.frozen)
    for rec in res.steps:
        frozen -= set(res.epochs[rec.epoch].thawed)
        factor = schedule_factor(plan, rec.step, total)
        assert rec.lr == pytest.approx({g: 0.0 if g in frozen else plan.lr_for(g) * factor for g in plan.groups})
    assert res.steps[-1].lr["block3"] > 0 == res.steps[0].lr["block3"]  # thawed in epoch 2, then on the schedule
    constant = make_plan("finetune_top", schedule="constant")
    assert schedule_factor(constant, 5, 10) == 1.0
