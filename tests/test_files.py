"""Atomic writes give outputs the permissions ordinary writes would (the umask), not 0600/0700."""

from __future__ import annotations

import os
import stat

import pytest

from instructgen.files import atomic_dir, atomic_write_text


@pytest.fixture
def umask():
    def set_to(mask: int) -> None:
        os.umask(mask)

    old = os.umask(0o022)
    yield set_to
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(
    ("mask", "file_mode", "dir_mode"), [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700)]
)
def test_atomic_outputs_follow_the_umask(tmp_path, umask, mask, file_mode, dir_mode):
    umask(mask)
    atomic_write_text(tmp_path / "report.md", "hello\n")
    assert _mode(tmp_path / "report.md") == file_mode
    with atomic_dir(tmp_path / "run") as tmp:
        (tmp / "a.txt").write_text("a")
    assert _mode(tmp_path / "run") == dir_mode and _mode(tmp_path / "run" / "a.txt") == file_mode


def test_a_replaced_file_keeps_its_mode(tmp_path, umask):
    path = tmp_path / "results.json"
    path.write_text("{}")
    path.chmod(0o640)
    atomic_write_text(path, '{"n": 1}')
    assert _mode(path) == 0o640 and path.read_text() == '{"n": 1}'
