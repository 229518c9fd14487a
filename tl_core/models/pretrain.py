"""Pretrain the shipped source model on the source shapes: `python -m tl_core.models.pretrain` writes assets/."""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from tl_core.data import shapes
from tl_core.training.plan import make_plan
from tl_core.models.source import MANIFEST_FILE, MODEL_FILE, load_source_model_from, sha256_of
from tl_core.training.trainer import TensorData, train


@dataclass(frozen=True)
class Recipe:
    """How the source model is made."""

    n_per_class: int = 800  # source training images per class
    n_val_per_class: int = 50  # validation images per class (monitoring only)
    n_test_per_class: int = 300  # fresh test images per class for the manifest's accuracy
    epochs: int = 15  # passes over the training images
    batch_size: int = 64
    lr: float = 3e-3  # Adam
    seed: int = 0


def pretrain(recipe: Recipe = Recipe(), model_file: Path = MODEL_FILE, manifest_file: Path = MANIFEST_FILE,
             log=print) -> dict:
    """Train ShapesNet from scratch on the source task and write its weights and manifest.

    Returns:
        The manifest written.
    """
    torch.set_num_threads(max(1, torch.get_num_threads()))
    tr = TensorData.from_shapes(shapes.make_source(recipe.n_per_class, recipe.seed, "train"))
    va = TensorData.from_shapes(shapes.make_source(recipe.n_val_per_class, recipe.seed, "val"))
    plan = make_plan("scratch", epochs=recipe.epochs, batch_size=recipe.batch_size, lr=recipe.lr, seed=recipe.seed,
                     min_steps=0, device="cpu")

    def report(r) -> None:
        if r.kind == "epoch" and r.val_acc is not None:
            log(f"epoch {r.epoch + 1}/{recipe.epochs}: validation accuracy {r.val_acc:.3f}")

    res = train(plan, tr, va, on_record=report, max_val_evals=recipe.epochs)
    te_data = shapes.make_source(recipe.n_test_per_class, recipe.seed, "test")
    model_file.parent.mkdir(parents=True, exist_ok=True)
    torch.save(res.state_dict, model_file)
    from tl_core.models.networks import ShapesNet

    model = ShapesNet(len(tr.classes))
    model.load_state_dict(res.state_dict)
    model.eval()
    te = TensorData.from_shapes(te_data)
    with torch.inference_mode():
        acc = (model(te.x).argmax(1) == te.y).float().mean().item()
    manifest = {
        "name": "shapesnet-source",
        "architecture": "shapesnet",
        "classes": list(tr.classes),
        "recipe": asdict(recipe),
        "seed": recipe.seed,
        "source_test_accuracy": round(acc, 4),
        "source_test_images": len(te),
        "num_params": sum(p.numel() for p in model.parameters()),
        "sha256": sha256_of(model_file),
        "train_wall_s": round(res.wall_s, 1),
        "torch_version": torch.__version__.split("+")[0],
        "created": datetime.date.today().isoformat(),
        "command": "python -m tl_core.models.pretrain",
    }
    manifest_file.write_text(json.dumps(manifest, indent=2) + "\n")
    load_source_model_from(model_file, manifest_file)  # round-trip check
    log(f"source test accuracy {acc:.4f} on {len(te)} fresh images; wrote {model_file.name} and {manifest_file.name}")
    return manifest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--epochs", type=int, default=Recipe.epochs)
    p.add_argument("--seed", type=int, default=Recipe.seed)
    args = p.parse_args(argv)
    pretrain(Recipe(epochs=args.epochs, seed=args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
