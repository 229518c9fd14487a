"""Show me the code: the generated script is standalone, runs, and freezes what the plan freezes."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tl_core.training.codegen import group_prefixes, plan_to_code
from tl_core.training.plan import make_plan

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
    assert out.stdout.count("epoch ") == plan.epochs
    assert ("loaded the pretrained source weights" in out.stdout) == plan.pretrained
    if plan.unfreeze_every:
        assert "unfroze block3" in out.stdout


def test_generated_torchvision_script_runs_without_downloading(tmp_path):
    plan = make_plan("finetune_top", arch="mobilenet_v3_small", epochs=1)
    code = plan_to_code(plan)
    assert 'get_model("mobilenet_v3_small"' in code and "FROZEN = ['stem', 'blocks1', 'blocks2', 'blocks3']" in code
    out = _run(code, tmp_path, "--random-init")
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
