from buf.validate import validate_pb2 as _validate_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EmbedDashboard(_message.Message):
    __slots__ = ["embed_url", "id", "name"]
    EMBED_URL_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    embed_url: str
    id: str
    name: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., embed_url: _Optional[str] = ...) -> None: ...

class EmbedReport(_message.Message):
    __slots__ = ["dataset_id", "embed_url", "id", "name", "workspace_id"]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    EMBED_URL_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_ID_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    embed_url: str
    id: str
    name: str
    workspace_id: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., embed_url: _Optional[str] = ..., dataset_id: _Optional[str] = ..., workspace_id: _Optional[str] = ...) -> None: ...

class EmbedTile(_message.Message):
    __slots__ = ["dataset_id", "embed_url", "id", "report_id", "title"]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    EMBED_URL_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    REPORT_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    embed_url: str
    id: str
    report_id: str
    title: str
    def __init__(self, id: _Optional[str] = ..., title: _Optional[str] = ..., embed_url: _Optional[str] = ..., report_id: _Optional[str] = ..., dataset_id: _Optional[str] = ...) -> None: ...

class ExplainEmbedTokenRequest(_message.Message):
    __slots__ = ["as_caller", "dashboard_embed_token", "embed_token"]
    AS_CALLER_FIELD_NUMBER: _ClassVar[int]
    DASHBOARD_EMBED_TOKEN_FIELD_NUMBER: _ClassVar[int]
    EMBED_TOKEN_FIELD_NUMBER: _ClassVar[int]
    as_caller: str
    dashboard_embed_token: GenerateDashboardEmbedTokenRequest
    embed_token: GenerateEmbedTokenRequest
    def __init__(self, embed_token: _Optional[_Union[GenerateEmbedTokenRequest, _Mapping]] = ..., dashboard_embed_token: _Optional[_Union[GenerateDashboardEmbedTokenRequest, _Mapping]] = ..., as_caller: _Optional[str] = ...) -> None: ...

class ExplainEmbedTokenResponse(_message.Message):
    __slots__ = ["allowed", "caller", "code", "identity", "lifetime", "lifetime_clamped", "message", "models", "policy_version", "powerbi_request", "reason", "rule"]
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    CALLER_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    LIFETIME_CLAMPED_FIELD_NUMBER: _ClassVar[int]
    LIFETIME_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    POWERBI_REQUEST_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    allowed: bool
    caller: str
    code: str
    identity: PolicyIdentity
    lifetime: _duration_pb2.Duration
    lifetime_clamped: bool
    message: str
    models: _containers.RepeatedCompositeFieldContainer[ExplainedModel]
    policy_version: str
    powerbi_request: PowerBIRequest
    reason: str
    rule: str
    def __init__(self, allowed: bool = ..., code: _Optional[str] = ..., reason: _Optional[str] = ..., message: _Optional[str] = ..., rule: _Optional[str] = ..., policy_version: _Optional[str] = ..., caller: _Optional[str] = ..., powerbi_request: _Optional[_Union[PowerBIRequest, _Mapping]] = ..., lifetime: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ..., lifetime_clamped: bool = ..., models: _Optional[_Iterable[_Union[ExplainedModel, _Mapping]]] = ..., identity: _Optional[_Union[PolicyIdentity, _Mapping]] = ...) -> None: ...

class ExplainedIdentity(_message.Message):
    __slots__ = ["custom_data", "roles", "username"]
    CUSTOM_DATA_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    custom_data: str
    roles: _containers.RepeatedScalarFieldContainer[str]
    username: str
    def __init__(self, username: _Optional[str] = ..., roles: _Optional[_Iterable[str]] = ..., custom_data: _Optional[str] = ...) -> None: ...

class ExplainedModel(_message.Message):
    __slots__ = ["id", "identity", "identity_blob_audiences", "identity_required", "kind", "read_by", "sso_datasources", "upstream_datasets", "workspace_id", "xmla_permissions"]
    IDENTITY_BLOB_AUDIENCES_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    READ_BY_FIELD_NUMBER: _ClassVar[int]
    SSO_DATASOURCES_FIELD_NUMBER: _ClassVar[int]
    UPSTREAM_DATASETS_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_ID_FIELD_NUMBER: _ClassVar[int]
    XMLA_PERMISSIONS_FIELD_NUMBER: _ClassVar[int]
    id: str
    identity: ExplainedIdentity
    identity_blob_audiences: _containers.RepeatedScalarFieldContainer[str]
    identity_required: bool
    kind: str
    read_by: str
    sso_datasources: _containers.RepeatedScalarFieldContainer[str]
    upstream_datasets: _containers.RepeatedScalarFieldContainer[str]
    workspace_id: str
    xmla_permissions: str
    def __init__(self, id: _Optional[str] = ..., workspace_id: _Optional[str] = ..., kind: _Optional[str] = ..., identity_required: bool = ..., upstream_datasets: _Optional[_Iterable[str]] = ..., read_by: _Optional[str] = ..., xmla_permissions: _Optional[str] = ..., sso_datasources: _Optional[_Iterable[str]] = ..., identity: _Optional[_Union[ExplainedIdentity, _Mapping]] = ..., identity_blob_audiences: _Optional[_Iterable[str]] = ...) -> None: ...

