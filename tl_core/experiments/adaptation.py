"""Domain adaptation without target labels: the source model on a shifted look, then AdaBN and DANN.

Transductive setting: the six source shapes are labelled in the source domain (plain backgrounds, full colour);
the target domain shows the same shapes in another look (outlines only, or texture, noise and low contrast)
and has no labels. Two ways to adapt:

* AdaBN (Li et al., 2016, "Revisiting Batch Normalization for Practical Domain Adaptation"): keep every weight,
  but recompute each BatchNorm layer's mean and variance on the unlabelled target images.
* DANN (Ganin & Lempitsky, 2015, "Unsupervised Domain Adaptation by Backpropagation"): keep training on the
  labelled source while a domain classifier, behind a gradient-reversal layer, tries to tell source from target
  features; the reversed gradient pushes the shared layers towards features that do not give the domain away.

Target labels are used only to score the result. The feature-distribution gap (squared MMD of pooled features)
is measured before and after, so the page can show that adaptation pulls the two domains together.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from tl_core.data import shapes
from tl_core.experiments import OnRecord, Reporter
from tl_core.experiments.common import (accuracy, batches, channels_last, check_float, check_int, check_seed, encode,
                                        encoder, median_bandwidth, mmd2, source_net, tensors)
from tl_core.models.networks import ShapesNet

LOOKS = {  # target look key -> (shift, styles, description)
    "outline": (0.0, ("outline",), "outlines only"),
    "shifted": (0.8, (), "texture, noise and low contrast (shift 0.8)"),
    "shifted_outline": (0.5, ("outline",), "outlines on a shifted background (shift 0.5)"),
}
METHODS = ("source only", "AdaBN", "DANN", "DANN + AdaBN")


@dataclass
class AdaptationResult:
    """Target (and source) accuracy before and after adapting, and how far apart the domains' features are."""

    target: str  # the target domain, described
    classes: tuple[str, ...]  # the shared classes
    accuracy: dict[str, float]  # method -> accuracy on labelled target test images (labels used only here)
    source_accuracy: dict[str, float]  # method -> accuracy on source test images (does adapting hurt the source?)
    feature_gap: dict[str, float]  # method -> squared MMD between source and target pooled features
    chance: float  # 1 / number of classes
    n_source: int  # labelled source images
    n_target: int  # unlabelled target images
    n_test: int  # test images per domain
    steps: int  # DANN steps
    dann_curve: list[tuple[int, float, float, float]] = field(default_factory=list)  # (step, class loss,
    # domain loss, domain-classifier accuracy on the batch)
    wall_s: float = 0.0  # seconds the experiment took


