"""The weights registry: cache paths, hash checks, and downloads that happen only when allowed."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from autovoice.config import Settings
from autovoice.errors import ModelUnavailableError, ParameterError
from autovoice.models.weights import (
    REGISTRY,
    WeightsSpec,
    download_weights,
    ensure_weights,
    verify_file,
    weights_path,
    weights_present,
)

PAYLOAD = b"not really a model, but 64 KiB of deterministic bytes\n" * 1200


def _spec(url: str, *, payload: bytes = PAYLOAD, sha256: str | None = None) -> WeightsSpec:
    return WeightsSpec(
        name="toy",
        version="1",
        url=url,
        sha256=sha256 or hashlib.sha256(payload).hexdigest(),
        size_bytes=len(payload),
        license="MIT",
        filename="toy-weights.bin",
    )


@pytest.fixture
def source_file(tmp_path: Path) -> Path:
    """The 'published' file, served from the local file system."""
    path = tmp_path / "upstream" / "toy-weights.bin"
    path.parent.mkdir()
    path.write_bytes(PAYLOAD)
    return path


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch, source_file: Path) -> WeightsSpec:
    spec = _spec(source_file.as_uri())
    monkeypatch.setitem(REGISTRY, "toy", spec)
    return spec


@pytest.fixture
def allow(settings: Settings) -> Settings:
    return settings.model_copy(update={"allow_downloads": True})


@pytest.fixture
def http_url(source_file: Path) -> Iterator[str]:
    """``http://127.0.0.1:<port>/toy-weights.bin`` served by a local thread (no internet involved)."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(source_file.parent), **kwargs)  # type: ignore[arg-type]

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{source_file.name}"
    finally:
        server.shutdown()
        server.server_close()


def test_htdemucs_entry_matches_demucs_remote_list() -> None:
    from demucs.pretrained import REMOTE_ROOT, _parse_remote_files

    spec = REGISTRY["htdemucs"]
    remote = _parse_remote_files(REMOTE_ROOT / "files.txt")
    bag = (REMOTE_ROOT / "htdemucs.yaml").read_text()
    assert "955717e8" in bag
    assert spec.url == remote["955717e8"]
    assert spec.url.endswith("/" + spec.filename)
    # demucs names files <signature>-<sha256 prefix>.th; the pinned digest must start with that prefix.
    assert spec.sha256.startswith(spec.filename.removesuffix(".th").split("-")[1])
    assert len(spec.sha256) == 64
    assert spec.license == "MIT"


def test_weights_path_is_in_the_cache_dir(settings: Settings) -> None:
    path = weights_path("htdemucs", settings)
    assert path == settings.model_cache_dir / "htdemucs" / "955717e8-8726e21a.th"
    assert not weights_present("htdemucs", settings=settings)


def test_missing_weights_without_downloads_says_how_to_get_them(settings: Settings) -> None:
    with pytest.raises(ModelUnavailableError) as info:
        ensure_weights("htdemucs", settings=settings)
    err = info.value
    assert err.code == "model_unavailable"
    path = weights_path("htdemucs", settings)
    for hint in ("AUTOVOICE_ALLOW_DOWNLOADS=1", "autovoice models download htdemucs", str(path)):
        assert hint in err.message
    assert err.details["url"] == REGISTRY["htdemucs"].url
    assert not path.exists()


def test_unknown_name_lists_known_ones(settings: Settings) -> None:
    with pytest.raises(ParameterError) as info:
        ensure_weights("htdemucz", settings=settings)
    assert info.value.code == "unknown_model"
    assert "htdemucs" in info.value.message


def test_local_file_with_right_hash_is_used_without_network(toy: WeightsSpec, settings: Settings) -> None:
    path = weights_path("toy", settings)
    path.parent.mkdir(parents=True)
    path.write_bytes(PAYLOAD)
    assert ensure_weights("toy", settings=settings) == path


