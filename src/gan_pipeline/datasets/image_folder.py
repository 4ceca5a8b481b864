"""A folder of PNG, JPEG or WebP images, one sub-folder per class or flat, as fixed-size uint8 images.

A flat folder is one class: unlabelled data. Unless configured, the side and the channels are what the
images are (one square size, colour if any image is). Images of other shapes are centre-cropped (or
resized) to the side; palette, alpha and greyscale images are converted to the channels, transparent
pixels landing on white. Every file is decoded into one preallocated array, with a progress bar, so
memory holds the result and one image; all the files that are not readable images are reported
together, so one run lists everything to clean up.
"""

import hashlib
import io
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal

import numpy as np
import PIL
from PIL import Image, ImageOps, UnidentifiedImageError
from pydantic import PositiveInt
from tqdm.auto import tqdm

from gan_pipeline.datasets import RawDataset, SourceError, SourceOptions, option_key, register_dataset

FORMATS = {"PNG", "JPEG", "WEBP"}
PIL_MODES = {1: "L", 3: "RGB"}  # channels -> Pillow mode
GREY_MODES = {"1", "L", "LA", "I", "I;16", "F"}  # Pillow modes without colour
MAX_LISTED = 20  # bad files named in one error; the rest are counted
BACKGROUND = (255, 255, 255)  # what transparent pixels become


class ImageFolderError(SourceError, ValueError):
    """The folder cannot be turned into a dataset as it stands."""


class ImageFolderOptions(SourceOptions):
    # The folder; defaults to <raw_dir>/image_folder. Sub-folders are classes (sorted names -> 0, 1, ...).
    path: Path | None = None
    # The side images are brought to; null: the images' own, when they are all one square size.
    image_size: PositiveInt | None = None
    # 1 for greyscale, 3 for RGB; null: 3 if any image is in colour, else 1.
    channels: Literal[1, 3] | None = None
    # Non-square images: crop (the centred square, then resize) or resize (squeezed to a square).
    fit: Literal["crop", "resize"] = "crop"
    # The dataset's name (its registered model is gan-generator-<name>); null: the folder's name.
    name: str | None = None
    progress_bar: bool = True


def folder(options: ImageFolderOptions, raw_dir: Path) -> Path:
    return options.path or raw_dir / "image_folder"


def dataset_name(options: ImageFolderOptions, raw_dir: Path) -> str:
    """A name that tells two folders apart: the configured one, else the folder's, made safe for model names."""
    return options.name or re.sub(r"[^a-z0-9_.-]+", "-", folder(options, raw_dir).resolve().name.lower()).strip("-")


def image_shape(options: ImageFolderOptions, raw_dir: Path) -> tuple[int, int, int] | None:
    """(channels, side, side), reading the images' headers for what is not configured; None without the folder."""
    if options.image_size is not None and options.channels is not None:
        return options.channels, options.image_size, options.image_size
    root = folder(options, raw_dir)
    if not root.is_dir():
        return None  # ingestion says what is missing
    sizes, colour = survey(list_images(root)[0])
    side = options.image_size or square_side(root, sizes)
    return options.channels or (3 if colour else 1), side, side


def survey(files: list[Path]) -> tuple[Counter[tuple[int, int]], bool]:
    """How many images of each size, and whether any is in colour, from their headers alone."""
    sizes: Counter[tuple[int, int]] = Counter()
    colour = False
    for file in files:
        try:
            with Image.open(file) as image:
                if image.format not in FORMATS:
                    continue  # decoding reports it
                sizes[image.size] += 1
                colour |= image.mode not in GREY_MODES
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
            continue  # decoding reports it
    return sizes, colour


def square_side(root: Path, sizes: Counter[tuple[int, int]]) -> int:
    """The images' one square side; an error listing the sizes found when they have none."""
    if len(sizes) != 1 or len({*next(iter(sizes))}) != 1:
        found = ", ".join(f"{w}x{h} ({count} files)" for (w, h), count in sizes.most_common(MAX_LISTED))
        raise ImageFolderError(
            f"the images in {root} are not all one square size ({found}): set "
            f"{option_key('image_folder', 'image_size')} to the side to bring them to (with "
            f"{option_key('image_folder', 'fit')} crop or resize)"
        )
    (side, _), _ = sizes.most_common(1)[0]
    return side


def count_images(options: ImageFolderOptions, raw_dir: Path) -> int | None:
    root = folder(options, raw_dir)
    return len(list_images(root)[0]) if root.is_dir() else None


