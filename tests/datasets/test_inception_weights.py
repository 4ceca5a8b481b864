"""Inception-v3's weights as a run gets them: a local file, or the reference downloaded once into the cache and
verified. The download is exercised from the loopback mirror with a file the test makes; nothing leaves 127.0.0.1."""

import hashlib
from pathlib import Path

import pytest

from gan_pipeline.gan.inception import REFERENCE_URL
from gan_pipeline.pretrained import WeightsUnavailable, cache_dir, download_once, inception_network, inception_weights


@pytest.fixture
def published(tmp_path: Path) -> tuple[Path, str]:
    """A file on the mirror and its SHA-256, as a release page would list them."""
    folder = tmp_path / "release"
    folder.mkdir()
    path = folder / "weights.pth"
    path.write_bytes(b"weights " * 1000)
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_weights_are_downloaded_once_and_a_damaged_copy_is_replaced(serve, published, tmp_path):
    path, sha256 = published
    mirror, cache = serve(path.parent), tmp_path / "cache"
    url = mirror.url("ok") + path.name

    first = download_once(url, sha256, cache)
    assert first == cache / path.name and first.read_bytes() == path.read_bytes()
    assert download_once(url, sha256, cache) == first and mirror.count("ok") == 1  # verified, not fetched again

    first.write_bytes(b"damaged")
    assert download_once(url, sha256, cache).read_bytes() == path.read_bytes() and mirror.count("ok") == 2
    assert [file.name for file in cache.iterdir()] == [path.name]  # no partial file left behind


@pytest.mark.parametrize("behaviour", ["404", "cut"])
def test_an_unreachable_or_broken_download_names_the_address_and_where_to_put_the_file(
    serve, published, tmp_path, behaviour
):
    path, sha256 = published
    mirror, cache = serve(path.parent), tmp_path / "cache"
    url = mirror.url(behaviour) + path.name
    with pytest.raises(WeightsUnavailable) as refused:
        download_once(url, sha256, cache)
    message = str(refused.value)
    assert message.startswith("evaluation.inception is true and Inception-v3's weights are not cached")
    assert f"Fix: download {url} to {cache / path.name}" in message
    assert "set evaluation.inception_weights to its path; or set evaluation.inception to false" in message
    assert not cache.exists() or not any(cache.iterdir())


def test_a_wrong_file_is_not_kept(serve, published, tmp_path):
    path, _ = published
    mirror, cache = serve(path.parent), tmp_path / "cache"
    with pytest.raises(WeightsUnavailable, match="served a different file"):
        download_once(mirror.url("ok") + path.name, "0" * 64, cache)
    assert not any(cache.iterdir())


def test_a_local_file_is_used_as_it_is_and_said_not_to_be_the_reference(inception_weights_file, tmp_path):
    weights = inception_weights(str(inception_weights_file), cache=tmp_path / "unused")
    assert weights.path == inception_weights_file and not weights.reference
    assert inception_network(weights).fc.out_features == 1008
    assert not (tmp_path / "unused").exists()  # a local file needs no cache


def test_a_missing_or_foreign_local_file_stops_with_the_fix(tmp_path):
    missing = tmp_path / "inception.pth"
    with pytest.raises(WeightsUnavailable) as refused:
        inception_weights(str(missing), cache=tmp_path / "cache")
    assert f"evaluation.inception_weights is {missing}, which does not exist" in str(refused.value)
    assert f"Fix: download {REFERENCE_URL} to that path" in str(refused.value)

    missing.write_bytes(b"not weights")
    with pytest.raises(WeightsUnavailable, match=r"inception.pth is not a PyTorch weights file.*\nFix: download"):
        inception_network(inception_weights(str(missing), cache=tmp_path / "cache"))


def test_the_cache_follows_xdg_cache_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_dir() == tmp_path / "gan-pipeline"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir() == Path.home() / ".cache" / "gan-pipeline"
