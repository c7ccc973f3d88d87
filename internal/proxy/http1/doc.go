// Package http1 is meshgate's HTTP/1.x wire codec: a strict, allocation-lean parser for request and
// response heads, readers and writers for the chunked transfer coding, head serialisers, and the
// hop-by-hop field rules a proxy applies between the two sides. The downstream server and the
// pooled upstream client both use it, so the same rules guard both directions.
//
// # Strictness
//
// The parser follows RFC 9112 and the request-smuggling (desync) lessons behind it. Anything that two
// implementations could frame differently is rejected rather than repaired:
//
//   - lines must end in CRLF; a bare CR or bare LF anywhere in a head is an error;
//   - obs-fold (a field line starting with SP or HTAB) and white space between a field name and its
//     colon are errors;
//   - field names must be tokens; field values may hold HTAB, SP, VCHAR and obs-text only (no NUL,
//     CR, LF, other controls or DEL);
//   - a field name that only imitates Content-Length or Transfer-Encoding (Transfer_Encoding,
//     Content---Length) is rejected, because some back ends fold "_" into "-";
//   - Content-Length must be plain digits, must appear once, and must not be combined with
//     Transfer-Encoding; Transfer-Encoding must appear once and hold exactly "chunked" (chunked
//     repeated, not final or with parameters is answered 400, other codings 501), and is refused in
//     HTTP/1.0 messages;
//   - GET and HEAD requests may not carry a body unless Limits.AllowGetBody is set;
//   - HTTP/1.1 requests need exactly one valid Host field, and an absolute-form target must name the
//     same authority as Host;
//   - only HTTP/1.0 and HTTP/1.1 are accepted (other well-formed versions get 505).
//
// # Allocation
//
// ParseRequest and ParseResponse convert the head bytes to one string and slice every field from it,
// so a parsed message never aliases the caller's read buffer, and reuse the capacity of the
// message's Header slice: parsing into a reused message costs one allocation. The serialisers
// append to a caller-owned slice and do not allocate.
package http1
