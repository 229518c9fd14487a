"""Tests for tl_core.models.summary and tl_core.models.demos, against real PyTorch models and torchvision's metadata."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import fields, is_dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from torch import nn
from torch.profiler import ProfilerActivity, profile

from tl_core.models import demos as arch_demos
from tl_core.models import group_params
from tl_core.teaching import quadrant

from tl_core.models import networks as models
from tl_core.models.summary import (FAMILY_ORDER, build_meta_model, comparison_table, default_num_classes,
                                  family_cards, format_count, format_macs, group_table, layer_table, plan_on_arch,
                                  summarize, trainable_params)
from tl_core.models.registry import ARCHS
from tl_core.training.plan import STRATEGIES, make_plan
from tl_core.models.source import load_source_model
from tl_core.models.weights import WeightsUnavailable, imagenet_weights

TORCHVISION_ARCHS = [a for a, s in ARCHS.items() if s.torchvision]


@contextlib.contextmanager
def _no_init() -> Iterator[None]:
    """Build real CPU models without running their weight initialisers (counting parameters needs no values)."""
    names = ("normal_", "uniform_", "constant_", "zeros_", "ones_", "kaiming_normal_", "kaiming_uniform_",
             "xavier_uniform_", "xavier_normal_", "trunc_normal_")
    with pytest.MonkeyPatch.context() as mp:
        for name in names:
            mp.setattr(nn.init, name, lambda t, *a, **k: t)
        yield


# ---- parameter counts, shapes, MACs ---------------------------------------------------------------------------
@pytest.mark.parametrize("arch", list(ARCHS))
def test_parameter_count_and_groups_match_the_real_model(arch: str):
    with _no_init():
        real = models.build_model(arch, 1000)
    assert not any(p.is_meta for p in real.parameters())
    s = summarize(arch, num_classes=1000)
    assert s.params == sum(p.numel() for p in real.parameters())
    assert s.buffer_elements == sum(b.numel() for b in real.buffers())
    by_group = {g: sum(p.numel() for p in ps) for g, ps in models.params_by_group(real, arch).items()}
    assert {g: n for g, n in s.params_by_group().items() if n} == by_group


def test_shapesnet_default_head_is_the_source_models():
    s = summarize("shapesnet")
    assert default_num_classes("shapesnet") == len(load_source_model().classes) == 6
    assert s.params == models.count_params(load_source_model().model)


def _real_shapes(model: nn.Module, size: int) -> dict[str, tuple[int, ...]]:
    """Per-image output shape of every leaf module, from a real eval-mode forward pass on a batch of 2."""
    shapes: dict[str, tuple[int, ...]] = {}

    def record(name: str):
        def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
            shapes.setdefault(name, tuple(output.shape[1:]))
        return hook

    handles = [m.register_forward_hook(record(n)) for n, m in model.named_modules() if not list(m.children())]
    with torch.no_grad():
        model.eval()(torch.randn(2, 3, size, size))
    for h in handles:
        h.remove()
    return shapes


@pytest.mark.parametrize("arch, size", [("shapesnet", 32), ("resnet18", 64)])
def test_output_shapes_match_a_real_forward_pass(arch: str, size: int):
    real = _real_shapes(models.build_model(arch, 1000), size)
    s = summarize(arch, size, 1000)
    got = {r.name: r.output_shape for r in s.rows if r.calls}
    assert got == real
    assert s.input_size == size and s.rows[-1].output_shape == (1000,)


@pytest.mark.parametrize("arch", TORCHVISION_ARCHS)
def test_macs_and_size_agree_with_torchvisions_metadata(arch: str):
    meta = imagenet_weights(arch).meta
    s = summarize(arch)
    assert s.macs / 1e9 == pytest.approx(meta["_ops"], abs=6e-4)  # torchvision publishes GMACs to 3 decimals
    assert s.size_mb == pytest.approx(meta["_file_size"], rel=0.01)  # the file adds a little pickle overhead


def test_depth_counts_the_layers_the_names_count():
    assert [summarize(a).depth for a in ("alexnet", "vgg11", "vgg16", "densenet121")] == [8, 11, 16, 121]
    assert summarize("resnet18").depth == 18 + 3  # + the three 1×1 convolutions on downsampling shortcuts
    assert summarize("resnet50").depth == 50 + 4


def test_inception_aux_classifier_is_measured_but_left_out_of_inference_macs():
    s = summarize("inception_v3")
    aux = [r for r in s.rows if r.group == "aux"]
    assert aux and all(r.train_only for r in aux)
    assert all(not r.train_only for r in s.rows if r.group != "aux")
    assert s.macs_train_only == sum(r.macs for r in aux) > 0
    assert s.input_size == 299 and s.params_by_group()["aux"] == sum(r.params for r in aux)


def test_resnet_reused_relu_is_counted_once_per_call():
    rows = {r.name: r for r in summarize("resnet18").rows}
    assert rows["layer1.0.relu"].calls == 2 and rows["relu"].calls == 1


def test_counts_are_formatted_to_three_significant_digits():
    assert [format_count(n) for n in (138_357_544, 98_454, 512)] == ["138 M", "98.5 k", "512"]
    assert [format_macs(m) for m in (15_470_264_320, 3_982_080)] == ["15.5 G", "3.98 M"]


def test_too_small_input_and_unknown_arch_are_value_errors():
    with pytest.raises(ValueError, match="larger input size"):
        summarize("inception_v3", 32)
    with pytest.raises(ValueError, match="Unknown architecture"):
        summarize("lenet")


def _cpu_bytes_allocated(fn) -> int:
    """Bytes PyTorch's CPU allocator hands out while fn() runs (freed or not), from the profiler's memory events."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    return sum(e.cpu_memory_usage for e in prof.events() if e.cpu_memory_usage > 0)


