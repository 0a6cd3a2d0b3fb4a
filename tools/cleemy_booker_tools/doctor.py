"""Is a deployed stack, and its Lucca tenant, ready? For before going live, and whenever
something looks wrong.

    cleemy-booker doctor --stack cleemy-booker
    cleemy-booker doctor --stack cleemy-booker --json
    cleemy-booker doctor --stack cleemy-booker-local --endpoint-url http://127.0.0.1:4566

Prints a table of checks, each OK, a warning or blocking, with the fix in one sentence:

- the stack: its status, DryRun, the functions (state, architecture) and whether the layer is
  built for their architecture, the poller's configuration as its cold start validates it, the
  rules as the package loads them, the API key's secret (exists in the stack's region, can be
  read), the tables and queues (reachable; dead letters waiting), the schedule (enabled; has
  the poller run lately), the alarm and digest topics (subscribers, confirmed or not);
- the tenant, in at most ``doctor_lucca.MAX_REQUESTS`` requests taken from the stack's own
  request budget (so they count against the tenant's 50 a minute like the functions'): the key
  (401, 403), the count on page 1, the page's shape, fields and values this version does not
  know, the inbox's size and what listing it costs, and which single-document read answers.

Reads only. The one write is the budget's: each Lucca request takes a slot in the stack's
budget table, as every function's request does. The API key is never printed.

Exit code: 0 when nothing blocks (warnings allowed), 1 when something does, 2 for bad usage.
Needs ``cloudformation:DescribeStacks``/``DescribeStackResources``, ``lambda:GetFunction``/
``GetLayerVersion``, ``secretsmanager:GetSecretValue``, ``ssm:GetParameter`` (rules in SSM),
``dynamodb:DescribeTable`` and ``GetItem``/``UpdateItem`` on the budget table,
``sqs:GetQueueAttributes``, ``scheduler:GetSchedule``, ``cloudwatch:GetMetricStatistics``,
``logs:FilterLogEvents``, ``sns:ListSubscriptionsByTopic``/``GetSubscriptionAttributes``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

import boto3
import httpx
from botocore.config import Config

from cleemy_booker.config import PollerSettings
from cleemy_booker.wiring.aws import AwsClients
from cleemy_booker_tools.doctor_lucca import MAX_REQUESTS, Tenant, examine_tenant
from cleemy_booker_tools.doctor_report import (
    Check,
    LuccaSpend,
    Report,
    blocking,
    warning,
)
from cleemy_booker_tools.doctor_resources import (
    TOPICS,
    ApiKey,
    last_poll_check,
    look_back,
    queue_checks,
    read_queues,
    rules_check,
    schedule_check,
    secret_check,
    subscriptions_check,
    tables_check,
)
from cleemy_booker_tools.doctor_stack import (
    AWS_ERRORS,
    POLLER,
    Function,
    StackMissing,
    StackView,
    dry_run_check,
    functions_check,
    layers_check,
    read_functions,
    read_stack,
    settings_check,
    stack_check,
    unavailable,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_secretsmanager.client import SecretsManagerClient
    from mypy_boto3_sqs.client import SQSClient
    from mypy_boto3_ssm.client import SSMClient

EXIT_GO, EXIT_NO_GO = 0, 1


@dataclass(frozen=True)
class DoctorClients:
    """The AWS clients the doctor reads with (typed where the project has stubs)."""

    cloudformation: Any
    lambda_: Any
    secretsmanager: SecretsManagerClient
    ssm: SSMClient
    dynamodb: DynamoDBClient
    sqs: SQSClient
    scheduler: Any
    cloudwatch: Any
    logs: Any
    sns: Any

    @classmethod
    def using(cls, make: Callable[[str], Any]) -> DoctorClients:
        """Each client from ``make(service)``: a session's, an emulator's, moto's."""
        return cls(
            cloudformation=make("cloudformation"),
            lambda_=make("lambda"),
            secretsmanager=make("secretsmanager"),
            ssm=make("ssm"),
            dynamodb=make("dynamodb"),
            sqs=make("sqs"),
            scheduler=make("scheduler"),
            cloudwatch=make("cloudwatch"),
            logs=make("logs"),
            sns=make("sns"),
        )


def examine(
    stack: str,
    clients: DoctorClients,
    *,
    now: Callable[[], float] = time.time,
    http: httpx.Client | None = None,
) -> Report:
    """Every check of the stack, then of its tenant when the stack gives what that needs."""
    try:
        view = read_stack(clients.cloudformation, stack)
    except (StackMissing, *AWS_ERRORS) as error:
        return Report(stack, None, (_no_stack(stack, error),), LuccaSpend(most=MAX_REQUESTS))
    checks, tenant = examine_stack(view, clients, now())
    if tenant is None:
        lucca: list[Check] = [
            warning(
                "Lucca tenant",
                "not checked: it needs the poller's configuration and the key (see above)",
                "fix what blocks above, then run doctor again",
            )
        ]
        spend = LuccaSpend(most=MAX_REQUESTS)
    else:
        aws = AwsClients(dynamodb=clients.dynamodb, sqs=clients.sqs)
        lucca, spend = examine_tenant(tenant, aws, http=http)
    return Report(view.name, view.region, (*checks, *lucca), spend)


