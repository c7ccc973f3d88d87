package config

import "path/filepath"

// ResolvePath returns p, a path named in the config (a certificate, say), resolved against the
// directory of the config file: absolute paths are returned unchanged, relative ones are joined
// to the directory of c.Source.File. When the config did not come from a file, relative paths
// stay relative to the working directory.
func (c *Config) ResolvePath(p string) string {
	if p == "" || filepath.IsAbs(p) || c.Source.File == "" {
		return p
	}
	return filepath.Join(filepath.Dir(c.Source.File), p)
}
