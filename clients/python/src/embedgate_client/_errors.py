"""Decoding Embedgate's errors: google.rpc.Status details from the trailers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

import grpc

from embedgate.v1.reason_pb2 import Reason

from ._reasons import Action, action
from ._rpc import BadRequest, ErrorInfo, RetryInfo, Status

#: The google.rpc.ErrorInfo domain of Embedgate's errors.
DOMAIN = "embedgate"

_DETAILS_KEY = "grpc-status-details-bin"


@dataclass(frozen=True)
class ErrorDetails:
    """Everything an Embedgate error carries, decoded."""

    #: The gRPC status code.
    code: grpc.StatusCode
    #: The status message.
    message: str
    #: ErrorInfo.reason, for example ``"REPORT_NOT_ALLOWED"`` (a :data:`Reason`
    #: value's name); ``""`` when there is no Embedgate ErrorInfo.
    reason: str = ""
    #: The google.rpc.ErrorInfo of domain "embedgate": reason, and metadata such
    #: as ``pbi_request_id``.
    error_info: Optional[ErrorInfo] = None
    #: The field violations of an INVALID_ARGUMENT.
    bad_request: Optional[BadRequest] = None
    #: When to retry a RESOURCE_EXHAUSTED.
    retry_info: Optional[RetryInfo] = None
    #: Every detail of the status, as ``google.protobuf.Any``.
    details: List[object] = field(default_factory=list)

    @property
    def reason_value(self) -> int:
        """The reason as a :data:`Reason` number: ``REASON_UNSPECIFIED`` (0) when
        there is none, or when the server sent a reason newer than this client."""
        try:
            return Reason.Value(self.reason)
        except ValueError:
            return Reason.REASON_UNSPECIFIED


def error_details(err: BaseException) -> Optional[ErrorDetails]:
    """Decodes an error raised by a call (of a ``grpc`` or ``grpc.aio`` stub).
    Returns None for an exception that is not a gRPC call's error (a bug in the
    caller, not an answer)."""
    # Sync calls raise a grpc.Call; grpc.aio raises an AioRpcError: both have
    # code(), details() and trailing_metadata().
    if not isinstance(err, grpc.RpcError) or not callable(getattr(err, "trailing_metadata", None)):
        return None
    info = bad = retry = None
    details: List[object] = []
    for key, value in err.trailing_metadata() or ():
        if key != _DETAILS_KEY:
            continue
        status = Status.FromString(value)
        details = list(status.details)
        for any_ in status.details:
            if info is None and any_.Is(ErrorInfo.DESCRIPTOR):
                candidate = ErrorInfo()
                any_.Unpack(candidate)
                if candidate.domain == DOMAIN:
                    info = candidate
            elif bad is None and any_.Is(BadRequest.DESCRIPTOR):
                bad = BadRequest()
                any_.Unpack(bad)
            elif retry is None and any_.Is(RetryInfo.DESCRIPTOR):
                retry = RetryInfo()
                any_.Unpack(retry)
    return ErrorDetails(
        code=err.code(),
        message=err.details() or "",
        reason=info.reason if info is not None else "",
        error_info=info,
        bad_request=bad,
        retry_info=retry,
        details=details,
    )


def reason(err: BaseException) -> str:
    """The ErrorInfo reason of an Embedgate error (for example
    ``"CALLER_RATE_LIMITED"``), or ``""``."""
    d = error_details(err)
    return d.reason if d is not None else ""


def is_retryable(err: BaseException) -> bool:
    """Whether the same call may succeed later.

    True when the reason's action is :attr:`Action.RETRY`; or, for a reason
    this client does not know, when the error carries a RetryInfo; or, with no
    Embedgate reason, when the code is UNAVAILABLE (the connection failed).
    Wait :func:`retry_after` first when it says so, else back off exponentially.
    """
    d = error_details(err)
    if d is None:
        return False
    if d.reason_value != Reason.REASON_UNSPECIFIED:
        return action(d.reason) is Action.RETRY
    if d.error_info is not None:
        return d.retry_info is not None
    return d.code == grpc.StatusCode.UNAVAILABLE


def retry_after(err: BaseException) -> Optional[float]:
    """The delay the server asks for before a retry (google.rpc.RetryInfo), in
    seconds; None when it names none."""
    d = error_details(err)
    if d is None or d.retry_info is None or not d.retry_info.HasField("retry_delay"):
        return None
    return d.retry_info.retry_delay.ToMicroseconds() / 1e6


def field_violations(err: BaseException) -> List[BadRequest.FieldViolation]:
    """The fields an INVALID_ARGUMENT names, each with ``field`` (a path such as
    ``"report_ids[0]"``) and ``description``; empty when none."""
    d = error_details(err)
    if d is None or d.bad_request is None:
        return []
    return list(d.bad_request.field_violations)
