import { readFileSync } from "node:fs";
import { createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { EmbedTokenService } from "./gen/embedgate/v1/embed_token_pb.js";

/** A client of Embedgate's EmbedTokenService: one method per RPC, each returning a promise. */
export type EmbedgateClient = Client<typeof EmbedTokenService>;

/** The caller's mTLS material: paths of PEM files. */
export interface MtlsFiles {
  /** The CA bundle that Embedgate's server certificate must chain to. */
  ca: string;
  /** The caller's certificate; its URI SAN (the SPIFFE ID) is the caller's identity. */
  cert: string;
  /** The certificate's private key. */
  key: string;
  /**
   * The name to check the server certificate against instead of the
   * address's host (for example "localhost" for the dev server's certificate).
   */
  serverName?: string;
}

/** Options of {@link createEmbedgateClient} and {@link createMtlsTransport}. */
export interface EmbedgateClientOptions extends MtlsFiles {
  /** Connect interceptors, outermost first (for example for metrics or logging). */
  interceptors?: Interceptor[];
  /** A deadline for every call, in milliseconds, unless a call sets its own `timeoutMs`. */
  defaultTimeoutMs?: number;
}

/**
 * Creates a gRPC transport (HTTP/2, the gRPC protocol, binary protobuf) to
 * Embedgate at `address` ("host:port"), authenticated with mTLS. The files are
 * read once, now: after a certificate rotation, create a new transport.
 */
export function createMtlsTransport(address: string, options: EmbedgateClientOptions): Transport {
  return createGrpcTransport({
    baseUrl: `https://${address}`,
    interceptors: options.interceptors,
    defaultTimeoutMs: options.defaultTimeoutMs,
    nodeOptions: {
      ca: readFileSync(options.ca),
      cert: readFileSync(options.cert),
      key: readFileSync(options.key),
      servername: options.serverName,
      minVersion: "TLSv1.2",
    },
  });
}

/**
 * Creates a client of Embedgate at `address` ("host:port") over gRPC with
 * mTLS. It connects on the first call and keeps one HTTP/2 connection; one
 * client per process is enough.
 *
 * @example
 * const client = createEmbedgateClient("embedgate.platform.svc:8443", {
 *   ca: "/var/run/certs/ca.pem", cert: "/var/run/certs/svid.pem", key: "/var/run/certs/svid-key.pem",
 * });
 * const res = await client.generateEmbedToken({ tenant: "acme", user: "alice@acme.example", reportIds: [id] });
 */
export function createEmbedgateClient(address: string, options: EmbedgateClientOptions): EmbedgateClient {
  return createClient(EmbedTokenService, createMtlsTransport(address, options));
}
