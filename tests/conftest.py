"""Shared fixtures: no network but loopback, AWS through moto, Lucca through the simulator."""

from __future__ import annotations

import os

# Before anything imports boto3 or Powertools: no real AWS, no X-Ray, quiet metrics.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "cleemy-booker-tests",
        "POWERTOOLS_METRICS_NAMESPACE": "CleemyBookerTests",
        "POWERTOOLS_DEV": "false",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
)
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_PROFILE", None)
