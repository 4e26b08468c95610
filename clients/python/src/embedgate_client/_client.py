"""gRPC channels to Embedgate over mTLS."""

from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple

import grpc

from embedgate.v1.embed_token_pb2 import (
    GenerateDashboardEmbedTokenRequest,
    GenerateDashboardEmbedTokenResponse,
    GenerateEmbedTokenRequest,
    GenerateEmbedTokenResponse,
)
from embedgate.v1.embed_token_pb2_grpc import EmbedTokenServiceStub

from ._tokens import Clock, TokenSource, _now
from ._version import __version__

#: The timeout of a call made by a TokenSource, in seconds.
TOKEN_CALL_TIMEOUT = 30.0


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def secure_channel(
    address: str,
    *,
    ca: str,
    cert: str,
    key: str,
    server_name: Optional[str] = None,
    options: Sequence[Tuple[str, Any]] = (),
    interceptors: Sequence[Any] = (),
) -> grpc.Channel:
    """Returns a gRPC channel to Embedgate at ``address`` ("host:port") with mTLS.

    Args:
        address: the gRPC target, for example ``"embedgate.platform.svc:8443"``.
        ca: path of the PEM CA bundle that Embedgate's server certificate must chain to.
        cert: path of the caller's PEM certificate (its SPIFFE ID is the URI SAN).
        key: path of the certificate's PEM private key.
        server_name: the name to check the server certificate against instead of
            the address's host (for example ``"localhost"`` for the dev server).
        options: more gRPC channel options.
        interceptors: gRPC client interceptors, outermost first.

    The files are read once, now: after a certificate rotation, open a new channel.
    """
    creds, opts = _channel_args(ca, cert, key, server_name, options)
    channel = grpc.secure_channel(address, creds, options=opts)
    if interceptors:
        channel = grpc.intercept_channel(channel, *interceptors)
    return channel


def _channel_args(
    ca: str, cert: str, key: str, server_name: Optional[str], options: Sequence[Tuple[str, Any]]
) -> Tuple[grpc.ChannelCredentials, List[Tuple[str, Any]]]:
    """The mTLS credentials and channel options of secure_channel and connect_aio."""
    creds = grpc.ssl_channel_credentials(
        root_certificates=_read(ca), private_key=_read(key), certificate_chain=_read(cert)
    )
    opts: List[Tuple[str, Any]] = [("grpc.primary_user_agent", f"embedgate-python/{__version__}")]
    if server_name:
        opts += [("grpc.ssl_target_name_override", server_name), ("grpc.default_authority", server_name)]
    return creds, opts + list(options)


class Client(EmbedTokenServiceStub):
    """The generated stub (``GenerateEmbedToken``, ``GenerateDashboardEmbedToken``,
    ``ExplainEmbedToken``) on a channel it owns, plus token sources.

    Use it as a context manager, or call :meth:`close`. It is thread-safe;
    one per process is enough.
    """

    def __init__(self, channel: grpc.Channel):
        super().__init__(channel)
        self.channel = channel

    def report_tokens(
        self, request: GenerateEmbedTokenRequest, *, clock: Clock = _now
    ) -> TokenSource[GenerateEmbedTokenResponse]:
        """A :class:`TokenSource` for one report token request (do not modify it afterwards)."""
        return TokenSource(lambda: self.GenerateEmbedToken(request, timeout=TOKEN_CALL_TIMEOUT), clock=clock)

    def dashboard_tokens(
        self, request: GenerateDashboardEmbedTokenRequest, *, clock: Clock = _now
    ) -> TokenSource[GenerateDashboardEmbedTokenResponse]:
        """A :class:`TokenSource` for one dashboard (or tile) token request."""
        return TokenSource(
            lambda: self.GenerateDashboardEmbedToken(request, timeout=TOKEN_CALL_TIMEOUT), clock=clock
        )

    def close(self) -> None:
        """Closes the channel."""
        self.channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(
    address: str,
    *,
    ca: str,
    cert: str,
    key: str,
    server_name: Optional[str] = None,
    options: Sequence[Tuple[str, Any]] = (),
    interceptors: Sequence[Any] = (),
) -> Client:
    """Returns a :class:`Client` of Embedgate at ``address`` over mTLS
    (arguments as for :func:`secure_channel`). It connects on the first call."""
    return Client(
        secure_channel(
            address, ca=ca, cert=cert, key=key, server_name=server_name, options=options, interceptors=interceptors
        )
    )
