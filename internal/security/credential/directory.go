// Package credential compiles the configured consumers into a Directory that authenticators
// consult: it maps an API key, HTTP basic credentials, a verified client certificate or a JWT
// subject to the consumer they belong to.
//
// Secrets are handled so that neither their values nor their existence leak: API keys are only
// held as SHA-256 digests and confirmed in constant time; basic passwords are checked with bcrypt,
// and a user name that belongs to no consumer still costs one bcrypt comparison. No error or log
// line of this package carries a key or a password.
package credential

import (
	"crypto/rand"
	"fmt"
	"slices"
	"strings"

	"github.com/meshgate/meshgate/internal/config"
)

// Consumer is a compiled consumer: the name, groups and plan of the requests that authenticate as
// it. A Consumer is shared by all of them and must not be modified.
type Consumer struct {
	// Name is the consumer's name.
	Name string
	// Groups are the groups the consumer belongs to.
	Groups []string
	// Plan is the plan that meters the consumer, or "".
	Plan string
}

// Directory maps credentials to consumers. It is built once per configuration and is safe for
// concurrent use.
type Directory struct {
	byName    map[string]*Consumer
	keys      map[[digestSize]byte]apiKey
	basic     map[string]basicUser
	subjects  map[string]*Consumer // certificate subject DN
	dnsNames  map[string]*Consumer // certificate DNS SAN, lower case
	uris      map[string]*Consumer // certificate URI SAN
	jwtSubs   map[string]*Consumer
	dummy     dummyHash
	cache     *basicCache
	cacheSalt [digestSize]byte
}

// NewDirectory compiles consumers. It fails when a consumer has no name or a malformed
// credential, or when a name, API key digest, basic user name, certificate value or JWT subject
// is listed twice; the error names the consumers involved but never a secret.
func NewDirectory(consumers []config.Consumer) (*Directory, error) {
	d := &Directory{
		byName:   make(map[string]*Consumer, len(consumers)),
		keys:     make(map[[digestSize]byte]apiKey),
		basic:    make(map[string]basicUser),
		subjects: make(map[string]*Consumer),
		dnsNames: make(map[string]*Consumer),
		uris:     make(map[string]*Consumer),
		jwtSubs:  make(map[string]*Consumer),
		cache:    newBasicCache(basicCacheSize, basicCacheTTL),
	}
	// The cache key's salt keeps passwords out of memory even as unsalted digests.
	rand.Read(d.cacheSalt[:])
	var costs []int
	for i := range consumers {
		cc := &consumers[i]
		if cc.Name == "" {
			return nil, fmt.Errorf("credential: consumer %d has no name", i)
		}
		if prev, dup := d.byName[cc.Name]; dup {
			return nil, fmt.Errorf("credential: consumer %q is defined twice", prev.Name)
		}
		c := &Consumer{Name: cc.Name, Groups: slices.Clone(cc.Groups), Plan: cc.Plan}
		d.byName[c.Name] = c
		for j, k := range cc.APIKeys {
			if err := d.addAPIKey(c, j, k); err != nil {
				return nil, err
			}
		}
		if cc.Basic != nil {
			cost, err := d.addBasic(c, cc.Basic)
			if err != nil {
				return nil, err
			}
			costs = append(costs, cost)
		}
		if cert := cc.Certificate; cert != nil {
			for _, s := range cert.Subjects {
				if err := addUnique(d.subjects, s, c, "certificate subject"); err != nil {
					return nil, err
				}
			}
			for _, s := range cert.DNSNames {
				if err := addUnique(d.dnsNames, strings.ToLower(s), c, "certificate DNS name"); err != nil {
					return nil, err
				}
			}
			for _, s := range cert.URIs {
				if err := addUnique(d.uris, s, c, "certificate URI"); err != nil {
					return nil, err
				}
			}
		}
		for _, s := range cc.JWTSubjects {
			if err := addUnique(d.jwtSubs, s, c, "JWT subject"); err != nil {
				return nil, err
			}
		}
	}
	d.dummy.cost = typicalCost(costs)
	return d, nil
}

// addUnique maps value to c in m, failing when value is empty or already mapped.
func addUnique(m map[string]*Consumer, value string, c *Consumer, what string) error {
	if value == "" {
		return fmt.Errorf("credential: consumer %q: empty %s", c.Name, what)
	}
	if prev, dup := m[value]; dup {
		return duplicate(what, fmt.Sprintf("%q", value), prev, c)
	}
	m[value] = c
	return nil
}

// duplicate reports a value (already quoted, or a safe label) listed twice.
func duplicate(what, value string, prev, c *Consumer) error {
	if prev == c {
		return fmt.Errorf("credential: consumer %q lists %s %s twice", c.Name, what, value)
	}
	return fmt.Errorf("credential: %s %s belongs to both consumers %q and %q", what, value, prev.Name, c.Name)
}

// ByName returns the consumer named name.
func (d *Directory) ByName(name string) (*Consumer, bool) {
	c, ok := d.byName[name]
	return c, ok
}

// ByJWTSubject returns the consumer whose jwtSubjects lists sub.
func (d *Directory) ByJWTSubject(sub string) (*Consumer, bool) {
	c, ok := d.jwtSubs[sub]
	return c, ok
}
