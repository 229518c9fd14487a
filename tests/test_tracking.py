"""Per-group gradient norms, update ratios and drift agree with a direct computation; frozen groups read as frozen."""

from __future__ import annotations

import math

import pytest
import torch

from tl_core.models.networks import ShapesNet
from tl_core.training.tracking import GradTracker


def _groups(model: ShapesNet) -> dict[str, list[torch.nn.Parameter]]:
    return {g: list(getattr(model, g).parameters()) for g in ("block1", "block2", "block3", "block4", "head")}


def test_norms_ratios_and_drift_match_a_direct_computation():
    torch.manual_seed(0)
    model = ShapesNet(4)
    groups = _groups(model)
    for p in groups["block1"]:
        p.requires_grad_(False)
    tracker = GradTracker(groups, ratio_every=1)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    x, y = torch.rand(8, 3, 32, 32), torch.randint(0, 4, (8,))
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    expected = {g: math.sqrt(sum(float(p.grad.pow(2).sum()) for p in ps)) for g, ps in groups.items() if g != "block1"}
    before = {g: [p.detach().clone() for p in ps] for g, ps in groups.items()}
    tracker.before_step()
    opt.step()
    (loss_v, extra), grad, ratio = tracker.after_step(loss, torch.tensor(3.0))
    assert loss_v == pytest.approx(loss.item()) and extra == 3.0
    assert grad["block1"] is None and ratio["block1"] is None  # frozen, not zero and not missing
    for g, v in expected.items():
        assert grad[g] == pytest.approx(v, rel=1e-4)
        dw = math.sqrt(sum(float((p.detach() - b).pow(2).sum()) for p, b in zip(groups[g], before[g])))
        w = math.sqrt(sum(float(p.detach().pow(2).sum()) for p in groups[g]))
        assert ratio[g] == pytest.approx(dw / w, rel=1e-4)
    drift = tracker.drift()
    assert drift["block1"] == 0.0 and drift["head"] > 0


def test_update_ratio_is_sampled_every_n_steps():
    torch.manual_seed(0)
    model = ShapesNet(4)
    tracker = GradTracker(_groups(model), ratio_every=3)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sampled = []
    for _ in range(7):
        loss = torch.nn.functional.cross_entropy(model(torch.rand(4, 3, 32, 32)), torch.randint(0, 4, (4,)))
        loss.backward()
        tracker.before_step()
        opt.step()
        _, grad, ratio = tracker.after_step(loss)
        opt.zero_grad()
        sampled.append(ratio is not None)
        assert all(v is not None and v > 0 for v in grad.values())
    assert sampled == [True, False, False, True, False, False, True]


def test_squared_norms_of_large_and_channels_last_tensors_match_torch():
    from tl_core.training.tracking import _squared_norms

    torch.manual_seed(0)
    tensors = [torch.randn(3), torch.randn(64, 64, 3, 3).contiguous(memory_format=torch.channels_last),
               torch.randn(300, 300), torch.randn(300, 300).t()]  # small, channels_last, large, a transposed view
    got = [float(v) for v in _squared_norms(tensors)]
    assert got == pytest.approx([float(t.norm() ** 2) for t in tensors], rel=1e-4)


def test_drift_reads_a_shared_reference_without_copying_it():
    torch.manual_seed(0)
    pretrained = ShapesNet(4)
    model = ShapesNet(4)
    model.load_state_dict(pretrained.state_dict())
    groups = _groups(model)
    reference = {id(p): q for p, q in zip(model.parameters(), pretrained.parameters())}
    tracker = GradTracker(groups, ratio_every=0, reference=reference)
    tracker.before_step()
    assert all(tracker._initial[i] is reference[id(p)] for i, p in enumerate(tracker._flat))  # no copies
    with torch.no_grad():
        model.head.weight.add_(1.0)
    drift = tracker.drift()
    with torch.no_grad():
        expected = float((model.head.weight - pretrained.head.weight).norm() /
                         torch.cat([pretrained.head.weight.flatten(), pretrained.head.bias]).norm())
    assert drift["head"] == pytest.approx(expected, rel=1e-4) and drift["block1"] == 0.0
