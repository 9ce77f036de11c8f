"""The Voices tab's trained models in a real headless Chromium against the real app: a profile made from
an RVC v2 model (+ index) alone, a so-vits-svc 4.1 model imported into its card, a refused checkpoint
(code shown, nothing added), and a model deleted. Checkpoints are random-weights files in the real
tools' layouts (``tests.engines.fakes``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.slow]
fakes = pytest.importorskip("tests.engines.fakes")


@pytest.fixture(scope="module")
def model_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("models")
    pth, config = fakes.write_sovits(d / "sovits")
    return {
        "rvc": fakes.write_rvc(d / "alice_e300.pth", version="v2", sr=48000),
        "index": fakes.write_index(d / "added_alice.index", dim=768, n=400),
        "sovits": pth,
        "config": config,
        "evil": fakes.write_evil_checkpoint(d / "evil.pth", d / "RAN"),
    }


def test_model_only_profile_import_refuse_delete(
    new_page: Callable[..., Any], server: str, model_files: dict[str, Path]
) -> None:
    page, shot = new_page(server)
    page.fill("#profile-name", "Model Voice")
    page.click("#profile-model summary")
    page.set_input_files("#new-model-model", str(model_files["rvc"]))
    page.set_input_files("#new-model-index", str(model_files["index"]))
    shot("chosen")
    page.click("#profile-submit")
    card = page.locator(".profile", has_text="Model Voice")
    card.wait_for()
    assert "Created Model Voice (rvc model)" in page.locator("#profiles-status").inner_text()
    meta = card.locator(".model-meta").first.inner_text()
    assert "RVC rvc-v2 · 48 kHz · F0" in meta, meta
    assert "index 768-d" in meta, meta
    assert "No recordings" in card.inner_text()
    assert page.locator("#new-model-model").evaluate("e => e.files.length") == 0  # the form was reset
    shot("created")

    pid = card.get_attribute("data-id")
    card.locator("summary", has_text="Import a trained model").click()
    page.set_input_files(f"#add-{pid}-model", str(model_files["evil"]))
    card.get_by_role("button", name="Import model").click()
    error = card.locator(".error-box .error-message")
    error.wait_for()
    assert "(untrusted_checkpoint)" in error.inner_text()
    assert card.locator(".model").count() == 1
    assert not (model_files["evil"].parent / "RAN").exists()
    shot("refused")

    page.set_input_files(f"#add-{pid}-model", str(model_files["sovits"]))
    page.set_input_files(f"#add-{pid}-config", str(model_files["config"]))
    card.get_by_role("button", name="Import model").click()
    page.wait_for_function(f"document.querySelectorAll('.profile[data-id=\"{pid}\"] .model').length === 2")
    card = page.locator(f".profile[data-id='{pid}']")
    assert "so-vits-svc sovits-4.1" in card.locator(".model").nth(1).inner_text()
    assert "Imported G_8000" in page.locator("#profiles-status").inner_text()
    shot("two-models")

    card.get_by_role("button", name="Delete model alice_e300 of Model Voice").click()
    page.wait_for_function(f"document.querySelectorAll('.profile[data-id=\"{pid}\"] .model').length === 1")
    assert "Deleted model alice_e300" in page.locator("#profiles-status").inner_text()
    shot("deleted")


def test_companions_need_the_model(
    new_page: Callable[..., Any], server: str, model_files: dict[str, Path]
) -> None:
    page, _ = new_page(server)
    page.fill("#profile-name", "Index Only")
    page.click("#profile-model summary")
    page.set_input_files("#new-model-index", str(model_files["index"]))
    page.click("#profile-submit")
    error = page.locator("#profile-error .error-message")
    error.wait_for()
    assert "(invalid_parameter)" in error.inner_text()
    assert page.evaluate("document.activeElement.id") == "new-model-model"
    assert page.locator(".profile", has_text="Index Only").count() == 0


@pytest.mark.shared_data
def test_song_converts_with_the_profiles_model(
    new_page: Callable[..., Any], model_files: dict[str, Path], speech_dir: Path, tmp_path: Path
) -> None:
    """Recordings and an RVC v2 model in one profile made on the page; 6 s of the shared song converted
    in the Convert tab with engine rvc, Spleeter separation and auto key (the recordings' range)."""
    from autovoice.audio import load, save
    from autovoice.config import Settings
    from autovoice.models.hubert import add_local
    from tests.support import SONG
    from tests.web.conftest import serve_app

    if not SONG.is_file():
        pytest.skip(f"shared song not found at {SONG}")
    data = tmp_path / "data"
    hubert = fakes.write_fairseq_hubert(tmp_path / "hubert_base.pt", hidden=768, layers=12, heads=12, ffn=32)
    add_local("hubert_base", hubert, settings=Settings(data_dir=data, device="cpu"))
    y, sr = load(SONG)
    song = save(tmp_path / "song.flac", y[:, 60 * sr : 66 * sr], sr=sr)
    samples = sorted((speech_dir / "367").glob("*.flac"))[:3]
    with serve_app(data) as url:
        page, shot = new_page(url)
        page.fill("#profile-name", "Singer")
        page.set_input_files("#profile-files", [str(f) for f in samples])
        page.click("#profile-model summary")
        page.set_input_files("#new-model-model", str(model_files["rvc"]))
        page.set_input_files("#new-model-index", str(model_files["index"]))
        page.click("#profile-submit")
        card = page.locator(".profile", has_text="Singer")
        card.wait_for(timeout=150_000)
        assert card.locator("svg.piano-roll").count() == 1
        assert card.locator(".model").count() == 1
        shot("profile")

        card.get_by_role("button", name="Convert with this voice").click()
        page.set_input_files("#song-file", str(song))
        page.wait_for_function("!document.getElementById('convert-engine').disabled")
        assert page.input_value("#convert-engine") == "rvc"  # the profile's model picks its engine
        page.select_option("#convert-preset", "fast")
        page.select_option("#convert-separation", "spleeter")
        page.check("input[name='pitch-mode'][value='auto']")
        page.click("#convert-submit")
        page.wait_for_selector("#job-card[data-state='completed']", timeout=240_000)
        engine = page.locator(".fact[data-key='engine'] dd").first.inner_text()
        assert engine.startswith("rvc"), engine
        separation = page.locator(".fact[data-key='separation'] dd").first.inner_text()
        assert separation.startswith("spleeter"), separation
        page.wait_for_selector("#result-card:not([hidden])")
        page.wait_for_function("document.getElementById('audio-b').readyState >= 1", timeout=30_000)
        duration = page.eval_on_selector("#audio-b", "a => a.duration")
        assert 5.5 < duration < 6.5, duration
        shot("converted")
