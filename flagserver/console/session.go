package console

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Cookie names. The session cookie holds a session id and its HMAC under
// the console's key, never the token; the sign-in cookie holds the CSRF
// token of the sign-in form only.
const (
	sessionCookie = "flagwire_session"
	signinCookie  = "flagwire_signin"
)

var b64 = base64.RawURLEncoding

// randomToken returns n random bytes, base64url.
func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return b64.EncodeToString(b)
}

// identity is what GET /v1/me said of a token.
type identity struct {
	Subject            string   `json:"subject"`
	Scopes             []string `json:"scopes"`
	Environments       []string `json:"environments"`
	ServedEnvironments []string `json:"servedEnvironments"`
}

func (id *identity) has(scope string) bool {
	for _, s := range id.Scopes {
		if s == scope {
			return true
		}
	}
	return false
}

// session is one signed-in browser.
type session struct {
	id      string
	token   string // the bearer token: never rendered, logged or put in a URL
	csrf    string
	me      identity
	created time.Time

	mu       sync.Mutex
	lastSeen time.Time
	notice   string // shown once, on the next page (after a redirect)
}

// setNotice keeps msg for the next page.
func (s *session) setNotice(msg string) {
	s.mu.Lock()
	s.notice = msg
	s.mu.Unlock()
}

// takeNotice returns and forgets the pending notice.
func (s *session) takeNotice() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.notice
	s.notice = ""
	return n
}

// sessions holds the signed-in browsers, at most max of them: when full,
// expired sessions go first, then the least recently used.
type sessions struct {
	key       []byte
	max       int
	ttl, idle time.Duration
	now       func() time.Time

	mu sync.Mutex
	m  map[string]*session
}

func (ss *sessions) expired(s *session, now time.Time) bool {
	s.mu.Lock()
	last := s.lastSeen
	s.mu.Unlock()
	return now.Sub(s.created) >= ss.ttl || now.Sub(last) >= ss.idle
}

// create stores a new session for token and returns it.
func (ss *sessions) create(token string, me identity) *session {
	now := ss.now()
	s := &session{id: randomToken(32), token: token, csrf: randomToken(32), me: me, created: now, lastSeen: now}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if len(ss.m) >= ss.max {
		for id, o := range ss.m {
			if ss.expired(o, now) {
				delete(ss.m, id)
			}
		}
	}
	for len(ss.m) >= ss.max {
		var oldest *session
		for _, o := range ss.m {
			if oldest == nil || o.seen().Before(oldest.seen()) {
				oldest = o
			}
		}
		delete(ss.m, oldest.id)
	}
	ss.m[s.id] = s
	return s
}

func (s *session) seen() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastSeen
}

// get returns the live session the request's cookie names, or nil.
func (ss *sessions) get(r *http.Request) *session {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	id, ok := ss.verify(c.Value)
	if !ok {
		return nil
	}
	now := ss.now()
	ss.mu.Lock()
	s := ss.m[id]
	if s != nil && ss.expired(s, now) {
		delete(ss.m, id)
		s = nil
	}
	ss.mu.Unlock()
	if s == nil {
		return nil
	}
	s.mu.Lock()
	s.lastSeen = now
	s.mu.Unlock()
	return s
}

// remove ends a session.
func (ss *sessions) remove(s *session) {
	ss.mu.Lock()
	delete(ss.m, s.id)
	ss.mu.Unlock()
}

// count returns the number of stored sessions.
func (ss *sessions) count() int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return len(ss.m)
}

func (ss *sessions) mac(id string) string {
	m := hmac.New(sha256.New, ss.key)
	m.Write([]byte("flagwire console session\x00" + id))
	return b64.EncodeToString(m.Sum(nil))
}

// cookieValue is "ID.MAC".
func (ss *sessions) cookieValue(s *session) string { return s.id + "." + ss.mac(s.id) }

// verify returns the session id of a cookie value whose MAC holds.
func (ss *sessions) verify(v string) (string, bool) {
	id, mac, ok := strings.Cut(v, ".")
	if !ok || id == "" || len(v) > 256 {
		return "", false
	}
	return id, hmac.Equal([]byte(mac), []byte(ss.mac(id)))
}

// validCSRF compares a submitted CSRF token with the expected one in
// constant time.
func validCSRF(got, want string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
