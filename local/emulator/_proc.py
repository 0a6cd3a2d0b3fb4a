"""Running the external tools (``sam``, ``ministack``) as subprocesses, with clear errors."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

TAIL_LINES = 40

# Variables that must not leak from the caller (often the application's venv) into the tools.
# ministack passes its whole environment on to the Lambda worker processes it spawns, so a
# PYTHONPATH or VIRTUAL_ENV from the app venv would put the app's packages under the functions.
_DROPPED_VARS = (
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "VIRTUAL_ENV",
    "CONDA_PREFIX",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
)


class EmulatorError(RuntimeError):
    """Any failure of the local emulator tooling."""


class ToolError(EmulatorError):
    """An external tool exited non-zero or timed out; carries the tail of its output."""

    def __init__(
        self,
        what: str,
        cmd: Sequence[str],
        returncode: int | None,
        output: str,
        log_path: Path | None = None,
    ) -> None:
        self.what = what
        self.cmd = list(cmd)
        self.returncode = returncode
        self.output = output
        self.log_path = log_path
        status = "timed out" if returncode is None else f"exited with {returncode}"
        where = f"\n(full output: {log_path})" if log_path else ""
        super().__init__(
            f"{what} failed: {status}\n$ {' '.join(self.cmd)}\n"
            f"--- last {TAIL_LINES} lines ---\n{tail(output)}{where}"
        )


def tail(text: str, lines: int = TAIL_LINES) -> str:
    """The last ``lines`` lines of ``text`` (carriage-return progress bars collapsed)."""
    cleaned = [line.rsplit("\r", 1)[-1] for line in text.splitlines()]
    return "\n".join(cleaned[-lines:])


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The current environment without Python/AWS variables that could leak, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED_VARS}
    if extra:
        env.update(extra)
    return env


@dataclass(frozen=True)
class ToolRun:
    cmd: list[str]
    output: str
    seconds: float


def run_tool(
    what: str,
    cmd: Sequence[str | Path],
    *,
    env: Mapping[str, str],
    cwd: Path | None,
    timeout: float,
    log_path: Path | None = None,
) -> ToolRun:
    """Run ``cmd`` to completion, capturing stdout+stderr; raise ``ToolError`` on failure.

    The combined output is also written to ``log_path`` when given.
    """
    argv = [str(c) for c in cmd]
    start = time.monotonic()
    try:
        proc = subprocess.run(  # noqa: S603 - argv built from explicit paths, no shell
            argv,
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        out = _decode(exc.stdout)
        _write_log(log_path, out)
        raise ToolError(what, argv, None, out, log_path) from None
    except OSError as exc:
        raise EmulatorError(f"{what}: cannot run {argv[0]}: {exc}") from exc
    out = _decode(proc.stdout)
    _write_log(log_path, out)
    if proc.returncode != 0:
        raise ToolError(what, argv, proc.returncode, out, log_path)
    return ToolRun(argv, out, time.monotonic() - start)


def _decode(data: bytes | str | None) -> str:
    if data is None:
        return ""
    if isinstance(data, bytes):
        return data.decode("utf-8", errors="replace")
    return data


def _write_log(log_path: Path | None, text: str) -> None:
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_text(text, encoding="utf-8")
