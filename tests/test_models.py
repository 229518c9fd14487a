"""The model registry: stages reproduce the forward pass, every parameter has a layer group, heads are swapped by name."""

from __future__ import annotations

import pytest
import torch

from tl_core.models import networks as models
from tl_core.models.registry import ARCHS


@pytest.fixture(scope="module")
def built() -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    return {arch: models.build_model(arch, 5).eval() for arch in ARCHS}


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_head_is_replaced_and_stages_compose_to_the_forward_pass(arch, built):
    model = built[arch]
    size = models.input_size_for(arch, 32)
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        y = model(x)
        z = x
        for st in models.stages(model, arch):
            z = st.module(z)
    assert y.shape == (2, 5)  # the head has the requested number of outputs
    assert torch.allclose(y, z, atol=1e-4)
    models.replace_head(model, arch, 3)
    assert models.get_classifier(model, arch).out_features == 3
    with torch.no_grad():
        assert model(x).shape == (2, 3)
    models.replace_head(model, arch, 5)


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_every_parameter_has_exactly_the_declared_groups(arch, built):
    mapping = models.group_map(built[arch], arch)
    assert set(mapping) == {n for n, _ in built[arch].named_parameters()}
    assert tuple(dict.fromkeys(g for g in ARCHS[arch].groups if g in set(mapping.values()))) == ARCHS[arch].groups
    head = models.HEAD_PATHS[ARCHS[arch].family][0]
    assert all(g == "head" for n, g in mapping.items() if n.startswith(head + "."))


def test_inception_aux_head_is_replaced_too():
    model = models.build_model("inception_v3", 7)
    models.replace_head(model, "inception_v3", 3)
    assert model.fc.out_features == 3 and model.AuxLogits.fc.out_features == 3
    assert models.group_map(model, "inception_v3")["AuxLogits.fc.weight"] == "aux"
    assert ARCHS["inception_v3"].input_size == 299


@pytest.mark.parametrize("arch, cut", [("shapesnet", "block2"), ("resnet18", "layer1"), ("vgg11", "block2")])
def test_cut_model_keeps_the_early_groups_and_a_new_head(arch, cut, built):
    cut_m = models.cut_model(built[arch], arch, cut, 4, 32)
    names = [n for n, _ in cut_m.named_children()]
    assert names[-2:] == ["pool", "head"] and names[-3] == cut
    size = models.input_size_for(arch, 32)
    assert cut_m(torch.randn(2, 3, size, size)).shape == (2, 4)


def test_preprocess_resizes_and_normalises_for_imagenet_models():
    pre = models.preprocess_for("resnet18", 32)
    x = torch.full((1, 3, 32, 32), 0.5)
    out = pre(x)
    assert out.shape == (1, 3, 64, 64)
    assert torch.allclose(out[0, :, 0, 0], (0.5 - torch.tensor(models.IMAGENET_MEAN)) / torch.tensor(models.IMAGENET_STD))
    assert models.preprocess_for("shapesnet", 32)(x) is x
