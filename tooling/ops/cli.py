"""pleo-scope-ops: see where export jobs stand, find the stuck ones, re-send their trigger, and
verify what they published. On a deployed stack (`--stack NAME`) or on the local stack
(`--endpoint-url` and explicit names, or the function's own environment variables)."""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from typing import Any, NoReturn

import click
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
)
from tabulate import tabulate
from tqdm import tqdm

from pleo_scope.aws.kms import KmsTokenCipher
from pleo_scope.aws.tenants import DynamoTenantRegistry
from pleo_scope.errors import InvalidEvent, InvalidTenantRecord, ScopeError
from pleo_scope.events import parse_event
from pleo_scope.tenants import TenantCredential, normalise_company_id
from pleo_scope.tenants_access import DEFAULT_SECRET_PREFIX
from tooling.ops import retrigger as triggers
from tooling.ops.jobs import JobNotKnown, Jobs, JobStatus
from tooling.ops.resources import (
    LOCAL_STACK_HINT,
    Aws,
    MissingResource,
    Resources,
    StackNotFound,
    resolve,
    stack_outputs,
)
from tooling.ops.tenants import TenantAdmin, TenantCommandError, TenantView
from tooling.ops.verify import Verifier

EXIT_STUCK = 3
EXIT_FAILED = 4
EPILOG = """\b
Exit status: 0 done; 1 an error (for retrigger --wait: the function's typed error, or an
answer that is not the function's), or (verify) a difference; 2 a usage error; 3 (status)
the job is stuck; 4 (status) the job failed on a final error.
\b
Resources: with --stack, from the stack's CloudFormation outputs; options (before or after
the subcommand) and environment variables (the function's own: SCOPE_TABLE_NAME,
SCOPE_BUCKET_NAME, STATE_MACHINE_ARN; and SCOPE_JOB_FUNCTION_NAME, EVENT_BUS_NAME,
EVENT_SOURCE) name them explicitly and win.
\b
The local stack (`make local-stack`) writes them all, with its endpoint, region and dummy
credentials, to out/ops.env: set -a; . out/ops.env; set +a
"""


@dataclass
class Ops:
    aws: Aws
    resources: Resources

    def jobs(self) -> Jobs:
        return Jobs(
            self.aws.client("dynamodb"),
            self.aws.client("s3"),
            self.aws.client("stepfunctions") if self.resources.state_machine_arn else None,
            self.resources.need("scope_table"),
            self.resources.bucket,
            self.resources.state_machine_arn,
        )

    def tenants(self, secret_prefix: str = DEFAULT_SECRET_PREFIX) -> TenantAdmin:
        key = self.resources.tenant_key_arn
        return TenantAdmin(
            DynamoTenantRegistry(self.aws.client("dynamodb"), self.resources.need("tenant_table")),
            secret_prefix,
            KmsTokenCipher(self.aws.client("kms"), key) if key else None,
        )


class JobIdType(click.ParamType[str]):
    """A job id as the function accepts it (a UUID in any case), used in lower case."""

    name = "JOB"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            return parse_event({"jobId": str(value)}).job_id.lower()
        except InvalidEvent:
            self.fail(f"{value!r} is not an export job id (a UUID)", param, ctx)


JOB = JobIdType()


class CompanyIdType(click.ParamType[str]):
    """A company id (a UUID in any case), used in lower case."""

    name = "COMPANY"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            return normalise_company_id(str(value))
        except InvalidTenantRecord:
            self.fail(f"{value!r} is not a company id (a UUID)", param, ctx)


COMPANY = CompanyIdType()


def json_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--json", "as_json", is_flag=True, help="Print JSON for programs instead of a table."
    )(command)


