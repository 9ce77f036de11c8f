"""End-to-end tests of the web page in a real headless Chromium against the real app (uvicorn).

The main flow: build a profile from a LibriSpeech speaker, convert a 4 s clip (preset fast, no
separation), watch the progress reach 100 %, play and download the result, read the report and the F0
contours, and get a readable error for a corrupt upload. Screenshots of each state are saved (see the
terminal summary for the folder).
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from tests.support import assert_no_horizontal_scroll, speech_clip
from tests.web.conftest import CHROMIUM, FAKE_MIC_ARGS, LAUNCH_ARGS, create_api_key, serve_app

pytestmark = [pytest.mark.slow]

PROFILE_NAME = "Libri 367"
CORRUPT = b"RIFF\x10\x00\x00\x00WAVEfmt " + b"\x00garbage, not audio" * 40


def _corrupt(name: str) -> dict[str, Any]:
    return {"name": name, "mimeType": "audio/wav", "buffer": CORRUPT}


def _valid_audio(data: bytes) -> tuple[np.ndarray, int]:
    y, sr = sf.read(io.BytesIO(data), dtype="float32")
    assert sr > 0
    assert len(y) > 0
    assert np.isfinite(y).all(), "the audio holds NaN or infinity"
    assert np.abs(y).max() > 1e-3, "the audio is silent"
    return y, sr


def _create_profile(page: Any, shot: Any, speech_dir: Path) -> str:
    files = sorted((speech_dir / "367").glob("*.flac"))[:4]
    assert len(files) >= 3, "speaker 367 should have at least 3 utterances"
    page.fill("#profile-name", PROFILE_NAME)
    page.set_input_files("#profile-files", [str(f) for f in files])
    page.wait_for_function(f"document.querySelectorAll('#sample-list li').length === {len(files)}")
    shot("samples-chosen")
    page.click("#profile-submit")
    page.wait_for_selector("#profile-busy:not([hidden])")
    card = page.locator(".profile", has_text=PROFILE_NAME)
    card.wait_for(timeout=150_000)
    pid = card.get_attribute("data-id")
    assert (pid or "").startswith("prof_"), pid
    roll = card.locator("svg.piano-roll")
    assert "Vocal range" in (roll.get_attribute("aria-label") or "")
    assert roll.locator("rect.tessitura-bar").count() == 1
    card.locator(".quality summary").click()
    assert card.locator("dl.kv").is_visible()
    shot("profile-created")
    return pid


def test_profile_convert_play_download(
    new_page: Callable[..., Any], server: str, speech_dir: Path, tmp_path: Path
) -> None:
    page, shot = new_page(server)
    assert page.title() == "AutoVoice studio"
    page.wait_for_selector("#profiles-status:has-text('No voice profiles yet')")
    shot("empty")

    profile_id = _create_profile(page, shot, speech_dir)

    # -- convert ----------------------------------------------------------------------------------------
    card = page.locator(".profile", has_text=PROFILE_NAME)
    card.get_by_role("button", name="Convert with this voice").click()
    assert page.get_by_role("tab", name="Convert").get_attribute("aria-selected") == "true"
    assert page.input_value("#convert-profile") == profile_id
    clip = speech_clip(tmp_path)
    page.set_input_files("#song-file", str(clip))
    page.select_option("#convert-preset", "fast")
    page.select_option("#convert-separation", "none")
    page.fill("#pitch-shift", "2")
    assert "+2.0 semitones" in page.inner_text("#pitch-plan")
    # Record every progress value the page shows.
    page.evaluate(
        """() => {
          window.__progress = [];
          const bar = document.getElementById('job-progress');
          new MutationObserver(() => window.__progress.push(Number(bar.value)))
            .observe(bar, {attributes: true, attributeFilter: ['value']});
          const text = document.getElementById('job-progress-text');
          new MutationObserver(() => window.__progress.push(parseInt(text.textContent)))
            .observe(text, {childList: true, characterData: true, subtree: true});
        }"""
    )
    # The events WebSocket goes through a relay that sends every progress event once more, late (after
    # the next event): the page must not move its bar back for a stale update.
    previous: list[str] = []

    def relay(ws: Any) -> None:
        server_side = ws.connect_to_server()

        def from_server(message: str | bytes) -> None:
            ws.send(message)
            if previous:
                ws.send(previous[0])
            if isinstance(message, str) and json.loads(message).get("type") == "progress":
                previous[:] = [message]

        server_side.on_message(from_server)

    page.route_web_socket(re.compile(r".*/events.*"), relay)
    page.click("#convert-submit")
    page.wait_for_selector("#job-card[data-state='running']")
    page.wait_for_function("document.getElementById('job-progress').value > 0", timeout=60_000)
    shot("progress")
    page.wait_for_selector("#job-card[data-state='completed']", timeout=150_000)
    assert page.inner_text("#job-progress-text") == "100 %"
    assert page.eval_on_selector("#job-progress", "e => e.value") == 100
    seen = page.evaluate("window.__progress")
    assert seen[-1] == 100, seen
    assert any(0 < v < 100 for v in seen), f"no progress between 0 and 100 was shown: {seen}"
    assert seen == sorted(seen), f"progress went backwards: {seen}"
    assert page.get_attribute("#job-card", "data-transport") == "websocket"
    assert previous, "no progress event came through the relay"

    # -- result: A/B players, play, download -------------------------------------------------------------
    page.wait_for_selector("#result-card:not([hidden])")
    page.wait_for_function("document.getElementById('audio-b').readyState >= 1", timeout=30_000)
    page.wait_for_function("document.getElementById('audio-a').readyState >= 1", timeout=30_000)
    duration = page.eval_on_selector("#audio-b", "a => a.duration")
    assert 3.5 < duration < 4.5, duration
    page.click("#ab-switch")  # nothing playing: B (the result) starts
    page.wait_for_function(
        "(() => { const b = document.getElementById('audio-b'); return !b.paused && b.currentTime > 0; })()",
        timeout=15_000,
    )
    # The status is written by the element's "play" event, a task that may run after playback has begun.
    page.wait_for_function(
        "document.getElementById('ab-status').textContent.includes('Playing B')", timeout=5_000
    )
    assert "Playing B" in page.inner_text("#ab-status")
    page.click("#ab-switch")  # switch to A at the same position
    page.wait_for_function("!document.getElementById('audio-a').paused")
    assert page.eval_on_selector("#audio-b", "b => b.paused")
    page.eval_on_selector("#audio-a", "a => a.pause()")

    with page.expect_download() as info:
        page.click("#download-mix")
    download = info.value
    assert download.suggested_filename.endswith(".wav")
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    y, sr = _valid_audio(saved.read_bytes())
    assert abs(len(y) / sr - 4.0) < 0.3

    # -- the quality report and the contours ---------------------------------------------------------------
    report = page.inner_text("#report")
    for needle in ("Pitch accuracy", "Similarity to the target", "Source (floor)", "DNSMOS", "SIG", "RTF"):
        assert needle in report, needle
    assert re.search(r"Planned shift: \+2\.00 semitones", page.inner_text("#pitch-plan"))
    page.wait_for_selector("#f0-chart[data-state='ready']", timeout=60_000)
    paths = page.eval_on_selector_all("#f0-chart path.contour", "ps => ps.map(p => p.getAttribute('d'))")
    assert len(paths) == 3, "source, intended and converted contours"
    assert all(len(d) > 50 for d in paths), paths
    page.locator("#result-card").scroll_into_view_if_needed()
    shot("result")

    # -- a corrupt upload is refused with a readable message ----------------------------------------------
    page.set_input_files("#song-file", files=[_corrupt("broken.wav")])
    page.click("#convert-submit")
    error = page.locator("#convert-error")
    error.locator(".error-message").wait_for()
    text = error.inner_text()
    assert "(audio_corrupt)" in text, text  # a WAV header over garbage
    assert "damaged or incomplete" in text, text
    assert page.locator("#job-card").is_hidden()
    shot("corrupt-upload-error")

    # -- auto key through the polling fallback (the WebSocket is refused) ---------------------------------
    page.route_web_socket(re.compile(r".*/events.*"), lambda ws: ws.close())
    page.set_input_files("#song-file", str(clip))
    page.check("input[name='pitch-mode'][value='auto']")
    assert page.locator("#pitch-manual").is_hidden()
    page.click("#convert-submit")
    page.wait_for_selector("#job-card[data-state='completed']", timeout=150_000)
    assert page.get_attribute("#job-card", "data-transport") == "polling"
    page.wait_for_selector("#result-card:not([hidden])")
    assert re.search(r"Planned shift: [+−±]\d+\.\d\d semitones \(auto key", page.inner_text("#pitch-plan"))
    shot("auto-key-result")

    # -- the same states on a phone-sized screen ------------------------------------------------------------
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(200)  # the range strips re-render for the narrow screen
    assert_no_horizontal_scroll(page)
    shot("phone-result")
    page.get_by_role("tab", name="Voices").click()
    assert_no_horizontal_scroll(page)
    shot("phone-profile")
    page.set_viewport_size({"width": 1280, "height": 900})

    # -- delete the profile (inline confirmation, keyboard) ---------------------------------------------
    card = page.locator(".profile", has_text=PROFILE_NAME)
    card.get_by_role("button", name=f"Delete profile {PROFILE_NAME}").click()
    assert page.evaluate("document.activeElement.textContent") == "Really delete"
    shot("delete-confirm", full_page=False)
    page.keyboard.press("Enter")
    page.wait_for_selector("#profiles-status:has-text('No voice profiles yet')")
    assert page.locator(".profile").count() == 0
    assert page.locator(f"#convert-profile option[value='{profile_id}']").count() == 0


def test_corrupt_sample_is_refused(new_page: Callable[..., Any], server: str) -> None:
    page, shot = new_page(server)
    page.fill("#profile-name", "Broken")
    page.set_input_files("#profile-files", files=[_corrupt("take.wav")])
    page.click("#profile-submit")
    error = page.locator("#profile-error .error-message")
    error.wait_for()
    text = error.inner_text()
    assert "(audio_corrupt)" in text, text  # a WAV header over garbage
    assert "damaged or incomplete" in text, text
    assert page.locator(".profile", has_text="Broken").count() == 0
    shot("error")


def test_speak(new_page: Callable[..., Any], server: str, tmp_path: Path) -> None:
    page, shot = new_page(server)
    page.get_by_role("tab", name="Speak").click()
    page.wait_for_function("document.querySelectorAll('#speak-voice option').length > 0")
    page.fill("#speak-text", "Hello from the AutoVoice studio.")
    page.click("#speak-submit")
    page.wait_for_selector("#speech-card:not([hidden])", timeout=90_000)
    page.wait_for_function("document.getElementById('speech-audio').readyState >= 1")
    with page.expect_download() as info:
        page.click("#speech-download")
    saved = tmp_path / "speech.wav"
    info.value.save_as(saved)
    y, sr = _valid_audio(saved.read_bytes())
    assert len(y) / sr > 0.5
    shot("speech")


def test_voices_tab_says_loading_until_the_list_arrives(browser: Any, server: str) -> None:
    """The profile list held back: the page says "Loading…", never "No voice profiles yet", until the
    answer comes."""
    ctx = browser.new_context()
    try:
        page = ctx.new_page()
        held: list[Any] = []
        page.route(re.compile(r".*/api/v1/profiles$"), lambda route: held.append(route))
        page.goto(server)
        page.wait_for_selector("html[data-ready='true']")
        page.wait_for_timeout(300)  # the held request reaches the route handler
        assert held, "the page did not ask for the profile list"
        assert page.inner_text("#profiles-status") == "Loading…"
        assert page.get_attribute("#profile-list", "aria-busy") == "true"
        assert page.locator("#convert-profile option").all_inner_texts() == ["Loading…"]
        held[0].continue_()
        page.wait_for_function(
            "() => document.querySelector('#profiles-status').textContent !== 'Loading…'", timeout=30_000
        )
        assert re.fullmatch(
            r"No voice profiles yet: create one above\.|\d+ profiles?\.", page.inner_text("#profiles-status")
        )
        assert page.get_attribute("#profile-list", "aria-busy") == "false"
        assert "Loading…" not in page.locator("#convert-profile option").all_inner_texts()
    finally:
        ctx.close()


def test_phone_layout_and_keyboard(new_page: Callable[..., Any], server: str) -> None:
    page, shot = new_page(server, width=390, height=844)
    assert_no_horizontal_scroll(page)
    shot("voices")
    # Keyboard: the tabs follow the arrow keys.
    page.get_by_role("tab", name="Voices").focus()
    page.keyboard.press("ArrowRight")
    assert page.get_by_role("tab", name="Convert").get_attribute("aria-selected") == "true"
    assert page.evaluate("document.activeElement.id") == "tab-convert"
    assert page.locator("#panel-convert").is_visible()
    assert_no_horizontal_scroll(page)
    shot("convert")
    page.keyboard.press("End")
    assert page.locator("#panel-speak").is_visible()
    assert_no_horizontal_scroll(page)
    shot("speak")
    # Every control has an accessible name (a label, aria-label(ledby) or its text).
    unnamed = page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea, button, audio, progress, meter')]
             .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                          && !e.getAttribute('aria-labelledby') && !(e.textContent || '').trim())
             .map(e => e.outerHTML.slice(0, 80))"""
    )
    assert not unnamed, unnamed


