package flagwire

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/wire"
)

// SignBootstrap builds a signed bootstrap envelope for cfg — the format of
// GET /v1/bootstrap and `flagwire sign` — valid from issued for ttl. Use it
// to ship a bootstrap file with a service or to make one in tests. cfg must
// compile; its Environment and Version go into the envelope.
func SignBootstrap(cfg *evaluate.Config, priv ed25519.PrivateKey, issued time.Time, ttl time.Duration) ([]byte, error) {
	if cfg == nil {
		return nil, errors.New("flagwire: SignBootstrap: nil config")
	}
	if len(priv) != ed25519.PrivateKeySize {
		return nil, errors.New("flagwire: SignBootstrap: not an Ed25519 private key")
	}
	if _, err := evaluate.Compile(cfg); err != nil {
		return nil, err
	}
	payload, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	env := wire.BootstrapEnvelope{Environment: cfg.Environment, Version: cfg.Version, IssuedAt: issued, ExpiresAt: issued.Add(ttl), Payload: payload}
	env.Sign(priv)
	return json.Marshal(env)
}

// KeyID returns the key id under which pub verifies bootstrap files
// ("ed25519:" and 16 hex digits), as printed by `flagwire keygen`.
func KeyID(pub ed25519.PublicKey) string { return wire.KeyID(pub) }

// readConfigFile reads a bootstrap or last-known file safely: a regular
// file (through symlinks) of at most limit bytes. Anything else — a FIFO, a
// device such as /dev/zero, a directory, a socket — is refused with an error
// naming the path and what it is. The open never blocks (O_NONBLOCK: a FIFO
// without a writer would otherwise hang New), the type and size are checked
// on the opened file (no race with a swap of the path), and the read goes
// through a limit checked while reading, so a file growing meanwhile is
// refused too: no more than limit+1 bytes are ever read.
func readConfigFile(path string, limit int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|openNoBlock, 0)
	if err != nil {
		return nil, err // *fs.PathError: names the path
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is %s, not a regular file: refused", path, fileKind(st.Mode()))
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("%s has %d bytes, over the %d-byte limit: refused", path, st.Size(), limit)
	}
	var buf bytes.Buffer
	buf.Grow(int(st.Size()) + 1)
	if _, err := buf.ReadFrom(io.LimitReader(f, limit+1)); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if int64(buf.Len()) > limit {
		return nil, fmt.Errorf("%s has more than %d bytes (the limit): refused", path, limit)
	}
	return buf.Bytes(), nil
}

// fileKind names what a non-regular file is, for errors.
func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO (named pipe)"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	}
	return "not a regular file (" + m.Type().String() + ")"
}
