package config

import (
	"crypto/tls"
	"fmt"
	"io"
	"os"
)

// maxPEMBytes bounds the size of one certificate or key file.
const maxPEMBytes = 1 << 20

// loadKeyPair reads and checks the certificate and key files of c, resolved against the config
// file's directory.
func (c *Config) loadKeyPair(cert Certificate) (tls.Certificate, error) {
	certPEM, err := readPEMFile(c.ResolvePath(cert.Cert))
	if err != nil {
		return tls.Certificate{}, err
	}
	keyPEM, err := readPEMFile(c.ResolvePath(cert.Key))
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}

// readPEMFile reads a PEM file of at most maxPEMBytes. It refuses anything but a regular file, so
// that a config naming a device or a pipe cannot stall validation.
func readPEMFile(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPEMBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxPEMBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxPEMBytes)
	}
	return data, nil
}
