package state

import (
	"encoding/json"

	"github.com/meshgate/meshgate/internal/config"
)

// copyConfig returns a deep copy of c through its JSON encoding, the same encoding proxies
// receive, keeping c.Source.
func copyConfig(c *config.Config) *config.Config {
	b, err := json.Marshal(c)
	if err != nil {
		panic("state: config does not encode: " + err.Error()) // only plain data: cannot happen
	}
	var out config.Config
	if err := json.Unmarshal(b, &out); err != nil {
		panic("state: config does not decode: " + err.Error())
	}
	out.Source = c.Source
	return &out
}