def test_vgg16_summary_is_fast_and_allocates_no_weight_memory():
    uncached = summarize.__wrapped__  # the function behind the lru_cache, so that it really builds and traces
    uncached("shapesnet")  # warm up first-call work
    assert all(t.is_meta for t in (*build_meta_model("vgg16").parameters(), *build_meta_model("vgg16").buffers()))
    start = time.perf_counter()
    uncached("vgg16")
    assert time.perf_counter() - start < 1.0
    assert _cpu_bytes_allocated(lambda: uncached("vgg16")) < 2**20  # vgg16's weights would be 528 MiB
    control = _cpu_bytes_allocated(lambda: models.build_model("resnet18", 1000))  # the measurement sees weights
    assert control >= summarize("resnet18").params * 4


def test_summary_holds_no_tensors():
    def walk(obj) -> Iterator:
        yield obj
        if is_dataclass(obj):
            for f in fields(obj):
                yield from walk(getattr(obj, f.name))
        elif isinstance(obj, (tuple, list)):
            for x in obj:
                yield from walk(x)
    assert not any(isinstance(x, torch.Tensor) for x in walk(summarize("resnet18")))


# ---- the plan's marks ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("strategy", ["finetune_top", "feature_extract", "finetune_all", "scratch"])
def test_trainable_params_equal_the_trainers_requires_grad(strategy: str):
    from tl_core.training.trainer import build_for_plan

    plan = make_plan(strategy)
    built = build_for_plan(plan, n_classes=6, data_size=32)
    assert trainable_params(summarize("shapesnet"), plan) == models.count_params(built.model, trainable_only=True)


def test_layer_rows_are_marked_by_the_plans_frozen_groups():
    s = summarize("shapesnet")
    for plan in (make_plan("finetune_top"), make_plan("finetune_top", freeze_first=1), make_plan("feature_extract"),
                 make_plan("finetune_all")):
        rows = layer_table(s, plan)
        frozen = {r["Group"] for r in rows if r["Role"] == "frozen"}
        assert frozen == set(plan.frozen)
        assert all(r["Trains"] == (r["Parameters"] > 0 and r["Group"] not in plan.frozen and r["Group"] != "—")
                   for r in rows)
    early = layer_table(s, make_plan("early_classifier", cut_after="block2"))
    assert {r["Group"] for r in early if r["Role"] == "cut off"} == {"block3", "block4"}


