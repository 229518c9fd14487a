"""Show me the code: the generated script is standalone, runs, freezes what the plan freezes, and trains the way the
trainer does (the same first-epoch loss on the same images and seed)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tl_core.data.datasets import DataSpec, TensorData, make_data
from tl_core.models.source import load_source_model
from tl_core.training.codegen import STAND_IN_TRAIN, group_modules, group_prefixes, plan_to_code
from tl_core.training.plan import Plan, make_plan
from tl_core.training.trainer import schedule_for, train

ROOT = Path(__file__).resolve().parents[1]


def _run(code: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    script = tmp_path / "plan.py"
    script.write_text(code)
    return subprocess.run([sys.executable, str(script), *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("plan", [
    make_plan("finetune_top", lr_decay=0.5, unfreeze_every=1, epochs=2),
    make_plan("early_classifier", epochs=1),
    make_plan("scratch", epochs=1),
], ids=["finetune_top", "early_classifier", "scratch"])
def test_generated_shapesnet_script_runs_with_the_shipped_weights(plan, tmp_path):
    code = plan_to_code(plan)
    tree = ast.parse(code)
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
                for a in n.names} | {n.module.split(".")[0] for n in ast.walk(tree)
                                     if isinstance(n, ast.ImportFrom) and n.module}
    assert "tl_core" not in imported  # standalone: torch and torchvision only
    out = _run(code, tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("epoch ") == schedule_for(plan, STAND_IN_TRAIN)[0]  # raised to reach the minimum steps
    assert schedule_for(plan, STAND_IN_TRAIN)[0] > plan.epochs and "instead of" in out.stdout
    assert ("loaded the pretrained source weights" in out.stdout) == plan.pretrained
    if plan.unfreeze_every:
        assert "unfroze block3" in out.stdout


def test_generated_torchvision_script_runs_without_downloading(tmp_path):
    plan = make_plan("finetune_top", arch="mobilenet_v3_small", epochs=1)
    code = plan_to_code(plan)
    assert 'get_model("mobilenet_v3_small"' in code and "FROZEN = ['stem', 'blocks1', 'blocks2', 'blocks3']" in code
    out = _run(code, tmp_path, "--random-init", "--min-steps", "0")
    assert out.returncode == 0, out.stderr
    assert "epoch 1:" in out.stdout


def test_generated_script_freezes_exactly_the_plan(tmp_path):
    plan = make_plan("finetune_top", arch="resnet18", freeze_first=2)
    code = plan_to_code(plan)
    probe = code.split("# One optimizer parameter group")[0].replace("parser.parse_args()", "parser.parse_args([])")
    probe = probe.replace('get_model("resnet18", weights=(None if args.random_init else "DEFAULT"))',
                          'get_model("resnet18", weights=None)')
    probe += "\nprint(sorted({n.split('.')[0] for n, p in model.named_parameters() if not p.requires_grad}))\n"
    out = _run(probe, tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "['bn1', 'conv1', 'layer1']"
    assert group_prefixes("resnet18")["stem"] == ["conv1", "bn1"]


# ---- the script reproduces the plan ----------------------------------------------------------------------------
LOSS_TOLERANCE = 1e-3  # absolute, on the mean training loss of an epoch (the script prints six decimals)


def _write_image_folder(folder: Path, data: TensorData) -> None:
    """One sub-folder per class, named so that ImageFolder's alphabetical order is the data's class order."""
    for i, c in enumerate(data.classes):
        d = folder / f"{i}_{c}"
        d.mkdir(parents=True)
        for k, j in enumerate(np.flatnonzero(data.y.numpy() == i)):
            pixels = np.round(data.x[j].numpy().transpose(1, 2, 0) * 255).astype(np.uint8)
            Image.fromarray(pixels).save(d / f"{k:03d}.png")


def _read_image_folder(folder: Path, classes: tuple[str, ...]) -> TensorData:
    """The images the script will read, in ImageFolder's order, decoded as torchvision's ToTensor decodes them."""
    xs, ys = [], []
    for i, c in enumerate(classes):
        for f in sorted((folder / f"{i}_{c}").iterdir()):
            xs.append(torch.from_numpy(np.array(Image.open(f).convert("RGB"))).permute(2, 0, 1).float().div(255))
            ys.append(i)
    return TensorData(torch.stack(xs), torch.tensor(ys), classes)


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> tuple[Path, TensorData, TensorData]:
    root = tmp_path_factory.mktemp("images")
    tr, va = make_data(DataSpec(n_per_class=8, similarity=1.0, n_val_per_class=4, seed=3))
    _write_image_folder(root / "train", tr)
    _write_image_folder(root / "val", va)
    return root, _read_image_folder(root / "train", tr.classes), _read_image_folder(root / "val", tr.classes)


def _epoch_lines(stdout: str) -> list[tuple[float, float | None]]:
    """(training loss, validation loss or None) of each "epoch N:" line the script printed."""
    out = []
    for line in stdout.splitlines():
        m = re.match(r"epoch \d+: loss ([\d.]+), train accuracy [\d.]+(?:, val loss ([\d.]+))?", line)
        if m:
            out.append((float(m.group(1)), float(m.group(2)) if m.group(2) else None))
    return out


@pytest.mark.parametrize("plan", [
    # 32 images in batches of 4: 8 steps per epoch, raised to 2 epochs by the 16 minimum steps; the cosine decays
    # over those 16 steps; augmentation draws from the shuffling generator.
    make_plan("finetune_top", epochs=1, min_steps=16, batch_size=4, augment=True, seed=5),
    # Gradual unfreezing with SGD, a constant LR and BatchNorm re-estimation in the frozen groups.
    make_plan("finetune_top", epochs=2, min_steps=0, batch_size=4, unfreeze_every=1, bn_policy="train",
              schedule="constant", optimizer="sgd", lr=0.01, seed=2),
], ids=["cosine_augment_min_steps", "unfreeze_sgd_bn_train"])
def test_the_script_reaches_the_trainers_first_epoch_loss(plan: Plan, image_folder, tmp_path):
    root, tr, va = image_folder
    res = train(plan, tr, va, base=load_source_model().model, keep_weights=False)
    out = _run(plan_to_code(plan), tmp_path, str(root))
    assert out.returncode == 0, out.stderr
    script = _epoch_lines(out.stdout)
    assert len(script) == len(res.epochs) == schedule_for(plan, len(tr))[0]  # the minimum steps are honoured
    assert script[0][0] == pytest.approx(res.epochs[0].train_loss, abs=LOSS_TOLERANCE)
    assert script[0][1] == pytest.approx(res.epochs[0].val_loss, abs=LOSS_TOLERANCE)  # validation, as the trainer's
    if plan.unfreeze_every:
        assert "unfroze block3" in out.stdout
    else:  # and the second epoch too, deep into the cosine schedule
        assert script[1][0] == pytest.approx(res.epochs[1].train_loss, abs=LOSS_TOLERANCE)


def test_the_tolerance_separates_the_plans_pieces(image_folder):
    """The script's old omissions (no cosine schedule, no augmentation, no minimum steps) each move the first-epoch
    loss far beyond LOSS_TOLERANCE, so the comparison above can fail."""
    _, tr, va = image_folder
    base = load_source_model().model
    plan = make_plan("finetune_top", epochs=1, min_steps=16, batch_size=4, augment=True, seed=5)
    first = train(plan, tr, va, base=base, keep_weights=False).epochs[0].train_loss
    for change in (dict(schedule="constant"), dict(augment=False), dict(min_steps=0)):
        other = make_plan("finetune_top", **{**dict(epochs=1, min_steps=16, batch_size=4, augment=True, seed=5),
                                              **change})
        assert abs(train(other, tr, va, base=base, keep_weights=False).epochs[0].train_loss - first) \
            > 10 * LOSS_TOLERANCE, change


def test_inception_scripts_count_the_aux_loss_only_while_its_head_trains(tmp_path):
    top = plan_to_code(make_plan("finetune_top", arch="inception_v3", augment=True, batch_size=2), data_size=40)
    full = plan_to_code(make_plan("finetune_all", arch="inception_v3", batch_size=2), data_size=40)
    for code in (top, full):
        assert "AUX_WEIGHT = 0.4" in code and "setattr(model, path, None if g in FROZEN" in code
    assert "INPUT_SIZE = 80" in top and "'aux'" in top.split("FROZEN = ")[1].splitlines()[0]  # frozen: detached
    assert "INPUT_SIZE = 299" in full and "FROZEN = []" in full  # trains: the native size its pooling needs
    assert "AUX_WEIGHT = 0.0" in plan_to_code(make_plan("finetune_top", arch="resnet18"))
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for c in ("a", "b"):
            (tmp_path / "data" / split / c).mkdir(parents=True)
            for k in range(2):
                Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(
                    tmp_path / "data" / split / c / f"{k}.png")
    for code in (top, full):  # the frozen aux head at 80 px crashed the trainer; both scripts run
        out = _run(code, tmp_path, str(tmp_path / "data"), "--random-init", "--min-steps", "0", "--epochs", "1")
        assert out.returncode == 0, out.stderr[-2000:]
        assert len(_epoch_lines(out.stdout)) == 1 and np.isfinite(_epoch_lines(out.stdout)[0][0])


def test_group_modules_cover_the_parameter_free_layers_of_a_group():
    assert group_modules("resnet18")["stem"] == ["conv1", "bn1", "relu", "maxpool"]
    assert group_modules("vgg11")["fc6_7"] == [f"classifier.{i}" for i in range(6)]  # the dropouts too
    assert group_prefixes("vgg11")["fc6_7"] == ["classifier.0", "classifier.3"]
    assert group_modules("inception_v3")["aux"] == ["AuxLogits"]
