// The TypeScript client against the real Embedgate server over mTLS. The Go
// test clients/interop_test.go starts `embedgate serve --dev` and runs this
// file with node --test; it says where through the environment:
//   EMBEDGATE_ADDR          host:port of the gRPC listener
//   EMBEDGATE_DEV_DIR       the dev folder: ca.pem, caller.pem, limited.pem,
//                           stranger.pem (and -key.pem), emulator-ca.pem
//   EMBEDGATE_SERVER_NAME   the name in the server certificate
//   EMBEDGATE_EMULATOR_URL  the Power BI emulator (to check what a token grants)
// Tokens are secrets: nothing here prints one.
import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import { request } from "node:https";
import { createServer } from "node:net";
import { join } from "node:path";
import { test } from "node:test";
import { Code, type Interceptor } from "@connectrpc/connect";
import {
  Action,
  Reason,
  actionOf,
  createEmbedgateClient,
  errorDetails,
  fieldViolations,
  isKnownReason,
  isRetryable,
  reasonOf,
  reportTokens,
  retryAfterMs,
  version,
  type EmbedgateClient,
  type GenerateEmbedTokenResponse,
} from "../src/index.js";

function env(name: string): string {
  const v = process.env[name];
  assert.ok(v, `${name} is not set: run this suite through clients/interop_test.go (make test)`);
  return v;
}

const addr = env("EMBEDGATE_ADDR");
const dir = env("EMBEDGATE_DEV_DIR");
const serverName = env("EMBEDGATE_SERVER_NAME");
const emulatorURL = env("EMBEDGATE_EMULATOR_URL");

const SALES_REPORT = "a1000000-0000-4000-8000-000000000001";
const SALES_DATASET = "d1000000-0000-4000-8000-000000000001";
const FOREIGN_REPORT = "a2000000-0000-4000-8000-000000000001";
const sales = { tenant: "acme", user: "alice@acme.example", reportIds: [SALES_REPORT] };

/** A client for the caller whose files are NAME.pem and NAME-key.pem in the dev folder. */
function dial(name: string, interceptors: Interceptor[] = []): EmbedgateClient {
  return createEmbedgateClient(addr, {
    ca: join(dir, "ca.pem"),
    cert: join(dir, `${name}.pem`),
    key: join(dir, `${name}-key.pem`),
    serverName,
    interceptors,
    defaultTimeoutMs: 20_000,
  });
}

/** What the emulator says the token with this id grants. */
function lookup(tokenId: string): Promise<{ identities: { username: string; roles: string[]; customData: string }[] }> {
  return new Promise((resolve, reject) => {
    const req = request(`${emulatorURL}/_emulator/tokens/${tokenId}`, { ca: readFileSync(join(dir, "emulator-ca.pem")) }, (res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => (res.statusCode === 200 ? resolve(JSON.parse(body)) : reject(new Error(`emulator lookup: ${res.statusCode}`))));
    });
    req.on("error", reject);
    req.end();
  });
}

async function checkSalesToken(res: GenerateEmbedTokenResponse): Promise<void> {
  assert.ok(res.token.length > 0, "no token");
  assert.ok(res.tokenId.length > 0, "no token id");
  assert.ok(res.refreshTime && res.expireTime && res.refreshTime.seconds < res.expireTime.seconds, "refresh_time is not before expire_time");
  assert.equal(res.reports.length, 1);
  assert.equal(res.reports[0].id, SALES_REPORT);
  assert.equal(res.reports[0].datasetId, SALES_DATASET);
  assert.match(res.reports[0].embedUrl, /^https:\/\//);
  const grant = await lookup(res.tokenId);
  assert.deepEqual(
    grant.identities.map((i) => ({ username: i.username, roles: i.roles, customData: i.customData })),
    [{ username: "alice@acme.example", roles: ["Customer"], customData: "acme" }],
  );
}

/** Runs fn, which must throw, and returns what it threw. */
async function thrown(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
  } catch (e) {
    return e;
  }
  assert.fail("the call succeeded; want an error");
}

test("the package version is the API version", () => {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8"));
  assert.equal(version, pkg.version);
});

test("an RLS tenant gets a token with its identity", async () => {
  await checkSalesToken(await dial("caller").generateEmbedToken(sales));
});