def test_plan_on_another_arch_keeps_the_strategy_and_the_share_frozen():
    plan = make_plan("finetune_top", lr=0.01, epochs=3, seed=4)  # shapesnet: 3 of 4 body groups frozen
    assert plan_on_arch(plan, "shapesnet") is plan
    for arch, spec in ARCHS.items():
        here = plan_on_arch(plan, arch)
        assert (here.arch, here.strategy, here.lr, here.epochs, here.seed) == (arch, "finetune_top", 0.01, 3, 4)
        assert here.frozen == spec.body_groups[: len(here.frozen)] and 1 <= len(here.frozen) < len(spec.body_groups)
        assert here.lr_mult == plan.lr_mult
    assert plan_on_arch(plan, "resnet18").frozen == ("stem", "layer1", "layer2", "layer3")  # round(3/4 · 5) = 4
    decayed = make_plan("finetune_all", arch="resnet18", lr_decay=0.5)
    on_vgg = plan_on_arch(decayed, "vgg16").lr_mult
    assert (on_vgg["fc6_7"], on_vgg["block5"]) == pytest.approx((0.5, 0.25))
    assert on_vgg.get("head", 1.0) == pytest.approx(decayed.lr_mult.get("head", 1.0))  # the head's multiplier is kept
    early = plan_on_arch(make_plan("early_classifier", cut_after="block2"), "vgg16")  # 2 of 4 -> 3 of 6
    assert (early.cut_after, early.frozen) == ("block3", ("block1", "block2", "block3"))
    for strategy in STRATEGIES:
        for arch in ARCHS:
            plan_on_arch(make_plan(strategy), arch).validate()


def test_group_table_shares_sum_to_one_and_follow_forward_order():
    rows = group_table(summarize("vgg16"), make_plan("feature_extract"))
    assert [r["Group"] for r in rows] == list(ARCHS["vgg16"].groups)
    assert sum(r["Share"] for r in rows) == pytest.approx(1.0)
    assert [r["Trains"] for r in rows] == [False] * 6 + [True]


# ---- where the weights sit: the records the torch-free quadrant uses ----------------------------------------------
@pytest.mark.parametrize("arch", list(ARCHS))
def test_recorded_group_params_match_the_meta_device_measurement(arch: str):
    assert group_params.BODY_PARAMS[arch] == group_params.measure_body_params(arch)
    assert list(group_params.BODY_PARAMS[arch]) == list(ARCHS[arch].body_groups)


@pytest.mark.parametrize("arch", list(ARCHS))
def test_the_little_data_plan_really_trains_few_weights(arch: str):
    """Measured with summarize() on the meta device: "fine-tune only the final layers" on AlexNet and VGG trained
    89-96% of all weights; the little + similar plan now never trains more than NEARLY_ALL of them."""
    s = summarize(arch)
    plan = quadrant.plan_for("little", "similar", arch=arch)
    body = s.params - s.params_by_group()["head"]
    tuned_body = trainable_params(s, plan) - s.params_by_group()["head"]
    assert tuned_body / body <= quadrant.NEARLY_ALL
    naive = make_plan("finetune_top", arch=arch)  # the old plan: freeze all but the last body group
    naive_share = (trainable_params(s, naive) - s.params_by_group()["head"]) / body
    assert (plan.strategy == "feature_extract") == (naive_share > quadrant.NEARLY_ALL)
    if arch in ("alexnet", "vgg11", "vgg16"):
        assert naive_share > 0.85 and tuned_body == 0


# ---- cards and comparison ---------------------------------------------------------------------------------------
def test_every_arch_is_in_exactly_one_card():
    cards = family_cards()
    assert tuple(cards) == FAMILY_ORDER
    listed = [a for c in cards.values() for a in c.variants]
    assert sorted(listed) == sorted(ARCHS)
    assert all(c.points for c in cards.values())


def test_comparison_takes_params_and_top1_from_torchvision():
    rows = {r["Architecture"]: r for r in comparison_table()}
    assert list(rows) == list(ARCHS)
    for arch in TORCHVISION_ARCHS:
        meta = torchvision.models.get_model_weights(arch).DEFAULT.meta
        assert rows[arch]["Parameters"] == meta["num_params"] == summarize(arch).params
        assert rows[arch]["Top-1 %"] == meta["_metrics"]["ImageNet-1K"]["acc@1"]
        assert rows[arch]["Year"] == ARCHS[arch].year and "ImageNet" in rows[arch]["Accuracy measured on"]
    manifest = load_source_model().manifest
    assert rows["shapesnet"]["Top-1 %"] == pytest.approx(100 * manifest["source_test_accuracy"])
    assert "NOT ImageNet" in rows["shapesnet"]["Accuracy measured on"]


