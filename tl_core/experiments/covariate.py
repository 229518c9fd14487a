"""Sample-selection bias (covariate shift): importance weights from a domain classifier fix a biased sample.

Transductive setting, same domain: the labelled source sample and the images to classify come from the same
shapes world and the same task (the six source shapes), but the labelled sample was collected with a bias:
large shapes were far more likely to be kept. The target images lean the other way (mostly small shapes). P(x)
shifted; P(y | x) did not.

The fix (Shimodaira, 2000; Zadrozny, 2004): weight every labelled example by w(x) = p_target(x) / p_source(x).
Neither density is known, so a domain classifier (logistic regression on the source model's pooled features)
learns to tell the labelled sample from the unlabelled target images, and its odds give the weights:
w(x) = P(target | x) / P(source | x) * n_source / n_target (clipped, then mean-normalised). Because the bias
was made on purpose, the true weights are known too and are shown as a reference.

The classifier being fixed is deliberately simple: a linear head on the source model's early (block2) features.
A model that cannot fit every region well is where selection bias bites: it spends its capacity on the
over-represented large shapes. (On the source model's final features the task is too easy to show anything.)
Each repeat draws a new biased sample and a new target sample from the same pools, so the page can show how
much the gain varies.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from tl_core.data import shapes
from tl_core.experiments import OnRecord, Reporter
from tl_core.experiments.common import (BODY, accuracy, check_float, check_int, check_seed, encode, encoder,
                                        fit_linear, source_net)

METHODS = ("unweighted", "importance-weighted (estimated)", "importance-weighted (true weights)")
MAX_WEIGHT = 20.0  # clip on the estimated weights (before mean-normalising): a few huge weights would dominate


@dataclass
class CovariateResult:
    """Target accuracy with and without importance weights, per repeat, and what the weights look like."""

    classes: tuple[str, ...]  # the six source shapes
    feature_layer: str  # the body group whose pooled features the classifier uses
    bias: float  # selection strength: the slope of the logistic selection curve on standardised shape size
    accuracy: dict[str, list[float]]  # method -> target accuracy per repeat
    mean_accuracy: dict[str, float]  # method -> mean over repeats
    gains: list[float]  # estimated-weights accuracy minus unweighted accuracy, per repeat
    domain_accuracy: list[float]  # the domain classifier's training accuracy per repeat (how visible the bias is)
    effective_sample_size: list[float]  # (sum w)^2 / sum w^2 of the estimated weights per repeat
    weight_correlation: list[float]  # Pearson correlation of estimated and true weights per repeat
    n_source: list[int]  # labelled (biased) images per repeat
    n_target: list[int]  # unlabelled target images per repeat
    n_test: list[int]  # labelled target images used only for scoring, per repeat
    # The first repeat in detail, for the histograms and the scatter plot:
    source_area: list[float] = field(default_factory=list)  # pixel count of each labelled image's shape
    target_area: list[float] = field(default_factory=list)  # ... of each unlabelled target image's shape
    weights: list[float] = field(default_factory=list)  # estimated weight of each labelled image
    true_weights: list[float] = field(default_factory=list)  # true weight of each labelled image
    wall_s: float = 0.0  # seconds the experiment took


def _select(area: np.ndarray, slope: float, centre: float, scale: float, rng: np.random.Generator
            ) -> tuple[np.ndarray, np.ndarray]:
    """Keep each image with probability sigmoid(slope * standardised area). Returns (kept mask, probabilities)."""
    p = 1.0 / (1.0 + np.exp(-slope * (area - centre) / scale))
    return rng.random(len(area)) < p, p


def run_covariate(*, seed: int = 0, bias: float = 4.0, n_pool_per_class: int = 150, repeats: int = 5,
                  feature_layer: str = "block2", on_record: OnRecord | None = None,
                  cancel: threading.Event | None = None) -> CovariateResult:
    """Train on a size-biased labelled sample, with and without importance weights, and score on the target.

    Args:
        seed: Seeds the image pools and the selections.
        bias: How strongly the labelled sample favours large shapes and the target small ones (0.5..8); the
            selection probability is sigmoid(±bias * standardised size).
        n_pool_per_class: Images per class in each pool the samples are drawn from (50..400).
        repeats: Independent draws of the biased sample and the target sample (1..20).
        feature_layer: Body group whose pooled source-model features the classifier sees (block1..block4).
        on_record: Receives Progress and Point records.
        cancel: Stops the run.

    Returns:
        A CovariateResult.

    Raises:
        ValueError: If an argument is out of range.
        Cancelled: If the cancel event was set.
    """
    t0 = time.perf_counter()
    seed = check_seed(seed)
    bias = check_float("bias", bias, 0.5, 8.0)
    n_pool = check_int("n_pool_per_class", n_pool_per_class, 50, 400)
    repeats = check_int("repeats", repeats, 1, 20)
    if feature_layer not in BODY:
        raise ValueError(f"feature_layer must be one of {', '.join(BODY)}; got {feature_layer!r}.")
    rep = Reporter(on_record, cancel)
    rep.progress(0.0, "Drawing the image pools…")
    spec = shapes.WorldSpec("source")
    src_pool, src_cov = shapes.generate_with_masks(spec, n_pool, seed, "train")
    tgt_pool, tgt_cov = shapes.generate_with_masks(spec, n_pool, seed, "test")
    src_area, tgt_area = src_cov.sum((1, 2)), tgt_cov.sum((1, 2))  # (N,) shape size in pixels
    centre, scale = float(np.median(src_area)), float(src_area.std())

    rep.progress(0.1, "Computing the source model's features…")
    net = source_net()
    xs_all, xt_all = torch.from_numpy(src_pool.images), torch.from_numpy(tgt_pool.images)
    clf_s, clf_t = encode(encoder(net, feature_layer), xs_all), encode(encoder(net, feature_layer), xt_all)
    dom_s, dom_t = encode(encoder(net), xs_all), encode(encoder(net), xt_all)  # for the domain classifier
    ys_all, yt_all = torch.from_numpy(src_pool.labels), torch.from_numpy(tgt_pool.labels)
    k = len(spec.classes)

    res = CovariateResult(classes=spec.classes, feature_layer=feature_layer, bias=bias,
                          accuracy={m: [] for m in METHODS}, mean_accuracy={}, gains=[], domain_accuracy=[],
                          effective_sample_size=[], weight_correlation=[], n_source=[], n_target=[], n_test=[])
    rng = np.random.default_rng(seed)
    for r in range(repeats):
        rep.stage(0.2 + 0.8 * r / repeats, 0.2 + 0.8 * (r + 1) / repeats)
        rep.progress(0.0, f"Repeat {r + 1}/{repeats}: drawing a biased labelled sample and a target sample…")
        keep_s, p_s = _select(src_area, bias, centre, scale, rng)  # the labelled sample favours large shapes
        keep_t, _ = _select(tgt_area, -bias, centre, scale, rng)  # the target leans to small shapes
        t_idx = np.flatnonzero(keep_t)
        rng.shuffle(t_idx)
        unl, test = t_idx[: len(t_idx) // 2], t_idx[len(t_idx) // 2:]  # unlabelled half / scoring half
        s_idx = np.flatnonzero(keep_s)

        # Domain classifier: labelled sample (0) vs unlabelled target (1), on the final pooled features.
        xd = torch.cat([dom_s[s_idx], dom_t[unl]])
        yd = torch.cat([torch.zeros(len(s_idx), dtype=torch.long), torch.ones(len(unl), dtype=torch.long)])
        domain = fit_linear(xd, yd, 2, weight_decay=1e-2)
        rep.progress(0.4, f"Repeat {r + 1}/{repeats}: estimating importance weights…")
        p_target = domain.logits(dom_s[s_idx]).softmax(1)[:, 1].double()  # (n_s,)
        odds = p_target / (1 - p_target).clamp_min(1e-6) * len(s_idx) / max(len(unl), 1)
        w = odds.clamp(max=MAX_WEIGHT)
        w = (w / w.mean()).float()
        # True weights: p_target(x) / p_source(x) is proportional to the ratio of selection probabilities.
        p_t_true = 1.0 / (1.0 + np.exp(bias * (src_area[s_idx] - centre) / scale))
        true_w = torch.from_numpy(p_t_true / p_s[s_idx]).float()
        true_w = true_w / true_w.mean()

        xs, ys = clf_s[s_idx], ys_all[s_idx]
        x_test, y_test = clf_t[test], yt_all[test]
        accs = {}
        for method, weights in zip(METHODS, (None, w, true_w)):
            rep.progress(0.5 + 0.15 * len(accs), f"Repeat {r + 1}/{repeats}: training the classifier ({method})…")
            head = fit_linear(xs, ys, k, sample_weight=weights)
            accs[method] = accuracy(head.logits(x_test), y_test)
            res.accuracy[method].append(accs[method])
        gain = accs[METHODS[1]] - accs[METHODS[0]]
        res.gains.append(gain)
        rep.point("gain from importance weights", r + 1, gain)
        res.domain_accuracy.append(accuracy(domain.logits(xd), yd))
        res.effective_sample_size.append(float(w.sum() ** 2 / (w * w).sum()))
        res.weight_correlation.append(float(np.corrcoef(w.numpy(), true_w.numpy())[0, 1]))
        res.n_source.append(len(s_idx))
        res.n_target.append(len(unl))
        res.n_test.append(len(test))
        if r == 0:
            res.source_area = src_area[s_idx].round(1).tolist()
            res.target_area = tgt_area[unl].round(1).tolist()
            res.weights = [round(v, 4) for v in w.tolist()]
            res.true_weights = [round(v, 4) for v in true_w.tolist()]
    res.mean_accuracy = {m: float(np.mean(v)) for m, v in res.accuracy.items()}
    rep.progress(1.0, "Done.")
    res.wall_s = time.perf_counter() - t0
    return res
