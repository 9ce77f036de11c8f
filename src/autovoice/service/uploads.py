"""Multipart uploads streamed straight to disk, with limits enforced while the bytes arrive.

Nothing is held in memory beyond one network chunk: each file part is written to a file in the folder
the caller gives, and the request is refused (413 ``file_too_large`` / ``too_many_files``) the moment a
part grows past ``max_file_bytes`` or one file too many starts. Client file names are never used as
paths; only a whitelisted extension is kept (decoders sniff the content anyway).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import anyio
from fastapi import Request
from starlette.requests import ClientDisconnect

from autovoice.errors import AutoVoiceError, ParameterError, PayloadTooLargeError, UnsupportedFormatError

AUDIO_EXTENSIONS = frozenset(
    {".wav", ".flac", ".ogg", ".oga", ".mp3", ".m4a", ".aac", ".opus", ".webm", ".mp4", ".aif", ".aiff"}
)
_EXT_RE = re.compile(r"^\.[a-z0-9]{1,5}$")
MAX_FIELD_BYTES = 64 * 1024
MAX_FIELDS = 50


class ClientDisconnectedError(AutoVoiceError):
    """The client hung up mid-upload (``client_disconnected``): 499, as nginx logs it; nobody reads it,
    but the request counts as the client's doing, not as a server error."""

    http_status = 499


@dataclass
class UploadedFile:
    """One file part, already on disk."""

    field: str
    filename: str
    path: Path
    size: int


@dataclass
class MultipartForm:
    fields: dict[str, str] = field(default_factory=dict)
    files: list[UploadedFile] = field(default_factory=list)

    def files_of(self, name: str) -> list[UploadedFile]:
        return [f for f in self.files if f.field == name]


def safe_extension(filename: str) -> str:
    """The file name's extension when it is a known audio one, else ``.bin``."""
    suffix = Path(filename).suffix.lower()
    return suffix if _EXT_RE.match(suffix) and suffix in AUDIO_EXTENSIONS else ".bin"


def display_name(filename: str) -> str:
    """A client file name cut down to something safe to echo back (no path, printable, short)."""
    base = re.split(r"[\\/]", filename)[-1]
    return "".join(c for c in base if c.isprintable())[:120]


def _too_large(limit: int, name: str) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        "file_too_large",
        f"The upload '{display_name(name)}' is larger than the limit of {limit / 2**20:.1f} MiB "
        "(AUTOVOICE_MAX_UPLOAD_BYTES).",
        {"limit_bytes": limit},
    )


async def _body_chunks(request: Request) -> AsyncIterator[bytes]:
    """The request body's chunks (a stall or a trickle is ended by
    :class:`~autovoice.service.bodies.BodyDeadline` with 408 ``upload_timeout``)."""
    try:
        async for chunk in request.stream():
            yield chunk
    except ClientDisconnect:
        raise ClientDisconnectedError(
            "client_disconnected", "The client closed the connection during the upload.", {}
        ) from None