class _ReverseGrad(torch.autograd.Function):
    """Identity on the way forward; multiplies the gradient by -lambda on the way back."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, lam: float) -> torch.Tensor:  # noqa: D102
        ctx.lam = lam
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # noqa: D102
        return -ctx.lam * grad, None


def reverse_grad(x: torch.Tensor, lam: float) -> torch.Tensor:
    """The gradient-reversal layer: x forward, -lam * gradient backward."""
    return _ReverseGrad.apply(x, lam)


@torch.no_grad()
def adabn(model: nn.Module, x_target: torch.Tensor, batch: int = 128) -> nn.Module:
    """A copy of the model whose BatchNorm statistics are recomputed on unlabelled target images (AdaBN).

    Args:
        model: The trained model (not changed).
        x_target: (N, 3, H, W) unlabelled target images.
        batch: Images per forward pass.

    Returns:
        The adapted copy, in eval mode. Weights are unchanged; only running means and variances differ.
    """
    adapted = copy.deepcopy(model)
    for m in adapted.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over every target batch, not an exponential one
    adapted.train()
    for i in range(0, x_target.shape[0], batch):
        adapted(x_target[i:i + batch])
    return adapted.eval()


def run_adaptation(*, seed: int = 0, look: str = "outline", n_per_class: int = 50, steps: int = 150,
                   lam: float = 1.0, on_record: OnRecord | None = None,
                   cancel: threading.Event | None = None) -> AdaptationResult:
    """The source model on a target domain with no labels: before, with AdaBN, with DANN, with both.

    Args:
        seed: Seeds the images, the domain head and the batches.
        look: A key of LOOKS: how the target domain differs.
        n_per_class: Labelled source images, unlabelled target images and test images per class, each (10..200).
        steps: DANN training steps (20..600), each on 32 source and 32 target images.
        lam: Final weight of the reversed domain gradient (0..3); it ramps up from 0 as in Ganin & Lempitsky.
        on_record: Receives Progress and Point records.
        cancel: Stops the run.

    Returns:
        An AdaptationResult.

    Raises:
        ValueError: If an argument is out of range.
        Cancelled: If the cancel event was set.
    """
    t0 = time.perf_counter()
    seed = check_seed(seed)
    if look not in LOOKS:
        raise ValueError(f"Unknown target look {look!r}. Choose one of: {', '.join(LOOKS)}.")
    n_per_class = check_int("n_per_class", n_per_class, 10, 200)
    steps = check_int("steps", steps, 20, 600)
    lam = check_float("lam", lam, 0.0, 3.0)
    rep = Reporter(on_record, cancel)
    shift, styles, _ = LOOKS[look]
    source_spec, target_spec = shapes.WorldSpec("source"), shapes.WorldSpec("source", shift, styles)

    rep.progress(0.0, "Drawing labelled source and unlabelled target images…")
    xs, ys = tensors(source_spec, n_per_class, seed, "train")  # labelled source
    xt, _ = tensors(target_spec, n_per_class, seed, "train")  # unlabelled target: labels dropped
    xs_test, ys_test = tensors(source_spec, n_per_class, seed, "test")
    xt_test, yt_test = tensors(target_spec, n_per_class, seed, "test")  # labels only for scoring

    base = source_net()
    bandwidth = median_bandwidth(encode(encoder(base), xs_test))

    def score(src_model: nn.Module, tgt_model: nn.Module) -> tuple[float, float, float]:
        """(target accuracy, source accuracy, feature gap); each domain is seen through its own model copy."""
        with torch.no_grad():
            acc_t = accuracy(tgt_model.eval()(xt_test), yt_test)
            acc_s = accuracy(src_model.eval()(xs_test), ys_test)
        gap = mmd2(encode(encoder(src_model), xs_test), encode(encoder(tgt_model), xt_test), bandwidth)
        return acc_t, acc_s, gap

    results: dict[str, tuple[float, float, float]] = {}
    rep.progress(0.05, "Scoring the source model on the target domain…")
    results["source only"] = score(base, base)
    rep.progress(0.1, "AdaBN: recomputing BatchNorm statistics on the unlabelled target images…")
    results["AdaBN"] = score(base, adabn(base, xt))

    rep.stage(0.15, 0.95)
    run = train_dann(base, xs, ys, xt, steps=steps, lam=lam, seed=seed, rep=rep)
    dann, curve = run.model, run.curve
    rep.stage(0.95, 1.0)
    rep.progress(0.0, "Scoring DANN…")
    results["DANN"] = score(dann, dann)
    results["DANN + AdaBN"] = score(adabn(dann, xs), adabn(dann, xt))
    rep.progress(1.0, "Done.")
    return AdaptationResult(
        target=f"{target_spec.describe()} ({LOOKS[look][2]})", classes=source_spec.classes,
        accuracy={m: results[m][0] for m in METHODS}, source_accuracy={m: results[m][1] for m in METHODS},
        feature_gap={m: results[m][2] for m in METHODS}, chance=1 / len(source_spec.classes),
        n_source=len(ys), n_target=len(xt), n_test=len(yt_test), steps=steps, dann_curve=curve,
        wall_s=time.perf_counter() - t0)


@dataclass
class DannRun:
    """A domain-adversarial training run: the adapted model, its domain classifier and how training went."""

    model: ShapesNet  # the adapted classifier, in eval mode
    domain_head: nn.Module  # the domain classifier on the model's pooled features (logit > 0: target), eval mode
    curve: list[tuple[int, float, float, float]]  # (step, class loss, domain loss, domain accuracy on the batch)

    @torch.no_grad()
    def domain_accuracy(self, x_source: torch.Tensor, x_target: torch.Tensor) -> float:
        """How often the domain classifier tells source from target images (0.5 is chance on balanced sets)."""
        body = encoder(self.model)
        logits = torch.cat([self.domain_head(encode(body, x)).squeeze(1) for x in (x_source, x_target)])  # (Ns + Nt,)
        truth = torch.cat([torch.zeros(len(x_source)), torch.ones(len(x_target))])
        return float(((logits > 0).float() == truth).float().mean())


def train_dann(base: ShapesNet, xs: torch.Tensor, ys: torch.Tensor, xt: torch.Tensor, *, steps: int, lam: float,
               seed: int, rep: Reporter | None = None, batch: int = 32, lr: float = 1e-3) -> DannRun:
    """Domain-adversarial training from the source model. Source and target share each batch (and so BatchNorm).

    Args:
        base: The source model (copied, not changed).
        xs / ys: Labelled source images (N, 3, H, W) and their labels.
        xt: Unlabelled target images.
        steps: Training steps, each on `batch` source and `batch` target images.
        lam: Final weight of the reversed domain gradient; 0 trains the domain classifier alongside without
            adapting the features (the no-adaptation control).
        seed: Seeds the domain head and the batches.
        rep: Receives progress and points; checks the cancel flag.
        batch: Images per domain per step.
        lr: Adam's learning rate.

    Returns:
        The DannRun.
    """
    rep = rep or Reporter()
    torch.manual_seed(seed)
    model = copy.deepcopy(base).to(memory_format=torch.channels_last)
    body = encoder(model)  # shares the model's blocks
    domain_head = nn.Sequential(nn.Linear(model.head.in_features, 64), nn.ReLU(), nn.Linear(64, 1))
    opt = torch.optim.Adam([*model.parameters(), *domain_head.parameters()], lr=lr)
    gen = torch.Generator().manual_seed(seed + 1)
    src_batches = batches(len(xs), batch, steps, gen)
    tgt_batches = batches(len(xt), batch, steps, gen)
    curve: list[tuple[int, float, float, float]] = []
    report_every = max(1, steps // 30)
    model.train()
    for step, (i, j) in enumerate(zip(src_batches, tgt_batches)):
        p = step / steps
        weight = lam * (2 / (1 + math.exp(-10 * p)) - 1)  # Ganin's ramp from 0 to lam
        feats = body(channels_last(torch.cat([xs[i], xt[j]])))  # (Bs + Bt, 128)
        class_loss = F.cross_entropy(model.head(feats[:len(i)]), ys[i])
        domain_logit = domain_head(reverse_grad(feats, weight)).squeeze(1)  # (Bs + Bt,)
        domain_y = torch.cat([torch.zeros(len(i)), torch.ones(len(j))])
        domain_loss = F.binary_cross_entropy_with_logits(domain_logit, domain_y)
        opt.zero_grad(set_to_none=True)
        (class_loss + domain_loss).backward()
        opt.step()
        if step % report_every == 0 or step == steps - 1:
            dom_acc = float(((domain_logit > 0).float() == domain_y).float().mean())
            cl, dl = float(class_loss.detach()), float(domain_loss.detach())
            curve.append((step, cl, dl, dom_acc))
            rep.point("class loss", step, cl)
            rep.point("domain classifier accuracy", step, dom_acc)
            rep.progress((step + 1) / steps, f"DANN step {step + 1}/{steps}: the domain classifier is right "
                                             f"{dom_acc:.0%} of the time")
    return DannRun(model.eval(), domain_head.eval(), curve)
