"""Worker processes for the embedded server: CPU work (conversions, profile builds) off its event loop.

A :class:`WorkerPool` is a :class:`~concurrent.futures.ProcessPoolExecutor` of long-lived ``spawn``ed
processes (never ``fork``: the server has threads, torch's among them), so each child keeps its loaded
models warm from one job to the next. Each child gets a :class:`~autovoice.jobs.task.JobContext` of its
own at start (its own database engine; its worker name is ``host:<child pid>``) whose event bus, job
observer and log records travel back to the server over one queue: a pump thread in the server hands
them to its :class:`~autovoice.jobs.events.LocalBus`, its observer (Prometheus metrics) and its log
handlers, so WebSocket progress, metrics and logs look as they did when jobs ran in threads.

Errors cross the boundary typed: an :class:`~autovoice.errors.AutoVoiceError` raised in a child is raised
again in the server as the same class with the same ``code``, ``message`` and ``details``. A child that
dies (``kill -9``, the OOM killer, a crash in native code) breaks its executor; the pool starts a new one
for the next call and the caller sees :class:`WorkerCrashedError` (``worker_crashed``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import logging.handlers
import multiprocessing
import os
import pickle  # nosec B403 # only round-trips this process's own exception objects (_portable)
import queue
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from autovoice.config import Settings
from autovoice.errors import AutoVoiceError
from autovoice.jobs.events import ChannelBus, EventBus
from autovoice.jobs.task import JobContext, JobObserver, current_job_id
from autovoice.jobs.tempdirs import sweep_tempdirs, use_private_tempdir

log = logging.getLogger(__name__)
T = TypeVar("T")
#: How often the pump thread looks whether its pool was closed, seconds.
_PUMP_POLL_S = 0.5
#: How often a child looks whether the server that started it still runs, seconds.
_ORPHAN_POLL_S = 1.0
#: The job observer's methods a child may call in the server (``autovoice_jobs_*`` metrics).
_OBSERVER_METHODS = frozenset({"job_finished", "job_requeued"})


class WorkerCrashedError(AutoVoiceError):
    """The worker process running the work died before finishing it (``worker_crashed``)."""

    http_status = 500
    caller_error = False


# -- the child's side ------------------------------------------------------------------------------
#: The child process's context, set once by :func:`_child_init` (one per process, like its model cache).
_child: JobContext | None = None


class _ForwardingObserver:
    """The job observer of a child: each call is replayed on the server's observer."""

    def __init__(self, channel: Any) -> None:
        self.channel = channel

    def job_finished(self, *, kind: str, preset: str, status: str, seconds: float, rtf: float | None) -> None:
        self.channel.put(
            (
                "observe",
                "job_finished",
                {"kind": kind, "preset": preset, "status": status, "seconds": seconds, "rtf": rtf},
            )
        )

    def job_requeued(self, reason: str) -> None:
        self.channel.put(("observe", "job_requeued", {"reason": reason}))


