"""Tests for tl_core.models.weights and tl_core.models.fetch_weights: offline cache lookups, loading, checking, the CLI.

Every test runs with TORCH_HOME in its own temporary folder and with urllib's urlopen replaced, so nothing can
touch the network; the weights files are made here from randomly initialised models.
"""

from __future__ import annotations

import io
import os
import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch
import torchvision
from PIL import Image

from tl_core.models import fetch_weights

from tl_core.models import weights
from tl_core.models.inference import imagenet_topk
from tl_core.models.weights import (WeightsUnavailable, imagenet_weights, load_imagenet_model, load_state_dict_file,
                                    weights_status)

MARKS: list[str] = []


def _mark() -> None:  # would run if an unpickler executed the payload below
    MARKS.append("executed")


class Payload:
    def __reduce__(self):  # noqa: ANN204
        return (_mark, ())


@pytest.fixture(autouse=True)
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Own TORCH_HOME; any attempt to open a URL fails the test."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    calls: list[str] = []

    def no_network(url, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        calls.append(str(url))
        raise AssertionError(f"network access attempted: {url}")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    return calls


def cache_folder(tmp_path: Path) -> Path:
    return tmp_path / "torch" / "hub" / "checkpoints"


def expected_filename(arch: str) -> str:
    return os.path.basename(torchvision.models.get_model_weights(arch).DEFAULT.url)


def fast_state_dict(arch: str, **kwargs: object) -> dict[str, torch.Tensor]:
    """A state dict with the architecture's real shapes, filled with seeded random values (no slow init)."""
    with torch.device("meta"):
        model = torchvision.models.get_model(arch, weights=None, **kwargs)
    g = torch.Generator().manual_seed(0)
    out = {}
    for k, v in model.state_dict().items():
        if k.endswith("running_var"):
            out[k] = torch.rand(v.shape, generator=g) + 0.5  # variances must be positive
        elif v.is_floating_point():
            out[k] = torch.randn(v.shape, generator=g) * 0.05
        else:
            out[k] = torch.randint(0, 5, v.shape, generator=g, dtype=v.dtype)
    return out


def put_in_cache(tmp_path: Path, arch: str, state: dict[str, torch.Tensor]) -> Path:
    path = cache_folder(tmp_path) / expected_filename(arch)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


# ---- status ----------------------------------------------------------------------------------------------


def test_status_of_missing_weights_names_file_and_folder(tmp_path: Path) -> None:
    s = weights_status("mobilenet_v3_small")
    assert not s.available
    assert s.filename == expected_filename("mobilenet_v3_small") and s.filename.endswith(".pth")
    assert s.path == cache_folder(tmp_path) / s.filename
    assert 5 < s.size_mb < 20 and s.url.endswith(s.filename)
    text = s.how_to_get()
    assert s.filename in text and str(cache_folder(tmp_path)) in text
    assert "python -m tl_core.models.fetch_weights mobilenet_v3_small" in text
    assert f"{s.size_mb:.1f} MB" in text and "does not download it by itself" in text
    offered = s.how_to_get(download_offered=True)  # a page with a download button must not say it never downloads
    assert "can be downloaded now" in offered and "does not download" not in offered
    assert s.offline_steps() in text and s.offline_steps() not in offered


def test_status_follows_torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "elsewhere"))
    assert weights_status("resnet18").path.parent == tmp_path / "elsewhere" / "hub" / "checkpoints"


def test_shapesnet_and_unknown_archs_are_refused() -> None:
    with pytest.raises(ValueError, match="assets/"):
        weights_status("shapesnet")
    with pytest.raises(ValueError, match="Unknown architecture 'resnet9000'"):
        weights_status("resnet9000")


def test_every_torchvision_arch_has_a_status() -> None:
    archs = weights.torchvision_archs()
    assert "shapesnet" not in archs and "resnet18" in archs and len(archs) == 8
    assert all(not weights_status(a).available for a in archs)


# ---- loading ---------------------------------------------------------------------------------------------


