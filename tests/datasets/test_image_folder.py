from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gan_pipeline.datasets import RawDataset, load_dataset
from gan_pipeline.datasets.image_folder import ImageFolderError


def save_image(path: Path, size: tuple[int, int] = (10, 10), colour: int | tuple[int, int, int] = 200) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = "L" if isinstance(colour, int) else "RGB"
    Image.new(mode, size, colour).save(path)
    return path


def load(root: Path, raw_dir: Path | None = None, **options) -> RawDataset:
    return load_dataset("image_folder", {"path": str(root), **options}, raw_dir or root.parent)


def test_class_sub_folders_become_labels_in_sorted_name_order(tmp_path: Path) -> None:
    save_image(tmp_path / "images" / "zebra" / "a.png")
    save_image(tmp_path / "images" / "cat" / "b.jpg")
    save_image(tmp_path / "images" / "cat" / "nested" / "c.jpeg")

    raw = load(tmp_path / "images")

    assert raw.labels.tolist() == [0, 0, 1]
    assert raw.labels.dtype == np.int64
    assert raw.card["classes"] == "cat,zebra"


def test_a_flat_folder_is_a_single_class(tmp_path: Path) -> None:
    for name in ["a.png", "b.png"]:
        save_image(tmp_path / "flat" / name)

    raw = load(tmp_path / "flat")

    assert raw.labels.tolist() == [0, 0]


def test_images_are_cropped_resized_and_converted_to_the_requested_channels(tmp_path: Path) -> None:
    save_image(tmp_path / "mixed" / "grey.png", size=(40, 20), colour=128)
    save_image(tmp_path / "mixed" / "red.jpg", size=(7, 9), colour=(255, 0, 0))

    raw = load(tmp_path / "mixed", image_size=16, channels=3)

    assert raw.samples.shape == (2, 3, 16, 16)
    assert raw.samples.dtype == np.uint8
    np.testing.assert_array_equal(raw.samples[0], 128)
    assert raw.samples[1, 0].min() > 240
    assert raw.samples[1, 1:].max() < 15


def test_side_and_channels_default_to_what_the_images_are(tmp_path: Path) -> None:
    save_image(tmp_path / "grey" / "a.png", size=(12, 12))
    assert load(tmp_path / "grey").samples.shape == (1, 1, 12, 12)
    save_image(tmp_path / "mixed" / "grey.png", size=(12, 12))
    save_image(tmp_path / "mixed" / "colour.png", size=(12, 12), colour=(10, 200, 30))
    colour = load(tmp_path / "mixed")
    assert colour.samples.shape == (2, 3, 12, 12)
    assert (colour.card["image_size"], colour.card["channels"]) == (12, 3)


def test_images_of_several_sizes_need_a_side_and_the_error_lists_the_sizes_found(tmp_path: Path) -> None:
    for index, size in enumerate([(64, 64), (64, 64), (32, 32), (50, 40)]):
        save_image(tmp_path / "photos" / f"{index}.png", size=size)
    with pytest.raises(
        ImageFolderError, match=r"not all one square size \(64x64 \(2 files\), 32x32 \(1 files\), 50x40"
    ):
        load(tmp_path / "photos")
    assert load(tmp_path / "photos", image_size=32).samples.shape == (4, 1, 32, 32)


def test_webp_palette_and_alpha_images_become_plain_rgb_with_transparency_on_white(tmp_path: Path) -> None:
    root = tmp_path / "sprites"
    root.mkdir()
    Image.new("RGB", (8, 8), (0, 0, 255)).save(root / "blue.webp", lossless=True)
    see_through = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    see_through.putpixel((0, 0), (255, 0, 0, 255))
    see_through.save(root / "alpha.png")
    palette = Image.new("P", (8, 8), 1)
    palette.putpalette([0, 0, 0, 0, 255, 0])  # index 0 black, index 1 green
    palette.save(root / "palette.png", transparency=0)

    raw = load(root)

    alpha, blue, green = raw.samples  # sorted file names
    assert raw.samples.shape == (3, 3, 8, 8)
    assert alpha[:, 0, 0].tolist() == [255, 0, 0] and alpha[:, 4, 4].tolist() == [255, 255, 255]
    assert blue[:, 4, 4].tolist() == [0, 0, 255] and green[:, 4, 4].tolist() == [0, 255, 0]


def test_non_square_images_are_cropped_to_their_centre_or_resized_whole(tmp_path: Path) -> None:
    wide = Image.new("L", (30, 10), 0)
    wide.paste(255, (0, 0, 10, 10))  # a white left third
    path = tmp_path / "wide" / "a.png"
    path.parent.mkdir()
    wide.save(path)

    cropped = load(tmp_path / "wide", image_size=10).samples[0, 0]
    squeezed = load(tmp_path / "wide", image_size=10, fit="resize").samples[0, 0]

    assert cropped.max() < 20  # the centre square is black
    assert squeezed[:, :2].min() > 230 and squeezed[:, -3:].max() < 20  # the white third on the left


def test_the_dataset_is_named_after_its_folder_unless_named(tmp_path: Path) -> None:
    save_image(tmp_path / "Holiday Photos" / "a.png")
    assert load(tmp_path / "Holiday Photos").name == "holiday-photos"
    assert load(tmp_path / "Holiday Photos", name="beach").name == "beach"


