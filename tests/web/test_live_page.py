"""The Live tab in a real headless Chromium with a fake microphone, against the real app (uvicorn):
audio goes out through the AudioWorklet and comes back converted over ``WS /api/v1/live``, for 20 s,
at a round trip that does not grow; the tab fits a phone-width screen."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import SPEECH, speaker_files
from tests.web.conftest import CHROMIUM, FAKE_MIC_ARGS, LAUNCH_ARGS, serve_app

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory, playwright_api: Any) -> Iterator[str]:
    """The app with one profile (speaker 367) in its data dir."""
    if not SPEECH.is_dir():
        pytest.skip(f"shared recordings not found at {SPEECH}")
    from autovoice.config import Settings
    from autovoice.pipeline.enroll import build_profile
    from autovoice.profiles import ProfileStore

    data = tmp_path_factory.mktemp("live-web")
    settings = Settings(data_dir=data, device="cpu")
    ProfileStore(settings).save(build_profile(speaker_files("367")[:3], name="Libri 367", settings=settings))
    # One torch thread, as `autovoice serve` runs (the bare test server would use one per core, which on
    # two busy cores made a block 10x slower).
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMP_NUM_THREADS", "1")
        with serve_app(data) as url:
            yield url


def _counter(page: Any, sel: str, attr: str) -> float:
    return float(page.get_attribute(sel, f"data-{attr}") or "nan")


def test_live_round_trip_with_a_fake_microphone(
    playwright_api: Any, new_page: Callable[..., Any], live_server: str
) -> None:
    fake_mic = playwright_api.chromium.launch(
        executable_path=str(CHROMIUM),
        args=[*LAUNCH_ARGS, *FAKE_MIC_ARGS, "--autoplay-policy=no-user-gesture-required"],
    )
    try:
        page, shot = new_page(live_server + "#live", b=fake_mic)
        page.wait_for_selector("#panel-live:not([hidden])")
        page.wait_for_function("document.querySelector('#live-profile').options.length > 0")
        page.select_option("#live-block", "100")
        page.click("#live-start")
        page.wait_for_selector("#live-panel-status[data-running='true']")
        page.wait_for_function(
            "Number(document.querySelector('#live-blocks-out').dataset.count) >= 20", timeout=60_000
        )
        assert _counter(page, "#live-latency", "ms") == pytest.approx(100 + 40 + 10 + 4)
        early_rtt = _counter(page, "#live-rtt", "ms")
        early_blocks = _counter(page, "#live-blocks-out", "count")
        shot("live-running")
        page.wait_for_timeout(20_000)
        late_rtt = _counter(page, "#live-rtt", "ms")
        late_blocks = _counter(page, "#live-blocks-out", "count")
        # 20 s of 100 ms blocks: about 200 more came back, each one, converted or dropped.
        assert late_blocks - early_blocks >= 170, (early_blocks, late_blocks)
        # Late blocks are dropped, never queued: the round trip does not grow over the run.
        assert late_rtt < early_rtt + 100, (early_rtt, late_rtt)
        assert late_rtt < 1000
        assert page.inner_text("#live-error") == ""
        page.click("#live-stop")
        page.wait_for_selector("#live-panel-status[data-running='false']")
        shot("live-stopped")
    finally:
        fake_mic.close()


def test_live_block_is_measured_and_explained(
    playwright_api: Any, new_page: Callable[..., Any], live_server: str
) -> None:
    """Auto, the default: the page says which block the server chose and why, and streams at it."""
    from autovoice.pipeline.live import AUTO_BLOCKS_MS

    fake_mic = playwright_api.chromium.launch(
        executable_path=str(CHROMIUM),
        args=[*LAUNCH_ARGS, *FAKE_MIC_ARGS, "--autoplay-policy=no-user-gesture-required"],
    )
    try:
        page, shot = new_page(live_server + "#live", b=fake_mic)
        page.wait_for_selector("#panel-live:not([hidden])")
        page.wait_for_function("document.querySelector('#live-profile').options.length > 0")
        assert page.input_value("#live-block") == "auto"
        page.click("#live-start")
        page.wait_for_function(
            "document.querySelector('#live-block-reason').textContent !== '' "
            "|| document.querySelector('#live-error').textContent !== ''",
            timeout=60_000,
        )
        error = page.inner_text("#live-error")
        if error:  # an overloaded test machine may honestly be too slow for every block
            assert "live_too_slow" in error
            return
        page.wait_for_function(
            "Number(document.querySelector('#live-blocks-out').dataset.count) >= 10", timeout=60_000
        )
        block = _counter(page, "#live-block-chosen", "ms")
        assert block in AUTO_BLOCKS_MS
        assert page.inner_text("#live-block-chosen") == f"{block:g} ms (auto)"
        reason = page.inner_text("#live-block-reason")
        assert f"{block:g} ms blocks: p99" in reason
        assert "% of the block" in reason
        assert _counter(page, "#live-latency", "ms") == pytest.approx(block + 40 + 10 + 4)
        shot("live-auto-block")
        page.click("#live-stop")
        page.wait_for_selector("#live-panel-status[data-running='false']")
    finally:
        fake_mic.close()


def test_live_tab_fits_a_phone(new_page: Callable[..., Any], live_server: str, tmp_path: Path) -> None:
    page, shot = new_page(live_server + "#live", width=375, height=740)
    page.wait_for_selector("#panel-live:not([hidden])")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"the page scrolls sideways by {overflow} px"
    assert page.is_visible("#live-start")
    assert page.is_disabled("#live-stop")
    shot("live-phone")
