package flagwire

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
)

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
