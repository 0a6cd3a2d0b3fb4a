"""``python -m local.emulator up``: start ministack, build and deploy the template, then run a
command against it (or wait for Ctrl-C), then delete the stack and stop ministack.

    python -m local.emulator up --param Stage=local -- python bench/demo.py

The command gets AWS_ENDPOINT_URL, dummy credentials, AWS_DEFAULT_REGION and
STACK_OUTPUTS (the stack Outputs as JSON) in its environment.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from local.emulator._proc import EmulatorError
from local.emulator.ministack import Emulator
from local.emulator.sam import LOCAL_PARAMETERS, delete_stack, sam_build, sam_deploy


def _sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # unwind through the context managers: stack deleted, ministack stopped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.emulator")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start, build, deploy; run CMD or wait; tear down")
    up.add_argument("--project-dir", default=".", type=Path)
    up.add_argument("--template", default="template.yaml")
    up.add_argument("--ministack-venv", default=".venvs/ministack", type=Path)
    up.add_argument("--sam", default=".venvs/sam/bin/sam", type=Path)
    up.add_argument("--stack-name", default="local")
    up.add_argument("--region", default="eu-west-1")
    up.add_argument("--port", type=int, default=None, help="default: a free port")
    up.add_argument("--build-dir", type=Path, default=None, help="default: .aws-sam/build")
    up.add_argument("--workdir", type=Path, default=None, help="ministack log, tmp")
    up.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    up.add_argument("--outputs-file", type=Path, default=None)
    up.add_argument("--keep", action="store_true", help="do not delete the stack before stopping")
    up.add_argument("cmd", nargs=argparse.REMAINDER, help="-- command to run against the stack")
    args = parser.parse_args(argv)

    params = {**LOCAL_PARAMETERS, **dict(p.split("=", 1) for p in args.param)}
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    project = args.project_dir.absolute()
    build_dir = args.build_dir or project / ".aws-sam" / "build"
    signal.signal(signal.SIGTERM, _sigterm)
    try:
        with Emulator(
            args.ministack_venv, port=args.port, region=args.region, workdir=args.workdir
        ) as emu:
            print(
                f"ministack on {emu.endpoint} (log {emu.log_path}), "
                f"ready in {emu.startup_seconds:.2f}s",
                flush=True,
            )
            built = sam_build(
                project, args.sam, build_dir, template=args.template, parameter_overrides=params
            )
            print(f"sam build: {built.seconds:.1f}s", flush=True)
            t = time.monotonic()
            outputs = sam_deploy(
                project,
                args.sam,
                args.stack_name,
                emu.endpoint,
                params,
                template_file=built.template,
                region=args.region,
            )
            print(f"sam deploy: {time.monotonic() - t:.1f}s", flush=True)
            print(json.dumps(outputs, indent=2), flush=True)
            if args.outputs_file:
                args.outputs_file.write_text(json.dumps(outputs, indent=2) + "\n")
            rc = 0
            try:
                if cmd:
                    env = {**os.environ, **emu.env(), "STACK_OUTPUTS": json.dumps(outputs)}
                    rc = subprocess.run(cmd, env=env, check=False).returncode  # noqa: S603
                else:
                    print("Ctrl-C to tear down", flush=True)
                    while emu.running():
                        time.sleep(1)
                    print(f"ministack exited:\n{emu.log_tail()}", file=sys.stderr)
                    rc = 1
            finally:
                if not args.keep:
                    delete_stack(args.stack_name, emu.endpoint, args.region)
            return rc
    except KeyboardInterrupt:
        return 130
    except EmulatorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
