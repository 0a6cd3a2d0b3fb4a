"""Deploy the SAM template onto ministack (a local AWS emulator, no Docker) and drive it.

stdlib + boto3 only: ``sam`` and ``ministack`` run from their own virtual environments,
given as paths, and are never imported. See NOTES.md for the recipe and its limits.

    from local.emulator import Emulator, sam_build, sam_deploy, delete_stack

    with Emulator(".venvs/ministack") as emu:
        built = sam_build(".", ".venvs/sam/bin/sam", "/tmp/build")
        outputs = sam_deploy(".", ".venvs/sam/bin/sam", "demo", emu.endpoint,
                             {"Stage": "local"}, template_file=built.template)
        emu.client("lambda").invoke(FunctionName=outputs["PollerFunctionName"])
        delete_stack("demo", emu.endpoint)
"""

from local.emulator._proc import EmulatorError, ToolError
from local.emulator.aws import DEFAULT_REGION, aws_env, client, session
from local.emulator.ministack import Emulator, free_port
from local.emulator.observe import log_messages, queue_counts, wait_until
from local.emulator.sam import (
    LOCAL_PARAMETERS,
    BuildResult,
    delete_stack,
    find_python,
    fix_event_source_mappings,
    sam_build,
    sam_deploy,
    sam_remote_invoke,
    stack_outputs,
    stack_status,
)

__all__ = [
    "DEFAULT_REGION",
    "LOCAL_PARAMETERS",
    "BuildResult",
    "Emulator",
    "EmulatorError",
    "ToolError",
    "aws_env",
    "client",
    "delete_stack",
    "find_python",
    "fix_event_source_mappings",
    "free_port",
    "log_messages",
    "queue_counts",
    "sam_build",
    "sam_deploy",
    "sam_remote_invoke",
    "session",
    "stack_outputs",
    "stack_status",
    "wait_until",
]
