"""Shared fixtures: an isolated data dir per test and the shared recordings.

Tests that need the shared recordings (``$AUTOVOICE_TEST_DATA``, default ``../shared/data``) are
marked ``shared_data`` (tests taking the ``speech_dir`` fixture are marked automatically). The session
starts with one line saying how many there are and whether the recordings were found. Without them
those tests skip, except where the recordings are required (``--require-recordings``, or ``CI`` set to
a true value, as in ``.ci/run``): then a run without them stops before any test, and a test that skips
for want of a recording fails instead.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from autovoice.config import Settings, get_settings
from autovoice.profiles.profile import VoiceProfile
from tests.support import SHARED_DATA, SPEECH, TEST_DATA_ENV, missing_recordings, tone_voice_profile


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--require-recordings",
        action="store_true",
        default=False,
        help=f"fail, instead of skipping, tests that need the shared recordings (${TEST_DATA_ENV}) when "
        "they are absent; on by default when CI is set",
    )


def recordings_required(config: pytest.Config) -> bool:
    """``--require-recordings``, or a CI run (``CI=true``/``1``/``yes``)."""
    ci = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
    return bool(config.getoption("--require-recordings")) or ci


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    needing = 0
    for item in items:
        if "speech_dir" in getattr(item, "fixturenames", ()) and not item.get_closest_marker("shared_data"):
            item.add_marker(pytest.mark.shared_data)
        needing += item.get_closest_marker("shared_data") is not None
    missing = missing_recordings()
    where = f"{SHARED_DATA} (${TEST_DATA_ENV} to change)"
    if not missing:
        line = f"shared recordings: {needing} of {len(items)} tests need them; found at {where}"
    else:
        gone = ", ".join(str(p.relative_to(SHARED_DATA)) for p in missing)
        line = (
            f"shared recordings: {needing} of {len(items)} tests need them; NOT found at {where}: "
            f"missing {gone}; "
            + ("required here (CI or --require-recordings)" if recordings_required(config) else "they skip")
        )
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(line)
    if missing and needing and recordings_required(config):
        raise pytest.UsageError(
            f"{needing} test{'s' if needing != 1 else ''} need the shared recordings and they are not "
            f"at {SHARED_DATA}; set "
            f"{TEST_DATA_ENV} to where they are (a CI run does not let them skip)."
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    """Where the recordings are required, a skip for want of one of them is a failure."""
    report = yield
    if report.skipped and recordings_required(item.config):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        if str(SHARED_DATA) in str(reason):
            report.outcome = "failed"
            report.longrepr = f"a shared recording is missing, and they are required here: {reason}"
    return report


@pytest.fixture(autouse=True)
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Every test gets its own data dir; nothing touches the user's real profiles."""
    monkeypatch.setenv("AUTOVOICE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AUTOVOICE_DEVICE", "cpu")
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


@pytest.fixture
def speech_dir() -> Path:
    """The LibriSpeech utterances of the shared recordings; skips the test when they are absent."""
    if not SPEECH.is_dir():
        pytest.skip(f"shared recordings not found at {SPEECH}")
    return SPEECH


@pytest.fixture(scope="module")
def live_tone_profile() -> VoiceProfile:
    """A profile of a synthetic voice around 220 Hz (world features, vocal range), built in ~1 s."""
    return tone_voice_profile()


@pytest.fixture(scope="module")
def sovits_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A random-weights so-vits-svc 4.1 model in its tool's layout: ``(G_*.pth, config.json)``."""
    fakes = pytest.importorskip("tests.engines.fakes")
    pth, config = fakes.write_sovits(tmp_path_factory.mktemp("sovits"))
    return Path(pth), Path(config)
