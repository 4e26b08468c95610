package embedgateclient

import (
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	embedgatev1 "github.com/embedgate/embedgate/gen/embedgate/v1"
)

// Domain is the google.rpc.ErrorInfo domain of Embedgate's errors.
const Domain = "embedgate"

// Details is everything an Embedgate error carries, decoded.
type Details struct {
	// Code and Message are the gRPC status.
	Code    codes.Code
	Message string
	// Reason is ErrorInfo.reason as an enum value: REASON_UNSPECIFIED when
	// there is no Embedgate ErrorInfo, or when the server sent a reason newer
	// than this client (ErrorInfo.Reason still has its name then).
	Reason embedgatev1.Reason
	// ErrorInfo is the google.rpc.ErrorInfo of domain "embedgate" (nil if
	// none): the reason, and metadata such as pbi_request_id.
	ErrorInfo *errdetails.ErrorInfo
	// BadRequest lists the field violations of an INVALID_ARGUMENT (nil if
	// none).
	BadRequest *errdetails.BadRequest
	// RetryInfo says when to retry a RESOURCE_EXHAUSTED (nil if none).
	RetryInfo *errdetails.RetryInfo
}

// DetailsOf decodes a gRPC error returned by a Client. It returns nil for
// nil, and for an error that is no gRPC status (such an error is no
// Embedgate answer: a bug or a canceled context of the caller).
func DetailsOf(err error) *Details {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return nil
	}
	d := &Details{Code: st.Code(), Message: st.Message()}
	for _, detail := range st.Details() {
		switch v := detail.(type) {
		case *errdetails.ErrorInfo:
			if v.GetDomain() == Domain && d.ErrorInfo == nil {
				d.ErrorInfo = v
				d.Reason = embedgatev1.Reason(embedgatev1.Reason_value[v.GetReason()])
			}
		case *errdetails.BadRequest:
			d.BadRequest = v
		case *errdetails.RetryInfo:
			d.RetryInfo = v
		}
	}
	return d
}

// ReasonOf returns the reason of an Embedgate error, or REASON_UNSPECIFIED.
func ReasonOf(err error) embedgatev1.Reason {
	if d := DetailsOf(err); d != nil {
		return d.Reason
	}
	return embedgatev1.Reason_REASON_UNSPECIFIED
}

// IsRetryable reports whether the same call may succeed later: its reason's
// action is [ActionRetry]; or, for a reason this client does not know, the
// error carries a RetryInfo; or it carries no Embedgate reason and its code
// is UNAVAILABLE (the connection failed). Wait [RetryAfter] first when it
// says so, else back off exponentially.
func IsRetryable(err error) bool {
	d := DetailsOf(err)
	switch {
	case d == nil:
		return false
	case d.Reason != embedgatev1.Reason_REASON_UNSPECIFIED:
		return ActionOf(d.Reason) == ActionRetry
	case d.ErrorInfo != nil:
		return d.RetryInfo != nil
	default:
		return d.Code == codes.Unavailable
	}
}

// RetryAfter returns the delay the server asks for before a retry
// (google.rpc.RetryInfo), and false when it names none.
func RetryAfter(err error) (time.Duration, bool) {
	d := DetailsOf(err)
	if d == nil || d.RetryInfo.GetRetryDelay() == nil {
		return 0, false
	}
	return d.RetryInfo.GetRetryDelay().AsDuration(), true
}

// FieldViolations returns the fields an INVALID_ARGUMENT names, each with
// its field path (for example "report_ids[0]") and description; nil when
// there are none.
func FieldViolations(err error) []*errdetails.BadRequest_FieldViolation {
	return DetailsOf(err).badRequest().GetFieldViolations()
}

func (d *Details) badRequest() *errdetails.BadRequest {
	if d == nil {
		return nil
	}
	return d.BadRequest
}
