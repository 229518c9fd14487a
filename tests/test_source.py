"""The shipped source model: checked against its manifest, loaded safely, and good at the source task."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from tl_core.data import shapes
from tl_core.models.source import MANIFEST_FILE, MODEL_FILE, SourceModelError, load_source_model, load_source_model_from


def test_shipped_model_scores_at_least_97_percent_on_fresh_source_images():
    src = load_source_model()
    assert src.classes == shapes.SOURCE_CLASSES
    data = shapes.make_source(150, seed=12345, split="test")  # a seed the manifest's test set did not use
    x, y = data.to_torch()
    with torch.inference_mode():
        acc = (src.model(x).argmax(1) == y).float().mean().item()
    assert acc >= 0.97
    manifest = src.manifest
    assert manifest["num_params"] == sum(p.numel() for p in src.model.parameters()) <= 300_000
    assert manifest["source_test_accuracy"] >= 0.97 and manifest["command"] == "python -m tl_core.models.pretrain"


def test_tampered_or_missing_weights_are_refused(tmp_path):
    model_file, manifest_file = tmp_path / "m.pt", tmp_path / "m.json"
    shutil.copy(MODEL_FILE, model_file)
    shutil.copy(MANIFEST_FILE, manifest_file)
    assert load_source_model_from(model_file, manifest_file).model is not None
    data = bytearray(model_file.read_bytes())
    data[-10] ^= 0xFF
    model_file.write_bytes(bytes(data))
    with pytest.raises(SourceModelError, match="does not match its manifest"):
        load_source_model_from(model_file, manifest_file)
    with pytest.raises(SourceModelError, match="python -m tl_core.models.pretrain"):
        load_source_model_from(tmp_path / "missing.pt", manifest_file)


def test_pickled_code_is_not_executed(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    model_file, manifest_file = tmp_path / "m.pt", tmp_path / "m.json"
    torch.save({"x": Evil()}, model_file)
    from tl_core.models.source import sha256_of

    manifest = json.loads(MANIFEST_FILE.read_text()) | {"sha256": sha256_of(model_file)}
    manifest_file.write_text(json.dumps(manifest))
    with pytest.raises(Exception, match="Weights only load failed|weights_only"):
        load_source_model_from(model_file, manifest_file)


def test_a_process_handed_the_model_uses_it_and_can_forget_it():
    from tl_core.models import source

    shipped = load_source_model()
    handed = source.source_model_from_bytes(MODEL_FILE.read_bytes(), json.loads(MANIFEST_FILE.read_text()), "handed")
    assert handed.model is not shipped.model
    try:
        source.use_source_model(handed)
        assert load_source_model() is handed  # a Ray worker trains from the copy it was sent
    finally:
        source.forget_loaded()
    reread = load_source_model()
    assert reread is not handed and reread is not shipped  # read from the files again
    pairs = zip(reread.model.state_dict().values(), shipped.model.state_dict().values())
    assert all(torch.equal(a, b) for a, b in pairs)
    with pytest.raises(SourceModelError, match="does not match its manifest"):
        source.source_model_from_bytes(MODEL_FILE.read_bytes() + b"x", json.loads(MANIFEST_FILE.read_text()))
