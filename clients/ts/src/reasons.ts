import { Reason } from "./gen/embedgate/v1/reason_pb.js";

/** What a caller does about an error, by its reason. */
export enum Action {
  /**
   * The policy, the Power BI setup or Embedgate's own credential needs the
   * platform team; retrying does not help. Also the action for a reason this
   * client does not know.
   */
  Report = "report",
  /** The request (or the caller's own identity) is wrong: the same request fails the same way. */
  FixRequest = "fix the request",
  /** Retry after RetryInfo's delay when there is one, else with exponential backoff. */
  Retry = "retry",
}

/**
 * The action of every reason: the first advice of each value's comment in
 * embedgate/v1/reason.proto (see the package README for the table).
 */
const actions: Partial<Record<Reason, Action>> = {
  [Reason.INVALID_REQUEST]: Action.FixRequest, // BadRequest lists the fields
  [Reason.NO_CALLER_IDENTITY]: Action.FixRequest, // the workload's certificate
  [Reason.CALLER_NOT_IN_POLICY]: Action.Report,
  [Reason.TENANT_NOT_ALLOWED]: Action.Report,
  [Reason.REPORT_NOT_ALLOWED]: Action.FixRequest, // or report, if the tenant should have it
  [Reason.EDIT_NOT_ALLOWED]: Action.FixRequest, // ask without edit, or report
  [Reason.POWERBI_ITEM_NOT_FOUND]: Action.FixRequest, // or report
  [Reason.RLS_IDENTITY_MISMATCH]: Action.Report,
  [Reason.POWERBI_REJECTED_REQUEST]: Action.Report,
  [Reason.POWERBI_NOT_AUTHORIZED]: Action.Report,
  [Reason.UNSUPPORTED_ITEM]: Action.FixRequest, // as the message says
  [Reason.POWERBI_THROTTLED]: Action.Retry, // after RetryInfo
  [Reason.POWERBI_QUOTA_EXCEEDED]: Action.Report,
  [Reason.CALLER_RATE_LIMITED]: Action.Retry, // after RetryInfo
  [Reason.DASHBOARD_NOT_ALLOWED]: Action.FixRequest,
  [Reason.CREATE_NOT_ALLOWED]: Action.FixRequest, // ask without create, or report
  [Reason.UPSTREAM_UNAVAILABLE]: Action.Retry, // with backoff
  [Reason.CREDENTIAL_REJECTED]: Action.Report,
  [Reason.INTERNAL]: Action.Report, // with the x-request-id response header
  [Reason.RLS_NOT_ENFORCED]: Action.Report,
  [Reason.POWERBI_FORBIDDEN]: Action.Report,
  [Reason.POWERBI_PRINCIPAL_NOT_ALLOWED]: Action.Report,
  [Reason.OVERLOADED]: Action.Retry, // after RetryInfo, with jitter
  [Reason.DATASET_NOT_ALLOWED]: Action.Report,
  [Reason.IDENTITY_KIND_MISMATCH]: Action.Report,
  [Reason.SSO_NOT_APPLICABLE]: Action.Report,
  [Reason.TOKEN_LIMIT_EXCEEDED]: Action.FixRequest, // fewer reports in one token
  [Reason.EXPLAIN_NOT_ALLOWED]: Action.FixRequest, // explain as yourself
  [Reason.USER_EMBEDDING_NOT_ALLOWED]: Action.Report,
  [Reason.USER_ASSERTION_EXPIRED]: Action.FixRequest, // a new token for the user
  [Reason.USER_ASSERTION_INVALID]: Action.FixRequest, // a token for Embedgate's API
  [Reason.USER_CONSENT_REQUIRED]: Action.FixRequest, // the user consents, then a new token
  [Reason.USER_INTERACTION_REQUIRED]: Action.FixRequest, // sign in again with the claims
  [Reason.USER_NOT_ALLOWED]: Action.FixRequest, // without that report, or the user gets access
};

/** What a caller does about an error of this reason. */
export function actionOf(reason: Reason): Action {
  return actions[reason] ?? Action.Report;
}

/** Whether this client sorts the reason itself (tests: every reason must be). */
export function isKnownReason(reason: Reason): boolean {
  return actions[reason] !== undefined;
}
