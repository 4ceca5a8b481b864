from dataclasses import replace

import pytest
import torch
from torch import nn

from gan_pipeline.gan.networks import (
    StretchedTanh,
    architecture_from_dict,
    build_generator,
    build_networks,
    with_spectral_norm,
)
from gan_pipeline.gan.presets import PRESETS, resolve_architecture


def test_article_preset_matches_the_articles_layers():
    generator, discriminator = build_networks(PRESETS["article_dcgan"])
    dense = generator.project[0]
    assert isinstance(dense, nn.Linear) and dense.bias is None
    assert (dense.in_features, dense.out_features) == (100, 7 * 7 * 256)
    deconvs = [m for m in generator.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [(m.out_channels, m.kernel_size, m.stride) for m in deconvs] == [
        (128, (5, 5), (1, 1)),
        (64, (5, 5), (2, 2)),
        (1, (5, 5), (2, 2)),
    ]
    assert all(m.bias is None for m in deconvs)
    assert isinstance(generator.upsample[-1], nn.Tanh)
    convs = [m for m in discriminator.modules() if isinstance(m, nn.Conv2d)]
    assert [(m.out_channels, m.kernel_size, m.stride) for m in convs] == [(64, (5, 5), (2, 2)), (128, (5, 5), (2, 2))]
    assert [m.p for m in discriminator.modules() if isinstance(m, nn.Dropout)] == [0.3, 0.3]
    assert discriminator.logit.out_features == 1


def test_only_the_digits_generators_output_layer_has_a_bias():
    generator, _ = build_networks(PRESETS["digits_dcgan"])
    deconvs = [m for m in generator.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [m.bias is not None for m in deconvs] == [False, False, True]


def test_the_stretched_tanh_reaches_the_extremes_and_passes_gradients_through_its_clamp():
    activation = StretchedTanh(1.2)
    pre = torch.tensor([-3.0, -0.5, 0.0, 0.5, 3.0], requires_grad=True)
    out = activation(pre)
    assert torch.allclose(out, (1.2 * torch.tanh(pre)).clamp(-1, 1))
    assert out[0] == -1 and out[-1] == 1  # finite inputs reach the data's extremes
    out.sum().backward()
    # Clamped pixels keep the stretched tanh's gradient, so D can still pull them back inside.
    assert torch.allclose(pre.grad, 1.2 * (1 - torch.tanh(pre.detach()) ** 2))
    assert pre.grad[0] > 0 and pre.grad[-1] > 0


def test_the_digits_generator_ends_in_a_stretched_tanh_and_scale_one_is_a_plain_tanh():
    generator, _ = build_networks(PRESETS["digits_dcgan"])
    assert isinstance(generator.upsample[-1], StretchedTanh) and generator.upsample[-1].scale == 1.2
    plain, _ = build_networks(resolve_architecture("digits_dcgan", (1, 8, 8), {"generator_output_scale": 1.0}))
    assert isinstance(plain.upsample[-1], nn.Tanh)


def test_the_digits_generator_maps_its_latent_through_two_layers_before_the_projection():
    generator, _ = build_networks(PRESETS["digits_dcgan"])
    generator.eval()
    assert [(m.in_features, m.out_features) for m in generator.mapping if isinstance(m, nn.Linear)] == [(64, 64)] * 2
    latent = torch.randn(4, 64)
    assert torch.equal(generator(latent), generator.upsample(generator.project(generator.mapping(latent))))
    article, _ = build_networks(PRESETS["article_dcgan"])
    assert len(article.mapping) == 0  # the article's G starts at its dense projection


def test_mapping_layers_leave_the_other_layers_initialisation_as_it_was():
    with_mapping = PRESETS["digits_dcgan"]
    torch.manual_seed(0)
    mapped = build_generator(with_mapping)
    torch.manual_seed(0)
    plain = build_generator(replace(with_mapping, mapping_layers=0))
    mapped_state = mapped.state_dict()
    assert all(torch.equal(value, mapped_state[name]) for name, value in plain.state_dict().items())
    assert any(name.startswith("mapping.") for name in mapped_state)


def test_a_negative_mapping_layer_count_is_refused_with_the_key():
    with pytest.raises(ValueError, match="mapping_layers must be >= 0"):
        build_networks(resolve_architecture("digits_dcgan", (1, 8, 8), {"mapping_layers": -1}))


def test_an_output_scale_below_one_is_refused_with_the_key():
    with pytest.raises(ValueError, match="generator_output_scale must be >= 1"):
        build_networks(resolve_architecture("digits_dcgan", (1, 8, 8), {"generator_output_scale": 0.9}))


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_maps_latents_to_images_and_images_to_one_logit(preset):
    arch = PRESETS[preset]
    generator, discriminator = build_networks(arch)
    samples = generator(torch.randn(5, arch.latent_dim))
    assert samples.shape == (5, *arch.sample_shape)
    assert discriminator(samples).shape == (5,)
    if arch.family == "dcgan":
        assert samples.min() >= -1 and samples.max() <= 1


def test_auto_preset_follows_the_data_shape():
    assert resolve_architecture("auto", (1, 8, 8), {}) == PRESETS["digits_dcgan"]
    assert resolve_architecture("auto", (1, 28, 28), {}).latent_dim == 100


def test_an_image_size_the_generator_cannot_produce_is_refused_with_the_fix():
    with pytest.raises(ValueError, match=r"produces 28x28 images .* data is 32x32"):
        build_networks(resolve_architecture("article_dcgan", (1, 32, 32), {}))


def test_unknown_preset_names_the_allowed_ones():
    with pytest.raises(ValueError, match="article_dcgan"):
        resolve_architecture("stylegan9", (1, 8, 8), {})


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_architecture_round_trips_through_a_dict(preset):
    assert architecture_from_dict(PRESETS[preset].to_dict()) == PRESETS[preset]


def test_vector_data_gets_the_mlp_family():
    arch = resolve_architecture("auto", (2,), {"latent_dim": 4})
    generator, discriminator = build_networks(arch)
    samples = generator(torch.randn(7, 4))
    assert samples.shape == (7, 2)
    assert discriminator(samples).shape == (7,)


def test_an_override_the_preset_does_not_have_is_refused():
    with pytest.raises(ValueError, match=r"\['generator_hidden'\] are not fields of 'article_dcgan'"):
        resolve_architecture("article_dcgan", (1, 28, 28), {"generator_hidden": [8]})


def test_spectral_norm_reaches_every_linear_and_convolution_of_any_discriminator():
    _, mlp = build_networks(resolve_architecture("auto", (2,), {}))
    _, conv = build_networks(PRESETS["digits_dcgan"])
    for discriminator, layers in ((mlp, 4), (conv, 3)):
        with_spectral_norm(discriminator)
        parametrized = [m for m in discriminator.modules() if nn.utils.parametrize.is_parametrized(m, "weight")]
        assert len(parametrized) == layers
    assert mlp(torch.randn(5, 2)).shape == (5,)


def test_the_dcgan64_preset_is_pytorch_examples_dcgan_layer_for_layer():
    generator, discriminator = build_networks(resolve_architecture("dcgan64", (3, 64, 64), {}))
    deconvs = [m for m in generator.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding) for m in deconvs] == [
        (512, 256, (4, 4), (2, 2), (1, 1)),
        (256, 128, (4, 4), (2, 2), (1, 1)),
        (128, 64, (4, 4), (2, 2), (1, 1)),
        (64, 3, (4, 4), (2, 2), (1, 1)),
    ]
    assert generator.project[0].out_features == 512 * 4 * 4  # ConvTranspose(nz, 512, 4) on a 1x1 input
    assert sum(isinstance(m, nn.ReLU) for m in generator.modules()) == 4 and isinstance(generator.upsample[-1], nn.Tanh)
    convs = [m for m in discriminator.modules() if isinstance(m, nn.Conv2d)]
    assert [(m.out_channels, m.kernel_size, m.stride) for m in convs] == [
        (c, (4, 4), (2, 2)) for c in (64, 128, 256, 512)
    ]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in discriminator.modules()) == 3  # none after the first conv
    assert {m.negative_slope for m in discriminator.modules() if isinstance(m, nn.LeakyReLU)} == {0.2}
    assert discriminator.logit.in_features == 512 * 4 * 4
    assert 0.015 < convs[1].weight.std().item() < 0.025  # N(0, 0.02), as pytorch/examples initialises


