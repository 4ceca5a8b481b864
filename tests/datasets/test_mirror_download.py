import subprocess
import sys
import time
from pathlib import Path

import pytest

from gan_pipeline.download import (
    Checksum,
    ChecksumError,
    DownloadError,
    RetryPolicy,
    fetch_file,
    mirror_url,
    verify_file,
)

LABELS = "t10k-labels-idx1-ubyte.gz"
IMAGES = "t10k-images-idx3-ubyte.gz"  # 1.6 MB: more than one read chunk
FAST = RetryPolicy(attempts=2, backoff_s=0.01, timeout_s=0.5)


@pytest.fixture
def expected(published_sha256: dict[str, str]) -> Checksum:
    return Checksum("sha256", published_sha256[LABELS])


def fetch(name: str, mirrors: list[str], folder: Path, expected: Checksum, retry: RetryPolicy = FAST):
    return fetch_file(name, mirrors, folder, expected, retry=retry, progress_bar=False)


def leftovers(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.glob(".*.part"))


def partial_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.glob(".*.part"))


def test_a_file_is_downloaded_verified_and_renamed_into_place(mirror, mnist_dir, tmp_path, expected) -> None:
    fetched = fetch(LABELS, [mirror.url("ok")], tmp_path / "mnist", expected)

    assert fetched.path == tmp_path / "mnist" / LABELS
    assert fetched.path.read_bytes() == (mnist_dir / LABELS).read_bytes()
    assert fetched.digests["sha256"] == expected.hexdigest
    assert fetched.digests["md5"] == "ec29112dd5afa0611ce80d1b7f02629c"
    assert leftovers(tmp_path / "mnist") == []


def test_a_verified_file_already_in_place_is_not_downloaded_again(mirror, tmp_path, expected) -> None:
    fetch(LABELS, [mirror.url("ok")], tmp_path, expected)
    fetch(LABELS, [mirror.url("ok")], tmp_path, expected)

    assert mirror.count("ok") == 1


def test_a_file_in_place_that_fails_verification_is_downloaded_again(mirror, mnist_dir, tmp_path, expected) -> None:
    (tmp_path / LABELS).write_bytes(b"left over from an older release")

    fetched = fetch(LABELS, [mirror.url("ok")], tmp_path, expected)

    assert mirror.count("ok") == 1
    assert fetched.path.read_bytes() == (mnist_dir / LABELS).read_bytes()


def test_a_mirror_answering_404_is_asked_once_and_the_next_mirror_is_used(mirror, tmp_path, expected) -> None:
    fetch(LABELS, [mirror.url("404"), mirror.url("ok")], tmp_path, expected)

    assert (mirror.count("404"), mirror.count("ok")) == (1, 1)


def test_a_mirror_answering_500_is_retried_with_exponential_backoff(mirror, tmp_path, expected, monkeypatch) -> None:
    delays: list[float] = []
    monkeypatch.setattr("gan_pipeline.download.time.sleep", delays.append)

    fetch(LABELS, [mirror.url("500"), mirror.url("ok")], tmp_path, expected, RetryPolicy(4, backoff_s=0.5))

    assert mirror.count("500") == 4
    assert delays == [0.5, 1.0, 2.0]


def test_a_mirror_that_hangs_times_out_and_the_next_mirror_is_used(mirror, tmp_path, expected) -> None:
    started = time.monotonic()
    fetch(LABELS, [mirror.url("hang"), mirror.url("ok")], tmp_path, expected, RetryPolicy(1, timeout_s=0.2))

    assert time.monotonic() - started < 5
    assert (mirror.count("hang"), mirror.count("ok")) == (1, 1)


def test_when_every_mirror_fails_the_error_names_each_mirror_and_its_answer(mirror, tmp_path, expected) -> None:
    mirrors = [mirror.url("404"), mirror.url("500"), mirror.url("hang")]

    with pytest.raises(DownloadError) as error:
        fetch(LABELS, mirrors, tmp_path, expected, RetryPolicy(2, backoff_s=0.01, timeout_s=0.2))

    message = str(error.value)
    assert "from any of 3 mirror(s)" in message
    assert f"{mirror.url('404')}{LABELS}: HTTP 404" in message
    assert f"{mirror.url('500')}{LABELS}: HTTP 500 Internal Server Error (2 attempts)" in message
    assert f"{mirror.url('hang')}{LABELS}: timed out after 0.2 s (2 attempts)" in message
    assert "Fix: add a reachable mirror" in message
    assert not (tmp_path / LABELS).exists()
    assert leftovers(tmp_path) == []


