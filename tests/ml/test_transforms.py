import numpy as np
import pytest
import torch
from PIL import Image

from training.ml.transforms import eval_transform, to_rgb, train_transform


def pixel(img, xy=(0, 0)):
    return img.getpixel(xy)


def test_it_turns_grayscale_into_equal_rgb_channels():
    rgb = to_rgb(Image.new("L", (4, 4), 77))

    assert rgb.mode == "RGB"
    assert pixel(rgb) == (77, 77, 77)


def test_it_puts_transparent_areas_of_la_images_on_white():
    rgb = to_rgb(Image.new("LA", (4, 4), (0, 0)))

    assert pixel(rgb) == (255, 255, 255)


def test_it_puts_transparent_areas_of_rgba_images_on_white_and_keeps_opaque_ones():
    img = Image.new("RGBA", (2, 1), (200, 0, 0, 0))
    img.putpixel((1, 0), (200, 0, 0, 255))

    rgb = to_rgb(img)

    assert pixel(rgb, (0, 0)) == (255, 255, 255)
    assert pixel(rgb, (1, 0)) == (200, 0, 0)


def test_it_maps_palette_images_to_their_colours():
    img = Image.new("P", (4, 4), 1)
    img.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)

    assert pixel(to_rgb(img)) == (10, 20, 30)


def test_it_puts_the_transparent_palette_colour_on_white():
    img = Image.new("P", (4, 4), 1)
    img.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    img.info["transparency"] = 1

    assert pixel(to_rgb(img)) == (255, 255, 255)


def test_it_converts_cmyk():
    assert pixel(to_rgb(Image.new("CMYK", (4, 4), (0, 0, 0, 0)))) == (255, 255, 255)
    assert pixel(to_rgb(Image.new("CMYK", (4, 4), (0, 255, 255, 0)))) == (255, 0, 0)


def test_it_scales_16_bit_images_down_instead_of_clipping_them():
    img = Image.fromarray(np.array([[0, 32768, 65535]], dtype=np.uint16))
    assert img.mode.startswith("I;16")

    rgb = to_rgb(img)

    assert [pixel(rgb, (x, 0)) for x in range(3)] == [(0, 0, 0), (128, 128, 128), (255,) * 3]


def test_it_scales_32_bit_images_holding_16_bit_values():
    img = Image.fromarray(np.array([[0, 65535]], dtype=np.int32))
    assert img.mode == "I"

    rgb = to_rgb(img)

    assert pixel(rgb, (1, 0)) == (255, 255, 255)


def test_it_leaves_8_bit_values_in_32_bit_images_alone():
    img = Image.fromarray(np.array([[0, 200]], dtype=np.int32))

    assert pixel(to_rgb(img), (1, 0)) == (200, 200, 200)


def test_eval_transform_makes_a_normalised_square_tensor():
    tensor = eval_transform(64)(Image.new("RGB", (100, 50), (124, 116, 104)))

    assert tensor.shape == (3, 64, 64)
    # That colour is the ImageNet mean, so it normalises to about zero.
    assert tensor.abs().max() < 0.01


@pytest.mark.parametrize("augmentation", ["none", "light"])
def test_train_transform_makes_tensors_of_the_model_input_size(augmentation):
    torch.manual_seed(0)

    tensor = train_transform(64, augmentation)(Image.new("RGB", (80, 90), "white"))

    assert tensor.shape == (3, 64, 64)


def test_train_transform_refuses_an_unknown_augmentation():
    with pytest.raises(ValueError, match="augmentation"):
        train_transform(64, "heavy")