# ---- VGG: stacked small filters ----------------------------------------------------------------------------------
def _backprop_receptive_field(convs: nn.Sequential, side: int) -> int:
    """Width of the input region that gets gradient from the centre output pixel (random weights)."""
    x = torch.zeros(1, convs[0].in_channels, side, side, requires_grad=True)
    y = convs(x)
    c = y.shape[-1] // 2
    y[0, 0, c, c].backward()
    cols = (x.grad[0].abs().sum(0) != 0).any(0)
    return int(cols.sum())


@pytest.mark.parametrize("n, k, channels, bias", [(3, 3, 64, False), (2, 5, 16, True), (1, 7, 3, False),
                                                  (4, 3, 8, True)])
def test_stack_formulas_match_real_conv_stacks(n: int, k: int, channels: int, bias: bool):
    torch.manual_seed(0)
    cmp = arch_demos.stack_vs_large(channels, n, k, bias)
    stack = nn.Sequential(*(nn.Conv2d(channels, channels, k, bias=bias) for _ in range(n)))
    large = nn.Conv2d(channels, channels, cmp.receptive_field, bias=bias)
    assert cmp.stack_params == sum(p.numel() for p in stack.parameters())
    assert cmp.large_params == sum(p.numel() for p in large.parameters())
    small = nn.Sequential(*(nn.Conv2d(2, 2, k) for _ in range(n)))  # random weights, biases on
    assert _backprop_receptive_field(small, cmp.receptive_field + 6) == cmp.receptive_field
    assert _backprop_receptive_field(nn.Sequential(nn.Conv2d(2, 2, cmp.receptive_field)),
                                     cmp.receptive_field + 6) == cmp.receptive_field
    assert arch_demos.measured_receptive_field(n, k) == cmp.receptive_field


def test_three_3x3_beat_one_7x7_and_bad_input_is_rejected():
    cmp = arch_demos.stack_vs_large(256)
    assert cmp.receptive_field == 7 and cmp.stack_params < cmp.large_params
    assert cmp.saving == pytest.approx(1 - 27 / 49)
    assert "7×7" in cmp.takeaway() and "fewer" in cmp.takeaway()
    for bad in ({"channels": 0}, {"channels": 64, "n_layers": 0}, {"channels": 64, "kernel": 12},
                {"channels": 2.5}):
        with pytest.raises(ValueError):
            arch_demos.stack_vs_large(**bad)


# ---- ResNet: gradients through skips ----------------------------------------------------------------------------
def test_skips_carry_far_more_gradient_to_the_first_layer():
    with_skip = arch_demos.gradient_flow(40, skip=True, seed=0)
    without = arch_demos.gradient_flow(40, skip=False, seed=0)
    assert len(with_skip.layer_grad_norms) == len(without.layer_grad_norms) == 40
    assert with_skip.first_layer > 1000 * without.first_layer > 0
    assert arch_demos.gradient_flow(40, skip=True, seed=0) == with_skip  # fixed seed, same numbers
    assert arch_demos.gradient_flow(40, skip=True, seed=1) != with_skip
    short = (arch_demos.gradient_flow(2, skip=True), arch_demos.gradient_flow(2, skip=False))
    assert short[0].first_layer / short[1].first_layer < with_skip.first_layer / without.first_layer
    assert "larger with skip" in arch_demos.gradient_takeaway(with_skip, without)
    with pytest.raises(ValueError):
        arch_demos.gradient_flow(arch_demos.MAX_DEPTH + 1)


def test_gradient_flow_leaves_global_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    threads = torch.get_num_threads()
    torch.manual_seed(123)
    arch_demos.gradient_flow(10)
    assert torch.equal(torch.rand(3), expected) and torch.get_num_threads() == threads


# ---- DenseNet: growth ------------------------------------------------------------------------------------------
def test_dense_growth_matches_torchvisions_densenet121():
    with torch.device("meta"):
        net = torchvision.models.densenet121(weights=None)
    f = net.features
    for block, k0, n in ((1, 64, 6), (2, 128, 12)):
        layers = list(getattr(f, f"denseblock{block}").children())
        actual = [layer.conv1.in_channels for layer in layers]
        growth = arch_demos.dense_growth(k0, layers[0].conv2.out_channels, n)
        assert list(growth.layer_inputs) == actual
    assert arch_demos.dense_growth(64, 32, 6).block_output == f.transition1.conv.in_channels == 256
    read = arch_demos.torchvision_dense_block("densenet121", 1)
    assert (read.k0, read.growth, list(read.layer_inputs)) == (64, 32, [64, 96, 128, 160, 192, 224])
    with pytest.raises(ValueError):
        arch_demos.torchvision_dense_block("resnet18")


