"""The google.rpc error details.

googleapis-common-protos's ``google.rpc`` when it is installed (so that the
descriptors are registered once per process), else the copy generated into
this package from the same .proto files.
"""

try:
    from google.rpc.error_details_pb2 import BadRequest, ErrorInfo, RetryInfo
    from google.rpc.status_pb2 import Status
except ImportError:
    from ._googleapis.google.rpc.error_details_pb2 import BadRequest, ErrorInfo, RetryInfo
    from ._googleapis.google.rpc.status_pb2 import Status

__all__ = ["BadRequest", "ErrorInfo", "RetryInfo", "Status"]
