"""Both functions' wiring under its former name, for code that drives both (tests among them).

Each handler imports its own module of ``cleemy_booker.wiring`` instead: importing this one
imports every function's wiring, which a cold start should not pay for.
"""

from __future__ import annotations

from .wiring.aws import AWS_CONFIG, AwsClients
from .wiring.poller import POLLER_LEASE, PollerRuntime
from .wiring.processor import (
    IN_PROGRESS_DELAY,
    MAX_SQS_DELAY,
    ProcessorRuntime,
    load_processor_rules,
)
from .wiring.shared import (
    ApiKey,
    Seams,
    ThrottleMetric,
    api_key_source,
    build_client,
    deadline_from,
    decision_config,
    read_api_key,
)

__all__ = [
    "AWS_CONFIG",
    "IN_PROGRESS_DELAY",
    "MAX_SQS_DELAY",
    "POLLER_LEASE",
    "ApiKey",
    "AwsClients",
    "PollerRuntime",
    "ProcessorRuntime",
    "Seams",
    "ThrottleMetric",
    "api_key_source",
    "build_client",
    "deadline_from",
    "decision_config",
    "load_processor_rules",
    "read_api_key",
]
