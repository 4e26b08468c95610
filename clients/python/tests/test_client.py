"""The Python client against the real Embedgate server over mTLS.

The Go test clients/interop_test.go starts ``embedgate serve --dev`` and runs
these tests; it says where through the environment (EMBEDGATE_ADDR,
EMBEDGATE_DEV_DIR, EMBEDGATE_SERVER_NAME, EMBEDGATE_EMULATOR_URL). Tokens are
secrets: nothing here prints one.
"""

import json
import os
import re
import socket
import ssl
import threading
import unittest
import urllib.request

import grpc

import embedgate_client as eg
from embedgate_client._tokens import TokenSource

SALES_REPORT = "a1000000-0000-4000-8000-000000000001"
SALES_DATASET = "d1000000-0000-4000-8000-000000000001"
FOREIGN_REPORT = "a2000000-0000-4000-8000-000000000001"


def env(name):
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set: run these tests through clients/interop_test.go (make test)")
    return value


ADDR = env("EMBEDGATE_ADDR")
DEV_DIR = env("EMBEDGATE_DEV_DIR")
SERVER_NAME = env("EMBEDGATE_SERVER_NAME")
EMULATOR_URL = env("EMBEDGATE_EMULATOR_URL")


def dev(name):
    return os.path.join(DEV_DIR, name)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def connect(caller="caller", interceptors=()):
    """A client for the caller whose files are CALLER.pem and CALLER-key.pem."""
    return eg.connect(
        ADDR,
        ca=dev("ca.pem"),
        cert=dev(f"{caller}.pem"),
        key=dev(f"{caller}-key.pem"),
        server_name=SERVER_NAME,
        interceptors=interceptors,
    )


def sales(report=SALES_REPORT):
    return eg.GenerateEmbedTokenRequest(tenant="acme", user="alice@acme.example", report_ids=[report])


def lookup(token_id):
    """What the emulator says the token with this id grants."""
    ctx = ssl.create_default_context(cafile=dev("emulator-ca.pem"))
    with urllib.request.urlopen(f"{EMULATOR_URL}/_emulator/tokens/{token_id}", context=ctx, timeout=20) as r:
        return json.load(r)


class Counter(grpc.UnaryUnaryClientInterceptor):
    """Counts unary calls, and holds each until ``gate`` is set."""

    def __init__(self):
        self.calls = 0
        self.gate = threading.Event()
        self.gate.set()
        self._lock = threading.Lock()

    def intercept_unary_unary(self, continuation, client_call_details, request):
        with self._lock:
            self.calls += 1
        if not self.gate.wait(20):
            raise TimeoutError("the gate stayed closed")
        return continuation(client_call_details, request)


