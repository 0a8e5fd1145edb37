"""A Docker engine of the fault suite's own: a second dockerd on its own socket, data root and
exec root, holding a copy of the builder image. The suite stops, kills and restarts it at will;
the machine's engine (and whatever else runs on it) never notices."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Engine:
    root: Path  # data root, logs
    run: Path  # socket, exec root, pid file (short: unix socket paths stop at 108 bytes)

    @property
    def sock(self) -> str:
        return f"unix://{self.run / 'docker.sock'}"

    @property
    def env(self) -> dict[str, str]:
        return {"DOCKER_HOST": self.sock}

    def docker(self, *args: str, check: bool = True, timeout: float = 120
               ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["docker", "-H", self.sock, *args], capture_output=True,
                              text=True, check=check, timeout=timeout)

    def answers(self) -> bool:
        try:
            return self.docker("info", check=False, timeout=10).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def start(self) -> None:
        self.run.mkdir(parents=True, exist_ok=True)
        pid_file = self.run / "docker.pid"
        if pid_file.exists() and not _alive(int(pid_file.read_text() or 0)):
            pid_file.unlink()
        log = open(self.root / "dockerd.log", "a")
        subprocess.Popen(["dockerd", "--host", self.sock, "--data-root", str(self.root / "data"),
                          "--exec-root", str(self.run / "exec"), "--pidfile", str(pid_file),
                          "--bridge=none", "--iptables=false", "--ip-masq=false"],
                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        for _ in range(60):
            if self.answers():
                return
            time.sleep(1)
        raise RuntimeError(f"the fault suite's dockerd did not start: see {self.root}/dockerd.log")

    def pid(self) -> int:
        try:
            return int((self.run / "docker.pid").read_text())
        except (OSError, ValueError):
            return 0

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the engine (SIGKILL: as a crash) and wait until it is gone."""
        pid = self.pid()
        if not pid:
            return
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        for _ in range(60):
            if not _alive(pid):
                break
            time.sleep(0.5)
        if sig == signal.SIGKILL:  # its containerd and shims die with a real crash, too
            subprocess.run(["pkill", "-KILL", "-f", str(self.run / "exec")], check=False)
            time.sleep(1)
            # what a crash leaves: the next dockerd would wait for the dead containerd
            for stale in (self.run / "exec" / "containerd").glob("containerd.*"):
                stale.unlink(missing_ok=True)

    def restart(self) -> None:
        self.stop()
        self.start()

    def load_image(self, tag: str) -> None:
        if self.docker("image", "inspect", tag, check=False).returncode == 0:
            return
        save = subprocess.Popen(["docker", "save", tag], stdout=subprocess.PIPE)
        subprocess.run(["docker", "-H", self.sock, "load"], stdin=save.stdout, check=True,
                       capture_output=True, timeout=600)
        if save.wait(timeout=600) != 0:
            raise RuntimeError(f"docker save {tag} failed")

    def unmount_all(self) -> None:
        """What a crashed engine leaves mounted under its roots (overlays, netns, shm)."""
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
        for point in sorted((m for m in mounts if m.startswith((f"{self.root}/", f"{self.run}/"))),
                            key=len, reverse=True):
            subprocess.run(["umount", "-l", point], check=False, capture_output=True)

    def containers(self) -> list[str]:
        return self.docker("ps", "-aq").stdout.split()


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ", 1)[1].startswith("Z"))
