"""Running ``kexpose-proxy`` as a real process for tests: free ports, readiness, logs."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "images" / "proxy" / "Dockerfile"
ENTRYPOINT = str(Path(sys.executable).with_name("kexpose-proxy"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def image_command() -> tuple[list[str], dict[str, str]]:
    """ENTRYPOINT + CMD (JSON form) and ENV of the proxy image, as the Dockerfile says."""
    entrypoint: list[str] = []
    cmd: list[str] = []
    env: dict[str, str] = {}
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if line.startswith("ENTRYPOINT "):
            entrypoint = json.loads(line.removeprefix("ENTRYPOINT "))
        elif line.startswith("CMD "):
            cmd = json.loads(line.removeprefix("CMD "))
        elif line.startswith("ENV ") and "FROM" not in line:
            for pair in line.removeprefix("ENV ").split():
                key, _, value = pair.partition("=")
                env[key] = value
    return entrypoint + cmd, env


@dataclass
class ProxyProcess:
    process: subprocess.Popen[bytes]
    http: int
    https: int
    health: int
    stderr: Path
    stdout: Path

    async def wait_ready(self, timeout: float = 30.0) -> None:
        async with asyncio.timeout(timeout):
            while True:
                if self.process.poll() is not None:
                    raise AssertionError(f"proxy exited {self.process.returncode}:\n{self.logs()}")
                if await self.get_health("/readyz") == 200:
                    return
                await asyncio.sleep(0.05)

    async def get_health(self, path: str) -> int:
        try:
            r, w = await asyncio.open_connection("127.0.0.1", self.health)
        except OSError:
            return 0
        w.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        data = await r.read()
        w.close()
        return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else 0

    async def metrics(self) -> str:
        r, w = await asyncio.open_connection("127.0.0.1", self.health)
        w.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        data = await r.read()
        w.close()
        return data.split(b"\r\n\r\n", 1)[1].decode()

    def terminate(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    async def wait_exit(self, timeout: float = 30.0) -> int:
        async with asyncio.timeout(timeout):
            while self.process.poll() is None:
                await asyncio.sleep(0.02)
        return self.process.returncode

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def logs(self) -> str:
        return self.stderr.read_text(errors="replace")

    def worker_pids(self) -> set[int]:
        """The running ``--workers`` children (spawned interpreters; zombies left out)."""
        children = subprocess.run(
            # -ww: without a terminal ps cuts args at 80 columns, and a deep checkout path
            # pushes the module name past the cut.
            ["ps", "-ww", "--ppid", str(self.process.pid), "-o", "pid=,stat=,args="],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        pids = set()
        for line in children.splitlines():
            pid, stat, args = line.split(None, 2)
            if "multiprocessing.spawn" in args and not stat.startswith("Z"):
                pids.add(int(pid))
        return pids


def gone(pid: int) -> bool:
    """Whether ``pid`` has exited: a zombie has already closed its files (and sockets)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rpartition(")")[2].split()[0] in ("Z", "X")


def socket_owner(local: tuple[str, int], pids: set[int]) -> int | None:
    """Which of ``pids`` holds the loopback TCP socket whose peer is ``local`` (Linux).

    ``local`` is a client's own address; the proxy side of that connection is the socket
    in ``/proc/net/tcp`` whose remote address it is, and its inode names the owning process
    through ``/proc/PID/fd``. This tells which ``--workers`` child accepted a connection,
    which nothing on the wire says.
    """
    host, port = local
    want = f"{socket.inet_aton(host)[::-1].hex().upper()}:{port:04X}"
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[2] == want:
            inodes.add(f"socket:[{fields[9]}]")
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) in inodes:
                    return pid
            except OSError:
                continue
    return None


def start(
    argv: list[str],
    tmp: Path,
    *,
    env: dict[str, str] | None = None,
    read_only_root: bool = False,
) -> ProxyProcess:
    """Start ``argv`` with ports chosen through KEXPOSE_PROXY_* variables (argv stays as is)."""
    http, https, health = free_port(), free_port(), free_port()
    full_env = {
        **os.environ,
        "KEXPOSE_PROXY_BIND": "127.0.0.1",
        "KEXPOSE_PROXY_HTTP_PORT": str(http),
        "KEXPOSE_PROXY_HTTPS_PORT": str(https),
        "KEXPOSE_PROXY_HEALTH_PORT": str(health),
        "PYTHONDONTWRITEBYTECODE": "1",
        **(env or {}),
    }
    command = list(argv)
    if command and command[0] == "kexpose-proxy":
        command[0] = ENTRYPOINT  # what PATH resolves to in the image
    if read_only_root:
        # A private mount namespace whose root (and so every path here) is read-only, like a
        # pod with readOnlyRootFilesystem.
        script = 'mount -o remount,bind,ro / && exec "$@"'
        command = [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
            *command,
        ]
    stdout, stderr = tmp / "proxy.stdout", tmp / "proxy.stderr"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            command, env=full_env, stdout=out, stderr=err, stdin=subprocess.DEVNULL
        )
    return ProxyProcess(process, http, https, health, stderr, stdout)


def can_remount_read_only() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            "mount -o remount,bind,ro / && ! touch /.kexpose-ro-probe 2>/dev/null",
        ],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0
