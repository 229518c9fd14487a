"""DANN really adapts: gradient reversal flips the domain loss's gradient, and the domain classifier is fooled.

Ganin & Lempitsky (2015): a domain classifier learns to tell source from target features while a gradient-reversal
layer hands the shared layers the negated gradient of its loss, so the features stop giving the domain away.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tl_core.data import shapes
from tl_core.experiments.adaptation import LOOKS, reverse_grad, train_dann
from tl_core.experiments.common import encoder, source_net, tensors


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny batches (conftest)


@pytest.fixture(scope="module")
def domains() -> dict[str, torch.Tensor]:
    """Labelled source images and unlabelled target images (outlines only), for training and held out."""
    shift, styles, _ = LOOKS["outline"]
    source, target = shapes.WorldSpec("source"), shapes.WorldSpec("source", shift, styles)
    xs, ys = tensors(source, 20, 0, "train")
    xt, _ = tensors(target, 20, 0, "train")
    return {"xs": xs, "ys": ys, "xt": xt, "xs_test": tensors(source, 20, 0, "test")[0],
            "xt_test": tensors(target, 20, 0, "test")[0]}


def _domain_loss(head: nn.Module, feats: torch.Tensor, n_source: int) -> torch.Tensor:
    y = torch.cat([torch.zeros(n_source), torch.ones(len(feats) - n_source)])
    return F.binary_cross_entropy_with_logits(head(feats).squeeze(1), y)


@pytest.mark.parametrize("lam", [1.0, 0.3, 0.0])
def test_gradient_reversal_flips_the_sign_of_the_domain_loss_gradient_on_the_features(lam, domains):
    torch.manual_seed(0)
    body = encoder(source_net()).eval()
    head = nn.Sequential(nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 1))
    x = torch.cat([domains["xs"][:8], domains["xt"][:8]])
    with torch.no_grad():
        base = body(x)  # (16, 128) pooled features

    plain = base.clone().requires_grad_(True)
    _domain_loss(head, plain, 8).backward()
    reversed_in = base.clone().requires_grad_(True)
    out = reverse_grad(reversed_in, lam)
    assert torch.equal(out, reversed_in)  # the identity on the way forward
    _domain_loss(head, out, 8).backward()
    assert plain.grad.abs().sum() > 0
    assert torch.allclose(reversed_in.grad, -lam * plain.grad, atol=1e-7)  # -lambda times the gradient on the way back


def test_the_reversed_gradient_reaches_the_shared_layers_negated(domains):
    """Through the real encoder, the domain loss's gradient on the last block's weights flips sign; the head's does
    not (the domain classifier itself still learns to tell the domains apart)."""
    torch.manual_seed(0)
    net = source_net()
    head = nn.Sequential(nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 1))
    x = torch.cat([domains["xs"][:8], domains["xt"][:8]])
    grads = {}
    for name, lam in (("plain", None), ("reversed", 1.0)):
        model = copy.deepcopy(net)
        body = encoder(model).eval()
        head.zero_grad()
        feats = body(x)
        _domain_loss(head, feats if lam is None else reverse_grad(feats, lam), 8).backward()
        grads[name] = (model.block4[0].weight.grad.clone(), head[0].weight.grad.clone())
    shared_plain, head_plain = grads["plain"]
    shared_rev, head_rev = grads["reversed"]
    assert shared_plain.abs().sum() > 0
    assert torch.allclose(shared_rev, -shared_plain, atol=1e-6)
    assert torch.allclose(head_rev, head_plain, atol=1e-6)


def test_dann_lowers_the_domain_classifier_s_accuracy_compared_with_no_adaptation(domains):
    """The same training with lambda = 0 (the domain classifier learns, the features are not pushed) is the
    no-adaptation control: its classifier tells held-out source from target images apart; DANN's cannot."""
    base = source_net()
    control = train_dann(base, domains["xs"], domains["ys"], domains["xt"], steps=60, lam=0.0, seed=0)
    dann = train_dann(base, domains["xs"], domains["ys"], domains["xt"], steps=60, lam=1.0, seed=0)
    held_out = (domains["xs_test"], domains["xt_test"])
    without, with_dann = control.domain_accuracy(*held_out), dann.domain_accuracy(*held_out)
    assert without > 0.75  # the domains are easy to tell apart in the source model's features
    assert with_dann < 0.65 and without - with_dann > 0.2  # DANN's features hide the domain (0.5 is chance)
    assert len(dann.curve) > 1 and not dann.model.training and not dann.domain_head.training
