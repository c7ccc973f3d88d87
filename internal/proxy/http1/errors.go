package http1

import "errors"

// ErrIncomplete reports that the buffer does not yet hold a whole message head; read more and parse
// again from the start of the same message.
var ErrIncomplete = errors.New("http1: incomplete message head")

// ErrWriteAfterClose is returned by ChunkedWriter.Write after the last chunk has been written.
var ErrWriteAfterClose = errors.New("http1: write after close of chunked body")

// Reason codes carried by ParseError. They are stable: meshgate puts them in its reason response
// header, the access log and metric labels.
const (
	// ReasonBadRequestLine is a malformed request line: method, request-target or version.
	ReasonBadRequestLine = "bad_request_line"
	// ReasonBadStatusLine is a malformed response status line.
	ReasonBadStatusLine = "bad_status_line"
	// ReasonUnsupportedVersion is a well-formed HTTP version other than 1.0 and 1.1.
	ReasonUnsupportedVersion = "unsupported_version"
	// ReasonBadHeader is a malformed field line: bad name or value characters, obs-fold, white
	// space before the colon, a bare CR or LF, or a name imitating a framing field.
	ReasonBadHeader = "bad_header"
	// ReasonHeaderTooLarge is a head longer than Limits.MaxHeaderBytes.
	ReasonHeaderTooLarge = "header_too_large"
	// ReasonTooManyHeaders is a head with more fields than Limits.MaxHeaderCount, or a trailer
	// section with more than ChunkLimits.MaxTrailerCount fields.
	ReasonTooManyHeaders = "too_many_headers"
	// ReasonAmbiguousFraming is a message whose body length two parsers could disagree on: both
	// Content-Length and Transfer-Encoding, repeated framing fields, chunked that is repeated, not
	// final or has parameters, or Transfer-Encoding in HTTP/1.0.
	ReasonAmbiguousFraming = "ambiguous_framing"
	// ReasonBadContentLength is a Content-Length value that is not a plain decimal number in range.
	ReasonBadContentLength = "bad_content_length"
	// ReasonBadTransferEncoding is a Transfer-Encoding value that is empty or not a list of tokens.
	ReasonBadTransferEncoding = "bad_transfer_encoding"
	// ReasonUnsupportedTransferCoding is a Transfer-Encoding naming codings other than chunked.
	ReasonUnsupportedTransferCoding = "unsupported_transfer_coding"
	// ReasonBodyNotAllowed is a GET or HEAD request declaring a body (see Limits.AllowGetBody).
	ReasonBodyNotAllowed = "body_not_allowed"
	// ReasonBadHost is a missing, repeated or malformed Host, or one that disagrees with the
	// authority of an absolute-form request-target.
	ReasonBadHost = "bad_host"
	// ReasonBadChunk is a malformed or abusive chunked body: size line, chunk extension, missing
	// CRLF, or framing overhead out of proportion to the data.
	ReasonBadChunk = "bad_chunk"
	// ReasonBadTrailer is a trailer section that is too large or names a framing or routing field.
	ReasonBadTrailer = "bad_trailer"
)

// ParseError describes a message the codec refuses. Status is the response status meshgate sends
// for it: 400, 431, 501 or 505 for requests, and 502 for every response parse error (the upstream
// misbehaved). Chunked body errors carry 400; a caller reading an upstream body maps them to 502.
type ParseError struct {
	// Status is the HTTP status code to answer with.
	Status int
	// Reason is a stable snake_case reason code, one of the Reason constants.
	Reason string
	// Msg is a short human-readable description.
	Msg string
}

// Error returns "http1: " followed by the description and the reason code.
func (e *ParseError) Error() string {
	return "http1: " + e.Msg + " (" + e.Reason + ")"
}

func perr(status int, reason, msg string) *ParseError {
	return &ParseError{Status: status, Reason: reason, Msg: msg}
}

func badRequestLine(msg string) *ParseError { return perr(400, ReasonBadRequestLine, msg) }
func badHeader(msg string) *ParseError      { return perr(400, ReasonBadHeader, msg) }
func ambiguous(msg string) *ParseError      { return perr(400, ReasonAmbiguousFraming, msg) }
func badHost(msg string) *ParseError        { return perr(400, ReasonBadHost, msg) }
func badChunk(msg string) *ParseError       { return perr(400, ReasonBadChunk, msg) }

// asResponseError turns a request-side parse error into the response-side one (status 502).
func asResponseError(err error) error {
	var pe *ParseError
	if errors.As(err, &pe) && pe.Status != 502 {
		return &ParseError{Status: 502, Reason: pe.Reason, Msg: pe.Msg}
	}
	return err
}
