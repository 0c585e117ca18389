"""Start Azurite (the storage emulator) when it is not already running, and stop what we started.

    python -m tools.azurite -- python -m tools.local_run     # run a command with Azurite up
    python -m tools.azurite --free-ports -- pytest            # on free ports (tests, CI)

The command sees ``AzureWebJobsStorage`` and ``FRAUD_DATA_STORAGE`` (the host's account and the
app's data account, one emulated account here) set to the emulator's connection string.
An emulator started here serves three accounts: the well-known ``devstoreaccount1`` and
``devstoreaccount2``/``devstoreaccount3``, for tests of a data account apart from the host's and
of profiles spread over accounts (``AzuriteProcess.connection_string_for``). Azurite runs in memory (``--inMemoryPersistence``):
nothing is left on disk. The outage tests run one process per service with ``--location``
instead, so a restart keeps the data.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from shared.adapters.storage_account import AZURITE_ACCOUNT, AZURITE_KEYS, azurite_connection_string

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PORTS = (10000, 10001, 10002)
# Azurite serves only the accounts AZURITE_ACCOUNTS lists once it is set (devstoreaccount1 is then
# no longer implied), so the well-known account is listed too.
AZURITE_ACCOUNTS = ";".join(f"{name}:{key}" for name, key in AZURITE_KEYS.items())


def _listening(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def azurite_binary() -> str:
    local = ROOT / "node_modules" / ".bin" / "azurite"
    if local.exists():
        return str(local)
    found = shutil.which("azurite")
    if not found:
        raise RuntimeError("Azurite is not installed: run `npm ci` (the Makefile does) in the project folder")
    return found


@dataclass
class AzuriteProcess:
    blob: int
    queue: int
    table: int
    process: subprocess.Popen | None  # None: it was already running; not ours to stop
    workdir: str | None = None
    location: str | None = None  # persist to this folder (survives a restart) instead of memory
    only: str | None = None  # "blob", "queue" or "table": run just that service (outage tests)

    @property
    def connection_string(self) -> str:
        return self.connection_string_for(AZURITE_ACCOUNT)

    def connection_string_for(self, account: str) -> str:
        """The connection string of one of the emulated accounts (``AZURITE_KEYS``)."""
        return azurite_connection_string(blob=self.blob, queue=self.queue, table=self.table, account=account)

    def _ports(self) -> dict[str, int]:
        ports = {"blob": self.blob, "queue": self.queue, "table": self.table}
        return {self.only: ports[self.only]} if self.only else ports

    def is_up(self) -> bool:
        return all(_listening(p) for p in self._ports().values())

    def start(self, timeout: float = 30.0) -> None:
        """(Re)start the emulator process on the same ports (used by the outage tests too)."""
        # run from a scratch folder: Azurite writes its debug/extent files to the cwd
        self.workdir = self.workdir or tempfile.mkdtemp(prefix="azurite-")
        binary = azurite_binary() + (f"-{self.only}" if self.only else "")
        persistence = ["--location", self.location] if self.location else ["--inMemoryPersistence"]
        cmd = [binary, *persistence, "--disableTelemetry", "--skipApiVersionCheck", "--silent", "--loose"]
        for service, port in self._ports().items():
            cmd += [f"--{service}Host", "127.0.0.1", f"--{service}Port", str(port)]
        self.process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        cwd=self.workdir, start_new_session=True,
                                        env=dict(os.environ, AZURITE_ACCOUNTS=AZURITE_ACCOUNTS))
        deadline = time.monotonic() + timeout
        while not self.is_up():
            if self.process.poll() is not None:
                raise RuntimeError(f"Azurite exited with code {self.process.returncode}: {' '.join(cmd)}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("Azurite did not start listening within 30 s")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is None:
            return
        # SIGINT: Azurite closes its databases (with --location, the data survives a restart)
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


@contextmanager
def running_azurite(free_ports: bool = False) -> Iterator[AzuriteProcess]:
    if free_ports:
        azurite = AzuriteProcess(free_port(), free_port(), free_port(), None)
        azurite.start()
    else:
        azurite = AzuriteProcess(*DEFAULT_PORTS, None)
        if not azurite.is_up():
            azurite.start()
    try:
        yield azurite
    finally:
        azurite.stop()
        if azurite.workdir:
            shutil.rmtree(azurite.workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.azurite", description=__doc__.split("\n\n")[0])
    parser.add_argument("--free-ports", action="store_true", help="start a private emulator on free ports")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- command to run while Azurite is up")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give a command after --")
    with running_azurite(args.free_ports) as azurite:
        started = "started" if azurite.process else "already running"
        print(f"Azurite {started} (blob {azurite.blob}, queue {azurite.queue}, table {azurite.table})", file=sys.stderr)
        env = dict(os.environ, AzureWebJobsStorage=azurite.connection_string,
                   FRAUD_DATA_STORAGE=azurite.connection_string)
        return subprocess.call(command, env=env)


if __name__ == "__main__":
    sys.exit(main())