class _Parser:
    """python-multipart callbacks that write file parts into ``dest``."""

    def __init__(
        self,
        dest: Path,
        *,
        file_fields: set[str],
        max_file_bytes: int,
        max_files: int,
        files_setting: str | None = None,
    ) -> None:
        self.dest = dest
        self.file_fields = file_fields
        self.max_file_bytes = max_file_bytes
        self.max_files = max_files
        self.files_setting = files_setting
        self.form = MultipartForm()
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._name = ""
        self._filename: str | None = None
        self._data = bytearray()
        self._file: IO[bytes] | None = None
        self._current: UploadedFile | None = None
        self.pending: list[tuple[IO[bytes], bytes]] = []
        self.open_files: list[IO[bytes]] = []

    def on_part_begin(self) -> None:
        self._disposition, self._name, self._filename = b"", "", None
        self._data = bytearray()
        self._file, self._current = None, None

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name, self._header_value = b"", b""

    def on_headers_finished(self) -> None:
        from python_multipart.multipart import parse_options_header

        _, options = parse_options_header(self._disposition)
        if b"name" not in options:
            raise ParameterError("invalid_parameter", "A multipart part has no field name.")
        self._name = options[b"name"].decode("utf-8", "replace")
        if b"filename" in options:
            self._filename = options[b"filename"].decode("utf-8", "replace")
            if self._name not in self.file_fields:
                allowed = ", ".join(sorted(self.file_fields))
                raise ParameterError(
                    "invalid_parameter",
                    f"Unexpected file field '{self._name[:40]}'. File fields: {allowed}.",
                    {"field": self._name[:40]},
                )
            if len(self.form.files) >= self.max_files:
                why = f" ({self.files_setting})" if self.files_setting else f": {self._file_fields_text()}"
                raise PayloadTooLargeError(
                    "too_many_files",
                    f"At most {self.max_files} files per request{why}.",
                    {"limit": self.max_files},
                )
            index = len(self.form.files)
            path = self.dest / f"{self._name}-{index}{safe_extension(self._filename)}"
            self._file = path.open("wb")
            self.open_files.append(self._file)
            self._current = UploadedFile(self._name, display_name(self._filename), path, 0)
            self.form.files.append(self._current)
        elif len(self.form.fields) >= MAX_FIELDS:
            raise ParameterError("invalid_parameter", f"At most {MAX_FIELDS} form fields per request.")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self._current is not None and self._file is not None:
            self._current.size += len(chunk)
            if self._current.size > self.max_file_bytes:
                raise _too_large(self.max_file_bytes, self._current.filename)
            self.pending.append((self._file, bytes(chunk)))
        else:
            if len(self._data) + len(chunk) > MAX_FIELD_BYTES:
                raise PayloadTooLargeError(
                    "field_too_large", f"Form field '{self._name[:40]}' exceeds {MAX_FIELD_BYTES} bytes."
                )
            self._data.extend(chunk)

    def on_part_end(self) -> None:
        if self._current is None:
            if self._name in self.form.fields:
                # Which of two values would count is anyone's guess: refuse rather than keep the last.
                raise ParameterError(
                    "invalid_parameter",
                    f"The form field '{self._name[:40]}' is given twice; send each field once.",
                    {"field": self._name[:40]},
                )
            self.form.fields[self._name] = self._data.decode("utf-8", "replace")

    def _file_fields_text(self) -> str:
        return " and ".join(f"one '{name}'" for name in sorted(self.file_fields))

    def flush(self) -> None:
        for f, chunk in self.pending:
            f.write(chunk)
        self.pending.clear()

    def close(self) -> None:
        for f in self.open_files:
            f.close()


async def receive_multipart(
    request: Request,
    dest: Path,
    *,
    file_fields: set[str],
    max_file_bytes: int,
    max_files: int,
    files_setting: str | None = None,
) -> MultipartForm:
    """Stream a ``multipart/form-data`` body into ``dest`` (the caller creates and removes it).

    ``max_files`` comes from the setting ``files_setting`` names (said in ``too_many_files``), or is the
    route's own fixed cap (then the message names the file fields it takes, one each).

    Raises
    ------
    UnsupportedFormatError
        ``unsupported_media_type`` (415) when the body is not multipart.
    PayloadTooLargeError
        ``file_too_large`` / ``too_many_files`` (413), checked while receiving.
    ParameterError
        ``invalid_parameter`` (422) for malformed multipart data, unexpected file fields, or a form field
        given twice.
    UploadTimeoutError
        ``upload_timeout`` (408) when the body stalls or arrives too slowly (from
        :class:`~autovoice.service.bodies.BodyDeadline`).
    """
    import python_multipart
    from python_multipart.exceptions import FormParserError
    from python_multipart.multipart import parse_options_header

    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or b"boundary" not in params:
        raise UnsupportedFormatError(
            "unsupported_media_type",
            "Send this request as multipart/form-data (file uploads plus form fields).",
            {"content_type": request.headers.get("content-type", "")[:100]},
        )
    declared = request.headers.get("content-length")
    budget = max_file_bytes * max_files + MAX_FIELD_BYTES * MAX_FIELDS
    if declared is not None and declared.isdigit() and int(declared) > budget:
        raise _too_large(max_file_bytes, "request")
    parser = _Parser(
        dest,
        file_fields=file_fields,
        max_file_bytes=max_file_bytes,
        max_files=max_files,
        files_setting=files_setting,
    )
    callbacks: Any = {
        "on_part_begin": parser.on_part_begin,
        "on_part_data": parser.on_part_data,
        "on_part_end": parser.on_part_end,
        "on_header_field": parser.on_header_field,
        "on_header_value": parser.on_header_value,
        "on_header_end": parser.on_header_end,
        "on_headers_finished": parser.on_headers_finished,
    }
    mp = python_multipart.MultipartParser(params[b"boundary"], callbacks)
    try:
        async for chunk in _body_chunks(request):
            mp.write(chunk)
            if parser.pending:
                await anyio.to_thread.run_sync(parser.flush)
        mp.finalize()
        parser.flush()
    except FormParserError as exc:
        raise ParameterError("invalid_parameter", "The multipart body is malformed.", {}) from exc
    finally:
        parser.close()
    return parser.form
