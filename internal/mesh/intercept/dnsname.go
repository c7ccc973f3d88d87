package intercept

import (
	"strings"

	"github.com/meshgate/meshgate/internal/config"
)

// nameKind classifies a query name relative to the mesh zone.
type nameKind int

const (
	nameOutside   nameKind = iota // not in the zone
	nameApex                      // the zone itself
	nameNamespace                 // <ns>.<zone>: exists only as a parent of services
	nameService                   // <svc>.<ns>.<zone>
	nameInvalid                   // in the zone but not a possible service name
)

// parseName classifies qname, a fully qualified name in presentation format, relative to zone,
// a lower-case fully qualified name other than the root. For a service name it returns the key "<svc>.<ns>" in lower
// case. Labels must be mesh names: lower-case letters, digits and '-', at most 63 bytes, no '-'
// at either end; anything else in the zone (escapes included) is nameInvalid.
func parseName(qname, zone string) (string, nameKind) {
	q := strings.ToLower(qname)
	if !strings.HasSuffix(q, ".") {
		q += "."
	}
	if q == zone {
		return "", nameApex
	}
	rest, ok := strings.CutSuffix(q, "."+zone)
	if !ok {
		return "", nameOutside
	}
	labels := strings.Split(rest, ".")
	for _, l := range labels {
		if !config.IsMeshName(l) {
			return "", nameInvalid
		}
	}
	switch len(labels) {
	case 1:
		return "", nameNamespace
	case 2:
		return rest, nameService
	default:
		return "", nameInvalid
	}
}
