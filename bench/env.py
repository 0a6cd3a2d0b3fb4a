"""Process environment for the benchmark: set before boto3 or Powertools is imported.

Same spirit as ``tests/conftest.py``: no real AWS (moto), no X-Ray, and Powertools kept quiet
so a thousand documents do not print a thousand log lines and EMF blobs.
"""

from __future__ import annotations

import os

BENCH_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "eu-west-1",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_SERVICE_NAME": "cleemy-booker-bench",
    "POWERTOOLS_METRICS_NAMESPACE": "CleemyBookerBench",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_DEV": "false",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}


def configure() -> None:
    os.environ.update(BENCH_ENV)
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        os.environ.pop(name, None)
