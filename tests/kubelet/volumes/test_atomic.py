"""The atomic writer: the kubelet's `..data` layout, no-op rewrites, and readers that
never see a mix of two versions."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from kubelet.volumes.atomic import DATA_DIR, FileProjection, PayloadError, write


def _payload(**files: str) -> dict[str, FileProjection]:
    return {path.replace("__", "/"): FileProjection(text.encode(), 0o644) for path, text in files.items()}


def test_layout_is_timestamped_dir_data_link_and_per_name_links(tmp_path: Path) -> None:
    assert write(tmp_path, {"a": FileProjection(b"1", 0o600), "conf/b.yaml": FileProjection(b"2", 0o644)})
    ts_name = os.readlink(tmp_path / DATA_DIR)
    assert ts_name.startswith("..") and (tmp_path / ts_name).is_dir()
    assert os.stat(tmp_path / ts_name).st_mode & 0o777 == 0o755
    assert os.readlink(tmp_path / "a") == "..data/a"
    assert os.readlink(tmp_path / "conf") == "..data/conf"
    assert (tmp_path / "conf" / "b.yaml").read_text() == "2"
    assert os.stat(tmp_path / "a").st_mode & 0o777 == 0o600
    assert sorted(os.listdir(tmp_path)) == sorted([DATA_DIR, ts_name, "a", "conf"])


def test_same_content_writes_nothing_and_a_change_swaps_the_data_link(tmp_path: Path) -> None:
    write(tmp_path, _payload(a="1", b="2"))
    first = os.readlink(tmp_path / DATA_DIR)
    assert write(tmp_path, _payload(a="1", b="2")) is False
    assert os.readlink(tmp_path / DATA_DIR) == first
    assert write(tmp_path, _payload(a="1", c="3"))
    second = os.readlink(tmp_path / DATA_DIR)
    assert second != first and not (tmp_path / first).exists()
    assert not (tmp_path / "b").is_symlink()
    assert (tmp_path / "c").read_text() == "3" and (tmp_path / "a").read_text() == "1"


def test_files_opened_before_an_update_keep_the_old_version_whole(tmp_path: Path) -> None:
    write(tmp_path, _payload(a="old", b="old"))
    with open(tmp_path / "a") as a, open(tmp_path / "b") as b:
        write(tmp_path, _payload(a="new", b="new"))
        assert (a.read(), b.read()) == ("old", "old")
    assert (tmp_path / "a").read_text() == "new" and (tmp_path / "b").read_text() == "new"


def test_concurrent_readers_never_see_two_versions_mixed(tmp_path: Path) -> None:
    write(tmp_path, _payload(a="0", b="0"))
    stop = threading.Event()
    mixed: list[tuple[bytes, bytes]] = []

    def reader() -> None:
        while not stop.is_set():
            try:
                fd = os.open(tmp_path / DATA_DIR, os.O_RDONLY | os.O_DIRECTORY)
            except FileNotFoundError:
                continue
            try:
                a = os.read(ra := os.open("a", os.O_RDONLY, dir_fd=fd), 20)
                os.close(ra)
                b = os.read(rb := os.open("b", os.O_RDONLY, dir_fd=fd), 20)
                os.close(rb)
            except FileNotFoundError:
                continue  # that version was removed while we looked: try the new one
            finally:
                os.close(fd)
            if a != b:
                mixed.append((a, b))

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        for version in range(1, 200):
            write(tmp_path, _payload(a=str(version), b=str(version)))
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert mixed == []
    assert (tmp_path / "a").read_text() == "199"


@pytest.mark.parametrize(("path", "message"), [
    ("/etc/passwd", "invalid path: must be relative path: /etc/passwd"),
    ("a/../../b", "invalid path: must not contain '..': a/../../b"),
    ("..data", "invalid path: must not start with '..': ..data"),
    ("", 'invalid path: must not be empty: ""'),
    ("x" * 256, "invalid path: filenames must be less than or equal to 255 characters"),
])
def test_bad_payload_paths_are_refused_with_the_kubelet_messages(tmp_path: Path, path: str, message: str) -> None:
    with pytest.raises(PayloadError) as caught:
        write(tmp_path, {path: FileProjection(b"x", 0o644)})
    assert str(caught.value) == message
    assert os.listdir(tmp_path) == []
