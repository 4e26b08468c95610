/**
 * A backend-for-frontend (BFF) for a page that embeds a Power BI report: the
 * shape a product team writes. The browser never talks to Embedgate: it asks
 * this server, which knows who the user is (here: a flag standing for the
 * application's session) and calls Embedgate over mTLS with the generated
 * client. It serves:
 *
 *   GET /                       the page (public/index.html, build/public/app.js)
 *   GET /vendor/powerbi.min.js  Microsoft's powerbi-client, from node_modules
 *   GET /api/embed?report=ID    {reportId, reportName, embedUrl, token, tokenId, expiration, refreshTime}
 *
 * By default it reads what `make run` (Embedgate's dev mode) writes into the
 * repository's .dev folder: endpoints.json (the gRPC address), ca.pem,
 * caller.pem and caller-key.pem; flags name other files.
 */
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createServer, type ServerResponse } from "node:http";
import { type AddressInfo } from "node:net";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { createEmbedgateClient, errorDetails, isRetryable, retryAfterMs, type EmbedgateClient } from "@embedgate/client";

const here = dirname(fileURLToPath(import.meta.url)); // build/
const root = resolve(here, ".."); // examples/web

const { values: flags } = parseArgs({
  options: {
    listen: { type: "string", default: "127.0.0.1:3000" },
    "dev-dir": { type: "string", default: resolve(root, "../../.dev") },
    embedgate: { type: "string" }, // host:port; default: the dev folder's endpoints.json
    ca: { type: "string" },
    cert: { type: "string" },
    key: { type: "string" },
    "server-name": { type: "string" },
    tenant: { type: "string", default: "acme" },
    // Who is signed in. A real BFF takes the user from its session; the
    // browser never chooses whose RLS identity it gets.
    user: { type: "string", default: "alice@acme.example" },
    report: { type: "string", default: "a1000000-0000-4000-8000-000000000001" },
  },
});

