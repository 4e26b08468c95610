/**
 * Embedgate's client for Node.js: the generated protobuf-es messages and
 * service, a Connect gRPC transport with mTLS, a coalescing embed-token
 * source and error helpers.
 *
 * The messages of the API are exported here; buf.validate's and the whole of
 * google.rpc's are under "@embedgate/client/gen/...".
 *
 * @packageDocumentation
 */
export * from "./gen/embedgate/v1/embed_token_pb.js";
export * from "./gen/embedgate/v1/reason_pb.js";
export {
  BadRequestSchema,
  ErrorInfoSchema,
  RetryInfoSchema,
  type BadRequest,
  type BadRequest_FieldViolation,
  type ErrorInfo,
  type RetryInfo,
} from "./gen/google/rpc/error_details_pb.js";
export { version } from "./gen/version.js";
export * from "./client.js";
export * from "./tokens.js";
export * from "./errors.js";
export { Action, actionOf, isKnownReason } from "./reasons.js";
