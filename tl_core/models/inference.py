"""Inference on single images: the shipped shapes model's top-k, ImageNet top-k and built-in samples.

The explorer page classifies one picture at a time with either the playbook's own ShapesNet (offline, six source
shapes, 32x32 inputs) or a torchvision ImageNet model (its weights' own preprocessing and category names). A
prediction is a list of (class name, probability) pairs, most likely first. No streamlit here.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import nn

from tl_core.data import shapes
from tl_core.models.networks import IMAGENET_CLASSES, LAYOUTS, build_model, layout_for
from tl_core.models.registry import get_spec
from tl_core.models.weights import imagenet_weights, load_state_dict_file

SHAPES_SIZE = shapes.IMAGE_SIZE  # the shapes model's input side, in pixels
SAMPLE_SCALE = 6  # nearest-neighbour upscaling of a 32x32 sample for display

Prediction = list[tuple[str, float]]  # [(class name, probability), ...], most likely first


# ---- the shipped shapes model --------------------------------------------------------------------------------
def shapes_input(image: Image.Image) -> torch.Tensor:
    """An image as the shapes model sees it: centre square, resized to 32x32, RGB in [0, 1].

    Args:
        image: Any PIL image (converted to RGB).

    Returns:
        (1, 3, 32, 32) float32.
    """
    square = ImageOps.fit(image.convert("RGB"), (SHAPES_SIZE, SHAPES_SIZE), method=Image.Resampling.BICUBIC)
    x = np.asarray(square, dtype=np.float32).transpose(2, 0, 1) / 255.0  # (H, W, 3) -> (3, 32, 32)
    return torch.from_numpy(np.ascontiguousarray(x)).unsqueeze(0)  # (1, 3, 32, 32)


def topk_from_logits(logits: torch.Tensor, classes: tuple[str, ...] | list[str], k: int) -> Prediction:
    """Softmax over one row of logits and the k most likely classes.

    Args:
        logits: (1, C) or (C,) model outputs.
        classes: C class names.
        k: How many to return (clipped to 1..C).

    Returns:
        [(class, probability), ...], most likely first.

    Raises:
        ValueError: If the number of logits differs from the number of classes.
    """
    row = logits.detach().float().reshape(-1)  # (C,)
    if row.numel() != len(classes):
        raise ValueError(f"The model has {row.numel()} outputs but {len(classes)} class names were given.")
    probs = torch.softmax(row, dim=0)  # (C,)
    k = max(1, min(int(k), len(classes)))
    top = torch.topk(probs, k)
    return [(str(classes[int(i)]), float(p)) for p, i in zip(top.values, top.indices)]


def shapes_topk(image: Image.Image, k: int = 6, model: nn.Module | None = None,
                classes: tuple[str, ...] | None = None) -> Prediction:
    """Classify any image into the six source shapes with the shipped ShapesNet.

    Args:
        image: Any PIL image; it is centre-cropped and resized to 32x32.
        k: How many classes to return (at most 6).
        model: A ShapesNet (default: the shipped source model, shared and read-only).
        classes: Its class names (default: the shipped model's).

    Returns:
        [(shape, probability), ...], most likely first.
    """
    if model is None or classes is None:
        from tl_core.models.source import load_source_model

        src = load_source_model()
        model, classes = model or src.model, classes or src.classes
    with torch.inference_mode():
        was_training = model.training
        model.eval()
        try:
            logits = model(shapes_input(image))  # (1, 6)
        finally:
            model.train(was_training)
    return topk_from_logits(logits, classes, k)


# ---- ImageNet models ---------------------------------------------------------------------------------------
def imagenet_topk(model: nn.Module, arch: str, image: Image.Image, k: int = 5,
                  categories: list[str] | None = None) -> Prediction:
    """Classify one image with an ImageNet model, using its weights' own preprocessing (the one ImageNet top-k).

    Args:
        model: A model of `arch` with 1000 outputs (from load_imagenet_model or model_from_state_dict), or with
            len(categories) outputs when `categories` is given; on any device, in any mode (restored after).
        arch: Its torchvision architecture.
        image: Any PIL image (converted to RGB).
        k: How many categories to return (clipped to 1..number of outputs).
        categories: Class names for a head that is not ImageNet's (default: the weights' ImageNet categories).

    Returns:
        [(category, probability), ...], the k most likely, most likely first.

    Raises:
        ValueError: If the architecture has no ImageNet weights, or the model's outputs and the names differ.
    """
    weights = imagenet_weights(arch)
    names = list(weights.meta["categories"]) if categories is None else categories
    x = weights.transforms()(image.convert("RGB")).unsqueeze(0)  # (1, 3, H, W)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            logits = model(x.to(next(model.parameters()).device))  # (1, C)
    finally:
        model.train(was_training)
    return topk_from_logits(logits, names, k)


def categories_for(arch: str, num_classes: int) -> list[str]:
    """Class names for a head: ImageNet's categories for 1000 outputs, otherwise "class 0", "class 1", ...

    Raises:
        ValueError: If the architecture has no ImageNet weights.
    """
    if num_classes == IMAGENET_CLASSES:
        return list(imagenet_weights(arch).meta["categories"])
    return [f"class {i}" for i in range(num_classes)]


def head_size(state: dict[str, torch.Tensor]) -> int:
    """The number of outputs of a checked state dict's head (the first dimension of its last weight matrix outside
    every side branch)."""
    side = tuple(path + "." for layout in LAYOUTS.values() for _, path in layout.side)
    last = [v for k, v in state.items() if k.endswith("weight") and v.dim() == 2 and not k.startswith(side)]
    if not last:
        raise ValueError("The weights have no fully connected head; load a classifier's state dict.")
    return int(last[-1].shape[0])


def load_custom_weights(data: bytes, arch: str) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Check an uploaded state dict against an architecture, with ImageNet's head or any other head size.

    The file is read by tl_core.models.weights.load_state_dict_file (weights_only=True, every key and shape checked,
    NaN and infinity refused), which reports the head size it found (a fine-tuned model's, or ImageNet's 1000).

    Args:
        data: The file's bytes.
        arch: A torchvision architecture of the registry.

    Returns:
        (the checked state dict, the class names of its head).

    Raises:
        ValueError: If the file does not fit, naming the first missing, mis-shaped or unexpected key, or if it
            holds NaN or infinite values.
    """
    checked = load_state_dict_file(data, arch)
    return checked.state, categories_for(arch, checked.num_classes)