def test_missing_weights_offline_raise_with_instructions(tmp_path: Path, offline: list[str]) -> None:
    with pytest.raises(WeightsUnavailable) as info:
        load_imagenet_model("mobilenet_v3_small")
    err = info.value
    assert isinstance(err, ValueError) and err.status.arch == "mobilenet_v3_small"
    assert err.status.filename in err.status.how_to_get()
    assert str(cache_folder(tmp_path)) in err.status.how_to_get()
    assert "fetch_weights mobilenet_v3_small" in str(err)
    assert offline == []  # urlopen was never called
    assert not cache_folder(tmp_path).exists() or not any(cache_folder(tmp_path).iterdir())


def test_cached_weights_load_exactly_without_network(tmp_path: Path, offline: list[str]) -> None:
    state = fast_state_dict("mobilenet_v3_small")
    put_in_cache(tmp_path, "mobilenet_v3_small", state)
    assert weights_status("mobilenet_v3_small").available
    model = load_imagenet_model("mobilenet_v3_small")
    loaded = model.state_dict()
    assert loaded.keys() == state.keys()
    assert all(torch.equal(loaded[k], state[k]) for k in state)
    assert not model.training and all(p.device.type == "cpu" for p in model.parameters())
    assert all(p.requires_grad for p in model.parameters())
    out = model(torch.rand(1, 3, 64, 64))  # (1, 1000): it really runs
    assert out.shape == (1, 1000)
    assert offline == []


def test_inception_is_built_the_way_torchvision_builds_it_for_imagenet(tmp_path: Path) -> None:
    state = fast_state_dict("inception_v3", aux_logits=True, init_weights=False)
    put_in_cache(tmp_path, "inception_v3", state)
    model = load_imagenet_model("inception_v3")
    assert model.transform_input is True and model.aux_logits is True and model.AuxLogits is not None
    assert torch.equal(model.fc.weight, state["fc.weight"])


def test_old_densenet_key_names_in_the_cached_file_are_renamed(tmp_path: Path) -> None:
    state = fast_state_dict("densenet121")
    # The layout of torchvision's real file (saved before PyTorch 0.4): 'norm.1.weight', no num_batches_tracked.
    pattern = r"(denselayer\d+\.(?:norm|relu|conv))([12])\.(weight|bias|running_mean|running_var)$"
    old = {re.sub(pattern, r"\1.\2.\3", k): v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    assert "features.denseblock1.denselayer1.norm.1.weight" in old
    put_in_cache(tmp_path, "densenet121", old)
    model = load_imagenet_model("densenet121")
    assert torch.equal(model.features.denseblock1.denselayer1.norm1.weight,
                       state["features.denseblock1.denselayer1.norm1.weight"])
    assert int(model.features.norm0.num_batches_tracked) == 0 and not model.features.norm0.num_batches_tracked.is_meta
    sd = load_state_dict_file(to_bytes(old), "densenet121").state  # an uploaded copy of the same file is accepted too
    assert "features.denseblock1.denselayer1.norm1.weight" in sd and "features.norm0.num_batches_tracked" in sd


def test_damaged_cached_file_says_to_fetch_again(tmp_path: Path) -> None:
    path = put_in_cache(tmp_path, "mobilenet_v3_small", {})
    path.write_bytes(b"half a download")
    with pytest.raises(ValueError, match=r"cannot be used: .* Delete it and fetch it again"):
        load_imagenet_model("mobilenet_v3_small")


def test_imagenet_predict_returns_top_k_categories() -> None:
    # A stand-in model whose logits are a known function of the mean colour keeps the check exact and fast:
    # category 7 follows the green channel, category 3 the red one, every other logit is 0.
    model = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(3, 1000))
    with torch.no_grad():
        model[2].weight.zero_()
        model[2].bias.zero_()
        model[2].weight[7, 1] = 4.0
        model[2].weight[3, 0] = -2.0
    model.train()
    w = imagenet_weights("mobilenet_v3_small")
    image = Image.new("RGB", (300, 200), (10, 200, 30))  # green: normalised G > 0, R < 0
    preds = imagenet_topk(model, "mobilenet_v3_small", image, k=3)
    x = w.transforms()(image)  # (3, 224, 224)
    logits = torch.zeros(1000)
    logits[7], logits[3] = 4.0 * x[1].mean(), -2.0 * x[0].mean()
    probs = torch.softmax(logits, 0)
    assert [c for c, _ in preds[:2]] == [w.meta["categories"][7], w.meta["categories"][3]]
    assert abs(preds[0][1] - float(probs[7])) < 1e-5 and abs(preds[1][1] - float(probs[3])) < 1e-5
    assert preds[0][1] > preds[1][1] > preds[2][1] and len(preds) == 3
    assert model.training  # the caller's mode is restored
    assert len(imagenet_topk(model, "mobilenet_v3_small", image, k=5000)) == 1000


