"""The test session's handling of the shared recordings (``tests/conftest.py``): where they are
(``AUTOVOICE_TEST_DATA``), the line that counts the tests needing them, and CI refusing to skip them.

Each case runs pytest in a subprocess on a two-test file, with the repository's conftest as a plugin."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO

FAKE_TESTS = """
import pytest
from tests.support import SPEECH

@pytest.mark.shared_data
def test_needs_a_recording() -> None:
    if not (SPEECH / "0000" / "absent.flac").exists():
        pytest.skip(f"shared recordings not found at {SPEECH}")

def test_plain() -> None:
    pass
"""


def _pytest(
    tmp_path: Path, data: Path, *, ci: bool, extra: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    test_file = tmp_path / "test_fake.py"
    test_file.write_text(FAKE_TESTS)
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    env["AUTOVOICE_TEST_DATA"] = str(data)
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-c", str(REPO / "pyproject.toml"),
         "--rootdir", str(REPO), "-p", "no:cacheprovider", "-q", str(test_file), *extra],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def _complete_data(root: Path) -> Path:
    """A data folder with both parts present (but none of the files the fake test wants)."""
    (root / "speech" / "librispeech").mkdir(parents=True)
    (root / "song").mkdir()
    (root / "song" / "karissa_hobbs-lets_go_fishin.ogg").write_bytes(b"")
    return root


def test_absent_recordings_skip_outside_ci_and_the_count_is_printed(tmp_path: Path) -> None:
    proc = _pytest(tmp_path, tmp_path / "nowhere", ci=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (
        f"shared recordings: 1 of 2 tests need them; NOT found at {tmp_path / 'nowhere'} "
        "($AUTOVOICE_TEST_DATA to change)"
    ) in proc.stdout
    assert "they skip" in proc.stdout
    assert "1 passed, 1 skipped" in proc.stdout


def test_ci_refuses_to_run_without_the_recordings(tmp_path: Path) -> None:
    proc = _pytest(tmp_path, tmp_path / "nowhere", ci=True)
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR, proc.stdout + proc.stderr
    assert "1 test need the shared recordings" in proc.stderr
    assert "AUTOVOICE_TEST_DATA" in proc.stderr


@pytest.mark.parametrize("how", ["CI=true", "--require-recordings"])
def test_a_skip_for_a_missing_recording_fails_where_they_are_required(tmp_path: Path, how: str) -> None:
    data = _complete_data(tmp_path / "data")
    ci = how == "CI=true"
    proc = _pytest(tmp_path, data, ci=ci, extra=() if ci else (how,))
    assert proc.returncode == pytest.ExitCode.TESTS_FAILED, proc.stdout + proc.stderr
    assert f"found at {data}" in proc.stdout
    assert "a shared recording is missing, and they are required here" in proc.stdout
    assert "1 failed, 1 passed" in proc.stdout


def test_the_setting_moves_the_recordings(tmp_path: Path) -> None:
    data = _complete_data(tmp_path / "elsewhere")
    proc = _pytest(tmp_path, data, ci=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"found at {data} ($AUTOVOICE_TEST_DATA to change)" in proc.stdout
    # The tests read the recordings from there (the skip names the folder they looked in).
    assert f"shared recordings not found at {data / 'speech' / 'librispeech'}" in proc.stdout
