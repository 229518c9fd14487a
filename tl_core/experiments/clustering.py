"""Unsupervised transfer: cluster unlabelled target images with the source model's features, against raw pixels.

No labels anywhere. The source model's pooled features (learnt on six other shapes) are taken as they are;
k-means groups the target images and PCA draws them in 2-D. The true shapes are used only afterwards, to score
each grouping by its purity (the share of images that sit in a cluster whose majority shape is their own).
k-means (k-means++ start, Lloyd iterations, best of several restarts) and PCA (SVD) are implemented here in
torch; no scikit-learn.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import torch

from tl_core.data import shapes
from tl_core.experiments import OnRecord, Reporter
from tl_core.experiments.common import check_float, check_int, check_seed, encode, encoder, fresh_net, source_net

REPRESENTATIONS = ("source model features", "random network features", "raw pixels")  # what gets clustered


@dataclass
class ClusteringResult:
    """Purity of k-means clusters per representation, and 2-D PCA maps for the scatter plots."""

    target: str  # the target world, described
    classes: tuple[str, ...]  # the hidden true classes
    k: int  # clusters asked for
    n_images: int  # unlabelled images clustered
    purity: dict[str, float]  # representation -> purity in [1/k, 1]
    chance_purity: float  # expected purity of a random assignment into k clusters (simulated)
    true_labels: list[int]  # (n_images,) hidden true class per image, used only for scoring and colouring
    clusters: dict[str, list[int]]  # representation -> cluster index per image
    pca: dict[str, list[tuple[float, float]]]  # representation -> first two principal coordinates per image
    explained: dict[str, float]  # representation -> share of variance the two components explain
    dims: dict[str, int]  # representation -> feature dimension
    wall_s: float  # seconds the experiment took


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
                   on_record: OnRecord | None = None, cancel: threading.Event | None = None) -> ClusteringResult:
    """Cluster unlabelled target-shape images three ways and score each grouping against the hidden shapes.

    Args:
        seed: Seeds the images, the random network and k-means.
        similarity: Look of the target images (1 = drawn like the source data, lower = more shifted); the
            target task is always the four new shapes.
        n_per_class: Unlabelled images per hidden class (5..300).
        k: Clusters (2..12); default: the number of hidden classes.
        on_record: Receives Progress records.
        cancel: Stops the run.

    Returns:
        A ClusteringResult.

    Raises:
        ValueError: If an argument is out of range.
        Cancelled: If the cancel event was set.
    """
    t0 = time.perf_counter()
    seed = check_seed(seed)
    similarity = check_float("similarity", similarity, 0.0, 1.0)
    n_per_class = check_int("n_per_class", n_per_class, 5, 300)
    spec = shapes.target_spec(similarity, task="shapes")
    k = len(spec.classes) if k is None else check_int("k", k, 2, 12)
    rep = Reporter(on_record, cancel)
    rep.progress(0.0, "Drawing the unlabelled target images…")
    data = shapes.generate(spec, n_per_class, seed, "train")
    x, y = torch.from_numpy(data.images), torch.from_numpy(data.labels)

    rep.progress(0.15, "Computing the source model's features (no labels used)…")
    feats = {
        "source model features": encode(encoder(source_net()), x),  # (N, 128)
        "random network features": encode(encoder(fresh_net(6, seed)), x),  # (N, 128)
        "raw pixels": x.flatten(1),  # (N, 3072)
    }
    purity_by, clusters, pca, explained = {}, {}, {}, {}
    for i, name in enumerate(REPRESENTATIONS):
        rep.progress(0.3 + 0.6 * i / len(REPRESENTATIONS), f"k-means with k={k} on {name}…")
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
                            wall_s=time.perf_counter() - t0)