# ---- checking uploaded state dicts -----------------------------------------------------------------------


def to_bytes(obj: object) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def test_state_dict_file_round_trip_and_wrappers() -> None:
    state = fast_state_dict("resnet18", num_classes=10)
    got = load_state_dict_file(to_bytes(state), "resnet18", num_classes=10).state
    assert got.keys() == state.keys() and torch.equal(got["fc.weight"], state["fc.weight"])
    wrapped = {"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 3}
    got = load_state_dict_file(to_bytes(wrapped), "resnet18", num_classes=10).state
    assert got.keys() == state.keys() and torch.equal(got["conv1.weight"], state["conv1.weight"])
    got = load_state_dict_file(to_bytes({"model": state}), "resnet18", num_classes=10).state
    assert torch.equal(got["layer4.1.bn2.running_var"], state["layer4.1.bn2.running_var"])


def test_state_dict_file_from_path(tmp_path: Path) -> None:
    state = fast_state_dict("mobilenet_v3_small", num_classes=3)
    torch.save(state, tmp_path / "mine.pt")
    assert load_state_dict_file(tmp_path / "mine.pt", "mobilenet_v3_small", num_classes=3).state.keys() == state.keys()


def test_state_dict_mismatch_names_the_first_offending_key() -> None:
    state = fast_state_dict("resnet18", num_classes=10)
    state["layer1.0.conv1.weight"] = torch.zeros(64, 64, 1, 1)  # wrong, and earlier than fc
    with pytest.raises(ValueError, match=r"'layer1\.0\.conv1\.weight' has shape \(64, 64, 1, 1\) in the file but "
                                         r"the model expects \(64, 64, 3, 3\)"):
        load_state_dict_file(to_bytes(state), "resnet18", num_classes=10)


def test_head_mismatch_suggests_the_number_of_classes() -> None:
    state = fast_state_dict("resnet18", num_classes=10)
    with pytest.raises(ValueError, match=r"'fc\.weight' has shape \(10, 512\) .* expects \(5, 512\)\. The file's "
                                         r"head has 10 outputs"):
        load_state_dict_file(to_bytes(state), "resnet18", num_classes=5)


def test_missing_and_unexpected_keys_are_named() -> None:
    state = fast_state_dict("resnet18")
    missing = dict(state)
    del missing["bn1.running_mean"]
    with pytest.raises(ValueError, match=r"key 'bn1\.running_mean' is missing \(expected shape \(64,\)\)"):
        load_state_dict_file(to_bytes(missing), "resnet18")
    extra = dict(state) | {"extra.weight": torch.zeros(3)}
    with pytest.raises(ValueError, match=r"unexpected key 'extra\.weight'"):
        load_state_dict_file(to_bytes(extra), "resnet18")


def test_pickle_with_arbitrary_objects_is_refused_without_running_it() -> None:
    MARKS.clear()
    data = to_bytes({"conv1.weight": torch.zeros(1), "payload": Payload()})
    with pytest.raises(ValueError, match="Python objects other than tensors"):
        load_state_dict_file(data, "resnet18")
    assert MARKS == []


def test_state_dict_file_size_limit_and_garbage() -> None:
    with pytest.raises(ValueError, match="the limit is"):
        load_state_dict_file(b"x" * 2000, "resnet18", max_bytes=1000)
    with pytest.raises(ValueError, match="not a PyTorch weights file"):
        load_state_dict_file(b"definitely not torch", "resnet18")
    with pytest.raises(ValueError, match="assets/"):
        load_state_dict_file(b"x", "shapesnet")


# ---- downloading (faked) ---------------------------------------------------------------------------------


class FakeResponse(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data))}


def test_download_checks_the_hash_and_leaves_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: FakeResponse(b"not the real file"))
    with pytest.raises(WeightsUnavailable, match="hash does not match"):
        load_imagenet_model("mobilenet_v3_small", allow_download=True)
    assert list(cache_folder(tmp_path).iterdir()) == []


