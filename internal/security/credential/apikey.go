package credential

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"

	"github.com/meshgate/meshgate/internal/config"
)

// digestSize is the size of a SHA-256 digest.
const digestSize = sha256.Size

// apiKey is one compiled API key.
type apiKey struct {
	digest   [digestSize]byte
	id       string
	consumer *Consumer
}

// addAPIKey compiles the j-th API key of consumer c.
func (d *Directory) addAPIKey(c *Consumer, j int, k config.APIKeyCredential) error {
	raw, err := hex.DecodeString(k.SHA256)
	if err != nil || len(raw) != digestSize {
		return fmt.Errorf("credential: consumer %q: API key %d: sha256 is not %d hex digits", c.Name, j, 2*digestSize)
	}
	var sum [digestSize]byte
	copy(sum[:], raw)
	id := k.ID
	if id == "" {
		id = hex.EncodeToString(sum[:4])
	}
	if prev, dup := d.keys[sum]; dup {
		return duplicate("API key", fmt.Sprintf("%q", id), prev.consumer, c)
	}
	d.keys[sum] = apiKey{digest: sum, id: id, consumer: c}
	return nil
}

// ByAPIKey returns the consumer that owns the API key key and the key's id. The key is hashed
// and the stored digest confirmed with a constant-time comparison; the key itself is never kept
// nor logged.
func (d *Directory) ByAPIKey(key string) (c *Consumer, keyID string, ok bool) {
	sum := sha256.Sum256([]byte(key))
	k, found := d.keys[sum]
	if !found || subtle.ConstantTimeCompare(k.digest[:], sum[:]) != 1 {
		return nil, "", false
	}
	return k.consumer, k.id, true
}
