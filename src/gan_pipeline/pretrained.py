"""Pretrained weights the evaluation can use: Inception-v3 for FID and KID, never downloaded in the middle of a run.

A local copy (``evaluation.inception_weights``) is used as it is, and checked against the reference's
SHA-256 only to say whether its numbers compare with published ones (the run's tag ``inception_weights``).
Otherwise the reference file is downloaded once into the cache and verified; offline without it, the run
stops before any work with the address and the two places the file may go.
"""

import os
from dataclasses import dataclass
from pathlib import Path

from gan_pipeline.download import Checksum, DownloadError, fetch_file, file_digests
from gan_pipeline.errors import UserError
from gan_pipeline.gan.inception import REFERENCE_SHA256, REFERENCE_URL, InceptionFeatures, load_inception


class WeightsUnavailable(UserError):
    """The weights are neither where the parameters say nor in the cache, could not be downloaded, or are not
    Inception-v3's."""


def cache_dir() -> Path:
    """Where downloaded weights stay: ``$XDG_CACHE_HOME/gan-pipeline``, by default ``~/.cache/gan-pipeline``."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gan-pipeline"


@dataclass(frozen=True)
class InceptionWeights:
    path: Path
    reference: bool  # the published file: FID and KID compare with papers' figures


def inception_weights(local: str | None, cache: Path | None = None) -> InceptionWeights:
    """The weights file to use: ``local`` as it is, else the reference downloaded once into ``cache``."""
    cache = cache or cache_dir()
    if local is None:
        return InceptionWeights(download_once(REFERENCE_URL, REFERENCE_SHA256, cache), reference=True)
    path = Path(local).expanduser()
    if not path.is_file():
        raise WeightsUnavailable(
            f"evaluation.inception_weights is {path}, which does not exist.\nFix: download {REFERENCE_URL} "
            f"to that path, or set evaluation.inception_weights to null to download it into {cache}"
        )
    return InceptionWeights(path, reference=file_digests(path)["sha256"] == REFERENCE_SHA256)


def inception_network(weights: InceptionWeights) -> InceptionFeatures:
    """Inception-v3 with ``weights``; a file that holds anything else is refused with the fix."""
    try:
        return load_inception(weights.path)
    except ValueError as err:
        raise WeightsUnavailable(
            f"evaluation.inception_weights: {err}.\nFix: download {REFERENCE_URL} to {weights.path}, or set "
            "evaluation.inception_weights to null to download it into the cache"
        ) from err


def download_once(url: str, sha256: str, cache: Path) -> Path:
    """``url``'s file in ``cache``, downloaded only when no verified copy is there."""
    folder, _, filename = url.rpartition("/")
    fix = (
        f"download {url} to {cache / filename}, or anywhere and set evaluation.inception_weights to its path; "
        "or set evaluation.inception to false"
    )
    try:
        return fetch_file(filename, [folder], cache, Checksum("sha256", sha256), fix=fix).path
    except DownloadError as err:
        raise WeightsUnavailable(
            f"evaluation.inception is true and Inception-v3's weights are not cached: {err}"
        ) from err
