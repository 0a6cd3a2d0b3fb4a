"""The doctor's checks on what the stack's functions rely on: the API key's secret, the rules,
the tables and queues, the schedule and whether it ran, and who is told (the SNS topics)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cleemy_booker.fingerprint import SSM_PREFIX
from cleemy_booker.rules import RulesConfigError, load_rules
from cleemy_booker_tools.doctor_report import Check, blocking, ok, warning
from cleemy_booker_tools.doctor_stack import (
    AWS_ERRORS,
    Function,
    StackView,
    error_code,
    not_found,
    unavailable,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_secretsmanager.client import SecretsManagerClient
    from mypy_boto3_sqs.client import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeFilterType
    from mypy_boto3_ssm.client import SSMClient


def _short(error: BaseException) -> str:
    """An AWS error in a few words: its code, or its text when it has none."""
    return error_code(error) or str(error)


# --- the API key ------------------------------------------------------------------------------


class ApiKey:
    """The tenant's key, held where no repr, f-string or traceback of the doctor can show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "ApiKey(***)"

    __str__ = __repr__


def secret_check(
    secrets: SecretsManagerClient, name: str | None, region: str | None
) -> tuple[ApiKey | None, Check]:
    """The secret the functions read the key from, read the same way (its string value)."""
    if not name:
        return None, blocking(
            "API key secret", "the stack names no secret", "set LuccaApiKeySecretName"
        )
    where = f" in {region}" if region else ""
    try:
        value = secrets.get_secret_value(SecretId=name).get("SecretString")
    except AWS_ERRORS as error:
        return None, _secret_unreadable(name, where, region, error)
    if not isinstance(value, str) or not value.strip():
        return None, blocking(
            "API key secret",
            f"{name}{where} holds no key (empty, or binary only)",
            f"put the key as its string value: aws secretsmanager put-secret-value "
            f'--secret-id {name} --secret-string "$LUCCA_API_KEY"',
        )
    return ApiKey(value.strip()), ok(
        "API key secret", f"{name}{where}: readable, not empty (its value is never shown)"
    )


def _secret_unreadable(name: str, where: str, region: str | None, error: BaseException) -> Check:
    if not_found(error):
        flag = f" --region {region}" if region else ""
        return blocking(
            "API key secret",
            f"no secret {name}{where}: the functions cannot start",
            f"create it in the stack's region: aws secretsmanager create-secret --name {name} "
            f'--secret-string "$LUCCA_API_KEY"{flag}',
        )
    return blocking(
        "API key secret",
        f"{name}{where} cannot be read: {_short(error)}",
        "run doctor as an identity allowed secretsmanager:GetSecretValue on it (and kms:Decrypt "
        "on its key), as the functions are",
    )


# --- the rules --------------------------------------------------------------------------------


def rules_check(ssm: SSMClient, source: str) -> Check:
    """The rules parameter parsed by the package's own loader, as the functions load it."""
    if not source:
        return ok("rules", "none (RulesSource empty): documents are booked as they are")
    if not source.startswith(SSM_PREFIX):
        return warning(
            "rules",
            f"could not tell: {source} is a file inside the function's package",
            "use RulesSource=ssm:/NAME (the template's form) to have doctor check them",
        )
    name = source.removeprefix(SSM_PREFIX)
    try:
        rules = load_rules(source, fetch_parameter=lambda n: _parameter(ssm, n))
    except RulesConfigError as error:
        return blocking(
            "rules",
            f"refused: {error}",
            f"correct them (cleemy-booker plan --rules FILE checks a file), then put them in "
            f"{name}",
        )
    except AWS_ERRORS as error:
        if not not_found(error):
            raise
        return blocking(
            "rules",
            f"{source}: no such SSM parameter; every function fails at its first document",
            f"put it before the first run: aws ssm put-parameter --name {name} --type String "
            "--value file://config/rules.json",
        )
    names = ", ".join(rule.name for rule in rules.rules)
    return ok("rules", f"{source}: {len(rules.rules)} rule(s) parse{': ' + names if names else ''}")


def _parameter(ssm: SSMClient, name: str) -> str:
    # As the functions read it (Powertools' get_parameter): the plain value, no decryption.
    return str(ssm.get_parameter(Name=name)["Parameter"]["Value"])


# --- tables and queues ------------------------------------------------------------------------

