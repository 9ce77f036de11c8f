"""Log set-up for the CLI, the server and the worker: readable lines on a terminal, JSON lines otherwise.

:func:`configure_logging` is the one place that installs a handler (the CLI's global ``-v`` calls it,
``serve`` and ``worker`` call it with the settings' level). AutoVoice's own loggers (``autovoice.*``) log
at the level asked for; the servers' loggers (``uvicorn``, ``celery``) at INFO or above; every other
library (numba, matplotlib, urllib3, httpx, python-multipart, asyncio...) only at WARNING or above, even
when AutoVoice logs at DEBUG: their debug output is noise to a user and can run to megabytes.

Only the standard library is imported here, so the CLI can set up logging before every command without
slowing ``autovoice --help``.
"""

from __future__ import annotations

import contextvars
import json as jsonlib
import logging
import re
import sys
from typing import Any, Literal, TextIO

from autovoice.errors import unknown_choice

#: The id of the HTTP request being handled (set by the service's request middleware).
current_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("auto", "text", "json")
#: Loggers that are AutoVoice's own: they log at the level asked for.
OWN_LOGGERS = ("autovoice",)
#: Server frameworks whose INFO lines a user wants ("Uvicorn running on ...", "celery@host ready").
SERVER_LOGGERS = ("uvicorn", "celery")

LogFormat = Literal["auto", "text", "json"]


def parse_level(level: str | int) -> int:
    """A level name (``"debug"``, ``"INFO"``...) or number as a :mod:`logging` level number.

    Raises ``invalid_log_level`` for an unknown name.
    """
    if isinstance(level, int):
        return level
    name = str(level).strip().upper()
    if name not in LEVELS:
        raise unknown_choice("invalid_log_level", "log level", level, LEVELS)
    return int(getattr(logging, name))


def json_from_format(log_format: str | None) -> bool | None:
    """``"json"`` -> True, ``"text"`` -> False, ``"auto"`` or None -> None (decided by the stream).

    Raises ``invalid_log_format`` for any other value.
    """
    value = (log_format or "auto").strip().lower()
    if value not in LOG_FORMATS:
        raise unknown_choice("invalid_log_format", "log format", log_format, LOG_FORMATS)
    return None if value == "auto" else value == "json"


def log_json(settings: Any) -> bool | None:
    """The JSON choice from ``Settings.log_format`` (``auto``/``text``/``json``; ``auto`` when absent)."""
    return json_from_format(getattr(settings, "log_format", None))


def _job_id() -> str | None:
    # The job id's context variable lives in autovoice.jobs.task; if that module is not loaded, no job runs
    # in this process. Looking it up here keeps this module free of the jobs package's imports.
    task = sys.modules.get("autovoice.jobs.task")
    var = getattr(task, "current_job_id", None)
    return var.get() if var is not None else None


class ContextFilter(logging.Filter):
    """Adds ``request_id`` and ``job_id`` (from context variables) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id.get()
        record.job_id = _job_id()
        return True


def _under(name: str, roots: tuple[str, ...]) -> bool:
    return any(name == root or name.startswith(root + ".") for root in roots)


class QuietLibraries(logging.Filter):
    """Drops other libraries' records below WARNING (and servers' below INFO), whatever their loggers'
    own levels say: a library that sets its logger to DEBUG still cannot flood the log."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        if _under(record.name, OWN_LOGGERS):
            return True
        floor = logging.INFO if _under(record.name, SERVER_LOGGERS) else logging.WARNING
        return record.levelno >= max(self.level, floor)


#: Secrets that libraries may put in a message (uvicorn logs a WebSocket's path with its query string,
#: ``?api_key=...``; drivers may print connection URLs): each is replaced before any handler formats it.
_SECRETS = (
    (re.compile(r"(?i)\b(api_key|token|password|secret)=[^&\s\"']+"), r"\1=[redacted]"),
    (re.compile(r"(\w+://[^/\s:@]*:)[^@\s/]+@"), r"\1[redacted]@"),
    (re.compile(r"\bav_[A-Za-z0-9_-]{16,}"), "av_[redacted]"),
)


def redact(text: str) -> str:
    """``text`` with API keys, ``api_key=``/``password=`` values and URL passwords replaced."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecrets(logging.Filter):
    """Rewrites each record's message through :func:`redact` (API keys and passwords never reach a log)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, job_id and extras."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and value is not None:
                doc[key] = value
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return jsonlib.dumps(doc, default=str)


class TextFormatter(logging.Formatter):
    """``12:03:04 INFO    autovoice.service: message  [request 1a2b job 3c4d]``, for a person reading a
    terminal; request and job ids appear only when set."""

    def format(self, record: logging.LogRecord) -> str:
        line = (
            f"{self.formatTime(record, '%H:%M:%S')} {record.levelname:<7} {record.name}: "
            f"{record.getMessage()}"
        )
        ids = [
            f"{label} {value}"
            for label, value in (
                ("request", getattr(record, "request_id", None)),
                ("job", getattr(record, "job_id", None)),
            )
            if value
        ]
        if ids:
            line += f"  [{' '.join(ids)}]"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class _Handler(logging.StreamHandler[TextIO]):
    """The handler :func:`configure_logging` installs; remembers the level it was configured with."""

    def __init__(self, stream: TextIO, level: int) -> None:
        super().__init__(stream)
        self.autovoice_level = level


def configure_logging(
    level: str | int = "INFO",
    *,
    json: bool | None = None,
    stream: TextIO | None = None,
    quiet_third_party: bool = True,
) -> None:
    """Send logs to ``stream`` (default stderr), replacing any handler on the root logger.

    Parameters
    ----------
    level
        AutoVoice's own level (``DEBUG`` ... ``CRITICAL``). Uvicorn and Celery log at INFO or above,
        every other library at WARNING or above, whatever this is.
    json
        True: one JSON object per line (for log collectors). False: readable lines. None (default):
        readable when ``stream`` is a terminal, JSON otherwise.
    stream
        Where lines go; default ``sys.stderr``.
    quiet_third_party
        True (default): other libraries log at WARNING or above, servers at INFO or above. False: every
        logger logs at ``level`` (to debug a library).

    Raises ``invalid_log_level`` for an unknown level name.
    """
    number = parse_level(level)
    out = stream if stream is not None else sys.stderr
    if json is None:
        isatty = getattr(out, "isatty", None)
        json = not (callable(isatty) and isatty())
    handler = _Handler(out, number)
    handler.addFilter(ContextFilter())
    handler.addFilter(RedactSecrets())
    if quiet_third_party:
        handler.addFilter(QuietLibraries(number))
    handler.setFormatter(JsonFormatter() if json else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # Library loggers inherit the root's level: at WARNING they do not even build their debug records.
    root.setLevel(max(number, logging.WARNING) if quiet_third_party else number)
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(number)
    for name in SERVER_LOGGERS:
        logging.getLogger(name).setLevel(max(number, logging.INFO) if quiet_third_party else number)
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)  # the request middleware logs each request
    logging.captureWarnings(True)  # Python warnings become log records too (one format on stderr)


def configure_server_logging(settings: Any) -> None:
    """Logging for ``serve`` and ``worker``: ``settings.log_level`` and ``log_format``, or the more
    verbose level the CLI's ``-v`` has already installed."""
    level = parse_level(settings.log_level)
    earlier = configured_level()
    configure_logging(level if earlier is None else min(level, earlier), json=log_json(settings))


def configured_level() -> int | None:
    """The level :func:`configure_logging` last installed, or None when it has not run in this process."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, _Handler):
            return handler.autovoice_level
    return None


#: The logger of what was written straight to file descriptor 2 (see :func:`route_native_stderr`).
STDERR_LOGGER = "autovoice.stderr"


def route_native_stderr() -> bool:
    """Keep a JSON log JSON: what is written straight to file descriptor 2, by native code (libmpg123's
    "Note: Illegal Audio-MPEG-Header") or by child processes that inherit it (multiprocessing's resource
    tracker, a pool child's C library), becomes a log record of :data:`STDERR_LOGGER`, one per line.

    File descriptor 2 becomes a pipe read by a daemon thread; the log handler writes to the original
    stderr instead. Only when :func:`configure_logging` logs JSON lines to stderr (a terminal's text log
    is left alone); once per process. Returns whether it did. Call it in a server or worker process before
    it starts children, so that they inherit the pipe.
    """
    import os
    import threading

    handler = next((h for h in logging.getLogger().handlers if isinstance(h, _Handler)), None)
    if (
        handler is None
        or not isinstance(handler.formatter, JsonFormatter)
        or getattr(handler.stream, "fileno", None) is None
        or handler.stream is not sys.stderr
    ):
        return False
    try:
        if handler.stream.fileno() != 2:
            return False
    except (OSError, ValueError):  # a stream without a descriptor (captured by a test runner)
        return False
    handler.flush()
    original = os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8", errors="replace")
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    handler.setStream(original)
    threading.Thread(
        target=_pump_stderr, args=(read_end, original), name="autovoice-stderr", daemon=True
    ).start()
    return True


def _pump_stderr(fd: int, original: TextIO) -> None:
    """Each line that arrives on the pipe: a JSON log line as it is, anything else as a log record."""
    import os

    log = logging.getLogger(STDERR_LOGGER)
    with os.fdopen(fd, "rb", buffering=0) as pipe:
        pending = b""
        while True:
            try:
                chunk = pipe.read(65536)
            except OSError:
                return
            if not chunk:
                return
            *lines, pending = (pending + chunk).split(b"\n")
            for raw in lines:
                _one_stderr_line(raw.decode("utf-8", "replace").rstrip("\r"), log, original)


def _one_stderr_line(line: str, log: logging.Logger, original: TextIO) -> None:
    if not line.strip():
        return
    try:  # never let one line stop the pump: writers would block once the pipe is full
        if line.startswith("{"):
            try:
                if isinstance(jsonlib.loads(line), dict):
                    original.write(line + "\n")  # already a log line (a child that logs JSON itself)
                    return
            except ValueError:
                pass
        log.warning("%s", line, extra={"source": "stderr"})
    except Exception:  # nosec B110 # the log itself failing has nowhere left to be reported
        pass
