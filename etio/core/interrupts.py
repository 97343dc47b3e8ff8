"""Ctrl-C: the one interrupt path of every long command.

The command line installs :func:`handler` for SIGINT (:func:`install`). On a signal it marks the
interrupt as pending, stops the registered helpers at once (:func:`stopping`: the worker
processes of a learning or attack pool are terminated, not waited for) and raises
:class:`~etio.core.errors.Interrupted`; the CLI then prints what the run kept
(:func:`etio.core.errors.interrupt_note`) and exits 130, without the interpreter's slow shutdown: what a
library would have removed at an ordinary exit is released first (:func:`release_process_resources`,
:func:`at_fast_exit`).

Code that runs outside Python keeps the same path: while the embedded R computes, a SIGINT
does not raise in the middle of R (rpy2 would lose the exception) but asks R to stop
(:func:`deferred`: R unwinds at its next interrupt check, within milliseconds), and the bridge
raises ``Interrupted`` once R has returned (:func:`raise_if_pending`). Starting R takes SIGINT
over, so the bridge gives it back with :func:`reinstall`. Worker processes ignore SIGINT
(:func:`ignore_in_worker`): their parent stops them, so a Ctrl-C of the terminal, which
reaches the whole process group, still ends in one line.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from typing import Callable, Iterator

from etio.core.errors import Interrupted

_installed = False
_pending = False
_stoppers: list[Callable[[], None]] = []
_deferring: list[Callable[[], None]] = []
_releases: list[Callable[[], None]] = []


def handler(signum, frame) -> None:
    """The SIGINT handler: stop the registered helpers, then raise :class:`Interrupted` (or,
    inside :func:`deferred`, ask the foreign code to stop; its caller raises)."""
    global _pending
    _pending = True
    for stop in list(_stoppers):
        try:
            stop()
        except Exception:  # stopping is best effort; the interruption itself must go on
            pass
    if _deferring:
        for ask in list(_deferring):
            try:
                ask()
            except Exception:
                pass
        return
    if _in_finaliser(frame):
        # An exception raised in __del__ is printed and dropped: the signal comes again in 50 ms.
        import os

        timer = threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT))
        timer.daemon = True
        timer.start()
        return
    raise Interrupted()


def _in_finaliser(frame) -> bool:
    while frame is not None:
        if frame.f_code.co_name == "__del__":
            return True
        frame = frame.f_back
    return False


def install():
    """Make SIGINT raise :class:`Interrupted` (whatever the launcher left it as); returns the previous handler."""
    global _installed, _pending
    _pending = False
    previous = signal.signal(signal.SIGINT, handler)
    _installed = True
    return previous


def uninstall(previous) -> None:
    """Restore the handler :func:`install` replaced (a CLI run inside another program, tests)."""
    global _installed
    _installed = False
    signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)


def reinstall() -> None:
    """After a library took SIGINT over (rpy2 when it starts R): the handler is ours again."""
    if _installed and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, handler)


def pending() -> bool:
    """True once SIGINT arrived during this command."""
    return _pending


def raise_if_pending() -> None:
    """Raise :class:`Interrupted` if SIGINT arrived (after code that could not raise it itself returned)."""
    if _pending:
        raise Interrupted()


@contextlib.contextmanager
def stopping(stop: Callable[[], None]) -> Iterator[None]:
    """While the block runs, a SIGINT calls ``stop()`` before it raises (e.g. terminating workers)."""
    _stoppers.append(stop)
    try:
        yield
    finally:
        _stoppers.remove(stop)


@contextlib.contextmanager
def deferred(ask_to_stop: Callable[[], None]) -> Iterator[None]:
    """While foreign code (R) runs in the block, a SIGINT calls ``ask_to_stop()`` instead of
    raising; :class:`Interrupted` is raised when the block ends (or fails)."""
    _deferring.append(ask_to_stop)
    try:
        yield
    except Exception:
        if _pending:
            raise Interrupted() from None
        raise
    finally:
        _deferring.remove(ask_to_stop)
    raise_if_pending()


def held() -> "contextlib.AbstractContextManager[None]":
    """A block a SIGINT must not cut in two (starting a worker process: a child that got half its
    start-up data prints a traceback); the interrupt is raised as the block ends."""
    return deferred(lambda: None)


def _pool_processes(executor) -> list:
    return list((getattr(executor, "_processes", None) or {}).values())


def kill_workers(executor) -> None:
    """Terminate the processes of a ``concurrent.futures.ProcessPoolExecutor`` (safe in a signal handler)."""
    for process in _pool_processes(executor):
        try:
            process.terminate()
        except Exception:  # already gone
            pass


def terminate_pool(executor, reap_s: float = 0.5) -> None:
    """Stop a ``ProcessPoolExecutor`` now: its processes are terminated and reaped (SIGTERM ends them
    within milliseconds; at most ``reap_s`` seconds are spent waiting), so none of them still writes
    when this returns and the caller removes its scratch files; queued work is cancelled, and nothing
    waits for a running task to finish."""
    processes = _pool_processes(executor)
    kill_workers(executor)
    deadline = time.monotonic() + reap_s
    for process in processes:
        process.join(timeout=max(0.0, deadline - time.monotonic()))
    # Queued work is not cancelled one future at a time: the pool, finding its workers gone,
    # fails every pending future itself (a cancelled one would make it raise in its thread).
    executor.shutdown(wait=False)


def ignore_in_worker() -> None:
    """In a worker process: SIGINT is the parent's to handle (it terminates its workers)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def at_fast_exit(release: Callable[[], None]) -> None:
    """Have :func:`release_process_resources` call ``release()``: what a library of this process made
    that an ordinary exit removes and a fast exit would leave behind (the embedded R's temporary
    directory)."""
    _releases.append(release)


def release_process_resources() -> None:
    """Before a fast exit on Ctrl-C: release what outlives the process unless released (the
    named semaphores of a stopped worker pool, what :func:`at_fast_exit` registered), without
    waiting on anything else."""
    import sys

    util = sys.modules.get("multiprocessing.util")
    if util is not None:
        try:
            util._run_finalizers(0)
        except Exception:  # best effort: the exit goes on
            pass
    for release in _releases:
        try:
            release()
        except Exception:
            pass