#: (what it is, the output naming it, its logical id).
TABLES = (
    ("ledger", "LedgerTableName", "LedgerTable"),
    ("budget", "BudgetTableName", "BudgetTable"),
    ("idempotency", "IdempotencyTableName", "IdempotencyTable"),
)
QUEUES = (
    ("documents", "DocumentsQueueUrl", "DocumentsQueue"),
    ("dead-letter", "DeadLetterQueueUrl", "DeadLetterQueue"),
    ("scheduler dead-letter", "SchedulerDeadLetterQueueUrl", "SchedulerDeadLetterQueue"),
)
_DEPTHS: tuple[QueueAttributeFilterType, ...] = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)


def tables_check(dynamodb: DynamoDBClient, view: StackView) -> Check:
    found, problems = [], []
    for role, output_key, logical_id in TABLES:
        name = view.physical(output_key, logical_id)
        if name is None:
            problems.append(f"the stack names no {role} table")
            continue
        try:
            status = dynamodb.describe_table(TableName=name)["Table"].get("TableStatus", "?")
        except AWS_ERRORS as error:
            problems.append(f"{role} {name}: {_short(error)}")
            continue
        found.append(f"{role} {name} {status}")
    if problems:
        return blocking(
            "tables",
            "; ".join(problems),
            "deploy the stack again; with ExistingLedgerTable, name a table of this region",
        )
    return ok("tables", ", ".join(found))


def read_queues(sqs: SQSClient, view: StackView) -> dict[str, tuple[int, int, int] | str]:
    """Each queue's (visible, in flight, delayed), or why it could not be read."""
    depths: dict[str, tuple[int, int, int] | str] = {}
    for role, output_key, logical_id in QUEUES:
        url = view.physical(output_key, logical_id)
        if url is None:
            depths[role] = "the stack names no such queue"
            continue
        try:
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(_DEPTHS))
        except AWS_ERRORS as error:
            depths[role] = _short(error)
            continue
        counts = {str(k): v for k, v in attributes.get("Attributes", {}).items()}
        visible, hidden, delayed = (int(counts.get(name) or 0) for name in _DEPTHS)
        depths[role] = (visible, hidden, delayed)
    return depths


def queue_checks(depths: Mapping[str, tuple[int, int, int] | str]) -> list[Check]:
    return [
        _queues_reachable(depths),
        _dead_letters(depths.get("dead-letter")),
        _dead_letters(depths.get("scheduler dead-letter"), _SCHEDULER_DLQ),
    ]


def _queues_reachable(depths: Mapping[str, tuple[int, int, int] | str]) -> Check:
    problems = [f"{role}: {d}" for role, d in depths.items() if isinstance(d, str)]
    if problems:
        return blocking(
            "queues", "; ".join(problems), "deploy the stack again (the functions need all three)"
        )
    documents = depths.get("documents")
    detail = ""
    if isinstance(documents, tuple):
        detail = f"; documents: {documents[0]} waiting, {documents[1]} in flight, "
        detail += f"{documents[2]} deferred"
    return ok("queues", f"{', '.join(depths)} reachable{detail}")


@dataclass(frozen=True)
class _DeadLetterQueue:
    """How the doctor speaks of one dead-letter queue: its row, what a message in it is, what a
    person does about it, and what an empty one means."""

    check: str
    waiting: str
    fix: str
    empty: str


_DLQ = _DeadLetterQueue(
    "dead letters",
    "document(s) failed for good and wait in the DLQ",
    "read each failureReason (cleemy-booker replay --stack STACK), fix the cause, then "
    "replay them (--yes)",
    "the DLQ is empty",
)
_SCHEDULER_DLQ = _DeadLetterQueue(
    "scheduler dead letters",
    "scheduled run(s) could not be started",
    "read the messages in the scheduler's DLQ: the schedule's role or the function's state is why",
    "empty: every scheduled run was delivered",
)


def _dead_letters(
    depth: tuple[int, int, int] | str | None, queue: _DeadLetterQueue = _DLQ
) -> Check:
    if not isinstance(depth, tuple):
        return warning(queue.check, "could not count them (see queues)", "see queues")
    waiting = sum(depth)
    if waiting:
        return warning(queue.check, f"{waiting} {queue.waiting}", queue.fix)
    return ok(queue.check, queue.empty)


# --- the schedule, and whether it ran ---------------------------------------------------------

