package flagserver

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// Proxy headers a server can read the client address from (see
// Options.ProxyHeader).
const (
	// HeaderXForwardedFor is the de facto standard: a comma-separated
	// list of addresses, each proxy appending the address it received
	// the request from.
	HeaderXForwardedFor = "X-Forwarded-For"
	// HeaderForwarded is RFC 7239's header: comma-separated elements,
	// each with a for= parameter naming the node a proxy received the
	// request from.
	HeaderForwarded = "Forwarded"
)

// ParseTrustedProxies parses a list of trusted proxy ranges: CIDR prefixes
// ("10.0.0.0/8", "fd00::/8") or single addresses ("192.0.2.7", "::1").
// Empty entries are skipped. The error names the first bad entry.
func ParseTrustedProxies(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if strings.Contains(s, "/") {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("trusted proxy %q: want a CIDR prefix (10.0.0.0/8) or an address", s)
			}
			out = append(out, normalizePrefix(p))
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: want a CIDR prefix (10.0.0.0/8) or an address", s)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// resolveProxies checks opts.ProxyHeader (default HeaderXForwardedFor) and
// normalizes a copy of opts.TrustedProxies.
func resolveProxies(opts *Options) error {
	switch http.CanonicalHeaderKey(opts.ProxyHeader) {
	case "", HeaderXForwardedFor:
		opts.ProxyHeader = HeaderXForwardedFor
	case HeaderForwarded:
		opts.ProxyHeader = HeaderForwarded
	default:
		return fmt.Errorf("flagserver: ProxyHeader %q: want %s or %s", opts.ProxyHeader, HeaderXForwardedFor, HeaderForwarded)
	}
	trusted := make([]netip.Prefix, 0, len(opts.TrustedProxies))
	for _, p := range opts.TrustedProxies {
		if !p.IsValid() {
			return fmt.Errorf("flagserver: TrustedProxies: invalid prefix %v", p)
		}
		trusted = append(trusted, normalizePrefix(p))
	}
	opts.TrustedProxies = trusted
	return nil
}

// normalizePrefix masks p, and makes an IPv4-mapped prefix IPv4 (client
// addresses are compared unmapped).
func normalizePrefix(p netip.Prefix) netip.Prefix {
	if p.Addr().Is4In6() {
		p = netip.PrefixFrom(p.Addr().Unmap(), max(0, p.Bits()-96))
	}
	return p.Masked()
}

// TrustedPeer reports whether addr lies in one of the trusted ranges.
// IPv4-mapped IPv6 addresses are compared as IPv4.
func TrustedPeer(trusted []netip.Prefix, addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range trusted {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// clientIP is the address of the client a request comes from. It is the
// peer's address unless the peer is a trusted proxy; then the proxy
// header (header: X-Forwarded-For or Forwarded) is read from the right,
// hop by hop: each hop a trusted proxy added is skipped, and the first
// address not in a trusted range is the client (the rightmost untrusted
// hop). Anything left of it was written by the client or by proxies
// nobody vouches for, and is ignored. If every hop is trusted, the
// leftmost is the client; if a hop is missing or not an IP address
// ("unknown", an obfuscated node, garbage), the walk stops and the last
// trusted hop is taken, so a client cannot choose its address.
func clientIP(r *http.Request, trusted []netip.Prefix, header string) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	addr := ap.Addr().Unmap()
	if len(trusted) == 0 || !TrustedPeer(trusted, addr) {
		return addr
	}
	var hops []string
	for _, v := range r.Header.Values(header) {
		if header == HeaderForwarded {
			hops = append(hops, forwardedFor(v)...)
		} else {
			for h := range strings.SplitSeq(v, ",") {
				if strings.TrimSpace(h) != "" { // empty list elements are allowed
					hops = append(hops, h)
				}
			}
		}
	}
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHop(hops[i])
		if !ok {
			return addr
		}
		addr = a
		if !TrustedPeer(trusted, a) {
			return a
		}
	}
	return addr
}

// parseHop reads one hop's address: an IP address, optionally with a
// port ("192.0.2.1:4711", "[2001:db8::1]:4711") or in brackets.
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), a.Zone() == ""
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), ap.Addr().Zone() == ""
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil && a.Is6() {
			return a.Unmap(), a.Zone() == ""
		}
	}
	return netip.Addr{}, false
}

// forwardedFor returns the for= value of each element of one Forwarded
// header line (RFC 7239 §4), unquoted; "" for an element without one.
func forwardedFor(v string) []string {
	var out []string
	for _, elem := range splitQuoted(v, ',') {
		if strings.TrimSpace(elem) == "" {
			continue // empty list elements are allowed (RFC 9110 §5.6.1)
		}
		val := ""
		for _, pair := range splitQuoted(elem, ';') {
			k, v, ok := strings.Cut(pair, "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "for") {
				val = unquote(strings.TrimSpace(v))
				break
			}
		}
		out = append(out, val)
	}
	return out
}

// splitQuoted splits s at sep outside quoted-strings.
func splitQuoted(s string, sep byte) []string {
	var out []string
	start, quoted := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++ // quoted-pair
		case c == '"':
			quoted = !quoted
		case !quoted && c == sep:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// unquote removes a quoted-string's quotes and backslash escapes; a token
// is returned as is, and a malformed quoted-string as "" (not an address).
func unquote(s string) string {
	if !strings.HasPrefix(s, `"`) {
		return s
	}
	if len(s) < 2 || !strings.HasSuffix(s, `"`) {
		return ""
	}
	var b strings.Builder
	for i := 1; i < len(s)-1; i++ {
		if s[i] == '\\' && i+1 < len(s)-1 {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// clientAddr is the rate-limit key of a request's client (clientIP): its
// IP address, or for IPv6 its /64 (one host usually holds a whole /64).
func (s *Server) clientAddr(r *http.Request) string {
	a := clientIP(r, s.opts.TrustedProxies, s.opts.ProxyHeader)
	if !a.IsValid() {
		return r.RemoteAddr
	}
	if a.Is6() {
		if p, err := a.Prefix(64); err == nil {
			return p.String()
		}
	}
	return a.String()
}