def _no_stack(stack: str, error: BaseException) -> Check:
    return blocking(
        "stack",
        f"cannot read stack {stack}: {error}",
        "check --stack, --region and the credentials (aws cloudformation describe-stacks)",
    )


def examine_stack(
    view: StackView, clients: DoctorClients, now: float
) -> tuple[list[Check], Tenant | None]:
    functions = read_functions(clients.lambda_, view)
    poller = next((f for f in functions if f.role == POLLER), None)
    settings, configuration = settings_check(poller)
    checks = [stack_check(view), dry_run_check(view, poller), functions_check(functions)]
    checks.append(guarded("layer architecture", lambda: layers_check(clients.lambda_, functions)))
    checks.append(configuration)
    source = settings.rules_source if settings else view.parameters.get("RulesSource", "")
    checks.append(guarded("rules", lambda: rules_check(clients.ssm, source)))
    secret_name = _secret_name(view, poller, settings)
    key, secret = secret_check(clients.secretsmanager, secret_name, view.region)
    checks.append(secret)
    checks.append(guarded("tables", lambda: tables_check(clients.dynamodb, view)))
    checks += queue_checks(read_queues(clients.sqs, view))
    checks += _schedule_checks(view, clients, poller, now)
    checks += [_topic_check(clients, view, *topic) for topic in TOPICS]
    return checks, _tenant(settings, key, secret_name)


def _topic_check(
    clients: DoctorClients,
    view: StackView,
    name: str,
    output_key: str,
    logical_id: str,
    parameter: str,
    what: str,
) -> Check:
    return guarded(
        name,
        lambda: subscriptions_check(
            clients.sns, view, name, output_key, logical_id, parameter, what
        ),
    )


def _secret_name(
    view: StackView, poller: Function | None, settings: PollerSettings | None
) -> str | None:
    """The secret as the poller reads it; the stack's parameter when its settings are broken."""
    if settings is not None:
        return settings.api_key_secret
    named = poller.environment.get("LUCCA_API_KEY_SECRET") if poller else None
    return named or view.parameters.get("LuccaApiKeySecretName")


def _tenant(
    settings: PollerSettings | None, key: ApiKey | None, secret_name: str | None
) -> Tenant | None:
    if settings is None or key is None or secret_name is None:
        return None
    return Tenant(settings, key, secret_name)


def _schedule_checks(
    view: StackView, clients: DoctorClients, poller: Function | None, now: float
) -> list[Check]:
    expression: str | None = None
    try:
        schedule, expression = schedule_check(clients.scheduler, view)
    except AWS_ERRORS as error:
        schedule = _aws_trouble("schedule", error)
    since = now - look_back(expression)
    last = guarded(
        "last poll",
        lambda: last_poll_check(clients.cloudwatch, clients.logs, poller, view, since, now),
    )
    return [schedule, last]


def guarded(name: str, produce: Callable[[], Check]) -> Check:
    """A check whose AWS calls may fail unexpectedly: the failure is reported, not raised."""
    try:
        return produce()
    except AWS_ERRORS as error:
        return _aws_trouble(name, error)


def _aws_trouble(name: str, error: BaseException) -> Check:
    if unavailable(error):
        return warning(
            name,
            f"could not tell: this AWS does not offer the call ({error})",
            "check it by hand (an emulator lacks the call; AWS has it)",
        )
    return blocking(
        name,
        f"could not read: {error}",
        "run doctor as an identity with the read permissions its --help lists",
    )


# --- command line -----------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cleemy-booker doctor",
        description="Check a deployed stack and its Lucca tenant (reads only): a table of "
        "checks, each OK, a warning or blocking with its fix. Exit 0 when nothing blocks.",
    )
    parser.add_argument("--stack", required=True, help="the stack's name")
    parser.add_argument("--region", help="AWS region (default: the profile's)")
    parser.add_argument("--endpoint-url", help="a local AWS emulator, e.g. http://127.0.0.1:4566")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


#: Short timeouts and botocore's own retries: the doctor waits on no call for long.
AWS_CONFIG = Config(
    retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=20
)


def _aws_clients(args: argparse.Namespace) -> DoctorClients:
    session: Any = boto3.Session(region_name=args.region)  # Any: services named at run time
    return DoctorClients.using(
        lambda service: session.client(service, endpoint_url=args.endpoint_url, config=AWS_CONFIG)
    )


def main(
    argv: Sequence[str] | None = None,
    *,
    clients: Callable[[argparse.Namespace], DoctorClients] = _aws_clients,
    out: TextIO | None = None,
    http: httpx.Client | None = None,
) -> int:
    """0: nothing blocks; 1: something does (or AWS could not be reached at all)."""
    out = out or sys.stdout
    args = _parser().parse_args(argv)
    try:
        report = examine(args.stack, clients(args), http=http)
    except AWS_ERRORS as error:  # e.g. no region: no client could be made
        print(f"doctor: {error}", file=sys.stderr)
        return EXIT_NO_GO
    print(report.render_json() if args.json else report.render_table(), file=out)
    return EXIT_GO if report.go else EXIT_NO_GO


if __name__ == "__main__":
    sys.exit(main())
