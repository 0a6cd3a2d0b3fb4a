"""boto3 sessions, clients and subprocess environments pointed at the emulator."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

DEFAULT_REGION = "eu-west-1"
# Dummy credentials: ministack accepts any (AUTH is off by default); the account is 000000000000.
ACCESS_KEY_ID = "test"
SECRET_ACCESS_KEY = "test"  # noqa: S105 - not a secret, the emulator's dummy credential


def aws_env(endpoint: str, region: str = DEFAULT_REGION) -> dict[str, str]:
    """Environment variables that point an AWS SDK or CLI (``sam``, ``aws``) at ``endpoint``."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def session(region: str = DEFAULT_REGION) -> boto3.Session:
    """A boto3 session with the emulator's dummy credentials (never the caller's profile)."""
    return boto3.Session(
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
        region_name=region,
    )


def client(service: str, endpoint: str, region: str = DEFAULT_REGION, **kwargs: Any) -> Any:
    """A boto3 client for ``service`` pointed at ``endpoint`` (e.g. ``http://127.0.0.1:4566``).

    Typed as ``Any`` so any service works; annotate at the call site with the
    ``mypy_boto3_*`` client type when you want checking.
    """
    config = kwargs.pop("config", None) or Config(
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=5,
        read_timeout=120,  # a Lambda invoke blocks until the function returns
    )
    sess: Any = session(region)  # Any: boto3's overloads want a literal service name
    return sess.client(service, endpoint_url=endpoint, config=config, **kwargs)
