"""A folder of PNG/JPEG images, one sub-folder per class or flat, as fixed-size uint8 images.

Every file is opened before anything is returned, and all the files that are not readable
PNG/JPEG images are reported together, so one run lists everything to clean up.
"""

import hashlib
import io
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal

import numpy as np
import PIL
from PIL import Image, ImageOps, UnidentifiedImageError
from pydantic import PositiveInt

from gan_pipeline.datasets import RawDataset, SourceError, SourceOptions, option_key, register_dataset

FORMATS = {"PNG", "JPEG"}
PIL_MODES = {1: "L", 3: "RGB"}  # channels -> Pillow mode
MAX_LISTED = 20  # bad files named in one error; the rest are counted


class ImageFolderError(SourceError, ValueError):
    """The folder cannot be turned into a dataset as it stands."""


class ImageFolderOptions(SourceOptions):
    # The folder; defaults to <raw_dir>/image_folder. Sub-folders are classes (sorted names -> 0, 1, ...).
    path: Path | None = None
    # Images are centre-cropped to a square and resized to image_size x image_size.
    image_size: PositiveInt = 28
    # 1 for greyscale, 3 for RGB.
    channels: Literal[1, 3] = 1


@register_dataset(
    "image_folder",
    options=ImageFolderOptions,
    sample_shape=lambda options: (options.channels, options.image_size, options.image_size),
)
def load_image_folder(options: ImageFolderOptions, raw_dir: Path) -> RawDataset:
    root = options.path or raw_dir / "image_folder"
    files, labels, class_names = list_images(root)
    content = hashlib.sha256()  # over relative paths and bytes: changes when any image or label does
    images, bad = [], []
    for file in files:
        data = file.read_bytes()
        content.update(file.relative_to(root).as_posix().encode() + b"\0" + hashlib.sha256(data).digest())
        try:
            images.append(decode_image(data, options.image_size, options.channels))
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
            bad.append(f"{file.relative_to(root)}: {error}")
    if bad:
        raise ImageFolderError(unreadable_files_message(root, bad, len(files)))
    return RawDataset(
        samples=np.stack(images),  # (N, C, H, W)
        labels=np.asarray(labels, dtype=np.int64),
        class_names=tuple(class_names),
        card={
            "source": "image_folder",
            "path": str(root),
            "classes": ",".join(class_names),
            "content_sha256": content.hexdigest(),
            "pillow_version": PIL.__version__,
        },
    )


def list_images(root: Path) -> tuple[list[Path], list[int], list[str]]:
    """Files, their labels and class names: sorted sub-folder names, or one class for a flat folder."""
    if not root.is_dir():
        raise ImageFolderError(
            f"image folder {root} does not exist: put the images there (one sub-folder per class, or "
            f"all in the folder itself) or set {option_key('image_folder', 'path')} to where they are"
        )
    entries = sorted(visible(root.iterdir(), root))
    class_dirs = [entry for entry in entries if entry.is_dir()]
    top_files = [entry for entry in entries if entry.is_file()]
    if not class_dirs:
        if not top_files:
            raise ImageFolderError(f"image folder {root} holds no images: add PNG or JPEG files")
        return top_files, [0] * len(top_files), [root.name]
    if top_files:
        names = ", ".join(file.name for file in top_files[:MAX_LISTED])
        raise ImageFolderError(
            f"{root} has class sub-folders and also files outside them ({names}): move each file into its class folder"
        )
    per_class = [sorted(path for path in visible(folder.rglob("*"), folder) if path.is_file()) for folder in class_dirs]
    empty = [folder.name for folder, members in zip(class_dirs, per_class, strict=True) if not members]
    if empty:
        raise ImageFolderError(f"class folders {empty} in {root} hold no images: add images or remove them")
    files = [path for members in per_class for path in members]
    labels = [label for label, members in enumerate(per_class) for _ in members]
    return files, labels, [folder.name for folder in class_dirs]


def visible(paths: Iterable[Path], root: Path) -> Iterator[Path]:
    """Skip hidden entries (.gitkeep, .DS_Store, .ipynb_checkpoints/): they are tooling, not data."""
    return (path for path in paths if not any(part.startswith(".") for part in path.relative_to(root).parts))


def decode_image(data: bytes, size: int, channels: int) -> np.ndarray:
    """One PNG/JPEG as ``(channels, size, size)`` uint8, decoded fully so a truncated file fails here."""
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ValueError("not an image file Pillow can identify") from None
    with image:
        if image.format not in FORMATS:
            raise ValueError(f"is {image.format}, expected one of {sorted(FORMATS)}")
        image.load()
        square = ImageOps.fit(image.convert(PIL_MODES[channels]), (size, size), Image.Resampling.LANCZOS)
    return np.asarray(square, dtype=np.uint8).reshape(size, size, channels).transpose(2, 0, 1)


def unreadable_files_message(root: Path, bad: list[str], total: int) -> str:
    listed = "\n".join(f"  - {line}" for line in bad[:MAX_LISTED])
    more = f"\n  ... and {len(bad) - MAX_LISTED} more" if len(bad) > MAX_LISTED else ""
    return (
        f"{len(bad)} of {total} files in {root} are not readable PNG/JPEG images:\n{listed}{more}\n"
        "Fix: delete or replace them (hidden files, starting with '.', are ignored)"
    )
