"""What a caller does about each reason."""

from __future__ import annotations

import enum
from typing import Union

from embedgate.v1.reason_pb2 import Reason


class Action(enum.Enum):
    """What a caller does about an error, by its reason."""

    #: The policy, the Power BI setup or Embedgate's own credential needs the
    #: platform team; retrying does not help. Also the action for a reason this
    #: client does not know.
    REPORT = "report"
    #: The request (or the caller's own identity) is wrong: the same request
    #: fails the same way.
    FIX_REQUEST = "fix the request"
    #: Retry after RetryInfo's delay when there is one, else with exponential backoff.
    RETRY = "retry"


# The first advice of each value's comment in embedgate/v1/reason.proto.
_ACTIONS = {
    "INVALID_REQUEST": Action.FIX_REQUEST,  # BadRequest lists the fields
    "NO_CALLER_IDENTITY": Action.FIX_REQUEST,  # the workload's certificate
    "CALLER_NOT_IN_POLICY": Action.REPORT,
    "TENANT_NOT_ALLOWED": Action.REPORT,
    "REPORT_NOT_ALLOWED": Action.FIX_REQUEST,  # or report, if the tenant should have it
    "EDIT_NOT_ALLOWED": Action.FIX_REQUEST,  # ask without edit, or report
    "POWERBI_ITEM_NOT_FOUND": Action.FIX_REQUEST,  # or report
    "RLS_IDENTITY_MISMATCH": Action.REPORT,
    "POWERBI_REJECTED_REQUEST": Action.REPORT,
    "POWERBI_NOT_AUTHORIZED": Action.REPORT,
    "UNSUPPORTED_ITEM": Action.FIX_REQUEST,  # as the message says
    "POWERBI_THROTTLED": Action.RETRY,  # after RetryInfo
    "POWERBI_QUOTA_EXCEEDED": Action.REPORT,
    "CALLER_RATE_LIMITED": Action.RETRY,  # after RetryInfo
    "DASHBOARD_NOT_ALLOWED": Action.FIX_REQUEST,
    "CREATE_NOT_ALLOWED": Action.FIX_REQUEST,  # ask without create, or report
    "UPSTREAM_UNAVAILABLE": Action.RETRY,  # with backoff
    "CREDENTIAL_REJECTED": Action.REPORT,
    "INTERNAL": Action.REPORT,  # with the x-request-id response header
    "RLS_NOT_ENFORCED": Action.REPORT,
    "POWERBI_FORBIDDEN": Action.REPORT,
    "POWERBI_PRINCIPAL_NOT_ALLOWED": Action.REPORT,
    "OVERLOADED": Action.RETRY,  # after RetryInfo, with jitter
    "DATASET_NOT_ALLOWED": Action.REPORT,
    "IDENTITY_KIND_MISMATCH": Action.REPORT,
    "SSO_NOT_APPLICABLE": Action.REPORT,
    "TOKEN_LIMIT_EXCEEDED": Action.FIX_REQUEST,  # fewer reports in one token
    "EXPLAIN_NOT_ALLOWED": Action.FIX_REQUEST,  # explain as yourself
    "USER_EMBEDDING_NOT_ALLOWED": Action.REPORT,
    "USER_ASSERTION_EXPIRED": Action.FIX_REQUEST,  # a new token for the user
    "USER_ASSERTION_INVALID": Action.FIX_REQUEST,  # a token for Embedgate's API
    "USER_CONSENT_REQUIRED": Action.FIX_REQUEST,  # the user consents, then a new token
    "USER_INTERACTION_REQUIRED": Action.FIX_REQUEST,  # sign in again with the claims
    "USER_NOT_ALLOWED": Action.FIX_REQUEST,  # without that report, or the user gets access
}


def action(reason: Union[str, int]) -> Action:
    """What a caller does about an error of this reason (its name, or its
    :data:`Reason` number)."""
    if isinstance(reason, int):
        try:
            reason = Reason.Name(reason)
        except ValueError:
            return Action.REPORT
    return _ACTIONS.get(reason, Action.REPORT)
