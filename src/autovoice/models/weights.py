"""Registry of downloadable model weights: name -> URL, sha256, size, licence and cache path.

Weights that do not ship inside a PyPI package live in ``settings.model_cache_dir / <name> / <filename>``.
They are fetched only by an explicit command (:func:`download_weights`, behind
``autovoice models download NAME``) or by :func:`ensure_weights` when ``AUTOVOICE_ALLOW_DOWNLOADS`` is on.
Every file is hash-checked before use; a file that fails the check is never loaded.

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

import hashlib
import logging
import os
import re
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from autovoice.config import Settings, get_settings
from autovoice.errors import ModelUnavailableError, ParameterError
from autovoice.progress import ProgressCallback, no_progress

log = logging.getLogger(__name__)

#: Where demucs publishes its checkpoints (``demucs.pretrained.ROOT_URL``).
DEMUCS_ROOT_URL = "https://dl.fbaipublicfiles.com/demucs/"
#: Shortest accepted hash prefix, in hex digits (what demucs embeds in its file names).
MIN_HASH_PREFIX = 8
_CHUNK = 1 << 20
_HEX = re.compile(r"^[0-9a-f]+$")


@dataclass(frozen=True)
class WeightsSpec:
    """One downloadable weights file.

    Attributes
    ----------
    name
        Registry key, e.g. ``"htdemucs"``.
    version
        Upstream version or signature of these weights.
    url
        Where :func:`download_weights` fetches the file (``https://``; tests use ``file://``/``http://``).
    sha256
        Lower-case hex sha256 of the file: the full 64-digit digest, or a prefix of at least
        :data:`MIN_HASH_PREFIX` digits where only a prefix is published.
    size_bytes
        Exact file size in bytes, or ``None`` if unknown.
    license
        SPDX licence identifier of the weights.
    filename
        File name inside ``<model_cache_dir>/<name>/``.
    """

    name: str
    version: str
    url: str
    sha256: str
    size_bytes: int | None
    license: str
    filename: str

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
    """Where the weights ``name`` live in the cache: ``<model_cache_dir>/<name>/<filename>``.

    The file may not exist; see :func:`weights_present` and :func:`ensure_weights`.
    """
    s = settings or get_settings()
    spec = get_spec(name)
    return s.model_cache_dir / spec.name / spec.filename


def weights_present(name: str, *, settings: Settings | None = None) -> bool:
    """True when a file for ``name`` is in the cache (cheap: its hash is checked when it is used)."""
    return weights_path(name, settings).is_file()


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The lower-case hex sha256 of a file, read in 1 MiB blocks."""
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            sha.update(block)
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
        ``weights_path(name)``, hash-checked.

    Raises
    ------
    ModelUnavailableError
        ``model_unavailable`` when the file is missing and downloads are off (the message says how to
        get it), ``weights_corrupt`` when the local file fails its hash check and downloads are off,
        ``download_failed`` when a download fails.
    """
    s = settings or get_settings()
    spec = get_spec(name)
    path = weights_path(name, s)
    if path.is_file():
        try:
            verify_file(path, spec.sha256, size_bytes=spec.size_bytes)
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


def download_weights(
    name: str,
    *,
    settings: Settings | None = None,
    progress: ProgressCallback | None = None,
    timeout_s: float = 60.0,
) -> Path:
    """Fetch weights ``name`` into the cache, whatever ``allow_downloads`` says (an explicit request).

    The file is streamed into a temporary file next to its destination, checked against the registry's
    size and sha256, and renamed into place atomically; a failed or interrupted download leaves nothing
    behind, and concurrent downloads of the same file are safe.

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
        do not match the registry.
    """
    s = settings or get_settings()
    spec = get_spec(name)
    path = weights_path(name, s)
    report = progress or no_progress
    stage = f"download {spec.name}"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{spec.filename}.", suffix=".part", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        log.info("downloading %s from %s", spec.name, spec.url)
        report(0.0, stage)
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(spec.url, timeout=timeout_s) as resp:
            total = spec.size_bytes or int(resp.headers.get("Content-Length") or 0)
            done = 0
            while block := resp.read(_CHUNK):
                out.write(block)
                done += len(block)
                if total:
                    report(min(done / total, 1.0), stage)
        verify_file(tmp, spec.sha256, size_bytes=spec.size_bytes)
        os.replace(tmp, path)
    except ModelUnavailableError as exc:
        raise ModelUnavailableError(
            exc.code,
            f"The download of {spec.name} from {spec.url} did not match the registry ({exc.message}); "
            "nothing was saved. Try again later, or check that the URL still serves the published file.",
            {**exc.details, "name": spec.name, "url": spec.url},
        ) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ModelUnavailableError(
            "download_failed",
            f"Could not download {spec.name} from {spec.url}: {exc}. Check the network connection, or "
            f"download the file yourself and place it at {path}.",
            {"name": spec.name, "url": spec.url, "path": str(path)},
        ) from exc
    finally:
        tmp.unlink(missing_ok=True)
    report(1.0, stage)
    return path
