"""Unsupervised transfer: cluster unlabelled target images with features learnt without labels, against raw pixels.

No labels anywhere, as in the matrix's unsupervised setting (source labels: no, target labels: no). The encoder
is learnt from unlabelled drawings of the six source shapes with the self-taught demo's pretext task (predict the
figure's geometry from its pixels; `tl_core.experiments.self_taught.pretrain`): nobody labels anything. Its pooled
features then group the unlabelled target images (four new shapes) with k-means, next to an untrained network's
features and raw pixels; PCA draws them in 2-D. The true shapes are used only afterwards, to score each grouping
by its purity (the share of images that sit in a cluster whose majority shape is their own).

The shipped source model, which was trained WITH the source labels, is clustered too, but only as a labelled
comparison: it belongs to another setting of the matrix, and the demo's verdict never rests on it.
k-means (k-means++ start, Lloyd iterations, best of several restarts) and PCA (SVD) are implemented here in
torch; no scikit-learn.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import torch

from tl_core.data import shapes
from tl_core.experiments import OnRecord, Reporter
from tl_core.experiments.common import (check_float, check_int, check_seed, encode, encoder, fresh_net, source_net,
                                        tensors)

SELF_TAUGHT = "self-taught features (no labels)"  # the encoder learnt from unlabelled source images
REPRESENTATIONS = (SELF_TAUGHT, "random network features", "raw pixels")  # no labels anywhere: the demo proper
SUPERVISED = "supervised source model (source labels used)"  # a labelled comparison only, never the verdict
PRETEXT = "geometry"  # the self-taught pretext task the encoder learns (tl_core.experiments.self_taught)


@dataclass
class ClusteringResult:
    """Purity of k-means clusters per representation, and 2-D PCA maps for the scatter plots."""

    target: str  # the target world, described
    classes: tuple[str, ...]  # the hidden true classes
    k: int  # clusters asked for
    n_images: int  # unlabelled images clustered
    purity: dict[str, float]  # representation (REPRESENTATIONS, then SUPERVISED if compared) -> purity in [1/k, 1]
    chance_purity: float  # expected purity of a random assignment into k clusters (simulated)
    true_labels: list[int]  # (n_images,) hidden true class per image, used only for scoring and colouring
    clusters: dict[str, list[int]]  # representation -> cluster index per image
    pca: dict[str, list[tuple[float, float]]]  # representation -> first two principal coordinates per image
    explained: dict[str, float]  # representation -> share of variance the two components explain
    dims: dict[str, int]  # representation -> feature dimension
    wall_s: float  # seconds the experiment took
    n_unlabelled_source: int = 0  # unlabelled source images the self-taught encoder learnt from
    pretext_steps: int = 0  # its pretext-task optimiser steps
    pretext_curve: list[tuple[int, float]] = field(default_factory=list)  # (step, pretext loss)
    comparison: str | None = None  # SUPERVISED when the labelled comparison ran, else None

    @property
    def unsupervised(self) -> tuple[str, ...]:
        """The representations that used no labels at all (the demo's own result)."""
        return tuple(r for r in REPRESENTATIONS if r in self.purity)


def kmeans(x: torch.Tensor, k: int, *, seed: int = 0, restarts: int = 5, iters: int = 60) -> torch.Tensor:
    """k-means with k-means++ seeding; the restart with the lowest inertia wins.

    Args:
        x: (N, D) points.
        k: Clusters, 1..N.
        seed: Seeds the k-means++ draws.
        restarts: Independent starts.
        iters: Most Lloyd iterations per start (stops early when the assignment no longer changes).

    Returns:
        (N,) int64 cluster index per point.

    Raises:
        ValueError: If k is not in 1..N.
    """
    n = x.shape[0]
    check_int("k", k, 1, max(n, 1))
    x = x.double()
    gen = torch.Generator().manual_seed(seed)
    best, best_inertia = None, float("inf")
    for _ in range(restarts):
        centres = x[torch.randint(n, (1,), generator=gen)]  # (1, D)
        for _ in range(k - 1):  # k-means++: the next centre far from the chosen ones, with probability ~ d^2
            d2 = torch.cdist(x, centres).min(1).values ** 2  # (N,)
            probs = d2 / d2.sum() if d2.sum() > 0 else torch.full((n,), 1.0 / n, dtype=x.dtype)
            centres = torch.cat([centres, x[torch.multinomial(probs, 1, generator=gen)]])
        assign = torch.cdist(x, centres).argmin(1)  # (N,)
        for _ in range(iters):
            counts = torch.bincount(assign, minlength=k).clamp_min(1).unsqueeze(1).to(x.dtype)  # (k, 1)
            sums = torch.zeros_like(centres).index_add_(0, assign, x)  # (k, D)
            empty = torch.bincount(assign, minlength=k) == 0
            centres = torch.where(empty.unsqueeze(1), centres, sums / counts)
            new = torch.cdist(x, centres).argmin(1)
            if torch.equal(new, assign):
                break
            assign = new
        inertia = float(((x - centres[assign]) ** 2).sum())
        if inertia < best_inertia:
            best, best_inertia = assign.clone(), inertia
    return best


def purity(clusters: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of points whose cluster's majority label is their own label."""
    total = 0
    for c in torch.unique(clusters):
        total += int(torch.bincount(labels[clusters == c]).max())
    return total / max(len(labels), 1)


def pca_2d(x: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Project (N, D) points on their first two principal components.

    Returns:
        ((N, 2) coordinates, share of the total variance those two components explain).
    """
    centred = (x - x.mean(0)).double()
    _, s, vh = torch.linalg.svd(centred, full_matrices=False)
    var = s ** 2
    coords = centred @ vh[:2].T  # (N, 2)
    if coords.shape[1] < 2:
        coords = torch.cat([coords, torch.zeros(coords.shape[0], 2 - coords.shape[1], dtype=coords.dtype)], 1)
    return coords.float(), float(var[:2].sum() / var.sum()) if var.sum() > 0 else 0.0


def run_clustering(*, seed: int = 0, similarity: float = 0.8, n_per_class: int = 50, k: int | None = None,
                   pretext_steps: int = 150, n_unlabelled_per_class: int = 50, compare_supervised: bool = True,
                   on_record: OnRecord | None = None, cancel: threading.Event | None = None) -> ClusteringResult:
    """Cluster unlabelled target-shape images with features learnt without labels, and score each grouping
    against the hidden shapes.

    Args:
        seed: Seeds the images, the encoders and k-means.
        similarity: Look of the target images (1 = drawn like the source data, lower = more shifted); the
            target task is always the four new shapes.
        n_per_class: Unlabelled target images per hidden class (5..300).
        k: Clusters (2..12); default: the number of hidden classes.
        pretext_steps: Steps of the self-taught encoder's pretext task on unlabelled source images (20..1000).
        n_unlabelled_per_class: Unlabelled source images per (unused) source shape for the pretext (20..300).
        compare_supervised: Also cluster with the supervised source model, as a labelled comparison.
        on_record: Receives Progress and Point records (the pretext loss).
        cancel: Stops the run.

    Returns:
        A ClusteringResult.

    Raises:
        ValueError: If an argument is out of range.
        Cancelled: If the cancel event was set.
    """
    from tl_core.experiments.self_taught import pretrain  # the self-taught demo's pretext encoder

    t0 = time.perf_counter()
    seed = check_seed(seed)
    similarity = check_float("similarity", similarity, 0.0, 1.0)
    n_per_class = check_int("n_per_class", n_per_class, 5, 300)
    pretext_steps = check_int("pretext_steps", pretext_steps, 20, 1000)
    n_unl = check_int("n_unlabelled_per_class", n_unlabelled_per_class, 20, 300)
    spec = shapes.target_spec(similarity, task="shapes")
    k = len(spec.classes) if k is None else check_int("k", k, 2, 12)
    rep = Reporter(on_record, cancel)
    rep.progress(0.0, "Drawing unlabelled source images and the unlabelled target images…")
    x_unl, _ = tensors(shapes.WorldSpec("source"), n_unl, seed, "train")  # the source labels are thrown away
    data = shapes.generate(spec, n_per_class, seed, "train")
    x, y = torch.from_numpy(data.images), torch.from_numpy(data.labels)  # y: only for scoring, afterwards

    rep.stage(0.02, 0.7)
    net, curve = pretrain(x_unl, pretext=PRETEXT, steps=pretext_steps, seed=seed, rep=rep)
    rep.stage(0.7, 1.0)
    rep.progress(0.0, "Computing features (no labels used)…")
    feats = {
        SELF_TAUGHT: encode(encoder(net), x),  # (N, 128)
        "random network features": encode(encoder(fresh_net(6, seed)), x),  # (N, 128)
        "raw pixels": x.flatten(1),  # (N, 3072)
    }
    if compare_supervised:
        feats[SUPERVISED] = encode(encoder(source_net()), x)  # (N, 128), learnt WITH the source labels
    purity_by, clusters, pca, explained = {}, {}, {}, {}
    for i, name in enumerate(feats):
        rep.progress(0.1 + 0.85 * i / len(feats), f"k-means with k={k} on {name}…")
        f = feats[name]
        assign = kmeans(f, k, seed=seed)
        purity_by[name] = purity(assign, y)
        clusters[name] = assign.tolist()
        coords, share = pca_2d(f)
        pca[name] = [(round(a, 4), round(b, 4)) for a, b in coords.tolist()]
        explained[name] = share
    gen = torch.Generator().manual_seed(seed + 1)
    chance = sum(purity(torch.randint(k, (len(y),), generator=gen), y) for _ in range(20)) / 20
    rep.progress(1.0, "Done.")
    return ClusteringResult(target=spec.describe(), classes=spec.classes, k=k, n_images=len(y), purity=purity_by,
                            chance_purity=chance, true_labels=y.tolist(), clusters=clusters, pca=pca,
                            explained=explained, dims={n: int(f.shape[1]) for n, f in feats.items()},
                            wall_s=time.perf_counter() - t0, n_unlabelled_source=len(x_unl),
                            pretext_steps=pretext_steps, pretext_curve=curve,
                            comparison=SUPERVISED if compare_supervised else None)