def test_prefix_only_hash_is_accepted(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    spec = _spec("https://example.invalid/toy", sha256=hashlib.sha256(PAYLOAD).hexdigest()[:8])
    monkeypatch.setitem(REGISTRY, "toy", spec)
    path = weights_path("toy", settings)
    path.parent.mkdir(parents=True)
    path.write_bytes(PAYLOAD)
    assert ensure_weights("toy", settings=settings) == path


@pytest.mark.parametrize("content", [PAYLOAD[:-1] + b"?", PAYLOAD[:-10]], ids=["flipped-byte", "truncated"])
def test_corrupt_local_file_is_rejected(toy: WeightsSpec, settings: Settings, content: bytes) -> None:
    path = weights_path("toy", settings)
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    with pytest.raises(ModelUnavailableError) as info:
        ensure_weights("toy", settings=settings)
    assert info.value.code == "weights_corrupt"
    assert "not used" in info.value.message
    assert path.read_bytes() == content  # the user's file is left for them to inspect


def test_corrupt_local_file_is_replaced_when_downloads_allowed(toy: WeightsSpec, allow: Settings) -> None:
    path = weights_path("toy", allow)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"garbage")
    assert ensure_weights("toy", settings=allow) == path
    assert path.read_bytes() == PAYLOAD


def test_download_from_file_url_when_allowed(toy: WeightsSpec, allow: Settings) -> None:
    seen: list[tuple[float, str]] = []
    path = ensure_weights("toy", settings=allow, progress=lambda f, s: seen.append((f, s)))
    assert path == weights_path("toy", allow)
    assert path.read_bytes() == PAYLOAD
    assert seen[0] == (0.0, "download toy")
    assert seen[-1] == (1.0, "download toy")
    assert [f for f, _ in seen] == sorted(f for f, _ in seen)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left behind


def test_download_over_http_on_localhost(
    monkeypatch: pytest.MonkeyPatch, http_url: str, settings: Settings
) -> None:
    monkeypatch.setitem(REGISTRY, "toy", _spec(http_url))
    # An explicit download (`autovoice models download`) does not need allow_downloads.
    path = download_weights("toy", settings=settings, timeout_s=10)
    assert path.read_bytes() == PAYLOAD
    assert verify_file(path, REGISTRY["toy"].sha256) == hashlib.sha256(PAYLOAD).hexdigest()


def test_download_with_wrong_hash_saves_nothing(
    monkeypatch: pytest.MonkeyPatch, source_file: Path, allow: Settings
) -> None:
    monkeypatch.setitem(REGISTRY, "toy", _spec(source_file.as_uri(), sha256="0" * 64))
    with pytest.raises(ModelUnavailableError) as info:
        ensure_weights("toy", settings=allow)
    assert info.value.code == "weights_corrupt"
    folder = weights_path("toy", allow).parent
    assert list(folder.iterdir()) == []


def test_download_failure_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, allow: Settings
) -> None:
    monkeypatch.setitem(REGISTRY, "toy", _spec((tmp_path / "nowhere.bin").as_uri()))
    with pytest.raises(ModelUnavailableError) as info:
        ensure_weights("toy", settings=allow)
    assert info.value.code == "download_failed"
    assert str(weights_path("toy", allow)) in info.value.message
    assert list(weights_path("toy", allow).parent.iterdir()) == []


def test_verify_file_checks(tmp_path: Path) -> None:
    path = tmp_path / "w.bin"
    path.write_bytes(PAYLOAD)
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    assert verify_file(path, digest) == digest
    assert verify_file(path, digest[:8].upper()) == digest
    with pytest.raises(ModelUnavailableError) as info:
        verify_file(path, "deadbeef")
    assert info.value.code == "weights_corrupt"
    with pytest.raises(ModelUnavailableError) as info:
        verify_file(path, digest, size_bytes=len(PAYLOAD) + 1)
    assert info.value.code == "weights_corrupt"
    with pytest.raises(ModelUnavailableError) as info:
        verify_file(tmp_path / "missing.bin", digest)
    assert info.value.code == "model_unavailable"
    for bad in ("abc", "xyz12345", digest + "0"):
        with pytest.raises(ParameterError):
            verify_file(path, bad)


def test_spec_rejects_malformed_hash() -> None:
    with pytest.raises(ValueError, match="sha256"):
        _spec("file:///x", sha256="1234")
