"""An OpenSSH server on 127.0.0.1 that stands in for a second machine: its own host key, one client key
authorised for the current account, nothing of the machine's own SSH configuration used."""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = "/usr/sbin/sshd"


@dataclass
class SshServer:
    port: int
    user: str
    key_file: Path
    process: subprocess.Popen

    def url(self, path: Path) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}{Path(path).resolve()}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_ssh_server(folder: Path, port: int) -> SshServer:
    """sshd -D on ``port`` with keys and configuration under ``folder``; key logins only."""
    if not Path(SSHD).is_file():
        raise RuntimeError("OpenSSH's server is not installed: make team (apt-get install openssh-server)")
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / name)], check=True)
    authorised = folder / "authorized_keys"
    shutil.copy(folder / "client_key.pub", authorised)
    authorised.chmod(0o600)
    (folder / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {folder / 'host_key'}\nAuthorizedKeysFile {authorised}\n"
        f"PidFile {folder / 'sshd.pid'}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\nSubsystem sftp internal-sftp\n"
    )
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(exist_ok=True)  # its privilege separation folder, which a package install makes at boot
    process = subprocess.Popen(
        [SSHD, "-D", "-e", "-f", str(folder / "sshd_config")],
        stdout=open(folder / "sshd.log", "ab"),
        stderr=subprocess.STDOUT,
    )
    server = SshServer(port, getpass.getuser(), folder / "client_key", process)
    for _ in range(50):
        probe = subprocess.run(
            [
                "ssh", "-i", str(server.key_file), "-p", str(port), "-o", "BatchMode=yes",
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
                f"{server.user}@127.0.0.1", "true",
            ],
            capture_output=True,
        )  # fmt: skip
        if probe.returncode == 0:
            return server
        if process.poll() is not None:
            break
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"sshd did not take a key login on port {port}: {(folder / 'sshd.log').read_text()[-2000:]}")