class ClientTest(unittest.TestCase):
    def check_sales_token(self, resp):
        self.assertTrue(resp.token, "no token")
        self.assertTrue(resp.token_id, "no token id")
        self.assertLess(resp.refresh_time.ToDatetime(), resp.expire_time.ToDatetime())
        self.assertEqual([(r.id, r.dataset_id) for r in resp.reports], [(SALES_REPORT, SALES_DATASET)])
        self.assertTrue(resp.reports[0].embed_url.startswith("https://"))
        grant = lookup(resp.token_id)
        self.assertEqual(
            [(i["username"], i["roles"], i["customData"]) for i in grant["identities"]],
            [("alice@acme.example", ["Customer"], "acme")],
        )

    def test_version(self):
        with open(os.path.join(os.path.dirname(__file__), "..", "..", "VERSION")) as f:
            self.assertEqual(eg.__version__, f.read().strip())

    def test_token_with_rls_identity(self):
        with connect() as client:
            self.check_sales_token(client.GenerateEmbedToken(sales(), timeout=20))

    def test_errors(self):
        with connect() as caller, connect("stranger") as stranger, connect("limited") as limited:
            limited.GenerateEmbedToken(sales(), timeout=20)  # spends its only token
            cases = [
                ("a report that is not the tenant's", lambda: caller.GenerateEmbedToken(sales(FOREIGN_REPORT), timeout=20),
                 grpc.StatusCode.PERMISSION_DENIED, "REPORT_NOT_ALLOWED", eg.Action.FIX_REQUEST, [], False),
                ("a malformed report id", lambda: caller.GenerateEmbedToken(sales("nope"), timeout=20),
                 grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST", eg.Action.FIX_REQUEST, ["report_ids[0]"], False),
                ("a caller the policy does not name", lambda: stranger.GenerateEmbedToken(sales(), timeout=20),
                 grpc.StatusCode.PERMISSION_DENIED, "CALLER_NOT_IN_POLICY", eg.Action.REPORT, [], False),
                ("a caller over its rate limit", lambda: limited.GenerateEmbedToken(sales(), timeout=20),
                 grpc.StatusCode.RESOURCE_EXHAUSTED, "CALLER_RATE_LIMITED", eg.Action.RETRY, [], True),
            ]
            for name, call, code, reason, action, fields, retry in cases:
                with self.subTest(name):
                    with self.assertRaises(grpc.RpcError) as caught:
                        call()
                    err = caught.exception
                    d = eg.error_details(err)
                    self.assertIsNotNone(d)
                    self.assertEqual(d.code, code)
                    self.assertEqual(d.reason, reason)
                    self.assertEqual(d.reason_value, eg.Reason.Value(reason))
                    self.assertEqual(d.error_info.domain, eg.DOMAIN)
                    self.assertTrue(d.message)
                    self.assertEqual(eg.reason(err), reason)
                    self.assertIs(eg.action(d.reason), action)
                    self.assertEqual([v.field for v in eg.field_violations(err)], fields)
                    for v in eg.field_violations(err):
                        self.assertTrue(v.description)
                    self.assertEqual(eg.is_retryable(err), retry)
                    after = eg.retry_after(err)
                    self.assertEqual(after is not None and after > 0, retry, f"retry_after = {after}")

    def test_asyncio_errors_decode(self):
        import asyncio

        async def call():
            creds = grpc.ssl_channel_credentials(
                root_certificates=read(dev("ca.pem")),
                private_key=read(dev("caller-key.pem")),
                certificate_chain=read(dev("caller.pem")),
            )
            options = [("grpc.ssl_target_name_override", SERVER_NAME)]
            async with grpc.aio.secure_channel(ADDR, creds, options=options) as channel:
                try:
                    await eg.EmbedTokenServiceStub(channel).GenerateEmbedToken(sales("nope"), timeout=20)
                except grpc.aio.AioRpcError as e:
                    return e
            self.fail("the call succeeded")

        err = asyncio.run(call())
        self.assertEqual(eg.reason(err), "INVALID_REQUEST")
        self.assertEqual([v.field for v in eg.field_violations(err)], ["report_ids[0]"])

    def test_asyncio_token_source(self):
        import asyncio

        class AioCounter(grpc.aio.UnaryUnaryClientInterceptor):
            calls = 0

            async def intercept_unary_unary(self, continuation, client_call_details, request):
                AioCounter.calls += 1
                return await continuation(client_call_details, request)

        now = [0.0]

        async def run():
            async with eg.connect_aio(
                ADDR, ca=dev("ca.pem"), cert=dev("caller.pem"), key=dev("caller-key.pem"),
                server_name=SERVER_NAME, interceptors=[AioCounter()],
            ) as client:
                tokens = client.report_tokens(sales(), clock=lambda: now[0])
                got = await asyncio.gather(*(tokens.token() for _ in range(16)))
                self.assertEqual(AioCounter.calls, 1, f"16 concurrent tasks made {AioCounter.calls} calls")
                for t in got:
                    self.assertIs(t, got[0])
                now[0] = got[0].refresh_time.ToMicroseconds() / 1e6 - 1
                self.assertIs(await tokens.token(), got[0])
                now[0] += 1
                fresh = await tokens.token()
                self.assertEqual(AioCounter.calls, 2)
                self.assertIsNot(fresh, got[0])

                failing = client.report_tokens(sales(FOREIGN_REPORT))
                results = await asyncio.gather(failing.token(), failing.token(), return_exceptions=True)
                self.assertEqual(AioCounter.calls, 3)
                self.assertEqual([eg.reason(r) for r in results], ["REPORT_NOT_ALLOWED"] * 2)
                return got[0]

        self.check_sales_token(asyncio.run(run()))

    def test_server_name_is_checked(self):
        with eg.connect(ADDR, ca=dev("ca.pem"), cert=dev("caller.pem"), key=dev("caller-key.pem"),
                        server_name="not-embedgate.example") as wrong:
            with self.assertRaises(grpc.RpcError) as caught:
                wrong.GenerateEmbedToken(sales(), timeout=10)
        self.assertEqual(eg.error_details(caught.exception).code, grpc.StatusCode.UNAVAILABLE)

    def test_closed_port_is_retryable(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with eg.connect(f"127.0.0.1:{port}", ca=dev("ca.pem"), cert=dev("caller.pem"), key=dev("caller-key.pem")) as down:
            with self.assertRaises(grpc.RpcError) as caught:
                down.GenerateEmbedToken(sales(), timeout=10)
        self.assertEqual(eg.error_details(caught.exception).code, grpc.StatusCode.UNAVAILABLE)
        self.assertTrue(eg.is_retryable(caught.exception))
        self.assertIsNone(eg.error_details(ValueError("boom")))
        self.assertFalse(eg.is_retryable(ValueError("boom")))

    def test_every_reason_has_an_action(self):
        """Every reason has an action of its own, the one the README's table gives."""
        with open(os.path.join(os.path.dirname(__file__), "..", "README.md")) as f:
            table = dict(re.findall(r"(?m)^\| `([A-Z_]+)` \| [A-Z_]+ \| (retry|fix the request|report) \|", f.read()))
        for name in eg.Reason.keys():
            if name == "REASON_UNSPECIFIED":
                continue
            self.assertIn(name, eg._reasons._ACTIONS, f"{name} has no action: add it to _reasons.py")
            self.assertEqual(eg.action(name).value, table.get(name), f"{name}: README.md and _reasons.py disagree")
            self.assertIs(eg.action(eg.Reason.Value(name)), eg.action(name))
        self.assertIs(eg.action(9999), eg.Action.REPORT)
        self.assertIs(eg.action("NEWER_THAN_THIS_CLIENT"), eg.Action.REPORT)

    def test_token_source_coalesces_and_caches(self):
        counter = Counter()
        counter.gate.clear()
        now = [0.0]
        with connect(interceptors=[counter]) as client:
            tokens = client.report_tokens(sales(), clock=lambda: now[0])
            # N concurrent askers, one call: hold it until all N wait for it.
            n = 16
            waiting = threading.Semaphore(0)
            tokens._on_wait = waiting.release
            got, errors = [None] * n, []

            def ask(i):
                try:
                    got[i] = tokens.token(timeout=30)
                except Exception as e:  # reported below
                    errors.append(e)

            threads = [threading.Thread(target=ask, args=(i,)) for i in range(n)]
            for t in threads:
                t.start()
            for _ in range(n):
                self.assertTrue(waiting.acquire(timeout=20), "the askers did not all wait for the call in flight")
            counter.gate.set()
            for t in threads:
                t.join(30)
            self.assertEqual(errors, [])
            self.assertEqual(counter.calls, 1, f"{n} concurrent askers made {counter.calls} calls")
            for token in got:
                self.assertIs(token, got[0])
            self.check_sales_token(got[0])

            refresh = got[0].refresh_time.ToMicroseconds() / 1e6
            now[0] = refresh - 1
            self.assertIs(tokens.token(), got[0])
            self.assertEqual(counter.calls, 1, "a fresh token was fetched again")
            now[0] = refresh
            self.assertIsNot(tokens.token(), got[0])
            self.assertEqual(counter.calls, 2, "no new call at refresh_time")

    def test_token_source_does_not_cache_failures(self):
        counter = Counter()
        with connect(interceptors=[counter]) as client:
            tokens = client.report_tokens(sales(FOREIGN_REPORT))
            for i in (1, 2):
                with self.assertRaises(grpc.RpcError) as caught:
                    tokens.token()
                self.assertEqual(eg.reason(caught.exception), "REPORT_NOT_ALLOWED")
                self.assertEqual(counter.calls, i)

    def test_followers_get_the_leaders_error(self):
        gate = threading.Event()
        calls = []

        def fetch():
            calls.append(1)
            gate.wait(20)
            raise ValueError("the call failed")

        tokens = TokenSource(fetch)
        waiting = threading.Semaphore(0)
        tokens._on_wait = waiting.release
        errors = []

        def ask():
            try:
                tokens.token(timeout=30)
            except ValueError as e:
                errors.append(e)

        threads = [threading.Thread(target=ask) for _ in range(4)]
        for t in threads:
            t.start()
        for _ in threads:
            self.assertTrue(waiting.acquire(timeout=20))
        gate.set()
        for t in threads:
            t.join(30)
        self.assertEqual((len(calls), len(errors)), (1, 4))


if __name__ == "__main__":
    unittest.main()
