"""The Convert tab against the real app: its choices come from ``GET /api/v1/engines``, the options reach
the job, a conversion with the report off completes without a report, warnings and the pitch plan are
shown, and a failed job's message is shown as the API wrote it (never a command-line flag).

The profile is built once per module through the API (the UI path is covered by ``test_page.py``).
Screenshots of the Convert tab on a desktop and a 390 px phone, before and after a conversion, are saved
(see the terminal summary for the folder).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile as sf

from autovoice.web import static_dir
from tests.support import SONG, SPEECH, assert_no_horizontal_scroll, speech_clip

pytestmark = [pytest.mark.slow]

PROFILE_NAME = "Libri 367"
PHONE = {"width": 390, "height": 844}
#: A command-line flag (``--pitch``, ``--separation none``) in a message meant for the page.
CLI_FLAG = re.compile(r"(?<![\w-])--[a-z][a-z-]*")


@pytest.fixture(scope="module")
def profile_id(server: str) -> str:
    if not SPEECH.is_dir():
        pytest.skip(f"shared recordings not found at {SPEECH}")
    files = sorted((SPEECH / "367").glob("*.flac"))[:4]
    uploads = [("files", (f.name, f.read_bytes(), "audio/flac")) for f in files]
    res = httpx.post(server + "api/v1/profiles", data={"name": PROFILE_NAME}, files=uploads, timeout=300)
    assert res.status_code == 201, res.text
    pid: str = res.json()["id"]
    return pid


@pytest.fixture(scope="module")
def catalog(server: str) -> dict[str, Any]:
    res = httpx.get(server + "api/v1/engines", timeout=30)
    assert res.status_code == 200, res.text
    doc: dict[str, Any] = res.json()
    return doc


def _options(page: Any, select: str) -> list[dict[str, str]]:
    return page.eval_on_selector_all(  # type: ignore[no-any-return]
        f"{select} option", "os => os.map(o => ({value: o.value, title: o.title, text: o.textContent}))"
    )


def _open_convert(new_page: Callable[..., Any], server: str, **size: int) -> tuple[Any, Any]:
    page, shot = new_page(server + "#convert", **size)
    page.wait_for_selector("#convert-form[data-catalog='ready']")
    return page, shot


def _job(server: str, job_id: str) -> dict[str, Any]:
    res = httpx.get(f"{server}api/v1/conversions/{job_id}", timeout=30)
    assert res.status_code == 200, res.text
    doc: dict[str, Any] = res.json()
    return doc


def test_no_choice_list_in_the_page() -> None:
    """The selects start empty: every engine, tracker, backend, preset and level comes from the API."""
    html = (static_dir() / "index.html").read_text()
    form = html[html.index('id="convert-form"') : html.index('id="job-card"')]
    values = re.findall(r'<option value="([^"]*)"', form)
    assert set(values) == {""}, values
    for name in ("world", "crepe", "fcpe", "spleeter", "demucs", "balanced", "speech", "song"):
        assert f'value="{name}"' not in form, name


def test_choices_come_from_the_api(
    new_page: Callable[..., Any], server: str, catalog: dict[str, Any]
) -> None:
    page, shot = _open_convert(new_page, server)
    engines = _options(page, "#convert-engine")
    assert [o["value"] for o in engines] == [e["name"] for e in catalog["engines"]]
    assert "world" in [o["value"] for o in engines]
    assert [o["title"] for o in engines] == [e["description"] for e in catalog["engines"]]
    assert page.input_value("#convert-engine") == catalog["defaults"]["engine"]

    f0 = _options(page, "#convert-f0")
    assert f0[0]["value"] == "", "the first F0 choice leaves the field out (the preset's tracker)"
    assert [o["value"] for o in f0[1:]] == [m["name"] for m in catalog["f0_methods"]]
    assert "crepe" in [o["value"] for o in f0]
    assert page.input_value("#convert-f0") == ""

    sep = _options(page, "#convert-separation")
    assert [o["value"] for o in sep] == [s["name"] for s in catalog["separation"]]
    assert {"auto", "spleeter", "none"} <= {o["value"] for o in sep}
    assert page.input_value("#convert-separation") == "auto"
    described = {s["name"]: s["description"] for s in catalog["separation"]}
    assert page.inner_text("#separation-help") == described["auto"]
    page.select_option("#convert-separation", "spleeter")
    assert page.inner_text("#separation-help") == described["spleeter"]
    page.select_option("#convert-separation", "auto")

    content = _options(page, "#convert-content")
    assert (
        [o["value"] for o in content]
        == [c["name"] for c in catalog["contents"]]
        == ["auto", "speech", "song"]
    )
    assert [o["title"] for o in content] == [c["description"] for c in catalog["contents"]]
    assert page.input_value("#convert-content") == catalog["defaults"]["content"] == "auto"
    described = {c["name"]: c["description"] for c in catalog["contents"]}
    assert page.inner_text("#content-help") == described["auto"]
    page.select_option("#convert-content", "speech")
    assert page.inner_text("#content-help") == described["speech"]
    page.select_option("#convert-content", "auto")

    assert [o["value"] for o in _options(page, "#convert-metrics")] == catalog["metrics_levels"]
    assert page.input_value("#convert-metrics") == "fast"
    assert [o["value"] for o in _options(page, "#convert-preset")] == catalog["presets"]
    assert page.input_value("#convert-preset") == "balanced"
    # Each select has a visible label and its hint line as its description.
    for sel in (
        "#convert-engine",
        "#convert-f0",
        "#convert-separation",
        "#convert-content",
        "#convert-metrics",
    ):
        assert page.eval_on_selector(sel, "s => s.labels.length") == 1, sel
        help_id = page.get_attribute(sel, "aria-describedby")
        assert page.inner_text(f"#{help_id}").strip(), sel
    shot("desktop-before")
    page.set_viewport_size(PHONE)
    page.wait_for_timeout(200)
    assert_no_horizontal_scroll(page)
    shot("phone-before")


@pytest.mark.shared_data
def test_report_off_conversion(
    new_page: Callable[..., Any], server: str, profile_id: str, tmp_path: Path
) -> None:
    """Report ``off``: the job completes; the page says there is no report and shows no error."""
    page, shot = _open_convert(new_page, server)
    page.wait_for_selector(f"#convert-profile option[value='{profile_id}']", state="attached")
    page.select_option("#convert-profile", profile_id)
    page.set_input_files("#song-file", str(speech_clip(tmp_path)))
    page.select_option("#convert-preset", "fast")
    page.select_option("#convert-separation", "none")
    page.select_option("#convert-metrics", "off")
    page.select_option("#convert-f0", "world")
    page.fill("#pitch-shift", "-3")
    # The engine's own options: listed from its schema; a wrong one is refused before the job starts.
    page.click("#engine-options-box summary")
    assert "crossfade_s" in page.inner_text("#engine-options-help")
    page.fill("#engine-options", '{"no_such_option": 1}')
    page.click("#convert-submit")
    refusal = page.locator("#convert-error .error-message")
    refusal.wait_for()
    assert "(invalid_engine_options)" in refusal.inner_text(), refusal.inner_text()
    assert not CLI_FLAG.search(refusal.inner_text()), refusal.inner_text()
    page.fill("#engine-options", "")
    page.click("#convert-submit")
    page.wait_for_selector("#job-card[data-state='completed']", timeout=150_000)
    page.wait_for_selector("#result-card:not([hidden])")
    job_id = page.get_attribute("#job-card", "data-job-id")

    # The server got the fields the form sent, and ran without a report.
    job = _job(server, str(job_id))
    assert job["status"] == "completed"
    assert job["params"]["metrics"] == "off"
    assert job["params"]["f0_method"] == "world"
    assert job["params"]["separation"] == "none"
    assert job["params"]["pitch_shift"] == -3
    assert job["metrics"]["metrics"] is None

    assert page.get_attribute("#report", "data-state") == "none"
    report = page.inner_text("#report")
    assert "turned off" in report, report
    assert "Pitch accuracy" not in report
    assert "DNSMOS" not in report
    assert "RTF" in report, "the timings are still shown"
    assert page.inner_text("#report-level") == "level: off"
    assert page.inner_text("#job-error").strip() == ""
    assert page.inner_text("#convert-error").strip() == ""
    facts = page.inner_text("#result-facts")
    assert re.search(r"F0 method\s+world", facts, re.I), facts
    assert re.search(r"Separation\s+none", facts, re.I), facts
    assert re.search(r"Pitch shift\s+−3\.00 st", facts, re.I), facts
    assert re.search(r"Planned shift: −3\.00 semitones", page.inner_text("#pitch-plan"))
    page.wait_for_selector("#f0-chart[data-state='ready']", timeout=60_000)
    assert page.locator("#f0-chart path.contour").count() == 3
    shot("desktop-after-report-off")
    page.set_viewport_size(PHONE)
    page.wait_for_timeout(300)
    assert_no_horizontal_scroll(page)
    shot("phone-after-report-off")


@pytest.mark.shared_data
def test_content_choice_reaches_the_job_and_separation_auto_skips_speech(
    new_page: Callable[..., Any], server: str, profile_id: str, tmp_path: Path
) -> None:
    """Speech with auto key, separation auto and content "song": the job gets the choice, skips the
    separation (a voice alone), plans a song, and the result says both and why."""
    page, shot = _open_convert(new_page, server)
    page.wait_for_selector(f"#convert-profile option[value='{profile_id}']", state="attached")
    page.select_option("#convert-profile", profile_id)
    page.set_input_files("#song-file", str(speech_clip(tmp_path)))
    page.select_option("#convert-preset", "fast")
    page.select_option("#convert-metrics", "off")
    page.select_option("#convert-content", "song")
    page.check("input[name='pitch-mode'][value='auto']")
    shot("desktop-content-song")
    page.click("#convert-submit")
    page.wait_for_selector("#job-card[data-state='completed']", timeout=150_000)
    page.wait_for_selector("#result-card:not([hidden])")
    job = _job(server, str(page.get_attribute("#job-card", "data-job-id")))
    assert job["params"]["content"] == "song"
    assert job["params"]["separation"] == "auto"
    assert job["metrics"]["separation"] == "none"
    assert job["metrics"]["separation_decision"]["voice_alone"] is True
    assert job["metrics"]["content"]["used"] == "song"
    assert job["metrics"]["content"]["decided_by"] == "option"
    facts = page.inner_text("#result-facts")
    assert re.search(r"Separation\s+none\s+\(auto: skipped: a voice alone", facts, re.I), facts
    assert re.search(r"Planned as\s+song\s+\(chosen: the content option says song", facts, re.I), facts
    page.locator("#result-facts").scroll_into_view_if_needed()
    shot("desktop-after-content-song")

    # The API's form field is the same option: a value outside its choices is refused before any job.
    clip = speech_clip(tmp_path)
    res = httpx.post(
        server + "api/v1/conversions",
        data={"profile_id": profile_id, "content": "poetry"},
        files=[("file", (clip.name, clip.read_bytes(), "audio/wav"))],
        timeout=60,
    )
    assert res.status_code == 422, res.text
    assert res.json()["error"]["code"] == "invalid_content"
    assert res.json()["error"]["details"]["valid"] == ["auto", "speech", "song"]


@pytest.mark.shared_data
def test_full_mix_without_separation_warns(
    new_page: Callable[..., Any], server: str, profile_id: str, tmp_path: Path
) -> None:
    """A song (voice and band) converted with separation ``none``: the result carries a warning, shown as
    a notice with its message and code."""
    if not SONG.is_file():
        pytest.skip(f"the shared song is not at {SONG}")
    y, sr = sf.read(SONG, dtype="float32", frames=int(48_000 * 40))
    y = y.mean(axis=1) if y.ndim > 1 else y
    clip = tmp_path / "full-mix.wav"
    sf.write(clip, y[int(20 * sr) : int(30 * sr)], sr)  # 10 s of verse: voice over the band
    assert np.abs(y).max() > 0.05
    page, shot = _open_convert(new_page, server)
    page.wait_for_selector(f"#convert-profile option[value='{profile_id}']", state="attached")
    page.select_option("#convert-profile", profile_id)
    page.set_input_files("#song-file", str(clip))
    page.select_option("#convert-preset", "fast")
    page.select_option("#convert-separation", "none")
    page.click("#convert-submit")
    page.wait_for_selector("#job-card[data-state='completed']", timeout=240_000)
    page.wait_for_selector("#result-card:not([hidden])")
    job = _job(server, str(page.get_attribute("#job-card", "data-job-id")))
    codes = [w["code"] for w in job["metrics"]["warnings"] if isinstance(w, dict)]
    assert "input_not_vocal" in codes, job["metrics"]["warnings"]
    notice = page.locator("#result-warnings .notice[data-code='input_not_vocal']")
    assert notice.is_visible()
    message = next(w["message"] for w in job["metrics"]["warnings"] if w.get("code") == "input_not_vocal")
    assert message in notice.inner_text()
    assert notice.locator(".notice-code").inner_text() == "input_not_vocal"
    assert not CLI_FLAG.search(notice.inner_text()), notice.inner_text()
    assert page.inner_text("#report-level") == "level: fast"
    page.wait_for_selector("#f0-chart[data-state='ready']", timeout=60_000)
    page.locator("#result-card").scroll_into_view_if_needed()
    shot("desktop-after-warning")
    page.set_viewport_size(PHONE)
    page.wait_for_timeout(300)
    assert_no_horizontal_scroll(page)
    shot("phone-after-warning")


# A job document as the API returns it, written by hand: this test checks how the page *renders* such a
# document (warnings of both kinds, no report, the pitch plan's fields present or missing), not what the
# server measures.
_RENDER_DOC = {
    "id": "job_render",
    "kind": "conversion",
    "status": "completed",
    "device": "cpu",
    "params": {
        "profile_id": "prof_x",
        "filename": "song.wav",
        "engine": "world",
        "preset": "fast",
        "f0_method": None,
        "separation": "auto",
        "metrics": "off",
        "auto_key": True,
    },
    "result": {"mix": "x"},
    "metrics": {
        "engine": "world",
        "preset": "fast",
        "f0_method": "fcpe",
        "separation": "spleeter",
        "options": {
            "engine": "world",
            "preset": "fast",
            "f0_method": None,
            "separation": "auto",
            "metrics": "off",
            "auto_key": True,
        },
        "warnings": [
            {"code": "input_not_vocal", "message": "The input sounds like a full mix <b>not</b> a vocal."},
            {"code": "quality_degraded", "message": "The result scored low."},
        ],
        "separation_decision": {
            "used": "spleeter",
            "decided_by": "auto",
            "reason": "music likely: not quiet between phrases",
            "voice_alone": False,
        },
        "content": {
            "used": "song",
            "decided_by": "auto",
            "steady_share": 0.74,
            "accompaniment": True,
            "reason": "steady share 0.74 >= 0.70: the pitch holds on notes, as in singing",
        },
        "pitch_shift_semitones": 12.0,
        "pitch_plan": {
            "shift_semitones": 12.0,
            "auto_key": True,
            "ideal_shift_semitones": 9.37,
            "moved_share": 0.125,
        },
        "processing_seconds": 2.5,
        "audio_seconds": 10.0,
        "rtf": 0.25,
        "metrics": None,
    },
}


def test_renders_warnings_plan_and_missing_report(new_page: Callable[..., Any], server: str) -> None:
    page, _ = _open_convert(new_page, server)
    render = """async (doc) => {
      const m = await import(new URL('js/convert.js', document.baseURI).href);
      document.getElementById('result-card').hidden = false;
      m.renderOutcome(doc);
    }"""
    page.evaluate(render, _RENDER_DOC)
    notices = page.locator("#result-warnings .notice")
    assert notices.count() == 2
    first = notices.nth(0)
    assert first.get_attribute("data-code") == "input_not_vocal"
    assert "full mix <b>not</b> a vocal" in first.inner_text(), "messages are text, never HTML"
    assert first.locator(".notice-code").inner_text() == "input_not_vocal"
    facts = page.inner_text("#result-facts")
    assert re.search(
        r"Separation\s+spleeter\s+\(auto: music likely: not quiet between phrases\)", facts, re.I
    ), facts
    assert re.search(r"Planned as\s+song\s+\(auto: steady share 0\.74 >= 0\.70", facts, re.I), facts
    assert re.search(r"F0 method\s+fcpe\s+\(the preset's\)", facts, re.I), facts
    assert re.search(r"\+12\.00 st\s+\(auto key, ideal \+9\.37 st\)", facts, re.I), facts
    assert re.search(r"Octave moves\s+12\.5 %", facts, re.I), facts
    assert "12.5 % of voiced frames moved by an octave" in page.inner_text("#pitch-plan")
    assert page.inner_text("#report-level") == "level: off"
    assert "turned off" in page.inner_text("#report")

    # An older or partial document: string warnings, no moved_share, a report without `level`.
    doc = {**_RENDER_DOC, "params": {**_RENDER_DOC["params"], "metrics": "fast"}}
    doc["metrics"] = {
        **_RENDER_DOC["metrics"],  # type: ignore[dict-item]
        "options": {"metrics": "fast"},
        "warnings": ["dnsmos: the converted vocal is too short to score."],
        "pitch_plan": {"shift_semitones": 2.0, "auto_key": False},
        "metrics": {
            "pitch": {"median_abs_cents": 12.0},
            "dnsmos": {},
            "similarity_gain": None,
            "warnings": ["dnsmos: the converted vocal is too short to score."],
        },
    }
    del doc["metrics"]["separation_decision"], doc["metrics"]["content"]
    page.evaluate(render, doc)
    assert re.search(r"Separation\s+spleeter\s+\(auto\)", page.inner_text("#result-facts"), re.I)
    assert "Planned as" not in page.inner_text("#result-facts")
    assert page.locator("#result-warnings .notice").count() == 1
    assert page.locator("#result-warnings .notice-code").inner_text() == "dnsmos"
    assert page.locator("#report ul.warnings").count() == 0, "a note already shown above is not repeated"
    assert "octave moves" not in page.inner_text("#result-facts").lower()
    assert page.inner_text("#report-level") == "level: fast"
    assert "Pitch accuracy" in page.inner_text("#report")

    # No warnings: the notice area is hidden.
    doc["metrics"] = {**doc["metrics"], "warnings": []}
    page.evaluate(render, doc)
    assert page.locator("#result-warnings").is_hidden()


@pytest.mark.shared_data
def test_failed_job_shows_the_api_message(
    new_page: Callable[..., Any], server: str, profile_id: str, tmp_path: Path
) -> None:
    """Auto key on white noise (no voiced frame for FCPE) fails while the job runs: the page shows the
    job's error message and code, and the message names fields, never a command-line flag."""
    rng = np.random.default_rng(0)
    noise = tmp_path / "noise.wav"
    sf.write(noise, (0.1 * rng.standard_normal(4 * 16_000)).astype(np.float32), 16_000)
    page, shot = _open_convert(new_page, server)
    page.wait_for_selector(f"#convert-profile option[value='{profile_id}']", state="attached")
    page.select_option("#convert-profile", profile_id)
    page.set_input_files("#song-file", str(noise))
    page.select_option("#convert-separation", "none")
    page.select_option("#convert-f0", "fcpe")
    page.select_option("#convert-metrics", "off")
    page.check("input[name='pitch-mode'][value='auto']")
    page.click("#convert-submit")
    page.wait_for_selector("#job-card[data-state='failed']", timeout=150_000)
    job = _job(server, str(page.get_attribute("#job-card", "data-job-id")))
    assert job["status"] == "failed"
    assert job["error"]["code"] == "no_voiced_audio"
    error = page.locator("#job-error .error-message")
    text = error.inner_text()
    assert job["error"]["message"] in text, text
    assert "(no_voiced_audio)" in text, text
    assert "did not finish" in page.inner_text("#job-progress-label")
    assert page.locator("#result-card").is_hidden()
    shot("failed-job")
    assert not CLI_FLAG.search(text), f"the message shows a command-line flag: {text}"
