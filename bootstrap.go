package flagwire

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/wire"
)

// loadEnvelope verifies a signed envelope and compiles its config.
func (c *Client) loadEnvelope(data []byte, now time.Time) (*snapshotState, error) {
	if int64(len(data)) > c.cfg.localOptions.maxConfig {
		return nil, fmt.Errorf("%w: %d bytes exceed the %d-byte limit", wire.ErrBootstrapFormat, len(data), c.cfg.localOptions.maxConfig)
	}
	env, err := wire.DecodeEnvelope(data)
	if err != nil {
		return nil, err
	}
	if len(c.cfg.localOptions.keys) == 0 {
		return nil, errors.New("no trusted keys configured (WithTrustedKeys): a bootstrap is never used unverified")
	}
	if err := env.Verify(c.cfg.localOptions.keys, now); err != nil {
		return nil, err
	}
	if env.Environment != "" && env.Environment != c.cfg.environment {
		return nil, fmt.Errorf("bootstrap is for environment %q, not %q", env.Environment, c.cfg.environment)
	}
	// The one config decoder; fields a newer server adds are skipped
	// (forward compatibility, as with unknown stream events).
	var cfg evaluate.Config
	if err := evaluate.DecodeJSON(env.Payload, &cfg, evaluate.JSONOptions{AllowUnknownFields: true}); err != nil {
		return nil, fmt.Errorf("%w: payload: %v", wire.ErrBootstrapFormat, err)
	}
	if cfg.Version != env.Version {
		return nil, fmt.Errorf("%w: payload version %d does not match envelope version %d", wire.ErrBootstrapFormat, cfg.Version, env.Version)
	}
	snap, err := evaluate.Compile(&cfg)
	if err != nil {
		return nil, err
	}
	return &snapshotState{snap: snap, source: SourceBootstrap, receivedAt: env.IssuedAt}, nil
}

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