@register_dataset(
    "image_folder",
    options=ImageFolderOptions,
    num_samples=count_images,
    sample_shape=image_shape,
    size_option="image_size",
)
def load_image_folder(options: ImageFolderOptions, raw_dir: Path) -> RawDataset:
    root = folder(options, raw_dir)
    files, labels, class_names = list_images(root)
    channels, side, _ = image_shape(options, raw_dir)
    samples = np.empty((len(files), channels, side, side), dtype=np.uint8)  # (N, C, H, W), filled in place
    content = hashlib.sha256()  # over relative paths and bytes: changes when any image or label does
    bad = []
    for index, file in enumerate(tqdm(files, desc="reading images", unit="image", disable=not options.progress_bar)):
        data = file.read_bytes()
        content.update(file.relative_to(root).as_posix().encode() + b"\0" + hashlib.sha256(data).digest())
        try:
            samples[index] = decode_image(data, side, channels, options.fit)
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
            bad.append(f"{file.relative_to(root)}: {error}")
    if bad:
        raise ImageFolderError(unreadable_files_message(root, bad, len(files)))
    return RawDataset(
        samples=samples,
        labels=np.asarray(labels, dtype=np.int64),
        class_names=tuple(class_names),
        name=dataset_name(options, raw_dir),
        card={
            "source": "image_folder",
            "path": str(root),
            "classes": ",".join(class_names),
            "image_size": side,
            "channels": channels,
            "fit": options.fit,
            "images_per_class": ",".join(f"{name}:{labels.count(label)}" for label, name in enumerate(class_names)),
            "skipped": skipped_entries(root),
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
    refuse_links_out_of(root, entries)
    class_dirs = [entry for entry in entries if entry.is_dir()]
    top_files = [entry for entry in entries if entry.is_file()]
    if not class_dirs:
        if not top_files:
            raise ImageFolderError(f"image folder {root} holds no images: add PNG, JPEG or WebP files")
        return top_files, [0] * len(top_files), [root.name]
    if top_files:
        names = ", ".join(file.name for file in top_files[:MAX_LISTED])
        raise ImageFolderError(
            f"{root} has class sub-folders and also files outside them ({names}): move each file into its class folder"
        )
    per_class = [sorted(path for path in visible(folder.rglob("*"), folder) if path.is_file()) for folder in class_dirs]
    refuse_links_out_of(root, [path for members in per_class for path in members])
    empty = [folder.name for folder, members in zip(class_dirs, per_class, strict=True) if not members]
    if empty:
        raise ImageFolderError(f"class folders {empty} in {root} hold no images: add images or remove them")
    files = [path for members in per_class for path in members]
    labels = [label for label, members in enumerate(per_class) for _ in members]
    return files, labels, [folder.name for folder in class_dirs]


def refuse_links_out_of(root: Path, paths: list[Path]) -> None:
    """Nothing is read from outside the folder a user named: links that resolve out of it are refused, by name
    (links that stay inside it are followed)."""
    inside = root.resolve()
    escaping = [path for path in paths if not path.resolve().is_relative_to(inside)]
    if escaping:
        listed = ", ".join(f"{path.relative_to(root)} -> {path.resolve()}" for path in escaping[:MAX_LISTED])
        raise ImageFolderError(
            f"{len(escaping)} entries of {root} are symbolic links to outside it ({listed}): nothing is read from "
            "outside the image folder. Copy those images into it, or remove the links"
        )


def skipped_entries(root: Path) -> str:
    """What the card says was left out, and why: only hidden entries are (anything else is read or refused)."""
    hidden = sorted(path.relative_to(root).as_posix() for path in root.rglob(".*"))
    hidden = [name for name in hidden if not any(name.startswith(f"{other}/") for other in hidden)]  # not twice
    if not hidden:
        return "none"
    listed = ", ".join(hidden[:MAX_LISTED]) + (", ..." if len(hidden) > MAX_LISTED else "")
    return f"{len(hidden)} hidden entries (tooling, not data): {listed}"


def visible(paths: Iterable[Path], root: Path) -> Iterator[Path]:
    """Skip hidden entries (.gitkeep, .DS_Store, .ipynb_checkpoints/): they are tooling, not data."""
    return (path for path in paths if not any(part.startswith(".") for part in path.relative_to(root).parts))


def decode_image(data: bytes, size: int, channels: int, fit: str) -> np.ndarray:
    """One image as ``(channels, size, size)`` uint8, decoded fully so a truncated file fails here."""
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ValueError("not an image file Pillow can identify") from None
    with image:
        if image.format not in FORMATS:
            raise ValueError(f"is {image.format}, expected one of {sorted(FORMATS)}")
        image.load()
        flat = flattened(eight_bit(image)).convert(PIL_MODES[channels])
        if fit == "crop":
            square = ImageOps.fit(flat, (size, size), Image.Resampling.LANCZOS)
        else:
            square = flat.resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(square, dtype=np.uint8).reshape(size, size, channels).transpose(2, 0, 1)


def eight_bit(image: Image.Image) -> Image.Image:
    """16-bit greyscale scaled to 8 bits; Pillow's own conversion clips every value above 255 to white."""
    if image.mode not in ("I;16", "I;16L", "I;16B", "I"):
        return image
    values = np.asarray(image, dtype=np.int64)
    return Image.fromarray(np.clip(np.round(values / 257), 0, 255).astype(np.uint8), mode="L")


def flattened(image: Image.Image) -> Image.Image:
    """The image without transparency: alpha (or a palette's transparent colour) composited on white."""
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if "A" not in image.getbands():
        return image
    background = Image.new("RGBA", image.size, (*BACKGROUND, 255))
    return Image.alpha_composite(background, image.convert("RGBA")).convert("RGB")


def unreadable_files_message(root: Path, bad: list[str], total: int) -> str:
    listed = "\n".join(f"  - {line}" for line in bad[:MAX_LISTED])
    more = f"\n  ... and {len(bad) - MAX_LISTED} more" if len(bad) > MAX_LISTED else ""
    return (
        f"{len(bad)} of {total} files in {root} are not readable PNG, JPEG or WebP images:\n{listed}{more}\n"
        "Fix: delete or replace them (hidden files, starting with '.', are ignored)"
    )
