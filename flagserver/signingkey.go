package flagserver

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/flagwire/flagwire/internal/wire"
)

// SigningKeyFile is the name of the bootstrap signing key in a data
// directory: an Ed25519 private key, PKCS #8 PEM ("PRIVATE KEY"), mode 0600.
const SigningKeyFile = "signing-key.pem"

// LoadOrCreateSigningKey returns the bootstrap signing key kept in
// dir/signing-key.pem, creating it (a new Ed25519 key, written 0600 with
// an fsync, atomically: a concurrent creator's key wins) when the file does
// not exist. created reports whether this call made it. An unreadable,
// malformed or non-Ed25519 file is an error naming the path: it is never
// replaced, since every client trusts the key it holds.
func LoadOrCreateSigningKey(dir string) (key ed25519.PrivateKey, created bool, err error) {
	path := filepath.Join(dir, SigningKeyFile)
	key, err = readSigningKey(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("flagserver: data dir: %w", err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, false, fmt.Errorf("flagserver: generate signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, false, fmt.Errorf("flagserver: encode signing key: %w", err)
	}
	tmp, err := os.CreateTemp(dir, SigningKeyFile+".tmp-*")
	if err != nil {
		return nil, false, fmt.Errorf("flagserver: create signing key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err == nil {
		_, err = tmp.Write(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
		if err == nil {
			err = tmp.Sync()
		}
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, false, fmt.Errorf("flagserver: write signing key %s: %w", tmp.Name(), err)
		}
	} else {
		tmp.Close()
		return nil, false, fmt.Errorf("flagserver: write signing key: %w", err)
	}
	// Link, not rename: it fails if another process created the key first,
	// and then that key is the one.
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			key, err := readSigningKey(path)
			return key, false, err
		}
		return nil, false, fmt.Errorf("flagserver: create signing key %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil { // make the new name durable
		d.Sync()
		d.Close()
	}
	return priv, true, nil
}

// writeSigningKey replaces DIR/signing-key.pem with key: written 0600 to
// a temporary file, fsynced, renamed over it, and the directory fsynced.
func writeSigningKey(dir string, key ed25519.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("flagserver: encode signing key: %w", err)
	}
	tmp, err := os.CreateTemp(dir, SigningKeyFile+".tmp-*")
	if err != nil {
		return fmt.Errorf("flagserver: write signing key: %w", err)
	}
	defer os.Remove(tmp.Name())
	err = tmp.Chmod(0o600)
	if err == nil {
		_, err = tmp.Write(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(dir, SigningKeyFile))
	}
	if err != nil {
		return fmt.Errorf("flagserver: write signing key: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

func readSigningKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("flagserver: read signing key %s: %w", path, err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("flagserver: signing key %s is corrupt: want a PKCS #8 PEM block \"PRIVATE KEY\" (remove the file to make a new key; clients trusting the old one will refuse the new)", path)
	}
	k, err := wire.PrivateKeyPKCS8(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("flagserver: signing key %s is corrupt: %w", path, err)
	}
	return k, nil
}