def model_from_state_dict(arch: str, state: dict[str, torch.Tensor]) -> nn.Module:
    """Build an architecture around a state dict already checked by tl_core.models.weights.load_state_dict_file.

    Args:
        arch: A torchvision architecture of the registry.
        state: The checked state dict (its head size decides the number of outputs; Inception keeps its auxiliary
            head if the state has one).

    Returns:
        The model on the CPU in eval mode, its tensors taken from `state` (no random initialisation).
    """
    aux = any(k.startswith(path + ".") for _, path in layout_for(arch).side for k in state)
    model = build_model(arch, head_size(state), aux_logits=aux, imagenet=True, init=False, meta=True)
    model.load_state_dict(state, strict=True, assign=True)
    return model.eval()


def model_view(image: Image.Image, arch: str) -> Image.Image:
    """The picture a model actually receives, after its own preprocessing, for display.

    Args:
        image: Any PIL image.
        arch: "shapesnet" (centre square at 32x32, shown enlarged) or a torchvision architecture (its weights'
            resize and centre crop; the normalisation is undone for display).

    Returns:
        An RGB PIL image.
    """
    if not get_spec(arch).torchvision:
        x = shapes_input(image)[0]  # (3, 32, 32)
        return enlarge(Image.fromarray(np.round(x.numpy().transpose(1, 2, 0) * 255).astype(np.uint8), "RGB"))
    t = imagenet_weights(arch).transforms()
    x = t(image.convert("RGB"))  # (3, crop, crop), normalised
    x = x * torch.tensor(t.std).view(3, 1, 1) + torch.tensor(t.mean).view(3, 1, 1)  # back to [0, 1]
    return Image.fromarray(np.round(x.clamp(0, 1).numpy().transpose(1, 2, 0) * 255).astype(np.uint8), "RGB")


def weights_table() -> list[dict[str, object]]:
    """The torchvision architectures with ImageNet weights: paper, ImageNet top-1, file size, and whether the
    file is on this machine (torchvision's metadata and the local cache only; no network).

    Returns:
        One dict per architecture, in registry order.
    """
    from tl_core.models.weights import torchvision_archs, weights_status

    rows = []
    for arch in torchvision_archs():
        meta = imagenet_weights(arch).meta
        status = weights_status(arch)
        rows.append({"Architecture": arch, "Paper": get_spec(arch).paper,
                     "ImageNet top-1 %": float(meta["_metrics"]["ImageNet-1K"]["acc@1"]),
                     "Parameters (M)": meta["num_params"] / 1e6, "File (MB)": status.size_mb,
                     "On this server": "yes" if status.available else "no", "File name": status.filename})
    return rows


# ---- built-in samples ----------------------------------------------------------------------------------------
def sample_image(shape: str, seed: int = 0, styles: tuple[str, ...] = ()) -> Image.Image:
    """A drawn 32x32 sample of any shape of the shapes world, for learners without image files.

    Args:
        shape: One of tl_core.data.shapes.ALL_SHAPES (the six source shapes and the four target shapes).
        seed: Picks the colour, size, position and rotation.
        styles: Named styles from tl_core.data.shapes.STYLES ("outline", "inverted").

    Returns:
        An RGB PIL image of 32x32 pixels.

    Raises:
        ValueError: If the shape, seed or a style is unknown or out of range.
    """
    if shape not in shapes.ALL_SHAPES:
        raise ValueError(f"Unknown shape {shape!r}. Choose one of: {', '.join(shapes.ALL_SHAPES)}.")
    task = "source" if shape in shapes.SOURCE_CLASSES else "shapes"
    data = shapes.generate(shapes.WorldSpec(task=task, styles=styles), 1, seed, "test")
    idx = int(np.flatnonzero(data.labels == data.classes.index(shape))[0])
    pixels = np.round(data.images[idx].transpose(1, 2, 0) * 255).astype(np.uint8)  # (32, 32, 3)
    return Image.fromarray(pixels, "RGB")


def enlarge(image: Image.Image, scale: int = SAMPLE_SCALE) -> Image.Image:
    """A small image upscaled with nearest neighbour, so its pixels stay visible."""
    return image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
