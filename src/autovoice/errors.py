"""Typed errors with stable codes.

Every error a caller can cause is an :class:`AutoVoiceError` subclass carrying a stable, machine-readable
``code`` (``audio_too_short``, ``profile_not_found``, ...), a message that names the value and the fix, and
optional ``details``. The CLI exits with status 2 for caller errors and 1 for internal ones; the service maps
each class to one HTTP status through :attr:`AutoVoiceError.http_status`.
"""

from __future__ import annotations

from typing import Any


class AutoVoiceError(Exception):
    """Root of all AutoVoice errors.

    Parameters
    ----------
    code
        Stable snake_case identifier; part of the public API, never reworded.
    message
        Human-readable sentence that says what was wrong and how to fix it.
    details
        JSON-serialisable context (the offending value, the allowed range, ...).
    """

    http_status: int = 500
    #: ``True`` when the caller can fix the problem (CLI exit 2, HTTP 4xx).
    caller_error: bool = True

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details: dict[str, Any] = dict(details or {})

    def to_dict(self) -> dict[str, Any]:
        """The ``{"code", "message", "details"}`` document used by the CLI's ``--json`` and the API."""
        return {"code": self.code, "message": self.message, "details": self.details}

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"


class ParameterError(AutoVoiceError):
    """A parameter is out of range or of the wrong kind (``invalid_parameter``, ``unknown_engine``...)."""

    http_status = 422


class AudioError(AutoVoiceError):
    """The audio itself is unusable: unreadable, empty, silent, too short/long, NaN, too many channels."""

    http_status = 422


class UnsupportedFormatError(AudioError):
    """The file is not audio, or is in a container/codec we cannot decode."""

    http_status = 415


class PayloadTooLargeError(AudioError):
    """A file or upload is larger than the configured limit."""

    http_status = 413


class NotFoundError(AutoVoiceError):
    """A named resource (profile, job, voice, file) does not exist."""

    http_status = 404


class ConflictError(AutoVoiceError):
    """The request conflicts with the current state (a profile name already taken, a finished job...)."""

    http_status = 409


class ModelUnavailableError(AutoVoiceError):
    """A model or optional dependency is missing; the message says how to install or download it."""

    http_status = 503
    caller_error = True


class ModelNotInstalledError(ModelUnavailableError):
    """A request's option needs a model or package this server does not have (``model_unavailable``), found
    before any work is queued: 409, for the caller to change (another option) or the operator to install.
    Not a fault of the server, unlike a model that fails to load or download while a job runs (503)."""

    http_status = 409


def package_missing(package: str, what: str) -> ModelUnavailableError:
    """``model_unavailable``: ``what`` needs ``package``, which is not installed (says how to install it)."""
    return ModelUnavailableError(
        "model_unavailable",
        f"{what} needs the '{package}' package, which is not installed. Run `make install` "
        f"(or `pip install {package}`).",
        {"package": package},
    )


class CancelledError(AutoVoiceError):
    """Work was cancelled on request."""

    http_status = 409


class StorageError(AutoVoiceError):
    """The data dir cannot take the write: its filesystem is full (``storage_full``) or read-only / not
    writable (``storage_read_only``). HTTP 507; the message names the cause. Not the caller's fault: the
    operator frees space or fixes the mount (CLI exit 1)."""

    http_status = 507
    caller_error = False


class InternalError(AutoVoiceError):
    """A failure on our side; never the caller's fault."""

    http_status = 500
    caller_error = False


def unknown_choice(code: str, what: str, value: object, valid: tuple[str, ...] | list[str]) -> ParameterError:
    """The one error for a value outside a fixed set of choices: names the value and lists the valid ones.

    ``what`` is the field's name as a user reads it (``"engine"``, ``"F0 method"``, ``"preset"``).
    """
    shown = str(value)[:60]
    return ParameterError(
        code,
        f"Unknown {what} '{shown}'. Valid: {', '.join(valid)}.",
        {"value": shown, "valid": list(valid)},
    )
