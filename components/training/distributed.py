"""The final training on several devices: Lightning's DDP strategy, one process per device.

The training stage's own process cannot be the first of those processes. Lightning's fork launcher
fails once the process has used CUDA (the precision check and a one-shot search do), its spawn
launcher pickles the callbacks (the stage's progress lines are a closure), and its standard ``ddp``
launcher starts the command that started the process again, once per further device: the whole flow.
So the training runs in a fresh process, ``python -m components.training.distributed JOB PID``, that
calls :func:`~components.training.fit.fit_network` with ``devices``; Lightning starts this module
again for every further device, and the processes train in step, each on its share of the batches.
The first process prints each epoch's metrics on a marked line, which the stage's process turns into
its progress, and writes the result; its network's weights go back into the caller's network.

Started only by :func:`fit_on_devices` (PID: the stage's process, which the first process ends with).
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch

from components.errors import ConfigurationError
from components.training.fit import FitResult, fit_network

EPOCH_LINE = "dlautoml-epoch "  # how the first process marks an epoch's metrics on its output
PROJECT_ROOT = Path(__file__).resolve().parents[2]  # the folder that holds the components package
FIRST_PROCESS = "DLAUTOML_FIRST_TRAINING_PROCESS"  # its pid, for the processes Lightning starts from it
AUTO_MIN_SECONDS = 180.0  # training.devices auto: shorter final trainings stay on one GPU


def devices_for(setting: int | str, seconds: float) -> tuple[int, str | None]:
    """How many processes train the final network, and a line that says so (None for one process on a
    machine with one device or none): ``auto``, one per GPU of this machine when the training has at
    least :data:`AUTO_MIN_SECONDS` to run (starting the processes costs about ten seconds), else one;
    a number, that many (on a machine without a GPU, processes on its cores, which tests DDP but does
    not train faster: each process gets its share of the cores)."""
    gpus = torch.cuda.device_count()
    if setting == "auto":
        if gpus > 1 and seconds < AUTO_MIN_SECONDS:
            return 1, f"the final training runs on one of {gpus} GPUs: {seconds:.0f} s would not repay a process per GPU"
        setting = max(gpus, 1)
    elif gpus and int(setting) > gpus:
        raise ConfigurationError(
            f"training.devices is {setting} but this machine has {gpus} GPU(s): set it to {gpus} or fewer, or to auto"
        )
    devices = int(setting)
    if devices == 1:
        return 1, None
    where = "a GPU each" if gpus else "sharing the CPU's cores, gloo between them"
    return devices, f"the final training runs on {devices} processes with Lightning's DDP ({where})"


def fit_on_devices(
    devices: int, network: torch.nn.Module, on_epoch: Callable[[int, dict[str, float]], None] | None, **arguments: Any
) -> FitResult:
    """:func:`fit_network` on ``devices`` processes (in this process for one): the same arguments,
    the same result; ``network`` ends with the trained weights."""
    if devices <= 1:
        return fit_network(network, on_epoch=on_epoch, **arguments)
    if torch.cuda.is_available():
        torch.cuda.empty_cache()  # what this process holds on the first GPU, the first training process needs
    with tempfile.TemporaryDirectory(prefix="dlautoml-ddp-") as folder:
        job = Path(folder) / "job.pt"
        torch.save({"network": network, "arguments": arguments, "devices": devices}, job)
        errors = Path(folder) / "stderr.log"
        threads = max(1, torch.get_num_threads() // devices)  # on the CPU, each process its share of the cores
        environment = {
            **os.environ,
            "OMP_NUM_THREADS": str(threads),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])),
        }
        with errors.open("w") as error_file:
            process = subprocess.Popen(
                [sys.executable, "-m", __name__, str(job), str(os.getpid())],
                stdout=subprocess.PIPE,
                stderr=error_file,
                text=True,
                env=environment,
            )
            try:
                for line in process.stdout:
                    if line.startswith(EPOCH_LINE):
                        epoch = json.loads(line[len(EPOCH_LINE) :])
                        if on_epoch is not None:
                            on_epoch(epoch["epoch"], epoch["row"])
                    else:
                        sys.stdout.write(line)
                code = process.wait()
            except BaseException:
                _stop(process)
                raise
        result_file = job.with_name("result.pt")
        if code != 0 or not result_file.is_file():
            tail = "\n".join(errors.read_text(errors="replace").strip().splitlines()[-15:])
            raise RuntimeError(
                f"the final training on {devices} devices (Lightning's DDP) failed with exit code {code}:\n{tail}\n"
                "Set training.devices: 1 to train on one device in the stage's own process."
            )
        result = torch.load(result_file, map_location="cpu", weights_only=False)
    network.load_state_dict(result.pop("state"))
    return FitResult(network=network.cpu().eval(), **result)


def _stop(process: subprocess.Popen) -> None:
    """Ends the first training process at once; the others end with it (:func:`_end_with_parent`).
    Not SIGTERM: Lightning's handler of it broadcasts to the other processes from inside the signal
    handler, which deadlocks against a collective under way (seen: the deadline's all-reduce)."""
    process.kill()
    process.wait()


def _first_process() -> bool:
    return os.environ.get("LOCAL_RANK", "0") == "0"  # Lightning sets it in the processes it starts


def _end_with_parent() -> None:
    """Asks Linux to kill this process when the process that started it ends, however it ends: a stage
    killed outright would otherwise leave its training processes on the devices until the budget runs
    out, or, killed while they start, waiting for each other for half an hour. SIGKILL, for the reason
    :func:`_stop` gives. The first process's parent is the stage's (its pid follows the job on the
    command line); the others' is the first."""
    first = _first_process()
    parent = int(sys.argv[2]) if first else int(os.environ[FIRST_PROCESS])
    if first:
        os.environ[FIRST_PROCESS] = str(os.getpid())
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it ended before the request was in place
        os._exit(1)


def main(job_file: str) -> None:
    _end_with_parent()
    job = torch.load(job_file, map_location="cpu", weights_only=False)
    first = _first_process()

    def report(epoch: int, row: dict[str, float]) -> None:
        if first:
            print(EPOCH_LINE + json.dumps({"epoch": epoch, "row": row}), flush=True)

    fitted = fit_network(job["network"], on_epoch=report, devices=job["devices"], **job["arguments"])
    if first:
        result = {field.name: getattr(fitted, field.name) for field in fields(fitted) if field.name != "network"}
        partial = Path(job_file).with_name("result.partial")
        torch.save({**result, "state": fitted.network.state_dict()}, partial)
        partial.replace(Path(job_file).with_name("result.pt"))
    sys.stdout.flush()
    sys.stderr.flush()
    # Done: out without the interpreter's clean-up of PyTorch and the process group, which takes more
    # than a second that the stage's budget would pay, waiting for both processes to end.
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1])
