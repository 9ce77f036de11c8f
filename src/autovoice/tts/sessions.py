"""ONNX Runtime sessions for a Piper voice: every core for a request alone, few threads for a crowd.

A voice's model can run on one session of many threads or one of few. Many threads make one request
fast (the CLI, the library, an idle server: with one thread on 2 cores a request took 1.46-1.67x the
time of Piper's own defaults); under several requests at once they fight over the cores and every
request gets slower (``AUTOVOICE_TTS_THREADS``, default 1, exists for that). :class:`SessionPair`
holds both and chooses per run: a run that starts while no other run of this voice is in flight gets
the **wide** session (every core this process may use), a run that starts while others are in flight
gets the **narrow** one (``tts_threads``). At most one wide run is in flight at a time, so a crowd of
requests runs as before, on narrow sessions; a request alone runs on every core. Neither session's
threads spin while waiting: on a busy machine a spinning thread burns the core another request (or
program) needs.

Only the ``run`` method of a session is used by ``piper.PiperVoice``; the pair offers the same call.
The narrow session is created when a second run first overlaps (a single request never pays for it);
the runs that overlap while it is being created take the wide one rather than wait.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any


def session_options(threads: int) -> Any:
    """ONNX Runtime session options for a Piper voice: ``threads`` intra-op threads (0: the library's
    default), one inter-op thread, and no spinning when ``threads`` is set (a waiting thread sleeps
    instead of burning the core another request needs)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if threads > 0:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity, e.g. under ``taskset``; else the count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class SessionPair:
    """Two sessions of one model, the wide or the narrow one chosen per run (see the module docstring).

    Parameters
    ----------
    model
        The ``.onnx`` file.
    threads
        The narrow session's intra-op threads (``Settings.tts_threads``, >= 1).
    wide_threads
        The wide session's (default: :func:`usable_cores`); when not more than ``threads``, one
        session serves every run.
    """

    def __init__(self, model: Path, *, threads: int, wide_threads: int | None = None) -> None:
        self.model = model
        self.threads = threads
        self.wide_threads = max(threads, wide_threads or usable_cores())
        self.in_flight = 0
        #: Runs so far on each session (for tests and the bench).
        self.runs = {"wide": 0, "narrow": 0}
        self._lock = threading.Lock()
        self._opening = threading.Lock()
        self._wide = self._open(self.wide_threads)  # a bad model file fails here, at load
        self._narrow: Any = self._wide if self.wide_threads == threads else None

    @property
    def single(self) -> bool:
        """True when one session serves every run (no more cores than ``threads``)."""
        return self._narrow is self._wide

    @property
    def narrow_open(self) -> bool:
        """True once the narrow session exists (a second run overlapped a first)."""
        return self._narrow is not None

    def _open(self, threads: int) -> Any:
        import onnxruntime

        return onnxruntime.InferenceSession(
            str(self.model), sess_options=session_options(threads), providers=["CPUExecutionProvider"]
        )

    def open_narrow(self, *, wait: bool = True) -> Any:
        """The narrow session, created on first call. With ``wait=False`` it returns None instead of
        waiting while another thread creates it (a run then takes the wide session)."""
        if self._narrow is not None:
            return self._narrow
        if not self._opening.acquire(blocking=wait):
            return None
        try:
            if self._narrow is None:
                session = self._open(self.threads)
                with self._lock:
                    self._narrow = session
            return self._narrow
        finally:
            self._opening.release()

    def pick(self) -> tuple[str, Any]:
        """The session the next run gets and its name; counts the run as in flight (``done`` ends it).

        While the narrow session is first being created (seconds on a busy machine), the runs that
        overlap take the wide one rather than wait for it."""
        with self._lock:
            wide = self.in_flight == 0
            self.in_flight += 1
        if wide:
            return "wide", self._wide
        try:
            narrow = self.open_narrow(wait=False)
        except BaseException:
            self.done()
            raise
        return ("narrow", narrow) if narrow is not None else ("wide", self._wide)

    def done(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def run(self, output_names: Any, input_feed: dict[str, Any], run_options: Any = None) -> Any:
        """``InferenceSession.run`` on the session this run gets."""
        name, session = self.pick()
        try:
            out = session.run(output_names, input_feed, run_options)
        finally:
            self.done()
        with self._lock:
            self.runs[name] += 1
        return out

    def get_session_options(self, *, wide: bool = False) -> Any:
        """The options of the narrow (default) or the wide session."""
        return (self._wide if wide else self.open_narrow()).get_session_options()
