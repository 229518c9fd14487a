"""Plans: the five strategies, discriminative LRs, and a clear ValueError for every invalid plan."""

from __future__ import annotations

import math

import pytest

from tl_core.models.registry import ARCHS
from tl_core.training.plan import (HEAD_LR_MULT, RECIPES, STRATEGIES, Plan, discriminative_lr_mult, make_plan,
                                  recipe_for)


@pytest.mark.parametrize("arch", sorted(ARCHS))
@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_make_plan_is_valid_for_every_arch_and_strategy(arch, strategy):
    plan = make_plan(strategy, arch=arch)
    body = ARCHS[arch].body_groups
    assert plan.validate() is plan
    assert "head" in plan.trainable
    if strategy in ("scratch", "finetune_all"):
        assert plan.frozen == ()
    elif strategy == "feature_extract":
        assert plan.frozen == body and plan.trainable == ("head",)
    elif strategy == "finetune_top":
        assert plan.frozen == body[:-1] and plan.trainable == (body[-1], "head")
    else:  # early_classifier: cut after the second group; everything kept before the head is frozen
        assert plan.cut_after == body[1] and plan.groups == (*body[:2], "head") and plan.frozen == body[:2]
    assert plan.pretrained == (strategy != "scratch")
    assert plan.lr_for("head") == pytest.approx(plan.lr * (recipe_for(arch).head_mult if plan.pretrained else 1.0))


@pytest.mark.parametrize("arch", sorted(ARCHS))
@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_every_architecture_s_plans_follow_its_recipe(arch, strategy):
    recipe = recipe_for(arch)
    plan = make_plan(strategy, arch=arch)
    assert (plan.optimizer, plan.weight_decay) == (recipe.optimizer, recipe.weight_decay)
    assert plan.lr == (recipe.lr if plan.pretrained else recipe.scratch_lr)
    assert plan.lr_for("head") == pytest.approx(plan.lr * (recipe.head_mult if plan.pretrained else 1.0))
    assert all(plan.lr_for(g) == plan.lr for g in plan.groups if g != "head")  # no hidden per-group changes
    assert recipe.citation and recipe.name in recipe.describe() and f"{recipe.lr:g}" in recipe.describe()
    explicit = make_plan(strategy, arch=arch, lr=0.05, optimizer="adam", weight_decay=0.0)  # the learner's choice wins
    assert (explicit.lr, explicit.optimizer, explicit.weight_decay) == (0.05, "adam", 0.0)


def test_recipes_follow_their_published_sources():
    assert recipe_for("shapesnet") is RECIPES["shapes"] and recipe_for("shapesnet").head_mult == HEAD_LR_MULT
    assert (recipe_for("shapesnet").optimizer, recipe_for("shapesnet").lr) == ("adam", 3e-3)  # ShapesNet keeps its own
    for arch in ARCHS:
        if ARCHS[arch].torchvision:  # ImageNet models: SGD with momentum and a small LR (1e-3) for the body
            r = recipe_for(arch)
            assert r.optimizer == "sgd" and r.lr == 1e-3 and r is not RECIPES["shapes"]
    assert recipe_for("vgg16") is recipe_for("alexnet") is RECIPES["caffe"]  # Caffe's CaffeNet fine-tuning
    assert "finetune_flickr_style" in RECIPES["caffe"].citation and RECIPES["caffe"].head_mult == 10.0
    assert recipe_for("resnet18") is RECIPES["torchvision"] and "Finetuning Torchvision Models" in \
        RECIPES["torchvision"].citation


def test_discriminative_lrs_decay_towards_the_input():
    plan = make_plan("finetune_all", lr=0.01, lr_decay=0.5, head_mult=1.0)
    lrs = [plan.lr_for(g) for g in plan.groups]  # block1 .. head
    assert lrs == pytest.approx([0.01 * 0.5 ** 4, 0.01 * 0.5 ** 3, 0.01 * 0.25, 0.01 * 0.5, 0.01])
    assert discriminative_lr_mult(("a", "b"), 1.0) == {"a": 1.0, "b": 1.0}
    with pytest.raises(ValueError, match="decay"):
        discriminative_lr_mult(("a",), 0)


@pytest.mark.parametrize("build, message", [
    (lambda: make_plan("finetune_top", freeze_first=5), "freeze between 1 and 3"),  # more groups than exist
    (lambda: make_plan("finetune_top", arch="resnet18", freeze_first=0), "freeze between 1 and 4"),
    (lambda: make_plan("scratch", arch="lenet"), "Unknown architecture 'lenet'"),
    (lambda: make_plan("transfer_everything"), "Unknown strategy"),
    (lambda: make_plan("finetune_all", lr=0), "positive number"),
    (lambda: make_plan("finetune_all", lr=-1e-3), "positive number"),
    (lambda: make_plan("finetune_all", lr=math.nan), "positive number"),
    (lambda: make_plan("finetune_all", epochs=0), "Epochs must be a whole number from 1"),
    (lambda: make_plan("finetune_all", batch_size=0), "Batch size must be"),
    (lambda: make_plan("finetune_all", batch_size=1), "BatchNorm needs two images"),
    (lambda: make_plan("finetune_all", batch_size=10**6), "Batch size must be"),
    (lambda: make_plan("early_classifier", cut_after="head"), "Cannot cut shapesnet after 'head'"),
    (lambda: make_plan("scratch", bn_policy="sometimes"), "bn_policy"),
    (lambda: make_plan("scratch", optimizer="lbfgs"), "optimizer"),
    (lambda: make_plan("scratch", device="tpu"), "device"),
    (lambda: Plan(strategy="finetune_all", frozen=("block1",)).validate(), "freezes nothing"),
    (lambda: Plan(strategy="scratch", frozen=("block1",)).validate(), "freezes nothing"),
    (lambda: Plan(strategy="finetune_top", frozen=("block2",)).validate(), "prefix"),
    (lambda: Plan(strategy="finetune_top", frozen=()).validate(), "at least one frozen group"),
    (lambda: Plan(strategy="feature_extract", frozen=("block1",)).validate(), "freezes every group"),
    (lambda: Plan(strategy="finetune_top", frozen=("head",)).validate(), "must stay trainable"),
    (lambda: Plan(frozen=("layer9",)).validate(), "no layer group 'layer9'"),
    (lambda: Plan(strategy="finetune_all", frozen=(), lr_mult={"block1": -1.0}).validate(), "zero or positive"),
    (lambda: Plan(strategy="finetune_all", frozen=(), cut_after="block1").validate(), "cut_after only applies"),
])
def test_invalid_plans_say_what_to_change(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_data_checks_batch_size_and_classes():
    plan = make_plan("finetune_all", batch_size=64)
    with pytest.raises(ValueError, match="larger than the 40 training images; use at most 40"):
        plan.validate_for_data(40, 4)
    with pytest.raises(ValueError, match="at least two classes"):
        plan.validate_for_data(100, 1)
    assert plan.validate_for_data(64, 2) is plan


def test_plan_round_trips_through_a_dict():
    plan = make_plan("finetune_top", arch="resnet18", freeze_first=2, lr_decay=0.7, seed=5, epochs=3)
    again = Plan.from_dict(plan.to_dict())
    assert again == plan
    assert "Fine-tune only the final layers" in plan.describe() and "stem, layer1" in plan.describe()
