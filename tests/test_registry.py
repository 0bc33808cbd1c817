"""Generic tests over every registered model (timm's pattern) and the registry itself."""

import pytest
import torch

from shufflenet import create_model, list_models
from shufflenet.errors import UnknownModelError, UserInputError
from shufflenet.models import get_entry

ALL = list_models()


def test_registry_contents() -> None:
    assert len(ALL) == len(set(ALL))
    for w in ("0_5", "1_0", "1_5", "2_0"):
        assert f"shufflenet_v2_x{w}" in ALL
    assert {"shufflenet_v2_50", "se_shufflenet_v2_164"} <= set(ALL)
    assert len(list_models("shufflenet_v1_*")) == 25
    assert list_models("mobilenet_v1_*") == [f"mobilenet_v1_x{w}" for w in ("0_25", "0_5", "0_75", "1_0")]
    assert "torchvision:mobilenet_v2" in list_models("*mobilenet_v2", include_torchvision=True)


@pytest.mark.parametrize("name", ALL)
def test_forward_backward_every_parameter_gets_gradient(name: str) -> None:
    model = create_model(name, num_classes=7)
    size = model.min_input_size
    x = torch.randn(2, 3, size, size)
    out = model(x)
    assert out.shape == (2, 7)
    out.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"{name}: no/invalid gradient for {missing[:5]}"
    # forward == forward_head(forward_features); pre_logits gives the pooled features
    model.eval()
    with torch.no_grad():
        feats = model.forward_features(x)
        torch.testing.assert_close(model.forward_head(feats), model(x))
        assert model.forward_head(feats, pre_logits=True).shape == (2, model.num_features)


@pytest.mark.parametrize("name", ["shufflenet_v2_x0_5", "shufflenet_v1_g3_x0_5", "mobilenet_v1_x0_25",
                                  "xception_light_x0_5", "densenet_light_x0_5", "igcv3_d_x1_0", "condensenet_g8",
                                  "nasnet_a_mobile", "resnet110_cifar"])
def test_common_options(name: str) -> None:
    model = create_model(name, num_classes=10, in_chans=1, small_input=True).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    model.reset_classifier(4)
    with torch.no_grad():
        assert model(torch.randn(1, 1, 32, 32)).shape == (1, 4)
    assert model.num_classes == 4
    assert get_entry(name).paper.mflops or get_entry(name).paper.mparams


@pytest.mark.parametrize("name", [n for n in ALL if get_entry(n).paper.mflops or get_entry(n).paper.mparams])
def test_declared_complexity_matches_the_built_model(name: str) -> None:
    """Every model's FLOPs and params, counted at its paper input size, within its declared tolerance of
    the values its paper publishes (2% where the paper gives the exact structure)."""
    from shufflenet.cost.catalog import model_cost

    paper = get_entry(name).paper
    assert paper.source and 0 < paper.tolerance <= 0.25
    cost = model_cost(name)[1]
    if paper.mflops:
        assert cost.flops / 1e6 == pytest.approx(paper.mflops, rel=paper.tolerance), paper.source
    if paper.mparams:
        # papers round params to 0.1 M: allow that rounding on top of the tolerance
        assert cost.params / 1e6 == pytest.approx(paper.mparams, rel=paper.tolerance, abs=0.05), paper.source


def test_unknown_model_lists_closest_names() -> None:
    with pytest.raises(UnknownModelError, match=r"unknown model 'shufflenet_v2_x1'.*closest: .*shufflenet_v2_x1_0"):
        create_model("shufflenet_v2_x1")
    with pytest.raises(UnknownModelError, match="closest: .*mobilenet_v2"):
        create_model("torchvision:mobilenet_v3")


def test_torchvision_prefix_builds_any_classifier() -> None:
    m = create_model("torchvision:mobilenet_v2", width_mult=0.5, num_classes=10)
    assert m.classifier[-1].out_features == 10 and m.features[0][0].out_channels == 16
    with pytest.raises(UserInputError, match="resnet18"):
        create_model("torchvision:resnet18", bogus_keyword=1)


def test_bad_keyword_names_the_model() -> None:
    with pytest.raises(UserInputError, match="shufflenet_v2_x1_0"):
        create_model("shufflenet_v2_x1_0", bogus=1)


def test_registry_resolves_torchvision_and_timm_names():
    from shufflenet.models import get_entry

    tv = get_entry("torchvision:inception_v3")
    assert tv.library == "torchvision" and tv.external and tv.input_size == 299  # its weights' eval crop
    assert get_entry("torchvision:mobilenet_v2").input_size == 224
    assert not get_entry("shufflenet_v2_x1_0").external
    with pytest.raises(UnknownModelError, match="unknown torchvision model 'resnet1'; closest: resnet18"):
        get_entry("torchvision:resnet1")


def test_timm_names():
    pytest.importorskip("timm")
    from shufflenet.models import get_entry

    model = create_model("timm:mobilenetv3_small_100", num_classes=10)
    assert model.get_classifier().out_features == 10
    assert get_entry("timm:mobilenetv3_small_100").library == "timm"
    with pytest.raises(UnknownModelError, match="unknown timm model"):
        create_model("timm:no_such_net")
    assert get_entry("timm:resnet18.a1_in1k").library == "timm"  # a pretrained tag names the architecture too
    with pytest.raises(UserInputError, match="not downloaded"):
        create_model("timm:mobilenetv3_small_100", pretrained=True)