test("errors decode in one call", async (t) => {
  const caller = dial("caller");
  const limited = dial("limited");
  await limited.generateEmbedToken(sales); // spends the rate-limited caller's only token

  const cases = [
    {
      name: "a report that is not the tenant's",
      call: () => caller.generateEmbedToken({ ...sales, reportIds: [FOREIGN_REPORT] }),
      code: Code.PermissionDenied, reason: Reason.REPORT_NOT_ALLOWED, action: Action.FixRequest, fields: [] as string[], retry: false,
    },
    {
      name: "a malformed report id",
      call: () => caller.generateEmbedToken({ ...sales, reportIds: ["nope"] }),
      code: Code.InvalidArgument, reason: Reason.INVALID_REQUEST, action: Action.FixRequest, fields: ["report_ids[0]"], retry: false,
    },
    {
      name: "a caller the policy does not name",
      call: () => dial("stranger").generateEmbedToken(sales),
      code: Code.PermissionDenied, reason: Reason.CALLER_NOT_IN_POLICY, action: Action.Report, fields: [], retry: false,
    },
    {
      name: "a caller over its rate limit",
      call: () => limited.generateEmbedToken(sales),
      code: Code.ResourceExhausted, reason: Reason.CALLER_RATE_LIMITED, action: Action.Retry, fields: [], retry: true,
    },
  ];
  for (const c of cases) {
    await t.test(c.name, async () => {
      const err = await thrown(c.call);
      const d = errorDetails(err);
      assert.ok(d, `not a ConnectError: ${err}`);
      assert.equal(d.code, c.code);
      assert.equal(Reason[d.reason], Reason[c.reason]);
      assert.equal(d.errorInfo?.domain, "embedgate");
      assert.ok(d.message.length > 0);
      assert.equal(reasonOf(err), c.reason);
      assert.equal(actionOf(d.reason), c.action);
      assert.deepEqual(fieldViolations(err).map((v) => v.field), c.fields);
      for (const v of fieldViolations(err)) assert.ok(v.description.length > 0);
      assert.equal(isRetryable(err), c.retry);
      const after = retryAfterMs(err);
      assert.equal(after !== undefined && after > 0, c.retry, `retryAfterMs = ${after}`);
    });
  }
});

test("a closed port is UNAVAILABLE and retryable; a non-RPC error is neither", async () => {
  const port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
  const down = createEmbedgateClient(`127.0.0.1:${port}`, {
    ca: join(dir, "ca.pem"), cert: join(dir, "caller.pem"), key: join(dir, "caller-key.pem"), serverName,
  });
  const err = await thrown(() => down.generateEmbedToken(sales));
  assert.equal(errorDetails(err)?.code, Code.Unavailable);
  assert.equal(isRetryable(err), true);
  assert.equal(errorDetails(new Error("boom")), undefined);
  assert.equal(isRetryable(new Error("boom")), false);
});

test("serverName is what the server certificate is checked against", async () => {
  const wrong = createEmbedgateClient(addr, {
    ca: join(dir, "ca.pem"), cert: join(dir, "caller.pem"), key: join(dir, "caller-key.pem"), serverName: "not-embedgate.example",
  });
  const err = await thrown(() => wrong.generateEmbedToken(sales));
  // connect-node reports the failed handshake as INTERNAL, naming the host.
  assert.match(errorDetails(err)?.message ?? "", /not-embedgate\.example/);
});

test("every reason has an action of its own, the one the README's table gives", () => {
  const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
  const table = new Map<string, string>();
  for (const m of readme.matchAll(/^\| `([A-Z_]+)` \| [A-Z_]+ \| (retry|fix the request|report) \|/gm)) table.set(m[1], m[2]);
  for (const [name, value] of Object.entries(Reason)) {
    if (typeof value !== "number" || value === Reason.REASON_UNSPECIFIED) continue;
    assert.ok(isKnownReason(value), `${name} has no action: add it to src/reasons.ts`);
    assert.equal(actionOf(value), table.get(name), `${name}: README.md and src/reasons.ts disagree`);
  }
  assert.equal(actionOf(9999 as Reason), Action.Report);
});

test("the token source: one call for concurrent askers, cached until refreshTime", async () => {
  let calls = 0;
  const counter: Interceptor = (next) => (req) => {
    calls++;
    return next(req);
  };
  let now = Date.now();
  const tokens = reportTokens(dial("caller", [counter]), sales, { now: () => now });

  // All askers ask before the first answer can arrive: they share one call.
  const got = await Promise.all(Array.from({ length: 16 }, () => tokens.token()));
  assert.equal(calls, 1, `16 concurrent askers made ${calls} calls`);
  for (const t of got) assert.equal(t, got[0]);
  await checkSalesToken(got[0]);

  const refreshMs = Number(got[0].refreshTime!.seconds) * 1000 + Math.floor(got[0].refreshTime!.nanos / 1e6);
  now = refreshMs - 1000;
  assert.equal(await tokens.token(), got[0]);
  assert.equal(calls, 1, "a fresh token was fetched again");

  now = refreshMs;
  const fresh = await tokens.token();
  assert.notEqual(fresh, got[0]);
  assert.equal(calls, 2, "no new call at refreshTime");
});

test("the token source does not cache a failure", async () => {
  let calls = 0;
  const counter: Interceptor = (next) => (req) => {
    calls++;
    return next(req);
  };
  const tokens = reportTokens(dial("caller", [counter]), { ...sales, reportIds: [FOREIGN_REPORT] });
  const [a, b] = await Promise.allSettled([tokens.token(), tokens.token()]);
  assert.equal(calls, 1);
  for (const r of [a, b]) {
    assert.equal(r.status, "rejected");
    assert.equal(reasonOf((r as PromiseRejectedResult).reason), Reason.REPORT_NOT_ALLOWED);
  }
  assert.equal(reasonOf(await thrown(() => tokens.token())), Reason.REPORT_NOT_ALLOWED);
  assert.equal(calls, 2, "the failure was cached");
});