def _resource_options(command: Callable[..., Any], *, from_env: bool) -> Callable[..., Any]:
    """The options that say where the stack is. On the group they also read the environment
    (the names `out/ops.env` and the function's own variables use); on each command they are
    accepted too (after the subcommand), and win over the group's."""

    def env(name: str) -> str | None:
        return name if from_env else None

    options = [
        click.option(
            "--stack", metavar="NAME", envvar=env("PLEO_SCOPE_STACK"), help="A deployed stack."
        ),
        click.option(
            "--endpoint-url",
            metavar="URL",
            help="Send every AWS call there (the local stack); boto3's AWS_ENDPOINT_URL also"
            " works.",
        ),
        click.option("--region", help="AWS region (default: boto3's)."),
        click.option("--profile", help="AWS profile (default: boto3's)."),
        click.option("--table", envvar=env("SCOPE_TABLE_NAME"), help="The scope table."),
        click.option("--bucket", envvar=env("SCOPE_BUCKET_NAME"), help="The scope bucket."),
        click.option(
            "--state-machine-arn", envvar=env("STATE_MACHINE_ARN"), help="The scope-job loop."
        ),
        click.option(
            "--function",
            "function_name",
            envvar=env("SCOPE_JOB_FUNCTION_NAME"),
            help="The ScopeJob function.",
        ),
        click.option(
            "--event-bus", envvar=env("EVENT_BUS_NAME"), help="The bus the trigger rule is on."
        ),
        click.option(
            "--event-source",
            envvar=env("EVENT_SOURCE"),
            help="The source the trigger rule matches.",
        ),
        click.option(
            "--tenant-table", envvar=env("TENANT_TABLE_NAME"), help="The tenant registry."
        ),
        click.option(
            "--tenant-key",
            "tenant_key_arn",
            envvar=env("TENANT_KEY_ARN"),
            help="The tenant registry's KMS key (ARN): seals an OAuth grant.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@dataclass(frozen=True)
class Given:
    """What the operator named, by option or environment variable."""

    stack: str | None = None
    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    table: str | None = None
    bucket: str | None = None
    state_machine_arn: str | None = None
    function_name: str | None = None
    event_bus: str | None = None
    event_source: str | None = None
    tenant_table: str | None = None
    tenant_key_arn: str | None = None

    def overridden(self, values: dict[str, Any]) -> Given:
        return replace(self, **{k: v for k, v in values.items() if v is not None})

    def open(self) -> Ops:
        aws = Aws(self.endpoint_url, self.region, self.profile)
        explicit = Resources(
            self.table,
            self.bucket,
            self.state_machine_arn,
            self.function_name,
            self.event_bus,
            self.event_source,
            self.tenant_table,
            self.tenant_key_arn,
        )
        with _errors(aws):
            resources = resolve(
                explicit, self.stack, lambda name: stack_outputs(aws.client("cloudformation"), name)
            )
        return Ops(aws, resources)


GIVEN_NAMES = tuple(f.name for f in fields(Given))


def operates(command: Callable[..., Any]) -> Callable[..., Any]:
    """A subcommand that takes the stack's options too and gets `Ops` as its first argument."""

    @functools.wraps(command)
    def run(**values: Any) -> Any:
        mine = {name: values.pop(name) for name in GIVEN_NAMES}
        given = click.get_current_context().find_object(Given) or Given()
        return command(given.overridden(mine).open(), **values)

    return _resource_options(run, from_env=False)


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=EPILOG,
)
@functools.partial(_resource_options, from_env=True)
@click.pass_context
def main(ctx: click.Context, /, **values: Any) -> None:
    """Operate pleo-export-scope: status, list, retrigger and verify export jobs; manage
    the tenant registry (`tenant --help`).

    The one recovery for a stuck job is re-sending its trigger: `retrigger JOB`. A failed job
    ended on a final error: `status JOB` says what fixes it (a re-send alone does not).
    On the local stack (`make local-stack`), first: set -a; . out/ops.env; set +a
    """
    ctx.obj = Given(**values)


# -- status ---------------------------------------------------------------------------------


@main.command()
@click.argument("job", type=JOB)
@json_option
@click.option("--watch", is_flag=True, help="Follow the job with a progress bar until it ends.")
@click.option(
    "--interval", default=2.0, show_default=True, metavar="SECONDS", help="Between two looks."
)
@operates
def status(ops: Ops, job: str, as_json: bool, watch: bool, interval: float) -> None:
    """Where JOB stands: phase, run, progress, lease, owning execution, scope location, and
    what to do next when it is stuck or failed.

    State: published (done), running (an invocation holds the lease, or its execution runs),
    failed (the run ended on a final error: its name, cause, Pleo's job status and what fixes
    it are shown), or stuck (none of these: re-send the trigger). Exit status 3 when stuck,
    4 when failed.
    """
    with _errors(ops.aws):
        jobs = ops.jobs()
        current = jobs.status(job)
        if watch:
            current = _watch(jobs, current, interval, as_json)
        if as_json:
            if not watch:
                click.echo(json.dumps(current.as_json(), indent=2))
        else:
            click.echo(render_status(current))
    if current.verdict == "stuck":
        sys.exit(EXIT_STUCK)
    if current.verdict == "failed":
        sys.exit(EXIT_FAILED)


def _watch(jobs: Jobs, current: JobStatus, interval: float, as_json: bool) -> JobStatus:
    """Poll until the job is no longer running; one JSON line per look with --json."""
    progress = None if as_json else _Progress()
    try:
        while True:
            if as_json:
                click.echo(json.dumps(current.as_json()))
            else:
                assert progress is not None
                progress.show(current)
            if current.verdict != "running":
                return current
            time.sleep(interval)
            current = jobs.status(current.job_id)
    finally:
        if progress is not None:
            progress.close()


class _Progress:
    """One tqdm bar per phase: pages while walking (their number is known only at the end),
    then items (or units) published out of the scope's."""

    def __init__(self) -> None:
        self._bar: tqdm[Any] | None = None
        self._phase: str | None = None

    def show(self, status: JobStatus) -> None:
        if status.phase != self._phase:
            self.close()
            self._phase = status.phase
            self._bar = self._new_bar(status)
        assert self._bar is not None
        self._bar.n = self._done(status)
        self._bar.set_postfix_str(status.verdict, refresh=False)
        self._bar.refresh()

    @staticmethod
    def _new_bar(status: JobStatus) -> tqdm[Any]:
        if status.phase == "walking":
            return tqdm(desc="walking", unit=" pages", file=sys.stderr)
        if status.unit_count is not None:
            return tqdm(desc="publishing", unit=" units", total=status.unit_count, file=sys.stderr)
        total = status.items_in_scope
        return tqdm(desc=status.phase, unit=" items", total=total, file=sys.stderr)

    @staticmethod
    def _done(status: JobStatus) -> int:
        if status.phase == "walking":
            return status.pages_fetched
        if status.unit_count is not None:
            return status.units_published or 0
        if status.phase == "published":
            return status.items_in_scope or 0
        return status.items_published

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def render_status(status: JobStatus) -> str:
    published = f"{status.items_published} of {_or_dash(status.items_in_scope)}"
    if status.phase == "published":
        published = f"{_or_dash(status.items_in_scope)} of {_or_dash(status.items_in_scope)}"
    rows: list[tuple[str, str]] = [
        ("job", status.job_id),
        ("state", f"{status.verdict}: {status.reason}"),
        ("company", status.company_id or "default tenant"),
    ]
    if status.failure is not None:
        failure = status.failure
        rows += [
            ("error", failure.error),
            ("cause", failure.cause),
            ("pleo job status", _or_dash(failure.job_status)),
        ]
    if status.next_step:
        rows.append(("next step", status.next_step))
    rows += [
        ("phase", status.phase),
        ("run", str(status.run)),
        ("started", f"{_or_dash(status.started_at)} ({_age(status.age_seconds)} ago)"),
        ("pages fetched", str(status.pages_fetched)),
        ("items in scope", _or_dash(status.items_in_scope)),
        ("items published", published),
    ]
    if status.unit_count is not None:
        rows.append(("units published", f"{status.units_published or 0} of {status.unit_count}"))
    lease = "free"
    if status.lease_held:
        lease = f"held by {status.lease_owner} until {status.lease_expires_at}"
    elif status.lease_owner:
        # Released (expiry 0) by an invocation that ended, or run out (one that died).
        how = f"expired {status.lease_expires_at}" if status.lease_expires_at else "released"
        lease = f"free (last held by {status.lease_owner}, {how})"
    rows.append(("lease", lease))
    if status.execution is None:
        rows.append(("execution", "none"))
    else:
        execution = status.execution
        rows.append(("execution", f"{execution.status} {execution.arn}"))
    written = "written" if status.scope_written else "not written yet"
    rows.append(("scope", f"{status.scope_uri} ({written})"))
    rows.append(("manifest", status.manifest_uri))
    published_run = "none yet" if status.published_run is None else f"run {status.published_run}"
    rows.append(("consumers read", f"{published_run} (the job's scope.json names it)"))
    if status.scope_sha256:
        rows.append(("scope sha256", status.scope_sha256))
    return tabulate(rows, tablefmt="plain")


# -- list -----------------------------------------------------------------------------------


@main.command(name="list")
@json_option
@click.option("--all", "include_published", is_flag=True, help="Published jobs too.")
@operates
def list_jobs(ops: Ops, as_json: bool, include_published: bool) -> None:
    """Jobs not yet published, stuck ones first (no lease held and no execution running),
    then failed ones (ended on a final error), then the oldest first, with their age."""
    with _errors(ops.aws):
        found = ops.jobs().unpublished(include_published)
    if as_json:
        click.echo(json.dumps([s.as_json() for s in found], indent=2))
        return
    if not found:
        click.echo("no unpublished jobs" if not include_published else "no jobs")
        return
    rows = [
        (
            s.job_id,
            s.company_id or "default",
            s.verdict,
            s.phase,
            s.run,
            s.pages_fetched,
            f"{s.items_published}/{_or_dash(s.items_in_scope)}"
            if s.phase != "published"
            else f"{_or_dash(s.items_in_scope)}/{_or_dash(s.items_in_scope)}",
            _age(s.age_seconds),
            "held" if s.lease_held else "free",
            s.execution.status if s.execution else "none",
        )
        for s in found
    ]
    headers = [
        "job",
        "company",
        "state",
        "phase",
        "run",
        "pages",
        "published",
        "age",
        "lease",
        "execution",
    ]
    click.echo(tabulate(rows, headers=headers))
    stuck = [s for s in found if s.verdict == "stuck"]
    if stuck:
        click.echo(f"\n{len(stuck)} stuck: re-send the trigger with `pleo-scope-ops retrigger JOB`")
    failed = [s for s in found if s.verdict == "failed"]
    if failed:
        errors = ", ".join(f"{s.job_id[:8]}: {s.failure.error}" for s in failed if s.failure)
        click.echo(
            f"\n{len(failed)} failed on a final error ({errors}): a re-send alone does not help;"
            " `pleo-scope-ops status JOB` says what fixes it"
        )


# -- retrigger ------------------------------------------------------------------------------


@main.command()
@click.argument("job", type=JOB)
@click.option(
    "--via",
    type=click.Choice(["invoke", "bus"]),
    default="invoke",
    show_default=True,
    help="invoke: the function, asynchronously, as the rule does; bus: put the event on the"
    " rule's event bus.",
)
@click.option(
    "--wait", is_flag=True, help="Invoke synchronously and show the function's result (invoke)."
)
@click.option(
    "--company",
    type=COMPANY,
    help="The job's company (default: the one its walk record names; none: the default tenant).",
)
@json_option
@operates
def retrigger(ops: Ops, job: str, via: str, wait: bool, company: str | None, as_json: bool) -> None:
    """Re-send JOB's trigger: the "Export Job Claimed" event EventBridge delivers, with the
    company its walk is for. The one recovery: a running walk is adopted, a stopped one
    continues from its checkpoint, a published job is walked again (the ledger keeps every
    item it enqueued off the queue)."""
    if wait and via == "bus":
        raise click.UsageError("--wait applies to --via invoke only")
    resources = ops.resources
    with _errors(ops.aws):
        source = resources.event_source or "pleo.export-jobs"
        arn = resources.state_machine_arn or ""
        region, account = _region_and_account(arn, ops.aws)
        if company is None and resources.scope_table:
            company = ops.jobs().company_of(job)
        event = triggers.claimed_event(job, source, region, account, company)
        outcome: dict[str, Any] = {"jobId": job, "via": via, "event": event}
        if via == "invoke":
            function = resources.need("function_name")
            outcome["function"] = function
            outcome["result"] = triggers.invoke(ops.aws.client("lambda"), function, event, wait)
        else:
            bus = resources.need("event_bus")
            outcome["eventBus"] = bus
            outcome["eventId"] = triggers.put_on_bus(ops.aws.client("events"), bus, event)
    if as_json:
        click.echo(json.dumps(outcome, indent=2))
        return
    target = (
        f"function {outcome['function']}" if via == "invoke" else f"event bus {outcome['eventBus']}"
    )
    how = "synchronously" if wait else "asynchronously" if via == "invoke" else "as an event"
    click.echo(f'sent "Export Job Claimed" for {job} to {target} ({how})')
    if via == "bus":
        click.echo(f"the bus accepted it: event id {outcome['eventId']}")
    if wait:
        result = outcome["result"]
        click.echo(tabulate(_result_rows(result), tablefmt="plain"))
    if not (wait and outcome["result"]["done"]):
        click.echo(f"follow it: pleo-scope-ops status {job} --watch")


def _result_rows(result: dict[str, Any]) -> list[tuple[str, str]]:
    """A done result or a continuation (`triggers.answer` let nothing else through)."""
    if result["done"]:
        rows = [("answer", "done: the scope is published")]
    elif result.get("handedOver", {}).get("adopted"):
        rows = [("answer", "continuation: a running execution owns the walk (adopted)")]
    else:
        rows = [("answer", "continuation: the walk goes on in Step Functions")]
    for key in ("phase", "pagesFetched", "itemsInScope", "itemsPublished"):
        if key in result:
            rows.append((key, str(result[key])))
    if "handedOver" in result:
        rows.append(("execution", str(result["handedOver"].get("executionArn"))))
    if "scope" in result:
        rows.append(("scope", f"s3://{result['scope']['bucket']}/{result['scope']['key']}"))
    return rows


def _region_and_account(state_machine_arn: str, aws: Aws) -> tuple[str, str]:
    """For the event's envelope: from the state machine's ARN, else the session's region."""
    parts = state_machine_arn.split(":")
    if len(parts) > 4:
        return parts[3], parts[4]
    region = aws.client("lambda").meta.region_name
    return str(region), "000000000000"


# -- verify ---------------------------------------------------------------------------------


@main.command()
@click.argument("job", type=JOB)
@json_option
@operates
def verify(ops: Ops, job: str, as_json: bool) -> None:
    """Re-read JOB's scope.jsonl and check it against its manifest (sha256, counts, order,
    serialisation) and the walk record, and the ledger against the scope (every in-scope
    item enqueued once). Exit status 1 on any difference."""
    with _errors(ops.aws):
        verifier = Verifier(
            ops.aws.client("dynamodb"),
            ops.aws.client("s3"),
            ops.resources.need("scope_table"),
            ops.resources.need("bucket"),
        )
        outcome = verifier.verify(job)
    if as_json:
        click.echo(json.dumps(outcome.as_json(), indent=2))
    else:
        rows = [(c.name, "ok" if c.ok else "DIFFERS", c.detail) for c in outcome.checks]
        click.echo(tabulate(rows, headers=["check", "result", "detail"]))
        verdict = "verified" if outcome.ok else "DIFFERENCES FOUND"
        click.echo(f"\n{job}: {verdict}")
    if not outcome.ok:
        sys.exit(1)


# -- tenants --------------------------------------------------------------------------------


@main.group()
def tenant() -> None:
    """The tenant registry: one record per Pleo company (status, credential, rate limit).

    A credential is named, never given: `--api-key-secret ARN` or `--access-token-secret ARN`
    (a Secrets Manager secret named {TENANT_SECRET_PREFIX}{companyId}, docs/security.md), or
    `--oauth`, whose refresh token is read from standard input (never an argument) and sealed
    with the tenant key. Nothing printed holds a token.
    """


def credential_options(command: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--api-key-secret", metavar="ARN", help='A secret {"apiKey": ...}.'),
        click.option(
            "--access-token-secret",
            metavar="ARN",
            help='A secret {"accessToken": ...} kept fresh by your own token service.',
        ),
        click.option(
            "--oauth",
            is_flag=True,
            help="A managed OAuth grant: its refresh token on standard input.",
        ),
        click.option(
            "--secret-prefix",
            envvar="TENANT_SECRET_PREFIX",
            default=DEFAULT_SECRET_PREFIX,
            show_default=True,
            help="What tenants' secret names start with (the stack's TenantSecretPrefix).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _credential(
    admin: TenantAdmin,
    company: str,
    api_key_secret: str | None,
    access_token_secret: str | None,
    oauth: bool,
) -> TenantCredential:
    given = [api_key_secret is not None, access_token_secret is not None, oauth]
    if sum(given) != 1:
        raise click.UsageError(
            "give exactly one of --api-key-secret, --access-token-secret, --oauth"
        )
    if api_key_secret is not None:
        return admin.secret_credential(company, "apiKey", api_key_secret)
    if access_token_secret is not None:
        return admin.secret_credential(company, "accessToken", access_token_secret)
    stdin = sys.stdin
    if stdin.isatty():
        token = click.prompt("refresh token", hide_input=True, err=True)
    else:
        token = stdin.read()
    return admin.oauth_credential(company, token)


def _show(tenant_record: Any, as_json: bool) -> None:
    view = TenantView.of(tenant_record, time.time())
    if as_json:
        click.echo(json.dumps(view.as_json(), indent=2))
    else:
        click.echo(tabulate(view.rows(), tablefmt="plain"))


@tenant.command(name="add")
@click.argument("company", type=COMPANY)
@credential_options
@click.option(
    "--max-requests-per-minute",
    type=click.IntRange(min=1),
    help="The company's own rate budget (default: the stack's PleoMaxRequestsPerMinute).",
)
@json_option
@operates
def tenant_add(
    ops: Ops,
    company: str,
    api_key_secret: str | None,
    access_token_secret: str | None,
    oauth: bool,
    secret_prefix: str,
    max_requests_per_minute: int | None,
    as_json: bool,
) -> None:
    """Add COMPANY to the registry, active, with its credential."""
    with _errors(ops.aws):
        admin = ops.tenants(secret_prefix)
        credential = _credential(admin, company, api_key_secret, access_token_secret, oauth)
        _show(admin.add(company, credential, max_requests_per_minute), as_json)


@tenant.command(name="show")
@click.argument("company", type=COMPANY)
@json_option
@operates
def tenant_show(ops: Ops, company: str, as_json: bool) -> None:
    """COMPANY's record: status, credential kind and where it lives, rate limit."""
    with _errors(ops.aws):
        _show(ops.tenants().get(company), as_json)


@tenant.command(name="list")
@json_option
@operates
def tenant_list(ops: Ops, as_json: bool) -> None:
    """Every tenant, by company id."""
    with _errors(ops.aws):
        now = time.time()
        views = [TenantView.of(t, now) for t in ops.tenants().every()]
    if as_json:
        click.echo(json.dumps([v.as_json() for v in views], indent=2))
        return
    if not views:
        click.echo("no tenants")
        return
    rows = [
        (
            v.company_id,
            v.status,
            v.kind,
            v.secret_arn or f"expires {v.expires_at or '-'}",
            _or_dash(v.max_requests_per_minute),
        )
        for v in views
    ]
    click.echo(tabulate(rows, headers=["company", "status", "credential", "where", "req/min"]))
    relink = [v.company_id for v in views if v.status == "relink_needed"]
    if relink:
        click.echo(
            f"\n{len(relink)} need a new OAuth grant: `pleo-scope-ops tenant set-credential"
            " COMPANY --oauth` (refresh token on standard input), then re-send their triggers"
        )


@tenant.command(name="disable")
@click.argument("company", type=COMPANY)
@json_option
@operates
def tenant_disable(ops: Ops, company: str, as_json: bool) -> None:
    """Stop COMPANY's walks: its next invocation fails with TenantDisabled (final)."""
    with _errors(ops.aws):
        _show(ops.tenants().set_status(company, "disabled"), as_json)


@tenant.command(name="enable")
@click.argument("company", type=COMPANY)
@json_option
@operates
def tenant_enable(ops: Ops, company: str, as_json: bool) -> None:
    """Let a disabled COMPANY walk again (re-send its triggers)."""
    with _errors(ops.aws):
        _show(ops.tenants().set_status(company, "active"), as_json)


@tenant.command(name="set-credential")
@click.argument("company", type=COMPANY)
@credential_options
@json_option
@operates
def tenant_set_credential(
    ops: Ops,
    company: str,
    api_key_secret: str | None,
    access_token_secret: str | None,
    oauth: bool,
    secret_prefix: str,
    as_json: bool,
) -> None:
    """Give COMPANY a new credential (a new OAuth grant after relink_needed, say): it is
    active again, and a refresh of its old grant still in flight cannot overwrite it."""
    with _errors(ops.aws):
        admin = ops.tenants(secret_prefix)
        credential = _credential(admin, company, api_key_secret, access_token_secret, oauth)
        _show(admin.set_credential(company, credential), as_json)


# -- helpers --------------------------------------------------------------------------------


@contextmanager
def _errors(aws: Aws) -> Iterator[None]:
    """Known failures as one clear line and exit status 1 (a usage error: 2). An AWS error
    names the resource of the request that failed; a missing region or credentials say where
    they come from."""
    try:
        yield
    except MissingResource as error:
        raise click.UsageError(str(error)) from None
    except (JobNotKnown, StackNotFound, triggers.TriggerFailed, TenantCommandError) as error:
        _fail(str(error))
    except ScopeError as error:  # the registry's typed errors: UnknownTenant, InvalidTenantRecord
        _fail(f"{type(error).__name__}: {error}")
    except NoRegionError:
        _fail(f"no AWS region: give --region or AWS_DEFAULT_REGION ({LOCAL_STACK_HINT})")
    except NoCredentialsError:
        _fail(
            "no AWS credentials: give --profile, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            f" ({LOCAL_STACK_HINT})"
        )
    except ClientError as error:
        details = error.response.get("Error", {})
        about = aws.last_call.resource() if aws.last_call else error.operation_name
        _fail(f"AWS said {details.get('Code')} for {about}: {details.get('Message')}")
    except EndpointConnectionError as error:
        hint = f" (is the local stack up? {LOCAL_STACK_HINT})" if aws.endpoint_url else ""
        _fail(f"AWS: {error}{hint}")
    except BotoCoreError as error:
        _fail(f"AWS: {error}")


def _fail(message: str) -> NoReturn:
    raise click.ClickException(message)


def _or_dash(value: object) -> str:
    return "-" if value is None else str(value)


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    return f"{seconds // 86400} d {seconds % 86400 // 3600} h"
