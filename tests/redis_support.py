"""A real Redis server (Debian's redis-server) on a private unix socket, for the tests.

Why a unix socket and not TCP: redis-server cannot be asked for an ephemeral port (``--port 0``
means "no TCP listener at all"), so a TCP port would have to be found free and then handed to
Redis, a race with every other process on the machine. A socket path in the test's own
directory cannot be taken by anyone else, and stays the same when a test restarts the server
(``test_redis_killed_mid_session_then_back``: the app keeps its URL).
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import tempfile
import threading
from pathlib import Path

import redis

# Hang guards: Redis starts in milliseconds; only a broken or starved machine nears these.
START_DEADLINE = 60.0
STOP_DEADLINE = 20.0
# sockaddr_un.sun_path holds 108 bytes (with its NUL) on Linux, 104 on macOS.
MAX_SOCKET_PATH = 100
READY = re.compile(r"ready to accept connections", re.IGNORECASE)


class RedisServer:
    def __init__(self, directory: Path):
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is missing: `make test` installs it (apt-get).")
        self.binary, self.directory = binary, directory
        socket_path = directory / "redis.sock"
        if len(str(socket_path)) > MAX_SOCKET_PATH:  # a long basetemp: a short private dir
            socket_path = Path(tempfile.mkdtemp(prefix="entra-redis-")) / "redis.sock"
        self.socket_path = socket_path
        self.process: subprocess.Popen[str] | None = None
        self._output: list[str] = []

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}?db=0"

    @property
    def output(self) -> str:
        return "".join(self._output)

    def start(self) -> RedisServer:
        """Start it and return once it answers PING; its own "ready" log line is the signal."""
        output: list[str] = []
        self._output = output  # this run's log (a killed run's reader may still be finishing)
        ready = threading.Event()
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                "0",  # no TCP listener (see the module's docstring)
                "--unixsocket",
                str(self.socket_path),
                "--unixsocketperm",
                "700",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
                "--logfile",
                "",  # the log on stdout, read below
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        process = self.process

        def read() -> None:  # drains the log until the process ends (a full pipe would block it)
            assert process.stdout is not None
            for line in process.stdout:
                output.append(line)
                if READY.search(line):
                    ready.set()
            ready.set()  # ended: start() sees why below

        threading.Thread(target=read, daemon=True, name="redis-log").start()
        if not ready.wait(START_DEADLINE) or not READY.search(self.output):
            self.stop()  # it hung, or it exited (its log says why)
            raise RuntimeError(f"redis-server did not start:\n{self.output}")
        self.client().ping()  # it listens: the log line comes after the socket is bound
        return self

    def stop(self) -> None:
        """Kill it (as a crash would), and wait for it: bounded, never left running."""
        process, self.process = self.process, None
        if process is None:
            return
        process.kill()
        process.wait(timeout=STOP_DEADLINE)  # SIGKILL cannot be ignored: this returns

    def freeze(self) -> None:
        """SIGSTOP: connections are still accepted by the kernel, nothing is ever answered."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=10, socket_connect_timeout=10)
