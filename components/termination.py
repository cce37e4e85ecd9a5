"""SIGTERM ends a command within seconds: by unwinding, so that what it started stops on the way out
(Prefect's temporary server at exit) and its MLflow runs are marked failed; by force when it cannot.

Python's ``signal`` module runs a handler in the main thread, and what the handler raises is raised
wherever that thread happens to be. Two things stand between that and an exit:

- During a flow run Prefect installs its own handler, which raises its ``TerminationSignal``, marks
  the run crashed, then sends SIGTERM again to the handler it found: :func:`terminated`, which raises
  ``SystemExit``. (With Python's default handler there, that second signal would end the process at
  once and leave the temporary server running.)
- The exception can vanish. NumPy's C code clears errors it did not expect (numpy/numpy#20596): a
  loop over a NumPy array of strings, signalled at a random moment, lost the handler's exception in
  149 of 300 tries, and a pipeline run signalled during data preparation went on to train as if it had
  never been told to stop.

So a watchdog thread, which no library's handler replaces, learns of every SIGTERM from the
interpreter's wakeup file descriptor (``signal.set_wakeup_fd``: written for every signal that has a
Python handler, whichever it is). Every ``RESIGNAL_SECONDS`` until the process ends it signals the
main thread again; :func:`terminated` raises again only when its exit was lost (the run goes on), not
while it unwinds the stack or the interpreter exits. ``FORCE_SECONDS`` after the first
signal the watchdog prints every thread's stack, kills the processes the command started and exits
with 143, as a stalled unwinding would otherwise wait for a SIGKILL. Nothing in the standard library
or the tools we use does this: Prefect's handler and Python's both assume the exception arrives.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import sys
import threading
import time

from components.leftovers import kill_all

# A run still going this long after SIGTERM is signalled again. Marking the flow run crashed and the MLflow
# runs failed takes about a second: a signal during it would cut it short.
RESIGNAL_SECONDS = 10.0
FORCE_SECONDS = 40.0  # and ended by force this long after the first SIGTERM
EXIT_CODE = 128 + signal.SIGTERM

_raised: list[SystemExit] = []  # what terminated() raised, first to last
_outermost = []  # the main thread's outermost frame when the handler was installed
_watching = threading.Event()


def exit_cleanly_on_sigterm(resignal_seconds: float = RESIGNAL_SECONDS, force_seconds: float = FORCE_SECONDS) -> None:
    """Installs :func:`terminated` as the SIGTERM handler and starts the watchdog (once per process;
    from the main thread). Without the wakeup descriptor (another part of the process holds it: an
    event loop running in the main thread), the handler alone is installed."""
    frame = sys._getframe()
    while frame.f_back is not None:
        frame = frame.f_back
    _outermost[:] = [frame]
    signal.signal(signal.SIGTERM, terminated)
    if _watching.is_set():
        return
    read, write = os.pipe()
    os.set_blocking(write, False)
    previous = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
    if previous != -1:  # someone else's: left to them
        signal.set_wakeup_fd(previous)
        os.close(read), os.close(write)
        return
    _watching.set()
    threading.Thread(
        target=_watch, args=(read, resignal_seconds, force_seconds), name="dlautoml-sigterm-watchdog", daemon=True
    ).start()


def terminated(number, frame) -> None:
    """Raises ``SystemExit(143)``; once more on a later SIGTERM only if that exit was lost, not while it
    unwinds the stack (a ``finally`` block or an ``__exit__`` handling it is running) nor once the
    command has returned and the interpreter runs its exit functions."""
    if _raised and (_unwinding(_raised[-1]) or not _on_stack(_outermost[0], frame)):
        return
    message = "the first exit was lost in a library: stopping now" if _raised else "stopping what this run started"
    print(f"terminated (SIGTERM): {message}", file=sys.stderr, flush=True)
    _raised.append(SystemExit(EXIT_CODE))
    raise _raised[-1]


def _unwinding(raised: BaseException) -> bool:
    """Whether ``raised`` is being handled: in the exception being handled or what that was raised from."""
    error = sys.exc_info()[1]
    seen = []
    while error is not None and all(error is not other for other in seen):
        if error is raised:
            return True
        seen.append(error)
        error = error.__cause__ or error.__context__
    return False


def _on_stack(wanted, frame) -> bool:
    while frame is not None:
        if frame is wanted:
            return True
        frame = frame.f_back
    return False


def _watch(read: int, resignal_seconds: float, force_seconds: float) -> None:
    while signal.SIGTERM not in os.read(read, 64):
        pass
    signalled = time.monotonic()
    main = threading.main_thread().ident
    while (elapsed := time.monotonic() - signalled) < force_seconds:
        time.sleep(min(resignal_seconds, force_seconds - elapsed))
        if (elapsed := time.monotonic() - signalled) < force_seconds:
            print(
                f"terminated (SIGTERM): still running {elapsed:.0f} s after the signal: signalled again",
                file=sys.stderr,
                flush=True,
            )
            signal.pthread_kill(main, signal.SIGTERM)
    _force_exit(force_seconds)


def _force_exit(force_seconds: float) -> None:
    """Every thread's stack to stderr (where it hung), the command's child processes killed, exit 143."""
    import psutil

    print(
        f"terminated (SIGTERM): still running {force_seconds:.0f} s after the signal; where each thread was:",
        file=sys.stderr,
        flush=True,
    )
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    children = psutil.Process().children(recursive=True)
    kill_all(children)
    print(f"terminated (SIGTERM): ended by force, with {len(children)} child process(es)", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(EXIT_CODE)
