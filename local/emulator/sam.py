"""``sam build`` / ``sam deploy`` to the emulator, and stack helpers, via the sam venv's CLI."""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from local.emulator import aws
from local.emulator._proc import EmulatorError, ToolRun, clean_env, run_tool

DEFAULT_CAPABILITIES = ("CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND")
#: What the emulator differs in, passed to sam build and sam deploy: ministack runs functions
#: on its own x86_64 interpreter, so the layer's compiled wheels must be x86_64 whatever the
#: template's default (arm64 on AWS); and it refuses alarms with metric math.
LOCAL_PARAMETERS = {"Architecture": "x86_64", "MetricMathAlarms": "false"}
# Stack states from which an update is impossible: delete the stack first.
_DEAD_STATES = {"ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "DELETE_FAILED", "CREATE_FAILED"}


def sam_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Base environment for ``sam``: no telemetry, no update check, no caller AWS profile."""
    return clean_env(
        {
            "SAM_CLI_TELEMETRY": "0",
            "SAM_CLI_DISABLE_UPDATE_CHECK": "1",  # harmless where unknown
            "AWS_EC2_METADATA_DISABLED": "true",
            **(extra or {}),
        }
    )


def _exe(path: str | Path) -> str:
    """An executable given as a path, made absolute (the tools run with another cwd)."""
    text = str(path)
    return str(Path(text).absolute()) if os.sep in text else text


def find_python(version: str = "3.12") -> Path:
    """The directory holding a working ``python<version>`` (what ``sam build`` looks up on PATH).

    pyenv shims only answer for the versions pyenv has selected, so the interpreter's real
    ``bin`` directory is returned, which works from any working directory.
    """
    exe = f"python{version}"
    candidates: list[str] = []
    root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    candidates += sorted(glob.glob(f"{root}/versions/{version}.*/bin/{exe}"), reverse=True)
    found = shutil.which(exe)
    if found and "/shims/" not in found:
        candidates.insert(0, found)
    for cand in candidates:
        try:
            subprocess.run(  # noqa: S603 - probing a known interpreter path
                [cand, "-c", "import sys"], check=True, capture_output=True, timeout=30
            )
        except (OSError, subprocess.SubprocessError):
            continue
        return Path(cand).parent
    raise EmulatorError(f"no working {exe} found (pyenv versions or PATH); sam build needs it")


@dataclass(frozen=True)
class BuildResult:
    template: Path  # the built template (input of sam_deploy)
    build_dir: Path
    seconds: float
    output: str


def sam_build(
    project_dir: str | Path,
    sam_bin: str | Path,
    build_dir: str | Path,
    *,
    template: str | Path = "template.yaml",
    cache_dir: str | Path | None = None,
    cached: bool = True,
    parallel: bool = False,
    python_versions: Sequence[str] = ("3.12",),
    parameter_overrides: Mapping[str, str] | None = None,
    expect: Iterable[str] = (),
    timeout: float = 900.0,
    log_path: str | Path | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> BuildResult:
    """``sam build`` (no container) of ``project_dir/template`` into ``build_dir``.

    ``python_versions``: interpreters put first on PATH (the functions' runtimes).
    ``parameter_overrides``: lets sam resolve ``!Ref`` parameters it reads at build time
    (e.g. ``Architectures: [!Ref Architecture]``); pass the same values as to ``sam_deploy``.
    ``expect``: paths relative to ``build_dir`` that must exist afterwards, e.g.
    ``"DomainLayer/python/pydantic_core"`` -- ``sam build`` reports success even when a
    wrong ``CodeUri`` produced an empty artifact. Each built resource folder is also checked
    to be non-empty, and layers to hold no nested ``python/python``.
    With ``cached``, sam keeps dependency caches in ``project_dir/.aws-sam/deps``.
    """
    project = Path(project_dir).absolute()
    build = Path(build_dir).absolute()
    path_dirs = [str(find_python(v)) for v in python_versions]
    env = sam_env(
        {
            "PATH": os.pathsep.join([*path_dirs, os.environ.get("PATH", "")]),
            # pyenv shims left on PATH must also resolve these versions
            "PYENV_VERSION": ":".join(_pyenv_versions(path_dirs))
            or os.environ.get("PYENV_VERSION", ""),
            **(extra_env or {}),
        }
    )
    cmd: list[str | Path] = [
        _exe(sam_bin),
        "build",
        "--template-file",
        project / template,
        "--build-dir",
        build,
    ]
    if cached:
        cmd += ["--cached"]
        if cache_dir is not None:
            cmd += ["--cache-dir", Path(cache_dir).absolute()]
    if parallel:
        cmd += ["--parallel"]
    if parameter_overrides:
        cmd += ["--parameter-overrides", *format_parameter_overrides(parameter_overrides)]
    run = run_tool(
        "sam build",
        cmd,
        env=env,
        cwd=project,
        timeout=timeout,
        log_path=Path(log_path) if log_path else None,
    )
    built = build / "template.yaml"
    problems = _check_build(build, expect) if built.exists() else [f"{built} missing"]
    if problems:
        raise EmulatorError(
            "sam build succeeded but the artifacts are wrong:\n  "
            + "\n  ".join(problems)
            + "\n--- sam output ---\n"
            + run.output[-3000:]
        )
    return BuildResult(built, build, run.seconds, run.output)


def _pyenv_versions(path_dirs: Sequence[str]) -> list[str]:
    # .../.pyenv/versions/3.12.1/bin -> 3.12.1
    return [Path(d).parent.name for d in path_dirs if "/versions/" in d]


_URI_LINE = re.compile(r"^\s*(CodeUri|ContentUri):\s*['\"]?([^'\"\s]+)['\"]?\s*$", re.M)


def _check_build(build: Path, expect: Iterable[str]) -> list[str]:
    problems: list[str] = []
    # Every local artifact the built template points at must exist (sam build "succeeds" and
    # leaves the folder out when a CodeUri is wrong).
    text = (build / "template.yaml").read_text(encoding="utf-8")
    for key, uri in _URI_LINE.findall(text):
        if "://" not in uri and not (build / uri).exists():
            problems.append(f"{key} {uri}: no such artifact in {build} (wrong {key}?)")
    for res in sorted(p for p in build.iterdir() if p.is_dir()):
        if not any(res.iterdir()):
            problems.append(f"{res.name}: empty artifact (wrong CodeUri/ContentUri?)")
        if (res / "python" / "python").is_dir():
            problems.append(
                f"{res.name}: nested python/python (a BuildMethod layer must not "
                "hold its own python/ folder)"
            )
    problems += [f"{rel}: missing" for rel in expect if not (build / rel).exists()]
    return problems


def format_parameter_overrides(params: Mapping[str, str]) -> list[str]:
    """``--parameter-overrides`` tokens, quoted so values may hold spaces, ``=`` or be empty."""
    tokens = []
    for key, value in params.items():
        if not key.isalnum():
            raise ValueError(f"parameter name {key!r} must be alphanumeric")
        if "\\" in value or "\n" in value:
            raise ValueError(f"parameter {key}: backslashes/newlines are not passed safely by sam")
        tokens.append(f'{key}="{value.replace(chr(34), chr(92) + chr(34))}"')
    return tokens


def ensure_bucket(endpoint: str, bucket: str, region: str = aws.DEFAULT_REGION) -> str:
    s3 = aws.client("s3", endpoint, region)
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError:
        kwargs: dict[str, Any] = {}
        if region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        s3.create_bucket(Bucket=bucket, **kwargs)
    return bucket


def sam_deploy(
    project_dir: str | Path,
    sam_bin: str | Path,
    stack_name: str,
    endpoint: str,
    parameter_overrides: Mapping[str, str] | None = None,
    *,
    template_file: str | Path | None = None,
    region: str = aws.DEFAULT_REGION,
    s3_bucket: str | None = None,
    resolve_s3: bool = False,
    capabilities: Sequence[str] = DEFAULT_CAPABILITIES,
    tags: Mapping[str, str] | None = None,
    poll_delay: float = 0.5,
    timeout: float = 900.0,
    log_path: str | Path | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """``sam deploy`` of the built template to the emulator at ``endpoint``; returns the
    stack's Outputs as a dict.

    ``template_file`` defaults to ``project_dir/.aws-sam/build/template.yaml`` (pass
    ``BuildResult.template``). Artifacts go to ``s3_bucket`` (created if missing; default
    ``sam-artifacts-<region>``), or to sam's managed bucket with ``resolve_s3`` (slower: it
    creates the ``aws-sam-cli-managed-default`` stack). A stack left in ROLLBACK_COMPLETE by
    an earlier failed create is deleted first. ``poll_delay`` is ``SAM_CLI_POLL_DELAY``.
    """
    project = Path(project_dir).absolute()
    template = Path(template_file) if template_file else project / ".aws-sam/build/template.yaml"
    if not template.exists():
        raise EmulatorError(f"{template} not found: run sam_build first")
    _delete_if_dead(stack_name, endpoint, region)
    cmd: list[str | Path] = [
        _exe(sam_bin),
        "deploy",
        "--template-file",
        template,
        "--stack-name",
        stack_name,
        "--region",
        region,
        "--no-confirm-changeset",
        "--no-fail-on-empty-changeset",
        "--no-progressbar",
        "--capabilities",
        *capabilities,
    ]
    if resolve_s3:
        cmd += ["--resolve-s3"]
    else:
        bucket = ensure_bucket(endpoint, s3_bucket or f"sam-artifacts-{region}", region)
        cmd += ["--s3-bucket", bucket, "--s3-prefix", stack_name]
    if parameter_overrides:
        cmd += ["--parameter-overrides", *format_parameter_overrides(parameter_overrides)]
    if tags:
        cmd += ["--tags", *format_parameter_overrides(tags)]
    env = sam_env(
        {
            **aws.aws_env(endpoint, region),
            "SAM_CLI_POLL_DELAY": str(poll_delay),
            **(extra_env or {}),
        }
    )
    run_tool(
        "sam deploy",
        cmd,
        env=env,
        cwd=project,
        timeout=timeout,
        log_path=Path(log_path) if log_path else None,
    )
    fix_event_source_mappings(endpoint, region)
    return stack_outputs(stack_name, endpoint, region)


def fix_event_source_mappings(endpoint: str, region: str = aws.DEFAULT_REGION) -> list[str]:
    """Work around a ministack divergence: give SQS mappings an integer MaximumConcurrency.

    ministack (1.5.33) stores a CloudFormation-created mapping's ``ScalingConfig`` as written
    in the template; ``MaximumConcurrency: !Ref SomeNumberParameter`` arrives as the string
    ``"2"`` and its SQS poller then fails every pass (``'>=' not supported between instances
    of 'int' and 'str'``): the queue is never consumed. AWS coerces the value. The Lambda API
    path (``UpdateEventSourceMapping``) stores an int, so re-set the same value through it.
    Idempotent; returns the UUIDs it re-set.
    """
    lam = aws.client("lambda", endpoint, region)
    fixed: list[str] = []
    for page in lam.get_paginator("list_event_source_mappings").paginate():
        for esm in page.get("EventSourceMappings", []):
            value = (esm.get("ScalingConfig") or {}).get("MaximumConcurrency")
            # botocore may already show it as an int: re-set it whenever there is one.
            if value is not None and str(value).strip().isdigit():
                lam.update_event_source_mapping(
                    UUID=esm["UUID"], ScalingConfig={"MaximumConcurrency": int(value)}
                )
                fixed.append(esm["UUID"])
    return fixed


def sam_remote_invoke(
    sam_bin: str | Path,
    stack_name: str,
    resource_id: str,
    endpoint: str,
    event: str = "{}",
    *,
    region: str = aws.DEFAULT_REGION,
    timeout: float = 300.0,
) -> ToolRun:
    """``sam remote invoke --stack-name S RESOURCE --event EVENT`` against the emulator."""
    cmd: list[str | Path] = [
        _exe(sam_bin),
        "remote",
        "invoke",
        "--stack-name",
        stack_name,
        resource_id,
        "--event",
        event,
        "--region",
        region,
    ]
    return run_tool(
        "sam remote invoke",
        cmd,
        env=sam_env(aws.aws_env(endpoint, region)),
        cwd=None,
        timeout=timeout,
    )


def stack_outputs(
    stack_name: str, endpoint: str, region: str = aws.DEFAULT_REGION
) -> dict[str, str]:
    cf = aws.client("cloudformation", endpoint, region)
    stack = cf.describe_stacks(StackName=stack_name)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def stack_status(stack_name: str, endpoint: str, region: str = aws.DEFAULT_REGION) -> str | None:
    """The stack's status, or None when there is no such (live) stack."""
    cf = aws.client("cloudformation", endpoint, region)
    try:
        status: str = cf.describe_stacks(StackName=stack_name)["Stacks"][0]["StackStatus"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise
    return None if status == "DELETE_COMPLETE" else status


def _delete_if_dead(stack_name: str, endpoint: str, region: str) -> None:
    if stack_status(stack_name, endpoint, region) in _DEAD_STATES:
        delete_stack(stack_name, endpoint, region)


def delete_stack(
    stack_name: str,
    endpoint: str,
    region: str = aws.DEFAULT_REGION,
    *,
    timeout: float = 120.0,
    poll: float = 0.25,
) -> float:
    """Delete the stack (boto3, like ``sam delete --no-prompts`` without the S3 clean-up) and
    wait for DELETE_COMPLETE. Returns the seconds it took; no-op if the stack is absent."""
    start = time.monotonic()
    if stack_status(stack_name, endpoint, region) is None:
        return 0.0
    cf = aws.client("cloudformation", endpoint, region)
    cf.delete_stack(StackName=stack_name)
    while True:
        status = stack_status(stack_name, endpoint, region)
        if status is None:
            return time.monotonic() - start
        if status == "DELETE_FAILED":
            events = cf.describe_stack_events(StackName=stack_name)["StackEvents"]
            reasons = [
                f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason', '')}"
                for e in events
                if e.get("ResourceStatus") == "DELETE_FAILED"
            ]
            raise EmulatorError(f"delete of stack {stack_name} failed:\n  " + "\n  ".join(reasons))
        if time.monotonic() - start > timeout:
            raise EmulatorError(f"stack {stack_name} still {status} after {timeout}s")
        time.sleep(poll)
