"""Start and stop ministack (local AWS emulator) as a subprocess of its own virtual environment."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Self

from local.emulator import aws
from local.emulator._proc import EmulatorError, clean_env, tail
from local.lifecycle import Startable

HEALTH_PATH = "/_ministack/health"
# samtranslator: ministack applies the AWS::Serverless-2016-10-31 transform with it (sam deploy
# sends the untransformed template, and the sam-managed bucket stack uses the transform too).
# boto3: Lambda functions run on ministack's interpreter, where the AWS runtime's boto3 is absent.
REQUIRED_PACKAGES = ("samtranslator", "boto3")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: have the kernel send SIGTERM to ministack if the process that started it dies."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except OSError:
        pass


class Emulator(Startable):
    """ministack on ``host:port``, started from the virtual environment ``venv``.

    Use as a context manager; it is stopped on leaving the block, on exceptions and on
    KeyboardInterrupt, and (as a last resort) at interpreter exit::

        with Emulator(".venvs/ministack") as emu:
            s3 = emu.client("s3")

    Lambda functions run in ministack's own interpreter (``venv``'s Python) with the
    function's layers put first on ``sys.path``: that Python's minor version must match
    the functions' runtime, and ``boto3`` must be installed in ``venv`` (it comes with
    ``aws-sam-translator``, which ministack needs anyway for the SAM transform).
    """

    def __init__(
        self,
        venv: str | Path,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        region: str = aws.DEFAULT_REGION,
        log_path: str | Path | None = None,
        workdir: str | Path | None = None,
        startup_timeout: float = 30.0,
        services: Sequence[str] | None = None,
        extra_env: Mapping[str, str] | None = None,
        die_with_parent: bool = True,
        lambda_python: str | None = "3.12",
        required_packages: Sequence[str] = REQUIRED_PACKAGES,
    ) -> None:
        self.venv = Path(venv).absolute()
        self.executable = self.venv / "bin" / "ministack"
        self.host = host
        self.port = port
        self.region = region
        self.startup_timeout = startup_timeout
        self.services = list(services) if services else None
        self.extra_env = dict(extra_env or {})
        self.die_with_parent = die_with_parent
        self.lambda_python = lambda_python
        self.required_packages = tuple(required_packages)
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="ministack-"))
        self.log_path = Path(log_path) if log_path else self.workdir / "ministack.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_fh: IO[bytes] | None = None
        self.startup_seconds: float | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        if self.port is None:
            raise EmulatorError("emulator not started: no port yet")
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> Self:
        if self.running():
            return self
        self.check_venv()
        fixed = self.port
        last: EmulatorError | None = None
        for _ in range(1 if fixed is not None else 3):
            try:
                self._start_once(fixed if fixed is not None else free_port(self.host))
                return self
            except _PortTaken as exc:  # lost the race for a free port: try another one
                last = exc
        raise last or EmulatorError("ministack did not start")

    def check_venv(self) -> None:
        """Fail early, with the fix, when the ministack venv cannot run the stack."""
        if not self.executable.exists():
            raise EmulatorError(
                f"no ministack at {self.executable} (pip install it in {self.venv})"
            )
        version = self.python_version()
        if self.lambda_python and not (version + ".").startswith(self.lambda_python + "."):
            raise EmulatorError(
                f"{self.venv} runs Python {version}, but ministack runs Lambda functions with its "
                f"own interpreter and the functions need {self.lambda_python}: recreate the venv "
                f"with python{self.lambda_python}"
            )
        site = list(self.venv.glob("lib/python3*/site-packages"))
        missing = [
            pkg for pkg in self.required_packages if not any((sp / pkg).is_dir() for sp in site)
        ]
        if missing:
            pips = {"samtranslator": "aws-sam-translator"}
            names = " ".join(pips.get(m, m) for m in missing)
            raise EmulatorError(
                f"{self.venv} lacks {', '.join(missing)}: run {self.venv}/bin/pip install {names}"
            )

    def python_version(self) -> str:
        """The Python version of the ministack venv (from pyvenv.cfg), e.g. ``3.12.1``."""
        try:
            cfg = (self.venv / "pyvenv.cfg").read_text(encoding="utf-8")
        except OSError:
            return ""
        for line in cfg.splitlines():
            key, _, value = line.partition("=")
            if key.strip() in ("version", "version_info"):
                return value.strip()
        return ""

    def _start_once(self, port: int) -> None:
        self.port = port
        self.workdir.mkdir(parents=True, exist_ok=True)
        tmpdir = self.workdir / "tmp"  # Lambda code/layers are unpacked here (TMPDIR)
        tmpdir.mkdir(exist_ok=True)
        env = clean_env(
            {
                "GATEWAY_PORT": str(port),
                "BIND_HOST": self.host,
                "MINISTACK_REGION": self.region,
                "TMPDIR": str(tmpdir),
                # Lambda workers inherit this environment: give them the emulator's dummy identity.
                "AWS_ACCESS_KEY_ID": aws.ACCESS_KEY_ID,
                "AWS_SECRET_ACCESS_KEY": aws.SECRET_ACCESS_KEY,
                "AWS_DEFAULT_REGION": self.region,
                "PYTHONUNBUFFERED": "1",
                **({"SERVICES": ",".join(self.services)} if self.services else {}),
                **self.extra_env,
            }
        )
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_fh = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the child's life
        started = time.monotonic()
        self._proc = subprocess.Popen(  # noqa: S603 - explicit executable path, no shell
            [str(self.executable)],
            env=env,
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=self._log_fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: Ctrl-C reaches us, we stop it
            preexec_fn=_die_with_parent
            if self.die_with_parent and sys.platform == "linux"
            else None,
        )
        atexit.register(self.stop)
        try:
            self._wait_ready(started)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, started: float) -> None:
        deadline = started + self.startup_timeout
        proc = self._proc
        if proc is None:
            raise EmulatorError("ministack process not started")
        while True:
            if proc.poll() is not None:
                log = self.log_tail()
                if "already in use" in log:
                    raise _PortTaken(f"port {self.port} already in use")
                raise EmulatorError(
                    f"ministack exited with {proc.returncode} during startup\n"
                    f"--- {self.log_path} ---\n{log}"
                )
            if self._healthy():
                self.startup_seconds = time.monotonic() - started
                return
            if time.monotonic() > deadline:
                raise EmulatorError(
                    f"ministack not ready on {self.endpoint} after {self.startup_timeout}s\n"
                    f"--- {self.log_path} ---\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.endpoint + HEALTH_PATH, timeout=2) as resp:  # noqa: S310
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def health(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.endpoint + HEALTH_PATH, timeout=5) as resp:  # noqa: S310
            data: dict[str, Any] = json.load(resp)
            return data

    def reset(self) -> None:
        """Wipe all emulator state (``POST /_ministack/reset``): every stack, queue, table..."""
        url = self.endpoint + "/_ministack/reset"  # always http://host:port
        req = urllib.request.Request(url, method="POST", data=b"")  # noqa: S310
        with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310
            if resp.status != 200:
                raise EmulatorError(f"ministack reset answered {resp.status}")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM ministack's process group, then SIGKILL after ``timeout``. Idempotent."""
        proc, self._proc = self._proc, None
        atexit.unregister(self.stop)
        if proc is not None:
            if proc.poll() is None:
                self._signal_group(proc, signal.SIGTERM)
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self._signal_group(proc, signal.SIGKILL)
                    proc.wait(timeout=5)
            # Lambda workers are children in the same group; make sure none outlives it.
            self._signal_group(proc, signal.SIGKILL)
        if self._log_fh is not None:
            self._log_fh.close()
            self._log_fh = None
        shutil.rmtree(self.workdir / "tmp", ignore_errors=True)

    @staticmethod
    def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        # The group id is the pid of the process we started (start_new_session=True).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)

    # -- helpers -----------------------------------------------------------------------------

    def log_tail(self, lines: int = 40) -> str:
        try:
            return tail(self.log_path.read_text(encoding="utf-8", errors="replace"), lines)
        except OSError:
            return ""

    def env(self) -> dict[str, str]:
        """Environment variables for a subprocess (``sam``, ``aws``) that talks to this emulator."""
        return aws.aws_env(self.endpoint, self.region)

    def session(self) -> Any:
        return aws.session(self.region)

    def client(self, service: str, **kwargs: Any) -> Any:
        return aws.client(service, self.endpoint, self.region, **kwargs)


class _PortTaken(EmulatorError):
    pass