SCHEDULE_TYPE = "AWS::Scheduler::Schedule"
_RATE = re.compile(r"rate\(\s*(\d+)\s+(minute|hour|day)s?\s*\)")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
#: How far back a run is looked for when the schedule is not a rate (a cron): an hour.
DEFAULT_LOOK_BACK = 3600.0


def schedule_check(scheduler: Any, view: StackView) -> tuple[Check, str | None]:
    """The poller's schedule (the digest's too) and its state; the poller's expression."""
    poller = view.of_type(SCHEDULE_TYPE, "InboxPollerFunction")
    if not poller:
        return warning(
            "schedule",
            "could not tell: the stack lists no schedule for the poller",
            "look at the stack's resources (an emulator may not list them)",
        ), None
    polls = _schedule(scheduler, poller[0].physical_id)
    digests = [_schedule(scheduler, r.physical_id) for r in view.of_type(SCHEDULE_TYPE, "Morning")]
    found = f"poller {polls.get('State')} {polls.get('ScheduleExpression')}"
    found += "".join(f"; digest {d.get('State')} {d.get('ScheduleExpression')}" for d in digests)
    expression = str(polls.get("ScheduleExpression") or "") or None
    if polls.get("State") != "ENABLED":
        return blocking(
            "schedule",
            f"{found}: nothing lists the inbox",
            "enable the poller's schedule (EventBridge Scheduler console, or deploy the stack "
            "again)",
        ), expression
    if any(d.get("State") != "ENABLED" for d in digests):
        return warning(
            "schedule", f"{found}: no morning digest", "enable the digest's schedule"
        ), expression
    return ok("schedule", found), expression


def _schedule(scheduler: Any, physical_id: str) -> dict[str, Any]:
    """A schedule by its physical id: its name, or an ARN ``...:schedule/GROUP/NAME``."""
    if physical_id.startswith("arn:"):
        group, _, name = physical_id.partition(":schedule/")[2].partition("/")
        return dict(scheduler.get_schedule(Name=name, GroupName=group))
    return dict(scheduler.get_schedule(Name=physical_id))


def look_back(expression: str | None) -> float:
    """How far back a run must be: two periods of the schedule and two minutes for Lambda's
    metrics and logs to arrive, at least ten minutes; an hour for a cron."""
    match = _RATE.fullmatch((expression or "").strip())
    if match is None:
        return DEFAULT_LOOK_BACK
    period = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    return max(600.0, 2 * period + 120.0)


def last_poll_check(
    cloudwatch: Any, logs: Any, poller: Function | None, view: StackView, since: float, now: float
) -> Check:
    """Did the poller run since ``since``? CloudWatch's Invocations first (what AWS measures),
    then its log group (what an emulator without Lambda metrics still has)."""
    if poller is None or poller.name is None:
        return warning("last poll", "could not tell: no poller function", "see functions")
    minutes = f"{(now - since) / 60:.0f} min"
    notes: list[str] = []
    name, group = str(poller.name), poller.log_group(view)
    lookups: list[tuple[str, Callable[[], datetime | None]]] = [
        ("CloudWatch Invocations", lambda: _invoked_at(cloudwatch, name, since, now)),
        ("its log group", lambda: _logged_at(logs, group, since)),
    ]
    for source, look in lookups:
        try:
            when = look()
        except AWS_ERRORS as error:
            notes.append(f"{source}: {'not offered here' if unavailable(error) else _short(error)}")
            continue
        if when is not None:
            return ok("last poll", f"ran at {_utc(when)} ({source}), within the last {minutes}")
        notes.append(f"{source}: nothing")
    return _no_poll_seen(minutes, notes)


def _no_poll_seen(minutes: str, notes: list[str]) -> Check:
    looked = "; ".join(notes)
    if all(not note.endswith("nothing") for note in notes):
        return warning(
            "last poll",
            f"could not tell ({looked})",
            "look at the poller's log group or its Invocations metric by hand",
        )
    return warning(
        "last poll",
        f"no run of the poller seen in the last {minutes} ({looked})",
        "check the schedule and the scheduler's DLQ above; a stack deployed minutes ago may "
        "not have run yet",
    )


def _invoked_at(cloudwatch: Any, function: str, since: float, now: float) -> datetime | None:
    points = cloudwatch.get_metric_statistics(
        Namespace="AWS/Lambda",
        MetricName="Invocations",
        Dimensions=[{"Name": "FunctionName", "Value": function}],
        StartTime=datetime.fromtimestamp(since, UTC),
        # A minute past now: the current minute's datapoint is included whatever its stamp.
        EndTime=datetime.fromtimestamp(now + 60, UTC),
        Period=60,
        Statistics=["Sum"],
    ).get("Datapoints", [])
    stamps = [point["Timestamp"] for point in points if point.get("Sum", 0) > 0]
    return max(stamps) if stamps else None


