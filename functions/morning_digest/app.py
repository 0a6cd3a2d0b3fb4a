"""Scheduled each morning: tell a person what awaits them and what was booked (SNS)."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from cleemy_booker.config import DigestSettings
from cleemy_booker.observability import logger, tracer
from cleemy_booker.wiring.digest import DigestClients, DigestRuntime


@cache
def runtime() -> DigestRuntime:
    """Built once per cold start: configuration errors surface here, clearly, on first use."""
    return DigestRuntime(DigestSettings.from_env(), DigestClients.create())


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # {"allClear": true} by hand: send a message even on a day with nothing to say.
    all_clear = event.get("allClear") if isinstance(event, dict) else None
    return runtime().run(all_clear=bool(all_clear) if all_clear is not None else None)
