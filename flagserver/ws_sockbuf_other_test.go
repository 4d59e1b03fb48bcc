//go:build !unix

package flagserver

import (
	"net"
	"testing"
)

// smallRecvBufDialer skips the test: it sets SO_RCVBUF, done on unix only.
func smallRecvBufDialer(t testing.TB, size int) *net.Dialer {
	t.Helper()
	t.Skip("a small socket receive buffer is set on unix only")
	return nil
}
