"""The morning digest: what needs a person, what was done, and the pipeline's health, as plain
text an accountant reads in a mail client.

``gather`` reads what the digest tells from the ledger (DynamoDB only: no Lucca request);
``compose`` turns it into the message, a pure function of plain data (tested without AWS);
``mark_published`` records that the digest went out, so the next one tells what happened since.
The scheduled function does, in this order::

    data = gather(ledger, now=time.time())
    digest = compose(data, Health(...), stack=STACK_NAME, zone=ZoneInfo(TIME_ZONE))
    if digest is not None:
        sns.publish(TopicArn=TOPIC, Subject=digest.subject, Message=digest.text)
    mark_published(ledger, data)

``gathering`` is the ledger's side, ``composing`` the message and ``sections`` its parts,
``words`` how amounts, durations and times are written (and why amounts read ``1,234.50 EUR``).
"""

from __future__ import annotations

from .composing import LIST_LIMIT, MAX_BYTES, SUBJECT_MAX, compose
from .data import BookedDocument, Digest, DigestData, Health
from .gathering import (
    DIGEST_NAME,
    FIRST_WINDOW_SECONDS,
    MAX_TRAILS,
    SETTLE_SECONDS,
    gather,
    mark_published,
)
from .sections import (
    DISCREPANCY_TITLES,
    MAX_GROUPS,
    QUEUE_ALERT_SECONDS,
    REASON_TEXT_MAX,
    REASON_TITLES,
    reason_title,
)
from .words import duration, money

__all__ = [
    "DIGEST_NAME",
    "DISCREPANCY_TITLES",
    "FIRST_WINDOW_SECONDS",
    "LIST_LIMIT",
    "MAX_BYTES",
    "MAX_GROUPS",
    "MAX_TRAILS",
    "QUEUE_ALERT_SECONDS",
    "REASON_TEXT_MAX",
    "REASON_TITLES",
    "SETTLE_SECONDS",
    "SUBJECT_MAX",
    "BookedDocument",
    "Digest",
    "DigestData",
    "Health",
    "compose",
    "duration",
    "gather",
    "mark_published",
    "money",
    "reason_title",
]