# ---- first-layer filters ---------------------------------------------------------------------------------------
def test_source_filter_grid_shows_each_filter_stretched():
    weight = load_source_model().model.block1[0].weight.detach()  # (16, 3, 3, 3)
    grid = arch_demos.source_filter_grid()
    scale, pad = 36 // 3, 2
    assert grid.dtype == np.uint8 and grid.shape == (4 * (3 * scale + pad) + pad,) * 2 + (3,)
    w0 = weight[0].permute(1, 2, 0).numpy()  # (3, 3, RGB)
    expected = np.round((w0 - w0.min()) / (w0.max() - w0.min()) * 255)
    tile = grid[pad:pad + 3 * scale:scale, pad:pad + 3 * scale:scale]  # one pixel per weight
    assert np.abs(tile.astype(float) - expected).max() <= 1
    with pytest.raises(ValueError):
        arch_demos.filter_grid(torch.zeros(4, 1, 3, 3))


def test_imagenet_filters_need_cached_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsUnavailable) as info:
        arch_demos.imagenet_filter_grid("resnet18")
    assert "fetch_weights resnet18" in info.value.status.how_to_get()
    fake = models.build_model("resnet18", 1000)  # stands in for the downloaded file: same keys and shapes
    target = Path(torch.hub.get_dir()) / "checkpoints" / Path(imagenet_weights("resnet18").url).name
    target.parent.mkdir(parents=True)
    torch.save(fake.state_dict(), target)
    grid = arch_demos.imagenet_filter_grid("resnet18")
    assert grid.shape == (8 * (7 * 5 + 2) + 2,) * 2 + (3,)  # 64 filters of 7×7, enlarged 5×, in an 8×8 grid


def test_cards_teach_what_the_papers_say():
    cards = family_cards()
    resnet = " ".join(cards["resnet"].points)
    assert "degradation" in resnet and "higher training error" in resnet
    assert "because gradients flow back through the shortcuts" not in resnet  # He et al.: BN kept gradients healthy
    alexnet = " ".join(cards["alexnet"].points)
    assert "ReLU" in alexnet and "two GPUs" in alexnet
    inception = " ".join(cards["inception"].points)
    assert "5×5 (factorised)" not in inception and "a 5×5, a double 3×3" in inception


def test_inception_a_really_has_a_5x5_branch_beside_the_double_3x3():
    model = build_meta_model("inception_v3")
    for name in ("Mixed_5b", "Mixed_5c", "Mixed_5d"):  # torchvision's Inception-A modules: the card's mixed5 group
        block = getattr(model, name)
        assert type(block).__name__ == "InceptionA"
        assert block.branch5x5_2.conv.kernel_size == (5, 5)
        assert block.branch3x3dbl_2.conv.kernel_size == block.branch3x3dbl_3.conv.kernel_size == (3, 3)
    assert model.Mixed_6b.branch7x7_2.conv.kernel_size == (1, 7)  # mixed6: 7×7 split into 1×7 and 7×1
    assert model.Mixed_6b.branch7x7_3.conv.kernel_size == (7, 1)


def test_batch_normalised_plain_stacks_keep_their_gradient():
    """He et al. (2015): their batch-normalised plain networks did not suffer vanishing gradients."""
    plain_bn = arch_demos.gradient_flow(40, skip=False, batch_norm=True, seed=0)
    plain = arch_demos.gradient_flow(40, skip=False, seed=0)
    assert plain_bn.first_layer > 1000 * arch_demos.VANISHED > plain.first_layer * 1e6
    text = arch_demos.gradient_takeaway(arch_demos.gradient_flow(40, skip=True, batch_norm=True), plain_bn)
    assert "does not vanish" in text and "degradation" in text
    assert "larger with skip" in arch_demos.gradient_takeaway(arch_demos.gradient_flow(40, skip=True), plain)