def _logged_at(logs: Any, group: str | None, since: float) -> datetime | None:
    """The first line the poller logged since ``since`` (any line is a run); None when it
    logged nothing, or has no log group yet (it never ran)."""
    if group is None:
        return None
    try:
        events = logs.filter_log_events(
            logGroupName=group, startTime=int(since * 1000), limit=1
        ).get("events", [])
    except AWS_ERRORS as error:
        if not_found(error):
            return None
        raise
    return datetime.fromtimestamp(events[0]["timestamp"] / 1000, UTC) if events else None


def _utc(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


# --- who is told ------------------------------------------------------------------------------

#: (check, the output naming the topic, its logical id, the parameter subscribing an address,
#: what the topic carries).
TOPICS = (
    ("alarm subscriptions", "AlarmTopicArn", "AlarmTopic", "AlarmEmail", "the alarms"),
    ("digest subscriptions", "DigestTopicArn", "DigestTopic", "DigestEmail", "the morning digest"),
)
#: What SNS lists instead of an ARN for a subscription nobody confirmed.
PENDING = "PendingConfirmation"


def subscriptions_check(
    sns: Any,
    view: StackView,
    check: str,
    output_key: str,
    logical_id: str,
    parameter: str,
    what: str,
) -> Check:
    topic = view.physical(output_key, logical_id)
    if topic is None:
        # A stack deployed without alarms (Monitoring=none) has no alarm topic, on purpose.
        monitoring = view.parameters.get("Monitoring")
        return warning(
            check,
            f"the stack has no topic for {what}"
            + (f" (Monitoring={monitoring})" if monitoring else "")
            + f": {what} reach no one",
            f"deploy with {parameter}=ADDRESS (and monitoring on) if someone must be told",
        )
    subscriptions = _subscriptions(sns, topic)
    if not subscriptions:
        return warning(
            check,
            f"nobody subscribes: {what} reach no one",
            f"deploy with {parameter}=ADDRESS and confirm AWS's mail, or subscribe someone to "
            f"{topic}",
        )
    pending = [s for s in subscriptions if _pending(sns, s)]
    if pending:
        return blocking(
            check,
            f"{len(pending)} of {len(subscriptions)} {PENDING} ({_endpoints(pending)}): "
            f"nobody will be told of {what} through them",
            f"click the link in AWS's 'Subscription Confirmation' mail; to have it sent again: "
            f"aws sns subscribe --topic-arn {topic} --protocol email --notification-endpoint "
            "ADDRESS",
        )
    return ok(check, f"{len(subscriptions)} confirmed: {_endpoints(subscriptions)}")


def _subscriptions(sns: Any, topic: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page = sns.list_subscriptions_by_topic(
            TopicArn=topic, **({"NextToken": token} if token else {})
        )
        found += page.get("Subscriptions", [])
        token = page.get("NextToken")
        if not token:
            return found


def _pending(sns: Any, subscription: Mapping[str, Any]) -> bool:
    """AWS lists an unconfirmed subscription as ``PendingConfirmation`` instead of an ARN; an
    emulator may list its ARN and say so only in its attributes."""
    arn = str(subscription.get("SubscriptionArn", ""))
    if arn == PENDING:
        return True
    try:
        attributes = sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]
    except AWS_ERRORS:
        return False  # listed with an ARN: confirmed, as far as SNS says
    return str(attributes.get(PENDING, "false")).lower() == "true"


def _endpoints(subscriptions: list[dict[str, Any]]) -> str:
    return ", ".join(_endpoint(s) for s in subscriptions)


def _endpoint(subscription: Mapping[str, Any]) -> str:
    """How a subscriber reads in the report: a webhook's path and query may hold its token,
    and a phone number is a person's; neither is shown in full."""
    protocol, endpoint = str(subscription.get("Protocol")), str(subscription.get("Endpoint"))
    if protocol in ("http", "https"):
        endpoint = f"{protocol}://{urlsplit(endpoint).hostname}/…"
    elif protocol == "sms":
        endpoint = "…" + endpoint[-4:]
    return f"{protocol} {endpoint}"
