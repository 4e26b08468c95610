from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

CALLER_NOT_IN_POLICY: Reason
CALLER_RATE_LIMITED: Reason
CREATE_NOT_ALLOWED: Reason
CREDENTIAL_REJECTED: Reason
DASHBOARD_NOT_ALLOWED: Reason
DATASET_NOT_ALLOWED: Reason
DESCRIPTOR: _descriptor.FileDescriptor
EDIT_NOT_ALLOWED: Reason
EXPLAIN_NOT_ALLOWED: Reason
IDENTITY_KIND_MISMATCH: Reason
INTERNAL: Reason
INVALID_REQUEST: Reason
NO_CALLER_IDENTITY: Reason
OVERLOADED: Reason
POWERBI_FORBIDDEN: Reason
POWERBI_ITEM_NOT_FOUND: Reason
POWERBI_NOT_AUTHORIZED: Reason
POWERBI_PRINCIPAL_NOT_ALLOWED: Reason
POWERBI_QUOTA_EXCEEDED: Reason
POWERBI_REJECTED_REQUEST: Reason
POWERBI_THROTTLED: Reason
REASON_UNSPECIFIED: Reason
REPORT_NOT_ALLOWED: Reason
RLS_IDENTITY_MISMATCH: Reason
RLS_NOT_ENFORCED: Reason
SSO_NOT_APPLICABLE: Reason
TENANT_NOT_ALLOWED: Reason
TOKEN_LIMIT_EXCEEDED: Reason
UNSUPPORTED_ITEM: Reason
UPSTREAM_UNAVAILABLE: Reason

class Reason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []
