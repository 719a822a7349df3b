"""The ConvNet matches docs/contracts.md, "Artifacts" and its serving form computes the same numbers."""

from __future__ import annotations

import torch

from services.model import (
    FEATURE_SIZE,
    FLOPS_PER_WINDOW,
    ConvNet,
    ServingNet,
    n_classes_of,
    strip_wrapper_prefix,
)


def _randomised_model(seed: int = 0) -> ConvNet:
    """A model whose BatchNorm running statistics are not the identity (as after training)."""
    torch.manual_seed(seed)
    model = ConvNet()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm1d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


def test_model001_state_dict_keys_and_shapes_follow_design():
    state = ConvNet().state_dict()
    assert state["f.0.weight"].shape == (32, 3, 7)
    assert state["f.4.weight"].shape == (64, 32, 5)
    assert state["f.8.weight"].shape == (128, 64, 3)
    assert state["f.9.running_var"].shape == (128,)
    assert state["cls.0.weight"].shape == (256, 11520)
    assert state["cls.3.weight"].shape == (45, 256)
    assert FEATURE_SIZE == 11520
    assert n_classes_of(state) == 45


def test_model002_forward_gives_one_logit_per_label():
    logits = ConvNet().eval()(torch.zeros(4, 3, 726))
    assert logits.shape == (4, 45)


def test_model003_original_style_state_dict_round_trips(tmp_path):
    model = _randomised_model()
    torch.save(model.state_dict(), tmp_path / "best_model.pth")
    loaded = ConvNet()
    loaded.load_state_dict(torch.load(tmp_path / "best_model.pth", weights_only=True))
    x = torch.randn(2, 3, 726)
    assert torch.equal(loaded.eval()(x), model(x))


def test_model004_data_parallel_prefix_is_stripped():
    state = {"module." + key: value for key, value in ConvNet().state_dict().items()}
    assert set(strip_wrapper_prefix(state)) == set(ConvNet().state_dict())


def test_model005_serving_net_folds_batchnorm_and_normalisation_exactly():
    model = _randomised_model(1)
    mean = torch.tensor([0.05, -0.12, -0.16])
    std = torch.tensor([12.7, 13.3, 13.4])
    net = ServingNet(model, mean, std).eval()
    x = 10 * torch.randn(8, 3, 726)
    with torch.no_grad():
        expected = model((x - mean.reshape(1, 3, 1)) / (std.reshape(1, 3, 1) + 1e-7))
        logits, hidden, contribution = net(x)
    assert torch.allclose(logits, expected, atol=1e-4, rtol=1e-4)
    assert hidden.shape == (8, 256) and contribution.shape == (8, 90)


def test_model006_contribution_sums_to_the_predicted_class_evidence():
    """The per-step contributions add up exactly to logit_c - mean logit (minus bias terms)."""
    model = _randomised_model(2)
    net = ServingNet(model, torch.zeros(3), torch.ones(3)).eval()
    x = torch.randn(5, 3, 726)
    with torch.no_grad():
        logits, hidden, contribution = net(x)
        predicted = logits.argmax(1)
        contrast = net.contrast[predicted]
        bias_terms = (contrast * (hidden > 0)) @ net.fc1_bias + net.fc2.bias[predicted] - net.fc2.bias.mean()
        evidence = logits.gather(1, predicted[:, None])[:, 0] - logits.mean(1)
    assert torch.allclose(contribution.sum(1) + bias_terms, evidence, atol=1e-3)


def test_model007_flops_per_window_is_the_documented_23_mflop():
    assert 23.0e6 < FLOPS_PER_WINDOW < 23.4e6


def test_model008_scale_invariant_model_gives_the_same_label_at_any_amplitude():
    from services.model import make_scale_invariant

    torch.manual_seed(3)
    model = make_scale_invariant(ConvNet()).eval()
    x = torch.randn(6, 3, 726)
    with torch.no_grad():
        big, small = model(x * 40.0), model(x * 0.01)
    assert torch.equal(big.argmax(1), small.argmax(1))
    torch.testing.assert_close(big / 40.0, small / 0.01, rtol=1e-3, atol=1e-5)


def test_model009_window_peak_serving_net_matches_the_training_input():
    from services.model import make_scale_invariant, scale_to_window_peak

    torch.manual_seed(4)
    model = make_scale_invariant(ConvNet()).eval()
    std = torch.tensor([2.0, 2.1, 2.2])
    net = ServingNet(model, torch.zeros(3), std, "window_peak").eval()
    x = 5 * torch.randn(4, 3, 726)
    with torch.no_grad():
        expected = model(scale_to_window_peak(x / (std.reshape(1, 3, 1) + 1e-7)))
        logits, _, _ = net(x)
    torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-4)