class GenerateDashboardEmbedTokenRequest(_message.Message):
    __slots__ = ["dashboard_id", "lifetime", "tenant", "tile_id", "user"]
    DASHBOARD_ID_FIELD_NUMBER: _ClassVar[int]
    LIFETIME_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    TILE_ID_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    dashboard_id: str
    lifetime: _duration_pb2.Duration
    tenant: str
    tile_id: str
    user: str
    def __init__(self, tenant: _Optional[str] = ..., user: _Optional[str] = ..., dashboard_id: _Optional[str] = ..., tile_id: _Optional[str] = ..., lifetime: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class GenerateDashboardEmbedTokenResponse(_message.Message):
    __slots__ = ["dashboard", "expire_time", "refresh_time", "tile", "token", "token_id"]
    DASHBOARD_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    REFRESH_TIME_FIELD_NUMBER: _ClassVar[int]
    TILE_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    dashboard: EmbedDashboard
    expire_time: _timestamp_pb2.Timestamp
    refresh_time: _timestamp_pb2.Timestamp
    tile: EmbedTile
    token: str
    token_id: str
    def __init__(self, token: _Optional[str] = ..., token_id: _Optional[str] = ..., expire_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., refresh_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., dashboard: _Optional[_Union[EmbedDashboard, _Mapping]] = ..., tile: _Optional[_Union[EmbedTile, _Mapping]] = ...) -> None: ...

class GenerateEmbedTokenRequest(_message.Message):
    __slots__ = ["allow_create", "allow_edit", "lifetime", "report_ids", "tenant", "user"]
    ALLOW_CREATE_FIELD_NUMBER: _ClassVar[int]
    ALLOW_EDIT_FIELD_NUMBER: _ClassVar[int]
    LIFETIME_FIELD_NUMBER: _ClassVar[int]
    REPORT_IDS_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    allow_create: bool
    allow_edit: bool
    lifetime: _duration_pb2.Duration
    report_ids: _containers.RepeatedScalarFieldContainer[str]
    tenant: str
    user: str
    def __init__(self, tenant: _Optional[str] = ..., user: _Optional[str] = ..., report_ids: _Optional[_Iterable[str]] = ..., allow_edit: bool = ..., lifetime: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ..., allow_create: bool = ...) -> None: ...

class GenerateEmbedTokenResponse(_message.Message):
    __slots__ = ["expire_time", "refresh_time", "reports", "token", "token_id"]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    REFRESH_TIME_FIELD_NUMBER: _ClassVar[int]
    REPORTS_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    expire_time: _timestamp_pb2.Timestamp
    refresh_time: _timestamp_pb2.Timestamp
    reports: _containers.RepeatedCompositeFieldContainer[EmbedReport]
    token: str
    token_id: str
    def __init__(self, token: _Optional[str] = ..., token_id: _Optional[str] = ..., expire_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., refresh_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., reports: _Optional[_Iterable[_Union[EmbedReport, _Mapping]]] = ...) -> None: ...

class GenerateUserEmbedConfigRequest(_message.Message):
    __slots__ = ["report_ids", "user_assertion", "workspace_id"]
    REPORT_IDS_FIELD_NUMBER: _ClassVar[int]
    USER_ASSERTION_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_ID_FIELD_NUMBER: _ClassVar[int]
    report_ids: _containers.RepeatedScalarFieldContainer[str]
    user_assertion: str
    workspace_id: str
    def __init__(self, user_assertion: _Optional[str] = ..., workspace_id: _Optional[str] = ..., report_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class GenerateUserEmbedConfigResponse(_message.Message):
    __slots__ = ["access_token", "expire_time", "refresh_time", "reports"]
    ACCESS_TOKEN_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    REFRESH_TIME_FIELD_NUMBER: _ClassVar[int]
    REPORTS_FIELD_NUMBER: _ClassVar[int]
    access_token: str
    expire_time: _timestamp_pb2.Timestamp
    refresh_time: _timestamp_pb2.Timestamp
    reports: _containers.RepeatedCompositeFieldContainer[EmbedReport]
    def __init__(self, access_token: _Optional[str] = ..., expire_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., refresh_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., reports: _Optional[_Iterable[_Union[EmbedReport, _Mapping]]] = ...) -> None: ...

class PolicyIdentity(_message.Message):
    __slots__ = ["custom_data", "roles", "username"]
    CUSTOM_DATA_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    custom_data: str
    roles: _containers.RepeatedScalarFieldContainer[str]
    username: str
    def __init__(self, username: _Optional[str] = ..., roles: _Optional[_Iterable[str]] = ..., custom_data: _Optional[str] = ...) -> None: ...

class PowerBIRequest(_message.Message):
    __slots__ = ["body", "method", "profile_id", "url"]
    BODY_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    PROFILE_ID_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    body: str
    method: str
    profile_id: str
    url: str
    def __init__(self, method: _Optional[str] = ..., url: _Optional[str] = ..., profile_id: _Optional[str] = ..., body: _Optional[str] = ...) -> None: ...
