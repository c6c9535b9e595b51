import numpy as np
import pytest
import torch
from PIL import Image

from training.ml.config import IMAGENET_MEAN, IMAGENET_STD
from training.ml.transforms import (
    eval_batch_transform,
    eval_transform,
    to_pixels,
    to_rgb,
    train_transform,
)


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


def pixels_batch(n=4, size=64):
    generator = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=generator)


@pytest.mark.parametrize("augmentation", ["none", "light", "strong"])
def test_train_transform_keeps_the_batch_shape_and_the_pixel_range(augmentation):
    batch = train_transform(augmentation)(pixels_batch(), torch.Generator().manual_seed(1))

    assert batch.shape == (4, 3, 64, 64) and batch.dtype == torch.float32
    lowest = (0 - max(IMAGENET_MEAN)) / min(IMAGENET_STD)
    highest = (1 - min(IMAGENET_MEAN)) / min(IMAGENET_STD)
    assert lowest - 1e-4 <= batch.min() and batch.max() <= highest + 1e-4


def test_train_transform_is_reproducible_with_the_same_generator():
    transform = train_transform("strong")

    first = transform(pixels_batch(), torch.Generator().manual_seed(3))
    second = transform(pixels_batch(), torch.Generator().manual_seed(3))

    assert torch.equal(first, second)


def test_train_transform_without_augmentation_equals_the_eval_transforms():
    pixels = pixels_batch(n=1)
    image = Image.fromarray(pixels[0].permute(1, 2, 0).numpy())

    from_batch = train_transform("none")(pixels)[0]

    assert torch.allclose(from_batch, eval_batch_transform()(pixels)[0])
    assert torch.allclose(from_batch, eval_transform(64)(image), atol=1e-6)


def test_to_pixels_resizes_any_image_to_a_uint8_square():
    pixels = to_pixels(Image.new("L", (100, 50), 77), 64)

    assert pixels.shape == (3, 64, 64) and pixels.dtype == torch.uint8
    assert int(pixels.min()) == int(pixels.max()) == 77


def test_train_transform_refuses_an_unknown_augmentation():
    with pytest.raises(ValueError, match="augmentation"):
        train_transform("heavy")