const devDir = flags["dev-dir"];
let address: string;
let client: EmbedgateClient;
try {
  address = flags.embedgate ?? devAddress(devDir);
  client = createEmbedgateClient(address, {
    ca: flags.ca ?? join(devDir, "ca.pem"),
    cert: flags.cert ?? join(devDir, "caller.pem"),
    key: flags.key ?? join(devDir, "caller-key.pem"),
    // The dev server's certificate is issued for localhost.
    serverName: flags["server-name"] ?? (flags.embedgate === undefined ? "localhost" : undefined),
    defaultTimeoutMs: 10_000,
  });
} catch (err) {
  console.error(`examples/web: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}

/** The gRPC address `embedgate serve --dev` wrote into its dev folder. */
function devAddress(dir: string): string {
  const file = join(dir, "endpoints.json");
  try {
    return (JSON.parse(readFileSync(file, "utf8")) as { grpc: string }).grpc;
  } catch {
    throw new Error(`no --embedgate address, and ${file} cannot be read: start Embedgate with 'make run'`);
  }
}

/** What the page gets: everything powerbi.embed() needs, and when to ask again. */
interface EmbedConfig {
  reportId: string;
  reportName: string;
  embedUrl: string;
  token: string;
  tokenId: string;
  expiration: string;
  refreshTime: string;
}

const reportId = /^[0-9a-fA-F-]{36}$/;

async function embed(res: ServerResponse, url: URL): Promise<void> {
  const report = url.searchParams.get("report") ?? flags.report;
  if (!reportId.test(report)) {
    json(res, 400, { error: "report must be a report id" });
    return;
  }
  try {
    // Embedgate decides the RLS identity from its policy; it also caches
    // identical grants until their refresh time, so asking on every page
    // load and every refresh costs Power BI nothing extra.
    const r = await client.generateEmbedToken({ tenant: flags.tenant, user: flags.user, reportIds: [report] });
    const item = r.reports[0];
    const body: EmbedConfig = {
      reportId: item.id,
      reportName: item.name,
      embedUrl: item.embedUrl,
      token: r.token,
      tokenId: r.tokenId,
      expiration: timestampDate(r.expireTime!).toISOString(),
      refreshTime: timestampDate(r.refreshTime!).toISOString(),
    };
    // Never the token itself: it is a secret.
    log(`embed report=${item.id} token_id=${r.tokenId} expires=${body.expiration} refresh=${body.refreshTime}`);
    json(res, 200, body);
  } catch (err) {
    const d = errorDetails(err);
    if (d === undefined) throw err;
    const reason = d.errorInfo?.reason ?? "";
    log(`embed report=${report} failed code=${Code[d.code]} reason=${reason}`);
    const headers: Record<string, string> = {};
    const after = retryAfterMs(err);
    if (after !== undefined) headers["Retry-After"] = String(Math.ceil(after / 1000));
    json(res, httpStatus(d.code, isRetryable(err)), { error: d.message, reason, retryable: isRetryable(err) }, headers);
  }
}

/** The HTTP status the browser gets for an Embedgate error. */
function httpStatus(code: Code, retryable: boolean): number {
  switch (code) {
    case Code.InvalidArgument:
      return 400;
    case Code.PermissionDenied:
      return 403;
    case Code.NotFound:
      return 404;
    case Code.ResourceExhausted:
      return retryable ? 429 : 503;
    case Code.Unavailable:
      return 503;
    default:
      return 502;
  }
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "Content-Type": "application/json", "Cache-Control": "no-store", ...headers });
  res.end(JSON.stringify(body));
}

function log(line: string): void {
  console.log(`${new Date().toISOString()} ${line}`);
}

// powerbi-client, served from this package's node_modules (no CDN).
const powerbiClient = createRequire(import.meta.url).resolve("powerbi-client/dist/powerbi.min.js");

const files: Record<string, { path: string; type: string }> = {
  "/": { path: join(root, "public/index.html"), type: "text/html; charset=utf-8" },
  "/style.css": { path: join(root, "public/style.css"), type: "text/css; charset=utf-8" },
  "/app.js": { path: join(here, "public/app.js"), type: "text/javascript; charset=utf-8" },
  "/vendor/powerbi.min.js": { path: powerbiClient, type: "text/javascript; charset=utf-8" },
};

// The page runs only this server's scripts, and frames only Power BI's
// public cloud (add the hosts of other clouds if you embed from them).
const contentSecurityPolicy = "default-src 'self'; frame-src https://app.powerbi.com; object-src 'none'; base-uri 'none'";

const server = createServer((req, res) => {
  const url = new URL(req.url ?? "/", "http://localhost");
  if (req.method !== "GET") {
    res.writeHead(405, { Allow: "GET" }).end();
    return;
  }
  if (url.pathname === "/api/embed") {
    embed(res, url).catch((err: unknown) => {
      log(`embed failed: ${String(err)}`);
      if (!res.headersSent) json(res, 500, { error: "internal error" });
    });
    return;
  }
  if (url.pathname === "/favicon.ico") {
    res.writeHead(204).end();
    return;
  }
  const file = files[url.pathname];
  if (file === undefined) {
    res.writeHead(404).end();
    return;
  }
  readFile(file.path).then(
    (content) => {
      res.writeHead(200, { "Content-Type": file.type, "Content-Security-Policy": contentSecurityPolicy, "Cache-Control": "no-cache" });
      res.end(content);
    },
    () => res.writeHead(500).end(),
  );
});

const [host, port] = splitHostPort(flags.listen);
server.listen(port, host, () => {
  const a = server.address() as AddressInfo;
  const shown = a.family === "IPv6" ? `[${a.address}]` : a.address;
  log(`examples/web listening on http://${shown}:${a.port}/ (Embedgate ${address}, tenant ${flags.tenant}, user ${flags.user})`);
});

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => process.exit(0));
}

function splitHostPort(s: string): [string, number] {
  const i = s.lastIndexOf(":");
  return [s.slice(0, i).replace(/^\[|\]$/g, ""), Number(s.slice(i + 1))];
}
