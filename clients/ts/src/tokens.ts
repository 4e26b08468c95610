import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampMs, type Timestamp } from "@bufbuild/protobuf/wkt";
import type {
  GenerateDashboardEmbedTokenRequestSchema,
  GenerateDashboardEmbedTokenResponse,
  GenerateEmbedTokenRequestSchema,
  GenerateEmbedTokenResponse,
} from "./gen/embedgate/v1/embed_token_pb.js";
import type { EmbedgateClient } from "./client.js";

/** An embed token response: it says when to ask for a new token. */
export interface RefreshableToken {
  refreshTime?: Timestamp;
}

/** Options of a {@link TokenSource}. */
export interface TokenSourceOptions {
  /** The clock, in milliseconds since the epoch (tests); default Date.now. */
  now?: () => number;
}

/**
 * Hands out one embed token for one request until the token's
 * `refreshTime`, then asks Embedgate for a new one. Concurrent callers that
 * find no fresh token share one call: N askers, one RPC. A failed call
 * rejects every caller waiting for it and is not cached.
 *
 * The resolved response is shared between callers: read it, do not modify it.
 */
export class TokenSource<T extends RefreshableToken> {
  private readonly fetch: () => Promise<T>;
  private readonly now: () => number;
  private cached: T | undefined;
  private freshUntil = 0;
  private inflight: Promise<T> | undefined;

  /** @param fetch asks Embedgate for a token (see {@link reportTokens} and {@link dashboardTokens}). */
  constructor(fetch: () => Promise<T>, options: TokenSourceOptions = {}) {
    this.fetch = fetch;
    this.now = options.now ?? Date.now;
  }

  /** Returns the current token, or the one being fetched, or fetches one. */
  token(): Promise<T> {
    if (this.cached !== undefined && this.now() < this.freshUntil) {
      return Promise.resolve(this.cached);
    }
    if (this.inflight === undefined) {
      const call = this.fetch().then(
        (t) => {
          this.cached = t;
          this.freshUntil = t.refreshTime ? timestampMs(t.refreshTime) : 0;
          this.inflight = undefined;
          return t;
        },
        (e: unknown) => {
          this.inflight = undefined;
          throw e;
        },
      );
      this.inflight = call;
    }
    return this.inflight;
  }
}

/** A TokenSource of report tokens for one GenerateEmbedToken request. */
export function reportTokens(
  client: EmbedgateClient,
  request: MessageInitShape<typeof GenerateEmbedTokenRequestSchema>,
  options?: TokenSourceOptions,
): TokenSource<GenerateEmbedTokenResponse> {
  return new TokenSource(() => client.generateEmbedToken(request), options);
}

/** A TokenSource of dashboard (or tile) tokens for one GenerateDashboardEmbedToken request. */
export function dashboardTokens(
  client: EmbedgateClient,
  request: MessageInitShape<typeof GenerateDashboardEmbedTokenRequestSchema>,
  options?: TokenSourceOptions,
): TokenSource<GenerateDashboardEmbedTokenResponse> {
  return new TokenSource(() => client.generateDashboardEmbedToken(request), options);
}
