"""The asyncio flavor: grpc.aio channels and a coalescing token source."""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable, Generic, Optional, Sequence, Tuple, TypeVar

import grpc
import grpc.aio

from embedgate.v1.embed_token_pb2 import (
    GenerateDashboardEmbedTokenRequest,
    GenerateDashboardEmbedTokenResponse,
    GenerateEmbedTokenRequest,
    GenerateEmbedTokenResponse,
)
from embedgate.v1.embed_token_pb2_grpc import EmbedTokenServiceStub

from ._client import TOKEN_CALL_TIMEOUT, _channel_args
from ._tokens import Clock, _now, _refresh_seconds

T = TypeVar("T")


class AsyncTokenSource(Generic[T]):
    """The asyncio counterpart of :class:`TokenSource`: one embed token until
    its ``refresh_time``; concurrent tasks that find no fresh token await one
    call. A failed call raises in every task awaiting it and is not cached. A
    task that is cancelled stops waiting; the call goes on for the others.

    Args:
        fetch: a coroutine function asking Embedgate for a token; see
            :meth:`AsyncClient.report_tokens`.
        clock: the clock, :func:`time.time` by default.
    """

    def __init__(self, fetch: Callable[[], Awaitable[T]], *, clock: Clock = _now):
        self._fetch = fetch
        self._clock = clock
        self._token: Optional[T] = None
        self._fresh_until = 0.0
        self._inflight: Optional[asyncio.Future] = None

    async def token(self) -> T:
        """Returns the current token, or awaits a new one.

        Raises:
            grpc.aio.AioRpcError: the call failed (see :func:`error_details`).
        """
        if self._token is not None and self._clock() < self._fresh_until:
            return self._token
        if self._inflight is None:
            self._inflight = asyncio.ensure_future(self._run())
        return await asyncio.shield(self._inflight)

    async def _run(self) -> T:
        try:
            token = await self._fetch()
        finally:
            self._inflight = None
        self._token = token
        self._fresh_until = _refresh_seconds(token)
        return token


class AsyncClient(EmbedTokenServiceStub):
    """The generated stub on a ``grpc.aio`` channel it owns, plus token
    sources. Use it as an async context manager, or ``await client.close()``."""

    def __init__(self, channel: grpc.aio.Channel):
        super().__init__(channel)
        self.channel = channel

    def report_tokens(
        self, request: GenerateEmbedTokenRequest, *, clock: Clock = _now
    ) -> AsyncTokenSource[GenerateEmbedTokenResponse]:
        """An :class:`AsyncTokenSource` for one report token request."""
        return AsyncTokenSource(lambda: self.GenerateEmbedToken(request, timeout=TOKEN_CALL_TIMEOUT), clock=clock)

    def dashboard_tokens(
        self, request: GenerateDashboardEmbedTokenRequest, *, clock: Clock = _now
    ) -> AsyncTokenSource[GenerateDashboardEmbedTokenResponse]:
        """An :class:`AsyncTokenSource` for one dashboard (or tile) token request."""
        return AsyncTokenSource(
            lambda: self.GenerateDashboardEmbedToken(request, timeout=TOKEN_CALL_TIMEOUT), clock=clock
        )

    async def close(self) -> None:
        """Closes the channel."""
        await self.channel.close()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def connect_aio(
    address: str,
    *,
    ca: str,
    cert: str,
    key: str,
    server_name: Optional[str] = None,
    options: Sequence[Tuple[str, Any]] = (),
    interceptors: Sequence[Any] = (),
) -> AsyncClient:
    """Returns an :class:`AsyncClient` of Embedgate at ``address`` over mTLS, on
    a ``grpc.aio`` channel (arguments as for :func:`secure_channel`;
    interceptors are ``grpc.aio`` client interceptors). Call it inside the
    event loop that will use it."""
    creds, opts = _channel_args(ca, cert, key, server_name, options)
    return AsyncClient(grpc.aio.secure_channel(address, creds, options=opts, interceptors=list(interceptors) or None))