def test_a_download_cut_short_is_retried_and_never_lands_at_the_final_name(mirror, tmp_path, published_sha256) -> None:
    expected = Checksum("sha256", published_sha256[IMAGES])

    with pytest.raises(DownloadError, match=r"connection closed after \d+ of 1648877 bytes \(2 attempts\)"):
        fetch(IMAGES, [mirror.url("cut")], tmp_path, expected)

    assert mirror.count("cut") == 2
    assert not (tmp_path / IMAGES).exists()
    assert leftovers(tmp_path) == []


def test_a_mirror_serving_other_bytes_fails_verification_and_nothing_is_kept(mirror, tmp_path) -> None:
    wrong = Checksum("md5", "0" * 32)

    with pytest.raises(DownloadError, match=r"served a different file \(expected md5:0{32}, got md5:ec29112d"):
        fetch(LABELS, [mirror.url("ok")], tmp_path, wrong)

    assert list(tmp_path.iterdir()) == []


def test_a_download_killed_mid_way_is_not_trusted_and_the_next_run_recovers(
    mirror, mnist_dir, tmp_path, published_sha256
) -> None:
    expected = Checksum("sha256", published_sha256[IMAGES])
    script = (
        "import sys; from pathlib import Path\n"
        "from gan_pipeline.download import Checksum, RetryPolicy, fetch_file\n"
        "fetch_file(sys.argv[1], [sys.argv[2]], Path(sys.argv[3]), Checksum.parse(sys.argv[4]),\n"
        "           retry=RetryPolicy(attempts=1, timeout_s=30), progress_bar=False)\n"
    )
    args = [sys.executable, "-c", script, IMAGES, mirror.url("stall"), str(tmp_path), str(expected)]
    with subprocess.Popen(args) as run:
        deadline = time.monotonic() + 30
        while not partial_bytes(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.05)
        run.kill()
    assert leftovers(tmp_path), "the killed run should have been mid-download"
    assert not (tmp_path / IMAGES).exists()

    fetched = fetch(IMAGES, [mirror.url("ok")], tmp_path, expected)

    assert fetched.path.read_bytes() == (mnist_dir / IMAGES).read_bytes()
    assert leftovers(tmp_path) == []


def test_file_urls_and_plain_folder_paths_work_as_mirrors(mnist_dir, tmp_path, expected) -> None:
    fetch(LABELS, [mnist_dir.as_uri()], tmp_path / "by_url", expected)
    fetch(LABELS, [str(mnist_dir)], tmp_path / "by_path", expected)

    assert (tmp_path / "by_url" / LABELS).read_bytes() == (tmp_path / "by_path" / LABELS).read_bytes()


def test_a_missing_file_on_a_local_mirror_is_not_retried(tmp_path, expected) -> None:
    with pytest.raises(DownloadError, match="FileNotFoundError") as error:
        fetch(LABELS, [str(tmp_path / "empty")], tmp_path / "out", expected, RetryPolicy(5, backoff_s=60))

    assert "attempts" not in str(error.value)


def test_mirror_urls_join_a_base_with_or_without_a_trailing_slash() -> None:
    assert mirror_url("https://host/mnist", "a.gz") == mirror_url("https://host/mnist/", "a.gz")
    assert mirror_url("https://host/mnist", "a.gz") == "https://host/mnist/a.gz"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("crc32:1234", "must start with one of"),
        ("sha256:abc", "needs 64 hex digits"),
        ("md5:" + "z" * 32, "needs 32 hex digits"),
    ],
)
def test_malformed_checksums_are_rejected_with_the_expected_form(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        Checksum.parse(text)


def test_a_checksum_error_names_the_file_both_digests_and_the_fix(mnist_dir) -> None:
    with pytest.raises(ChecksumError, match=f"{LABELS}: expected md5:0{{32}}, got md5:ec29112d.*; do this"):
        verify_file(mnist_dir / LABELS, Checksum("md5", "0" * 32), fix="do this")
