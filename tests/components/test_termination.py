"""SIGTERM ends a command even when the exception its handler raises is lost (components/termination.py),
each case in a process of its own: a lost exit is raised again, the unwinding and the exit functions
are not cut short by the signals that follow, and an unwinding that stalls is ended by force."""

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil

PROJECT = Path(__file__).resolve().parents[2]

START = """
import atexit, os, signal, subprocess, sys, time
from components.termination import exit_cleanly_on_sigterm
exit_cleanly_on_sigterm(resignal_seconds={resignal}, force_seconds={force})
"""


def _signalled(body: str, resignal: float = 0.5, force: float = 30, delay: float = 0) -> tuple[int, str, float]:
    """Runs ``body`` after the handler is installed, sends SIGTERM ``delay`` seconds after it prints
    "ready"; returns the exit code, what it printed, and the seconds from the signal to the exit."""
    script = START.format(resignal=resignal, force=force) + textwrap.dedent(body)
    process = subprocess.Popen(
        [sys.executable, "-c", script], cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.strip() == "ready":
            break
    time.sleep(delay)
    signalled = time.monotonic()
    process.send_signal(signal.SIGTERM)
    rest, _ = process.communicate(timeout=60)
    return process.returncode, "".join(lines) + rest, time.monotonic() - signalled


def test_an_exit_a_library_lost_is_raised_again_and_its_unwinding_finishes():
    # As during a flow run: Prefect's handler raises its own exception, marks the run crashed, then
    # sends SIGTERM again to the handler it found. Here the first exception is lost, as NumPy's C code
    # loses it (numpy/numpy#20596); without the watchdog this process would run on.
    code, output, seconds = _signalled("""
        class TerminationSignal(BaseException):
            pass

        def bridge(number, frame):
            raise TerminationSignal()

        ours = signal.signal(signal.SIGTERM, bridge)
        lost = 0
        try:
            while True:
                try:
                    print("ready", flush=True)
                    time.sleep(0.05)
                except TerminationSignal:
                    if lost:
                        raise
                    lost += 1
                    print("lost", flush=True)
        except TerminationSignal:
            signal.signal(signal.SIGTERM, ours)
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(10)
        finally:
            time.sleep(1.2)  # the watchdog signals twice meanwhile: the clean-up is not cut short
            print("cleaned up", flush=True)
    """)
    assert code == 128 + signal.SIGTERM, output
    assert (
        output.index("lost") < output.index("terminated (SIGTERM): stopping what this run started") < output.index("cleaned up")
    )
    assert 1.7 < seconds < 6, output
    assert "ended by force" not in output


def test_an_exit_numpy_loses_is_raised_again():
    # A loop over a NumPy array of strings (as encoding a table's labels does) loses the exception of a
    # signal handler about half of the time; the watchdog's next signals get through (in the sleep).
    body = """
        import numpy as np
        labels = np.arange(2).repeat(500_000).astype(str)
        index = {"0": 0, "1": 1}
        try:
            print("ready", flush=True)
            while True:
                [index[label] for label in labels]
                time.sleep(0.3)
        finally:
            print("cleaned up", flush=True)
    """
    outcomes = [_signalled(body, resignal=0.25, delay=0.2) for _ in range(10)]
    for code, output, seconds in outcomes:
        assert code == 128 + signal.SIGTERM and "cleaned up" in output and seconds < 10, output
    assert any("the first exit was lost in a library" in output for _, output, _ in outcomes)


def test_signals_after_the_command_returned_leave_the_exit_functions_alone():
    code, output, seconds = _signalled("""
        def stop_servers():
            time.sleep(1.2)
            print("exit functions done", flush=True)

        atexit.register(stop_servers)
        print("ready", flush=True)
        while True:
            time.sleep(0.05)
    """)
    assert code == 128 + signal.SIGTERM and "exit functions done" in output, output
    assert "signalled again" in output and "lost in a library" not in output
    assert seconds > 1.2


def test_an_unwinding_that_stalls_is_ended_by_force_with_what_the_command_started():
    code, output, seconds = _signalled(
        """
        server = subprocess.Popen(["sleep", "600"], stdout=subprocess.DEVNULL)
        print(server.pid, flush=True)
        try:
            print("ready", flush=True)
            while True:
                time.sleep(0.05)
        finally:
            time.sleep(600)  # a clean-up that never ends
        """,
        force=3,
    )
    assert code == 128 + signal.SIGTERM, output
    assert 3 <= seconds < 8, output
    assert "still running 3 s after the signal" in output and "most recent call first" in output
    assert "ended by force, with 1 child process(es)" in output
    child = int(output.split()[0])
    assert not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE
