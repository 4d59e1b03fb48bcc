package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestConnLimiterTrustedProxy: a trusted proxy's connections are not
// capped by --max-conns-per-addr (its clients share its address); other
// addresses still are.
func TestConnLimiterTrustedProxy(t *testing.T) {
	r := startServe(t, "--env", "prod", "--max-conns-per-addr", "5", "--trusted-proxies", "127.0.3.1,10.0.0.0/8")
	addr := strings.TrimPrefix(r.url, "http://")
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	open := func(from string) (net.Conn, error) {
		c := dialFrom(t, from, addr)
		held = append(held, c)
		fmt.Fprintf(c, "GET /v1/flags?environment=prod HTTP/1.1\r\nHost: x\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return c, err
		}
		res.Body.Close()
		return c, nil
	}
	for i := range 20 {
		if _, err := open("127.0.3.1"); err != nil {
			t.Fatalf("connection %d from the trusted proxy: %v", i+1, err)
		}
	}
	for i := range 5 {
		if _, err := open("127.0.3.2"); err != nil {
			t.Fatalf("connection %d from an untrusted address: %v", i+1, err)
		}
	}
	if _, err := open("127.0.3.2"); err == nil {
		t.Fatal("sixth connection from an untrusted address answered")
	}
}

// TestServeWarnsOfFileLimit: a --max-conns beyond the process's file
// descriptor limit is named at start (connections past the limit would
// fail to be accepted).
func TestServeWarnsOfFileLimit(t *testing.T) {
	n, ok := fileLimit()
	if !ok {
		t.Skip("no file descriptor limit on this system")
	}
	warned := func(r *running) bool {
		for _, l := range r.banner {
			if strings.HasPrefix(l, "warning: the file descriptor limit") {
				return true
			}
		}
		return false
	}
	over := startServe(t, "--env", "prod", "--max-conns", fmt.Sprint(n+1))
	if !warned(over) {
		t.Errorf("--max-conns %d above the limit %d: no warning in %q", n+1, n, over.banner)
	}
	under := startServe(t, "--env", "prod", "--max-conns", "100")
	if warned(under) {
		t.Errorf("--max-conns 100: warning in %q", under.banner)
	}
}