def test_corrupt_and_non_image_files_are_all_named_in_one_error(tmp_path: Path) -> None:
    root = tmp_path / "images"
    save_image(root / "ok" / "fine.png")
    whole = save_image(root / "ok" / "truncated.png", size=(64, 64), colour=(1, 2, 3)).read_bytes()
    (root / "ok" / "truncated.png").write_bytes(whole[: len(whole) // 2])
    (root / "ok" / "notes.txt").write_text("not an image")
    Image.new("L", (4, 4)).save(root / "ok" / "animation.gif")

    with pytest.raises(ImageFolderError) as error:
        load(root, image_size=10)

    message = str(error.value)
    assert "3 of 4 files" in message
    assert "ok/truncated.png" in message
    assert "ok/notes.txt: not an image file Pillow can identify" in message
    assert "ok/animation.gif: is GIF, expected one of ['JPEG', 'PNG', 'WEBP']" in message
    assert "fine.png" not in message
    assert "Fix: delete or replace them" in message


def test_hidden_files_and_folders_are_ignored(tmp_path: Path) -> None:
    save_image(tmp_path / "images" / "a.png")
    (tmp_path / "images" / ".gitkeep").touch()
    (tmp_path / "images" / ".ipynb_checkpoints").mkdir()
    (tmp_path / "images" / ".ipynb_checkpoints" / "junk.txt").write_text("x")

    dataset = load(tmp_path / "images")

    assert len(dataset.labels) == 1
    assert dataset.card["skipped"] == "2 hidden entries (tooling, not data): .gitkeep, .ipynb_checkpoints"


def test_a_folder_without_images_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / ".gitkeep").touch()

    with pytest.raises(ImageFolderError, match="holds no images"):
        load(tmp_path / "empty")


def test_an_empty_class_folder_is_an_error(tmp_path: Path) -> None:
    save_image(tmp_path / "images" / "cat" / "a.png")
    (tmp_path / "images" / "dog").mkdir()

    with pytest.raises(ImageFolderError, match=r"class folders \['dog'\]"):
        load(tmp_path / "images")


def test_files_beside_class_folders_are_an_error(tmp_path: Path) -> None:
    save_image(tmp_path / "images" / "cat" / "a.png")
    save_image(tmp_path / "images" / "stray.png")

    with pytest.raises(ImageFolderError, match=r"files outside them \(stray\.png\)"):
        load(tmp_path / "images")


def test_a_missing_folder_names_the_path_option(tmp_path: Path) -> None:
    with pytest.raises(ImageFolderError, match=r"set data_ingestion\.sources\.image_folder\.path"):
        load(tmp_path / "nowhere")


def test_the_folder_defaults_to_image_folder_under_raw_dir(tmp_path: Path) -> None:
    save_image(tmp_path / "image_folder" / "a.png")

    raw = load_dataset("image_folder", {}, tmp_path)

    assert raw.card["path"] == str(tmp_path / "image_folder")


def test_the_card_digest_changes_when_an_image_changes(tmp_path: Path) -> None:
    image = save_image(tmp_path / "images" / "a.png")
    before = load(tmp_path / "images").card["content_sha256"]
    save_image(image, colour=10)

    assert load(tmp_path / "images").card["content_sha256"] != before


@pytest.mark.parametrize("layout", ["file", "class folder", "file in a class folder"])
def test_symbolic_links_out_of_the_folder_are_refused_by_name(tmp_path: Path, layout: str) -> None:
    outside = save_image(tmp_path / "elsewhere" / "secret.png")
    root = tmp_path / "images"
    if layout == "file":
        save_image(root / "a.png")
        (root / "escape.png").symlink_to(outside)
    elif layout == "class folder":
        save_image(root / "cat" / "a.png")
        (root / "dog").symlink_to(outside.parent, target_is_directory=True)
    else:
        save_image(root / "cat" / "a.png")
        (root / "cat" / "escape.png").symlink_to(outside)

    with pytest.raises(ImageFolderError, match=r"1 entries of .* are symbolic links to outside it \(.*-> .*elsewhere"):
        load(root)


def test_links_that_stay_inside_the_folder_are_followed(tmp_path: Path) -> None:
    image = save_image(tmp_path / "images" / "cat" / "a.png")
    (tmp_path / "images" / "cat" / "again.png").symlink_to(image)

    assert load(tmp_path / "images").labels.tolist() == [0, 0]


def test_16_bit_greyscale_is_scaled_to_8_bits_not_clipped(tmp_path: Path) -> None:
    ramp = np.linspace(0, 65535, 16 * 16).reshape(16, 16).astype(np.uint16)
    (tmp_path / "deep").mkdir()
    Image.fromarray(ramp).save(tmp_path / "deep" / "ramp.png")
    assert Image.open(tmp_path / "deep" / "ramp.png").mode.startswith("I")

    pixels = load(tmp_path / "deep").samples[0, 0].astype(int)

    assert abs(pixels - np.round(ramp / 257)).max() <= 1
    assert (pixels == 255).mean() < 0.01  # Pillow's own conversion left a quarter of them at white


def test_the_card_counts_the_images_of_each_class(tmp_path: Path) -> None:
    for name in ("a.png", "b.png"):
        save_image(tmp_path / "images" / "cat" / name)
    save_image(tmp_path / "images" / "dog" / "c.png")

    card = load(tmp_path / "images").card
    assert card["images_per_class"] == "cat:2,dog:1"
    assert card["skipped"] == "none"
