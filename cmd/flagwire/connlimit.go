package main

import (
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/flagwire/flagwire/flagserver"
)

// connLimiter bounds open connections, globally and per client address,
// without letting idle hostile connections lock real clients out:
//
//   - per address (IPv4 address, IPv6 /64): beyond perAddr, a new
//     connection from that address is closed at once, so one source
//     cannot take the global room. Trusted proxies are exempt: every
//     client behind a load balancer shares its address, so a fleet of
//     SDKs streaming through it would otherwise be capped at perAddr;
//     they are bounded by max alone;
//   - globally: at max, the connection idle longest (between requests on
//     keep-alive) is closed to make room; if none is idle, the new
//     connection is closed at once.
//
// Slow and stalled connections are shed by the http.Server's timeouts
// (ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout); the
// limiter learns which connections are idle from http.Server.ConnState.
// Connections are closed, never queued: a refused client sees a reset and
// its retry policy decides, rather than waiting unseen in the backlog.
type connLimiter struct {
	net.Listener
	max, perAddr int
	trusted      []netip.Prefix // peers exempt from perAddr

	mu      sync.Mutex
	total   int
	byAddr  map[string]int
	idle    map[net.Conn]time.Time
	refused int64
	evicted int64
}

func newConnLimiter(l net.Listener, max, perAddr int, trusted []netip.Prefix) *connLimiter {
	return &connLimiter{Listener: l, max: max, perAddr: perAddr, trusted: trusted, byAddr: map[string]int{}, idle: map[net.Conn]time.Time{}}
}

// Accept returns the next connection within the limits.
func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		addr, proxy := connAddr(c, l.trusted)
		var victim net.Conn
		l.mu.Lock()
		ok := proxy || l.byAddr[addr] < l.perAddr || l.perAddr <= 0
		if ok && l.max > 0 && l.total >= l.max {
			var oldest time.Time
			for ic, since := range l.idle {
				if victim == nil || since.Before(oldest) {
					victim, oldest = ic, since
				}
			}
			if victim == nil {
				ok = false
			} else {
				delete(l.idle, victim)
				l.evicted++
			}
		}
		if ok {
			l.total++
			l.byAddr[addr]++
		} else {
			l.refused++
		}
		l.mu.Unlock()
		if victim != nil {
			victim.Close() // its slot is freed by its Close
		}
		if !ok {
			c.Close()
			continue
		}
		return &limitedConn{Conn: c, l: l, addr: addr}, nil
	}
}

// connState is the http.Server.ConnState hook.
func (l *connLimiter) connState(c net.Conn, st http.ConnState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if st == http.StateIdle {
		l.idle[c] = time.Now()
	} else {
		delete(l.idle, c)
	}
}

func (l *connLimiter) release(c *limitedConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.idle, c)
	l.total--
	if l.byAddr[c.addr]--; l.byAddr[c.addr] <= 0 {
		delete(l.byAddr, c.addr)
	}
}

// stats returns open, refused and evicted connection counts.
func (l *connLimiter) stats() (open int, refused, evicted int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total, l.refused, l.evicted
}

type limitedConn struct {
	net.Conn
	l    *connLimiter
	addr string
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c) })
	return err
}

// connAddr is a connection's limit key — its peer's IP, or IPv6 /64 —
// and whether the peer is a trusted proxy.
func connAddr(c net.Conn, trusted []netip.Prefix) (key string, proxy bool) {
	ta, ok := c.RemoteAddr().(*net.TCPAddr)
	if !ok {
		return c.RemoteAddr().String(), false
	}
	ip := ta.IP
	if a, ok := netip.AddrFromSlice(ip); ok && flagserver.TrustedPeer(trusted, a) {
		proxy = true
	}
	if v4 := ip.To4(); v4 != nil {
		return v4.String(), proxy
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64", proxy
}
