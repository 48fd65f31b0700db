"""Typed failures. Their class names are the error names Step Functions Retry/Catch match on.

Three families:
- ``ConfigurationError`` and ``JobRejected``: wrong setup or wrong job; retrying cannot help.
- ``TransientPleoError``: the API misbehaved; retrying later may help.
- ``WalkIntegrityError``: the pagination itself is inconsistent; stop before trusting it.
"""

from __future__ import annotations


class ScopeError(Exception):
    """Base class of every failure this project raises on purpose."""


# --- configuration: fix the setup, then re-trigger -------------------------------------------


class ConfigurationError(ScopeError):
    """The deployment is misconfigured (settings, secret, credential, permissions)."""


class InvalidSecret(ConfigurationError):
    """The credential secret does not hold the JSON the design fixes. Names the secret only."""


class CredentialRejected(ConfigurationError):
    """Pleo answered 401 twice, the second time after re-reading the secret."""


class PermissionDenied(ConfigurationError):
    """Pleo answered 403: the credential lacks the `export-jobs:read` scope."""


class PageSizeRejected(ConfigurationError):
    """Pleo answered 400 to the items request: usually PLEO_PAGE_SIZE is above its maximum."""


class BadRequest(ConfigurationError):
    """Pleo answered 400 to a request this client built; the client or its settings are wrong."""


class UnknownTenant(ConfigurationError):
    """The trigger names a company that is not in the tenant registry."""


class TenantDisabled(ConfigurationError):
    """The company's registry record is `disabled`: an operator stopped its walks."""


class RelinkNeeded(ConfigurationError):
    """Pleo refused the company's OAuth grant (`invalid_grant`): the company must install the
    app again; once the new grant is stored, re-sending the trigger resumes the walk."""


class InvalidTenantRecord(ConfigurationError):
    """A registry record does not hold what DESIGN.md "Registry record" fixes. Names the
    company and the attribute, never a token."""


class OAuthClientRejected(ConfigurationError):
    """Pleo's token endpoint refused the app's client credentials (401 `invalid_client`) or the
    request itself: check PLEO_OAUTH_CLIENT_SECRET_ARN. Not the tenant's fault: its grant
    is left as it is."""


class InvalidEvent(ScopeError):
    """The invocation event is not one of the accepted shapes."""


# --- the job itself -------------------------------------------------------------------------


class JobRejected(ScopeError):
    """The job cannot be scoped as it is."""


class JobNotFound(JobRejected):
    """Pleo answered 404 for the job (unknown, or deleted during the walk)."""


class JobNotClaimed(JobRejected):
    """The job exists but its status is not `in_progress`."""

    def __init__(self, job_id: str, status: str) -> None:
        super().__init__(f"export job {job_id} is {status!r}, not 'in_progress' (claimed)")
        self.job_id = job_id
        self.status = status


class TenantMismatch(JobRejected):
    """The job was already walked under another company: one job is never walked with two
    companies' credentials."""


# --- transient: Step Functions retries these with backoff -----------------------------------


class TransientPleoError(ScopeError):
    """Pleo failed in a way that a later attempt may not."""


class PleoThrottled(TransientPleoError):
    """429 Too Many Requests, still failing after the bounded retries."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PleoUnavailable(TransientPleoError):
    """5xx, connection reset, time-out or hang, still failing after the bounded retries."""


class MalformedResponse(TransientPleoError):
    """A body that is not JSON, or JSON without the fields the contract promises."""


class TokenRefreshUnavailable(TransientPleoError):
    """Pleo's token endpoint kept failing (5xx, 429, network) before rotating: the grant is
    untouched and a later attempt refreshes it."""


class TokenRefreshInProgress(TransientPleoError):
    """Another process holds the tenant's refresh lease longer than this one could wait."""


# --- pagination integrity -------------------------------------------------------------------


class WalkIntegrityError(ScopeError):
    """The pagination cannot be trusted; the walk stops rather than build a wrong scope."""


class MissingCursor(WalkIntegrityError):
    """`hasNextPage` is true but `endCursor` is null or empty."""


class RepeatedCursor(WalkIntegrityError):
    """A cursor came back that the walk had already followed (A, B, A...)."""


class TooManyPages(WalkIntegrityError):
    """The walk passed the configured maximum number of pages."""


# --- AWS side ------------------------------------------------------------------------------


class PublishFailed(ScopeError):
    """SQS or the ledger kept refusing part of a batch; a retry resumes where it stopped."""


class UnitTooLarge(ConfigurationError):
    """A work unit's message exceeds SQS's message size (ids of many KB): lower
    SCOPE_UNIT_SIZE, then re-trigger. Nothing of the unit was sent."""


class ScopeConflict(ScopeError):
    """A run's scope.jsonl is already written with other bytes (it is never rewritten): the
    walk starts a new run, whose files are its own."""


class ArchivedPageMissing(ScopeError):
    """A page the checkpoint says was archived is not in S3: the walk starts a new run."""


# --- concurrency ----------------------------------------------------------------------------


class WalkInProgress(ScopeError):
    """Another invocation holds this job's walk; this one stops without touching it."""


class HandOverFailed(ScopeError):
    """Step Functions would not start the execution that takes the walk over."""


class WalkSuperseded(ScopeError):
    """A newer hand-over owns this job's walk: the execution that got this ends quietly."""


FINAL_ERRORS: tuple[type[ScopeError], ...] = (
    ConfigurationError,
    InvalidEvent,
    JobRejected,
    WalkIntegrityError,
)
"""What retrying cannot fix (the state machine's Retry lists them with MaxAttempts 0). A
re-sent trigger can only help once their cause is fixed, and for some never: the run ends."""