class _JobIdFilter(logging.Filter):
    """Keeps the job id of a child's log record (the server's log filter reads it from context)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.job_id = current_job_id.get()
        return True


def _exit_when_orphaned(parent: int) -> None:
    """Exit once the server is gone (killed with ``kill -9``: nothing told the pool to stop). A job it
    ran is taken over at the server's next start (or by another server's reaper)."""
    while os.getppid() == parent:
        time.sleep(_ORPHAN_POLL_S)
    os._exit(1)


def _child_init(settings: Settings, channel: Any, stopping: Any, levels: dict[str, int], parent: int) -> None:
    """Initializer of each child: its job context, its log records sent to the server, and signals left
    to the server (Ctrl-C and ``systemctl stop`` reach the whole process group: the server stops its
    children itself, after putting their jobs back in the queue)."""
    global _child
    from autovoice.storage import Database

    use_private_tempdir()  # a kill -9 leaves multiprocessing's pymp-* folder where the server sweeps it
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    if settings.worker_nice and hasattr(os, "nice"):
        # CPU work yields to the server's requests (a light route waits on no conversion's time slice).
        os.nice(settings.worker_nice)
    threading.Thread(target=_exit_when_orphaned, args=(parent,), name="orphan-watch", daemon=True).start()

    handler = logging.handlers.QueueHandler(channel)
    handler.addFilter(_JobIdFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    for name, level in levels.items():
        logging.getLogger(name or None).setLevel(level)
    bus = ChannelBus(channel)
    _child = JobContext(
        settings=settings,
        db=Database(settings),
        bus=bus,
        observer=cast(JobObserver, _ForwardingObserver(channel)),
        stopping=stopping,
    )


def worker_context() -> JobContext:
    """The job context of this worker process (only inside a :class:`WorkerPool`'s child)."""
    if _child is None:
        raise RuntimeError("worker_context() is only available in a WorkerPool process")
    return _child


def worker_pid() -> int:
    """The process id of the process that runs the call (tests check that work runs apart)."""
    return os.getpid()


def run_job_here(job_id: str) -> str:
    """:func:`~autovoice.jobs.task.run_job` in this worker process, with its context (what
    :class:`~autovoice.jobs.queue.LocalQueue` sends to its pool)."""
    from autovoice.jobs.task import run_job

    return run_job(job_id, worker_context())


@dataclass(frozen=True)
class _Failure:
    """An error raised in a child, in a form that always pickles (``AutoVoiceError`` itself does not:
    its constructor takes ``code`` and ``message``, pickle would pass it the message alone)."""

    cls: type[AutoVoiceError]
    code: str
    message: str
    details: dict[str, Any]

    def rebuild(self) -> AutoVoiceError:
        return self.cls(self.code, self.message, self.details)


def _portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling, else a ``RuntimeError`` naming it (a result the server cannot
    unpickle would break the whole pool)."""
    try:
        pickle.loads(pickle.dumps(exc))  # nosec B301 # our own object, pickled here: never untrusted data
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")
    return exc


def _call(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Run ``fn`` in the child; typed errors come back as :class:`_Failure`."""
    try:
        return fn(*args, **kwargs)
    except AutoVoiceError as exc:
        return _Failure(type(exc), exc.code, exc.message, dict(exc.details))
    except Exception as exc:
        portable = _portable(exc)
        if portable is exc:
            raise
        raise portable from None


# -- the server's side -----------------------------------------------------------------------------
@dataclass
class _Generation:
    """One executor and what its children share: replaced whole when a child dies (a killed child may
    have held the channel's or the stop event's lock)."""

    executor: ProcessPoolExecutor
    channel: Any
    stopping: Any
    closed: threading.Event = field(default_factory=threading.Event)
    pump: threading.Thread | None = None


class WorkerPool:
    """Long-lived ``spawn`` worker processes running module-level functions, with typed errors.

    Parameters
    ----------
    settings
        Handed to each child (its database, data dir, device).
    workers
        At most this many processes; each starts on demand (the first call that finds none idle).
    name
        For logs and thread names (``jobs``, ``builds``).
    bus
        Where the children's job events go (the server's :class:`~autovoice.jobs.events.LocalBus`).
    observer
        Gets the children's ``job_finished`` / ``job_requeued`` calls (Prometheus metrics).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        workers: int = 1,
        name: str = "workers",
        bus: EventBus | None = None,
        observer: JobObserver | None = None,
    ) -> None:
        self.settings = settings
        self.workers = max(int(workers), 1)
        self.name = name
        self.bus = bus
        self.observer = observer
        self._mp = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        self._gen: _Generation | None = None
        self._stopped = False

    # - life cycle
    def _new_generation(self) -> _Generation:
        try:
            sweep_tempdirs()  # of children killed before (the ones being replaced now, or a crashed run's)
        except OSError as exc:
            log.warning("could not sweep the temporary folders of dead worker processes: %s", exc)
        channel = self._mp.Queue()
        stopping = self._mp.Event()
        levels = {
            "": logging.getLogger().getEffectiveLevel(),
            "autovoice": logging.getLogger("autovoice").getEffectiveLevel(),
        }
        executor = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=self._mp,
            initializer=_child_init,
            initargs=(self.settings, channel, stopping, levels, os.getpid()),
        )
        gen = _Generation(executor=executor, channel=channel, stopping=stopping)
        gen.pump = threading.Thread(
            target=self._pump, args=(gen,), name=f"autovoice-{self.name}-pump", daemon=True
        )
        gen.pump.start()
        return gen

    def _current(self) -> _Generation:
        with self._lock:
            if self._stopped:
                raise RuntimeError("shut down")
            if self._gen is None:
                self._gen = self._new_generation()
            return self._gen

    def _replace(self, broken: _Generation) -> None:
        """A child of ``broken`` died: the next call gets a new executor (once, however many calls saw
        it break)."""
        with self._lock:
            if self._gen is broken:
                self._gen = None
            else:
                return
        log.error("a %s worker process died; starting new ones for the next work", self.name)
        # Its other children (they ignore SIGTERM) finish their current call: closed with wait, in the
        # background, so that the pump keeps delivering their events and logs until they have exited.
        drain = functools.partial(self._close, broken, wait=True)
        threading.Thread(target=drain, name=f"autovoice-{self.name}-drain", daemon=True).start()

    def shutdown(self, *, wait: bool = True) -> None:
        """Stop the children (after their current call when ``wait``) and the pump."""
        with self._lock:
            gen, self._gen, self._stopped = self._gen, None, True
        if gen is not None:
            with contextlib.suppress(Exception):
                gen.stopping.set()
            self._close(gen, wait=wait)

    def _close(self, gen: _Generation, *, wait: bool) -> None:
        gen.executor.shutdown(wait=wait, cancel_futures=True)
        gen.closed.set()
        if wait and gen.pump is not None:
            gen.pump.join(timeout=10)

    def processes(self) -> list[int]:
        """The pids of the current children (for operators and tests)."""
        with self._lock:
            gen = self._gen
        if gen is None:
            return []
        procs = getattr(gen.executor, "_processes", None) or {}
        return sorted(int(pid) for pid in procs)

    # - calls
    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        """Run ``fn(*args, **kwargs)`` in a child; ``fn`` and the arguments must pickle (a module-level
        function, plain values). The future fails with the child's error, typed as raised there, or
        with :class:`WorkerCrashedError` when the child died."""
        outer: Future[T] = Future()
        for _ in range(2):  # a pool seen broken at submit: once more on a new one
            try:
                gen = self._current()
                inner = gen.executor.submit(_call, fn, args, kwargs)
            except BrokenProcessPool:
                self._replace(gen)
                continue
            except RuntimeError:  # shut down (the server is stopping)
                outer.set_exception(
                    WorkerCrashedError(
                        "worker_crashed",
                        "The server is stopping; try again once it runs.",
                        {"pool": self.name},
                    )
                )
                return outer
            inner.add_done_callback(functools.partial(self._settle, gen=gen, outer=outer))
            return outer
        outer.set_exception(self._crashed())
        return outer

    async def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """:meth:`submit`, awaited without blocking the event loop."""
        return await asyncio.wrap_future(self.submit(fn, *args, **kwargs))

    def _crashed(self) -> WorkerCrashedError:
        return WorkerCrashedError(
            "worker_crashed",
            "The worker process doing this stopped unexpectedly (it was killed or ran out of memory). "
            "Try again; the server log may say more.",
            {"pool": self.name},
        )

    def _settle(self, inner: Future[Any], *, gen: _Generation, outer: Future[Any]) -> None:
        exc = None if inner.cancelled() else inner.exception()
        if isinstance(exc, BrokenProcessPool):
            # Replaced from another thread: this callback runs in the dying executor's own thread.
            threading.Thread(target=self._replace, args=(gen,), daemon=True).start()
        if outer.done():  # cancelled by its caller (an awaiting request that went away)
            return
        if inner.cancelled():
            outer.cancel()
            outer.set_running_or_notify_cancel()
        elif isinstance(exc, BrokenProcessPool):
            outer.set_exception(self._crashed())
        elif exc is not None:
            outer.set_exception(exc)
        else:
            result = inner.result()
            if isinstance(result, _Failure):
                outer.set_exception(result.rebuild())
            else:
                outer.set_result(result)

    # - what the children send back
    def _pump(self, gen: _Generation) -> None:
        while not (gen.closed.is_set() and _empty(gen.channel)):
            try:
                item = gen.channel.get(timeout=_PUMP_POLL_S)
            except queue.Empty:
                continue
            except (EOFError, OSError):  # the channel went away with its pool
                return
            try:
                self._deliver(item)
            except Exception:  # one bad message must not stop the others
                log.exception("could not deliver a message of a %s worker", self.name)

    def _deliver(self, item: Any) -> None:
        if isinstance(item, logging.LogRecord):
            token = current_job_id.set(getattr(item, "job_id", None))
            try:
                logging.getLogger(item.name).handle(item)
            finally:
                current_job_id.reset(token)
            return
        kind = item[0]
        if kind == "event" and self.bus is not None:
            self.bus.publish(item[1], item[2])
        elif kind == "observe" and self.observer is not None and item[1] in _OBSERVER_METHODS:
            method = getattr(self.observer, item[1], None)
            if callable(method):
                method(**item[2])


def _empty(channel: Any) -> bool:
    try:
        return bool(channel.empty())
    except (OSError, ValueError):
        return True
