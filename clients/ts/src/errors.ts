import { durationMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  BadRequestSchema,
  ErrorInfoSchema,
  RetryInfoSchema,
  type BadRequest,
  type BadRequest_FieldViolation,
  type ErrorInfo,
  type RetryInfo,
} from "./gen/google/rpc/error_details_pb.js";
import { Reason } from "./gen/embedgate/v1/reason_pb.js";
import { Action, actionOf } from "./reasons.js";

/** The google.rpc.ErrorInfo domain of Embedgate's errors. */
export const DOMAIN = "embedgate";

/** Everything an Embedgate error carries, decoded. */
export interface ErrorDetails {
  /** The gRPC status code (Connect's codes are gRPC's). */
  code: Code;
  /** The status message. */
  message: string;
  /**
   * ErrorInfo.reason as an enum value: REASON_UNSPECIFIED when there is no
   * Embedgate ErrorInfo, or when the server sent a reason newer than this
   * client (errorInfo.reason still has its name then).
   */
  reason: Reason;
  /** The google.rpc.ErrorInfo of domain "embedgate": reason, and metadata such as pbi_request_id. */
  errorInfo?: ErrorInfo;
  /** The field violations of an INVALID_ARGUMENT. */
  badRequest?: BadRequest;
  /** When to retry a RESOURCE_EXHAUSTED. */
  retryInfo?: RetryInfo;
}

/**
 * Decodes an error thrown by a client call. Returns undefined for anything
 * that is not a ConnectError (a bug in the caller, not an answer).
 */
export function errorDetails(err: unknown): ErrorDetails | undefined {
  if (!(err instanceof ConnectError)) {
    return undefined;
  }
  const errorInfo = err.findDetails(ErrorInfoSchema).find((i) => i.domain === DOMAIN);
  const reason = errorInfo ? (Reason[errorInfo.reason as keyof typeof Reason] ?? Reason.REASON_UNSPECIFIED) : Reason.REASON_UNSPECIFIED;
  return {
    code: err.code,
    message: err.rawMessage,
    reason,
    errorInfo,
    badRequest: err.findDetails(BadRequestSchema)[0],
    retryInfo: err.findDetails(RetryInfoSchema)[0],
  };
}

/** The reason of an Embedgate error, or REASON_UNSPECIFIED. */
export function reasonOf(err: unknown): Reason {
  return errorDetails(err)?.reason ?? Reason.REASON_UNSPECIFIED;
}

/**
 * Whether the same call may succeed later: its reason's action is retry;
 * or, for a reason this client does not know, the error carries a
 * RetryInfo; or it carries no Embedgate reason and its code is UNAVAILABLE
 * (the connection failed). Wait {@link retryAfterMs} first when it says so,
 * else back off exponentially.
 */
export function isRetryable(err: unknown): boolean {
  const d = errorDetails(err);
  if (d === undefined) {
    return false;
  }
  if (d.reason !== Reason.REASON_UNSPECIFIED) {
    return actionOf(d.reason) === Action.Retry;
  }
  if (d.errorInfo !== undefined) {
    return d.retryInfo !== undefined;
  }
  return d.code === Code.Unavailable;
}

/** The delay the server asks for before a retry (google.rpc.RetryInfo), in milliseconds; undefined when it names none. */
export function retryAfterMs(err: unknown): number | undefined {
  const delay = errorDetails(err)?.retryInfo?.retryDelay;
  return delay ? durationMs(delay) : undefined;
}

/** The fields an INVALID_ARGUMENT names (field path such as "report_ids[0]", and description); empty when none. */
export function fieldViolations(err: unknown): BadRequest_FieldViolation[] {
  return errorDetails(err)?.badRequest?.fieldViolations ?? [];
}
