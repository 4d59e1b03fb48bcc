//go:build unix

package flagserver

import (
	"net"
	"syscall"
	"testing"
)

// smallRecvBufDialer dials with a small socket receive buffer, set before
// connecting so that the window the client advertises is small from the
// first segment: a client that does not read then fills up after a few
// kilobytes, as one on a slow network would, instead of after the
// megabytes a loopback connection buffers by default.
func smallRecvBufDialer(t testing.TB, size int) *net.Dialer {
	t.Helper()
	return &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, size)
		})
		if err != nil {
			return err
		}
		return serr
	}}
}
