"""What the ledger and the request budget both read of a DynamoDB error."""

from __future__ import annotations

from botocore.exceptions import ClientError


def conditional_check_failed(exc: ClientError) -> bool:
    """The write's ``ConditionExpression`` refused it: an answer, not a failure."""
    return str(exc.response.get("Error", {}).get("Code")) == "ConditionalCheckFailedException"