def test_api_key(browser: Any, new_page: Callable[..., Any], tmp_path: Path) -> None:
    data = tmp_path / "keyed"
    key = create_api_key(data)
    with serve_app(data, require_api_key="true") as url:
        page, shot = new_page(url)
        # No key: a readable error, and the key panel opens with the focus in the field.
        page.locator("#global-error .error-message").wait_for()
        assert "(api_key_required)" in page.inner_text("#global-error")
        assert page.locator("#key-panel").is_visible()
        assert page.evaluate("document.activeElement.id") == "key-input"
        shot("key-required")

        page.fill("#key-input", "av_wrong")
        page.click("#key-form button[type=submit]")
        page.locator("#global-error:has-text('invalid_api_key')").wait_for()

        # The right key, not remembered: it works and is not stored.
        page.fill("#key-input", key)
        page.click("#key-form button[type=submit]")
        page.wait_for_selector("#profiles-status:has-text('No voice profiles yet')")
        assert page.inner_text("#global-error").strip() == ""
        assert page.inner_text("#key-state") == "this tab only"
        assert page.evaluate("localStorage.getItem('autovoice.apiKey')") is None
        page.reload()
        page.locator("#global-error:has-text('api_key_required')").wait_for()

        # Remembered: stored in localStorage, used after a reload; forgotten: gone.
        page.fill("#key-input", key)
        page.check("#key-remember")
        page.click("#key-form button[type=submit]")
        page.wait_for_selector("#profiles-status:has-text('No voice profiles yet')")
        assert page.evaluate("localStorage.getItem('autovoice.apiKey')") == key
        page.reload()
        page.wait_for_selector("#profiles-status:has-text('No voice profiles yet')")
        assert page.inner_text("#key-state") == "remembered"
        shot("key-remembered")
        page.click("#key-toggle")
        page.click("#key-forget")
        assert page.evaluate("localStorage.getItem('autovoice.apiKey')") is None


def test_record_with_microphone(playwright_api: Any, new_page: Callable[..., Any], server: str) -> None:
    fake_mic = playwright_api.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS + FAKE_MIC_ARGS)
    try:
        page, shot = new_page(server, b=fake_mic)
        page.click("#record-btn")
        page.wait_for_selector("#record-btn[aria-pressed='true']")
        page.wait_for_timeout(1500)
        page.click("#record-btn")
        item = page.locator("#sample-list li", has_text="recording-1.wav")
        item.wait_for()
        seconds = float(re.search(r"([\d.]+) s", item.inner_text()).group(1))  # type: ignore[union-attr]
        assert 1.0 <= seconds <= 3.0, seconds
        assert item.locator("audio").count() == 1
        shot("recorded")
    finally:
        fake_mic.close()