def test_download_reports_progress_and_renames_into_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    body = to_bytes(fast_state_dict("mobilenet_v3_small"))
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: FakeResponse(body))
    monkeypatch.setattr(weights, "_HASH", re.compile(r"(?!)"))  # our fake body cannot match the real hash
    seen: list[tuple[int, int]] = []
    model = load_imagenet_model("mobilenet_v3_small", allow_download=True, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (len(body), len(body)) and all(d <= t for d, t in seen)
    assert [p.name for p in cache_folder(tmp_path).iterdir()] == [expected_filename("mobilenet_v3_small")]
    assert model(torch.rand(1, 3, 32, 32)).shape == (1, 1000)


# ---- command line ----------------------------------------------------------------------------------------


def test_fetch_cli_offline_fails_with_one_line_and_exit_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(url, timeout=None):  # noqa: ANN001, ANN202
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    out, err = io.StringIO(), io.StringIO()
    assert fetch_weights.main(["resnet18"], out=out, err=err) == 1
    lines = [ln for ln in err.getvalue().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: Could not download")
    assert "offline" in lines[0] and "Traceback" not in err.getvalue()
    assert list(cache_folder(tmp_path).iterdir()) == []


def test_fetch_cli_list_shows_every_arch(tmp_path: Path) -> None:
    put_in_cache(tmp_path, "mobilenet_v3_small", {"x": torch.zeros(1)})
    out = io.StringIO()
    assert fetch_weights.main(["--list"], out=out, err=io.StringIO()) == 0
    text = out.getvalue()
    assert str(cache_folder(tmp_path)) in text
    rows = {ln.split()[0]: ln.split()[1] for ln in text.splitlines()[1:] if ln.strip()}
    assert rows == {a: ("cached" if a == "mobilenet_v3_small" else "missing") for a in weights.torchvision_archs()}


def test_fetch_cli_cached_arch_needs_no_network_and_unknown_arch_fails(tmp_path: Path, offline: list[str]) -> None:
    put_in_cache(tmp_path, "resnet18", {"x": torch.zeros(1)})
    out = io.StringIO()
    assert fetch_weights.main(["resnet18"], out=out, err=io.StringIO()) == 0
    assert "already cached" in out.getvalue() and expected_filename("resnet18") in out.getvalue()
    err = io.StringIO()
    assert fetch_weights.main(["shapesnet"], out=io.StringIO(), err=err) == 1
    assert "no ImageNet weights for 'shapesnet'" in err.getvalue()
    assert offline == []


# ---- what the loader reports, and what it refuses ------------------------------------------------------------------


def test_state_dict_file_reports_the_head_size_it_found() -> None:
    found = load_state_dict_file(to_bytes(fast_state_dict("resnet18", num_classes=7)), "resnet18")
    assert found.num_classes == 7 and found.state["fc.weight"].shape == (7, 512) and not found.aux_logits
    imagenet = load_state_dict_file(to_bytes(fast_state_dict("mobilenet_v3_small")), "mobilenet_v3_small")
    assert imagenet.num_classes == 1000
    with_aux = load_state_dict_file(to_bytes(fast_state_dict("inception_v3", num_classes=4, aux_logits=True,
                                                             init_weights=False)), "inception_v3")
    assert (with_aux.num_classes, with_aux.aux_logits) == (4, True)
    without = load_state_dict_file(to_bytes(fast_state_dict("inception_v3", num_classes=4, aux_logits=False,
                                                            init_weights=False)), "inception_v3")
    assert (without.num_classes, without.aux_logits) == (4, False)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_weights_holding_nan_or_infinity_are_refused(bad: float) -> None:
    state = fast_state_dict("resnet18", num_classes=3)
    state["layer2.0.bn1.running_var"][5] = bad
    with pytest.raises(ValueError, match=r"NaN or infinite values \(1 of 128 in 'layer2\.0\.bn1\.running_var'\)"):
        load_state_dict_file(to_bytes(state), "resnet18")
    state["layer2.0.bn1.running_var"][5] = 1.0  # the same file without it loads
    assert load_state_dict_file(to_bytes(state), "resnet18").num_classes == 3
