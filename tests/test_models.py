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


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_each_family_s_layout_declares_exactly_the_registry_s_groups(arch):
    layout = models.layout_for(arch)
    declared = []
    for decl in layout.stages:
        declared += list(decl.names) if isinstance(decl, models.PooledBlocks) else [decl.group]
    side = [g for g, _ in layout.side]
    assert sorted(g for g in declared + side if g) == sorted(ARCHS[arch].groups)  # data, checked without a model
    assert models.HEAD_PATHS[ARCHS[arch].family] == layout.heads


def test_the_grouped_view_covers_a_cut_model_and_the_side_branch(built):
    cut = models.cut_model(built["resnet18"], "resnet18", "layer2", 3, 32)
    view = models.grouped_view(cut, "resnet18")
    assert view.groups == ("stem", "layer1", "layer2", "head") and view.side == {}
    assert sum(len(ps) for ps in view.params.values()) == len(list(cut.parameters()))
    assert [st.name for st in view.chain] == ["stem", "layer1", "layer2", "pool", "head"]
    inception = models.grouped_view(built["inception_v3"], "inception_v3")
    assert inception.groups == ARCHS["inception_v3"].groups and list(inception.side) == ["aux"]
    assert inception.modules["aux"] == [built["inception_v3"].AuxLogits]


def test_one_builder_knows_inception_s_arguments():
    meta = models.build_model("inception_v3", imagenet=True, init=False, meta=True)
    assert meta.fc.weight.is_meta and meta.fc.out_features == models.IMAGENET_CLASSES
    assert meta.transform_input is True and meta.AuxLogits is not None  # as torchvision builds it for its weights
    bare = models.build_model("inception_v3", 4, aux_logits=False, meta=True)
    assert bare.AuxLogits is None and bare.transform_input is False and bare.fc.out_features == 4
    assert models.side_loss_weight("inception_v3") == 0.4 and models.side_loss_weight("resnet18") == 0.0
    assert (models.input_size_for("inception_v3", 32), models.input_size_for("inception_v3", 32, aux=True)) == (80, 299)
    assert (models.input_size_for("resnet18", 32), models.input_size_for("resnet18", 32, aux=True)) == (64, 64)
    with pytest.raises(ValueError, match="num_classes"):
        models.build_model("resnet18", 0)
