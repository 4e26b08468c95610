"""A token source: one embed token until its refresh_time, one call for many askers."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from typing import Callable, Generic, Optional, TypeVar

Clock = Callable[[], float]
"""Returns the time in seconds since the epoch, like :func:`time.time`."""


def _now() -> float:
    return time.time()


T = TypeVar("T")


def _refresh_seconds(token: object) -> float:
    """The token's refresh_time in seconds since the epoch; 0 (never fresh) when unset."""
    if not token.HasField("refresh_time"):  # type: ignore[attr-defined]
        return 0.0
    return token.refresh_time.ToMicroseconds() / 1e6  # type: ignore[attr-defined]


class TokenSource(Generic[T]):
    """Hands out one embed token for one request until the token's
    ``refresh_time``, then asks Embedgate for a new one.

    Concurrent callers that find no fresh token share one call: N askers, one
    RPC (the first asker makes it, in its own thread). A failed call raises in
    every caller waiting for it and is not cached. The returned response is
    shared: read it, do not modify it. Thread-safe.

    Args:
        fetch: asks Embedgate for a token (a ``GenerateEmbedTokenResponse`` or
            ``GenerateDashboardEmbedTokenResponse``); see
            :meth:`Client.report_tokens`.
        clock: the clock, :func:`time.time` by default.
    """

    def __init__(self, fetch: Callable[[], T], *, clock: Clock = _now):
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._token: Optional[T] = None
        self._fresh_until = 0.0
        self._inflight: Optional[Future] = None
        self._on_wait: Optional[Callable[[], None]] = None  # tests: an asker joins the call in flight

    def token(self, timeout: Optional[float] = None) -> T:
        """Returns the current token, or waits for a new one.

        Args:
            timeout: how long to wait, in seconds, for a call another thread
                is making (``None``: until it ends). The call itself has its
                own timeout.

        Raises:
            grpc.RpcError: the call failed (see :func:`error_details`).
            concurrent.futures.TimeoutError: ``timeout`` passed first.
        """
        with self._lock:
            if self._token is not None and self._clock() < self._fresh_until:
                return self._token
            call = self._inflight
            leader = call is None
            if leader:
                call = self._inflight = Future()
            if self._on_wait is not None:
                self._on_wait()
        if not leader:
            return call.result(timeout)
        try:
            token = self._fetch()
        except BaseException as e:
            with self._lock:
                self._inflight = None
            call.set_exception(e)
            raise
        with self._lock:
            self._token = token
            self._fresh_until = _refresh_seconds(token)
            self._inflight = None
        call.set_result(token)
        return token
