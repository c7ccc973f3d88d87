package credential

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"

	"github.com/meshgate/meshgate/internal/config"
)

// basicUser is one compiled basic credential.
type basicUser struct {
	hash     []byte
	consumer *Consumer
}

// addBasic compiles consumer c's basic credential and returns the cost of its hash.
func (d *Directory) addBasic(c *Consumer, b *config.BasicCredential) (int, error) {
	if b.Username == "" {
		return 0, fmt.Errorf("credential: consumer %q: basic: empty user name", c.Name)
	}
	if strings.ContainsRune(b.Username, ':') {
		return 0, fmt.Errorf("credential: consumer %q: basic: user name %q contains ':'", c.Name, b.Username)
	}
	hash := []byte(b.BcryptHash)
	cost, err := bcrypt.Cost(hash)
	if err != nil {
		return 0, fmt.Errorf("credential: consumer %q: basic: bcryptHash is not a bcrypt hash", c.Name)
	}
	if prev, dup := d.basic[b.Username]; dup {
		return 0, duplicate("basic user name", fmt.Sprintf("%q", b.Username), prev.consumer, c)
	}
	d.basic[b.Username] = basicUser{hash: hash, consumer: c}
	return cost, nil
}

// ByBasic returns the consumer whose basic credential is user and password.
//
// A user name that belongs to no consumer still costs one bcrypt comparison, against a hash of the
// cost most consumers' hashes have, so the time taken does not tell which user names exist.
// Successful checks are remembered for a minute (see basicCacheTTL), so a client that sends the
// same credentials with every request pays for bcrypt about once a minute rather than per
// request; failed checks are never remembered. A password over 72 bytes, which bcrypt cannot
// check, is refused.
func (d *Directory) ByBasic(user, password string) (*Consumer, bool) {
	key := d.cacheKey(user, password)
	if c, ok := d.cache.get(key); ok {
		return c, true
	}
	u, ok := d.basic[user]
	if !ok {
		d.dummy.compare(password)
		return nil, false
	}
	if bcrypt.CompareHashAndPassword(u.hash, []byte(password)) != nil {
		return nil, false
	}
	d.cache.put(key, u.consumer)
	return u.consumer, true
}

// cacheKey identifies a user name and password pair in the cache: an HMAC keyed with the
// directory's random salt, so the cache holds no plain password digest.
func (d *Directory) cacheKey(user, password string) [digestSize]byte {
	m := hmac.New(sha256.New, d.cacheSalt[:])
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(user)))
	m.Write(n[:])
	m.Write([]byte(user))
	m.Write([]byte(password))
	var sum [digestSize]byte
	m.Sum(sum[:0])
	return sum
}

// dummyHash is a bcrypt hash no password is checked against successfully; comparing with it costs
// what checking a real user's password costs. It is made on first use.
type dummyHash struct {
	cost int
	once sync.Once
	hash []byte
}

// compare runs one bcrypt comparison of password against the dummy hash.
func (h *dummyHash) compare(password string) {
	h.once.Do(func() {
		// Making the hash costs about what one comparison does, so the first call takes as long
		// as later ones. An error leaves hash nil, which the comparison below refuses at once.
		h.hash, _ = bcrypt.GenerateFromPassword([]byte("meshgate dummy password"), h.cost)
	})
	_ = bcrypt.CompareHashAndPassword(h.hash, []byte(password))
}

// typicalCost returns the most common of costs (the higher on a tie), or bcrypt's default cost.
func typicalCost(costs []int) int {
	best, bestN := bcrypt.DefaultCost, 0
	n := make(map[int]int, len(costs))
	for _, c := range costs {
		n[c]++
		if n[c] > bestN || (n[c] == bestN && c > best) {
			best, bestN = c, n[c]
		}
	}
	return best
}

// ParseBasic parses the value of an Authorization header carrying HTTP basic credentials:
// "Basic " and the standard base64 encoding of "user:password". The scheme is matched
// case-insensitively; the base64 must be canonical (padded, no stray bits or white space). The
// user name is everything before the first ':' and must not be empty; neither part may contain a
// control character.
func ParseBasic(authorization string) (user, pass string, ok bool) {
	const scheme = "basic"
	if len(authorization) <= len(scheme) || !strings.EqualFold(authorization[:len(scheme)], scheme) {
		return "", "", false
	}
	rest := authorization[len(scheme):]
	if rest[0] != ' ' {
		return "", "", false
	}
	token := strings.TrimLeft(rest, " ")
	raw, err := base64.StdEncoding.Strict().DecodeString(token)
	if err != nil || base64.StdEncoding.EncodeToString(raw) != token {
		return "", "", false
	}
	user, pass, found := strings.Cut(string(raw), ":")
	if !found || user == "" || hasControl(user) || hasControl(pass) {
		return "", "", false
	}
	return user, pass, true
}

// hasControl reports whether s contains an ASCII control character.
func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}