@pytest.mark.parametrize("side", [16, 32, 64, 128, 256])
@pytest.mark.parametrize("channels", [1, 3])
def test_auto_builds_a_dcgan_for_any_power_of_two_side_grey_or_colour(side, channels):
    arch = resolve_architecture("auto", (channels, side, side), {"width": 8})
    generator, discriminator = build_networks(arch)
    images = generator(torch.randn(2, arch.latent_dim))
    assert images.shape == (2, channels, side, side) and discriminator(images).shape == (2,)
    assert arch.generator_channels[-1] == 8 and arch.discriminator_channels[0] == 8  # width: the base channels


def test_a_side_no_preset_is_made_for_names_the_nearest_sizes():
    with pytest.raises(ValueError, match=r"sides? 8, 16, 28, 32, 64, 128, 256 .*the nearest are 32 and 64"):
        resolve_architecture("auto", (3, 48, 48), {})
    assert resolve_architecture("auto", (3, 28, 28), {}).image_shape == (3, 28, 28)  # the article's, in colour


@pytest.mark.parametrize("preset", ["digits_dcgan", "mlp_2d"])
def test_a_packed_discriminator_scores_packs_of_samples_side_by_side(preset):
    arch = PRESETS[preset]
    _, packed = build_networks(arch, packing=2)
    first = next(module for module in packed.modules() if isinstance(module, nn.Conv2d | nn.Linear))
    inputs = first.in_channels if isinstance(first, nn.Conv2d) else first.in_features
    assert inputs == 2 * arch.sample_shape[0]  # two samples' channels (images) or features (vectors)
    torch.manual_seed(0)
    samples = torch.randn(6, *arch.sample_shape)
    packed.eval()
    scores = packed(samples)
    assert scores.shape == (3,)  # one score per pack of two
    changed = samples.clone()
    changed[1] += 1  # the second member of the first pack: only that pack's score moves
    moved = packed(changed) != scores
    assert moved.tolist() == [True, False, False]


def test_the_dcgan28_preset_is_pytorch_examples_design_at_mnists_size():
    arch = PRESETS["dcgan28"]
    assert arch.base_size == 7 and arch.generator_strides == (2, 2) and arch.generator_channels == (128, 64)
    assert arch.discriminator_channels == (64, 128) and arch.generator_activation == "relu"
    generator, discriminator = build_networks(replace(arch, image_shape=(3, 28, 28)))
    images = generator(torch.randn(2, arch.latent_dim))
    assert images.shape == (2, 3, 28, 28) and discriminator(images).shape == (2,)
    assert resolve_architecture("auto", (3, 28, 28), {}) == replace(PRESETS["article_dcgan"], image_shape=(3, 28, 28))
