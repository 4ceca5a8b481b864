from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gan_pipeline.datasets import RawDataset, load_dataset
from gan_pipeline.datasets.image_folder import ImageFolderError


def save_image(path: Path, size: tuple[int, int] = (10, 6), colour: int | tuple[int, int, int] = 200) -> Path:
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


def test_greyscale_is_the_default_at_28_pixels(tmp_path: Path) -> None:
    save_image(tmp_path / "rgb" / "a.png", colour=(10, 200, 30))

    assert load(tmp_path / "rgb").samples.shape == (1, 1, 28, 28)


def test_corrupt_and_non_image_files_are_all_named_in_one_error(tmp_path: Path) -> None:
    root = tmp_path / "images"
    save_image(root / "ok" / "fine.png")
    whole = save_image(root / "ok" / "truncated.png", size=(64, 64), colour=(1, 2, 3)).read_bytes()
    (root / "ok" / "truncated.png").write_bytes(whole[: len(whole) // 2])
    (root / "ok" / "notes.txt").write_text("not an image")
    Image.new("L", (4, 4)).save(root / "ok" / "animation.gif")

    with pytest.raises(ImageFolderError) as error:
        load(root)

    message = str(error.value)
    assert "3 of 4 files" in message
    assert "ok/truncated.png" in message
    assert "ok/notes.txt: not an image file Pillow can identify" in message
    assert "ok/animation.gif: is GIF, expected one of ['JPEG', 'PNG']" in message
    assert "fine.png" not in message
    assert "Fix: delete or replace them" in message


def test_hidden_files_and_folders_are_ignored(tmp_path: Path) -> None:
    save_image(tmp_path / "images" / "a.png")
    (tmp_path / "images" / ".gitkeep").touch()
    (tmp_path / "images" / ".ipynb_checkpoints").mkdir()
    (tmp_path / "images" / ".ipynb_checkpoints" / "junk.txt").write_text("x")

    assert len(load(tmp_path / "images").labels) == 1


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
