"""Weights users add from their own files (``autovoice models add NAME PATH``): copied, hash-checked at use.

Some weights are not on PyPI and may not be downloadable where AutoVoice runs: the content encoders the
trained RVC / so-vits-svc models need (``hubert_base``, ``contentvec``) and RMVPE's ``rmvpe.pt``. A user
who has them adds them with :func:`add_local`: the file (or Hugging Face folder) is checked by loading it
with the ``check`` the caller passes in (this module knows nothing of the networks, so it sits below
them), then copied into ``<model_cache_dir>/local/<name>/`` with a manifest of sha256 digests.
:func:`local_source` finds the copy again and checks it against those digests (once per process while a
file is unchanged, in the registry's verified-file memory, :func:`autovoice.models.weights.verify_cached`).

:func:`not_installed` is the one "add it with ``autovoice models add``" message every caller raises when
such weights are missing.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from autovoice.errors import ModelUnavailableError, NotFoundError, unknown_choice
from autovoice.models.weights import sha256_file, verify_cached

if TYPE_CHECKING:
    from autovoice.config import Settings

_ENCODER_FORM = (
    "a fairseq .pt such as hubert_base.pt / checkpoint_best_legacy_500.pt, or a Hugging Face folder"
)
#: Weights names a user can add from a file or folder of their own: (what they are, what to give).
LOCAL_WEIGHTS: dict[str, tuple[str, str]] = {
    "hubert_base": ("the 'hubert_base' content encoder", _ENCODER_FORM),
    "contentvec": ("the 'contentvec' content encoder", _ENCODER_FORM),
    "rmvpe": ("RMVPE's rmvpe.pt", "the rmvpe.pt RVC and Applio ship"),
}
LOCAL_NAMES: tuple[str, ...] = tuple(LOCAL_WEIGHTS)
_MANIFEST = "local.json"


def local_dir(name: str, settings: Settings | None = None) -> Path:
    """``<model_cache_dir>/local/<name>``: where the user's copy of ``name`` is kept."""
    from autovoice.config import get_settings

    return (settings or get_settings()).model_cache_dir / "local" / name


def add_hint(name: str) -> str:
    """The command that adds the user's own copy of ``name``."""
    return f"`autovoice models add {name} PATH`"


def not_installed(name: str, *, needed_by: str) -> ModelUnavailableError:
    """``model_unavailable``: ``needed_by`` needs weights ``name``, which are not installed; the message says
    how to add the user's copy (:func:`add_local`) or download the registry's. The one such message.

    Parameters
    ----------
    name
        A :data:`LOCAL_NAMES` entry.
    needed_by
        Who needs it, as the sentence's subject ("This rvc model", "The rmvpe F0 method").
    """
    what, form = LOCAL_WEIGHTS.get(name, (f"the {name!r} weights", ""))
    return ModelUnavailableError(
        "model_unavailable",
        f"{needed_by} needs {what}, which is not installed. Add your copy with {add_hint(name)}"
        + (f" ({form})" if form else "")
        + f", or download it with `autovoice models download {name}`.",
        {"name": name},
    )


def add_local(
    name: str,
    path: str | os.PathLike[str],
    *,
    check: Callable[[Path], object],
    settings: Settings | None = None,
) -> Path:
    """Check and copy the user's own weights ``name`` (a file or a folder) into
    ``<model_cache_dir>/local/<name>/``; returns the copy.

    Parameters
    ----------
    name
        One of :data:`LOCAL_NAMES`.
    path
        The user's file or folder.
    check
        Loads ``path`` (safely) and raises an :class:`~autovoice.errors.AutoVoiceError` when it is not the
        weights ``name`` is (e.g. :func:`autovoice.models.hubert.load_content_encoder`); only a file that
        passes is kept.
    settings
        Where the model cache is; default :func:`~autovoice.config.get_settings`.

    The copy replaces an earlier one atomically; a sha256 of each file is recorded and checked at use.

    Raises
    ------
    ParameterError
        ``unknown_model`` for another name; what ``check`` raises (``untrusted_checkpoint``,
        ``invalid_checkpoint``, ...).
    NotFoundError
        ``file_not_found``.
    """
    if name not in LOCAL_NAMES:
        raise unknown_choice("unknown_model", "local model name", name, LOCAL_NAMES)
    src = Path(path)
    if not src.exists():
        raise NotFoundError("file_not_found", f"{src.name} does not exist.", {"path": str(src)})
    check(src)
    dest = local_dir(name, settings)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=dest.parent))
    try:
        files = sorted(f for f in src.iterdir() if f.is_file()) if src.is_dir() else [src]
        target = tmp / (src.name if src.is_dir() else "model" + src.suffix)
        if src.is_dir():
            target.mkdir()
        for f in files:
            shutil.copyfile(f, target / f.name if src.is_dir() else target)
        copied = sorted(target.iterdir()) if src.is_dir() else [target]
        manifest = {
            "name": name,
            "source": src.name,
            "path": target.name,
            "sha256": {str(f.relative_to(tmp)): sha256_file(f) for f in copied},
        }
        (tmp / _MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        old = dest.with_name(f".{name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if dest.exists():
            os.replace(dest, old)
        os.replace(tmp, dest)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest / target.name


def local_source(name: str, *, settings: Settings | None = None) -> Path | None:
    """The user's copy of ``name`` added with :func:`add_local`, hash-checked; ``None`` when there is none.

    Raises
    ------
    ModelUnavailableError
        ``weights_corrupt`` when a file of the copy changed since it was added (the message says to add
        it again).
    """
    d = local_dir(name, settings)
    try:
        manifest = json.loads((d / _MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for rel, digest in manifest.get("sha256", {}).items():
        f = d / rel
        try:
            verify_cached(f, str(digest))
        except ModelUnavailableError:
            raise ModelUnavailableError(
                "weights_corrupt",
                f"The {name} copy at {d} changed since it was added; add it again with {add_hint(name)}.",
                {"name": name, "path": str(f)},
            ) from None
    return d / str(manifest["path"])
