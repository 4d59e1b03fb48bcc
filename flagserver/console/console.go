package console

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"sync"
	"time"
)

// Defaults of Options.
const (
	DefaultMaxSessions = 1000
	DefaultSessionTTL  = 12 * time.Hour
	DefaultIdleTimeout = time.Hour
)

// Prefix is the path the console is served under.
const Prefix = "/ui/"

// maxFormBytes bounds a form post (an evaluation context is the largest).
const maxFormBytes = 256 << 10

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// Options configures a Console. Only API is required.
type Options struct {
	// API is the Flag API the console is a client of: the
	// *flagserver.Server serving /v1 in this process. Required.
	API http.Handler
	// SessionKey signs session cookies (HMAC-SHA256). A cookie signed
	// under another key is refused. Nil or empty means a random key for
	// this Console: sessions never outlive the process anyway.
	SessionKey []byte
	// MaxSessions bounds the signed-in sessions kept; beyond it the least
	// recently used one ends. Zero or negative means DefaultMaxSessions
	// (1,000).
	MaxSessions int
	// SessionTTL is how long a session lasts from sign-in; IdleTimeout
	// ends one unused that long. Zero or negative means DefaultSessionTTL
	// (12h) and DefaultIdleTimeout (1h).
	SessionTTL, IdleTimeout time.Duration
	// SecureCookies marks cookies Secure even on plain HTTP requests (the
	// console behind a proxy that terminates TLS). Requests that arrive
	// over TLS always get Secure cookies.
	SecureCookies bool
	// Now is the clock of sessions and of expiry highlighting. If nil,
	// time.Now is used.
	Now func() time.Time
	// Logger receives failures of the console itself (never tokens). If
	// nil, nothing is logged.
	Logger *slog.Logger
}

// Console serves the web console under Prefix. Create one with New; it is
// safe for concurrent use and starts no goroutines.
type Console struct {
	api      http.Handler
	opts     Options
	now      func() time.Time
	log      *slog.Logger
	sessions *sessions
	pages    map[string]*template.Template
	assets   map[string]asset
	mux      *http.ServeMux
	configs  configCache
	recent   recentCache
	rows     rowCache
	gzips    sync.Pool
	// The templates and assets are prepared by the first console request
	// (load), not by New: a server whose console nobody opens never holds
	// them (about 1 MiB of an idle server's memory).
	loadOnce sync.Once
	loadErr  error
}

type asset struct {
	body        []byte
	contentType string
	etag        string
}

// New builds a Console. It fails when Options.API is nil.
func New(opts Options) (*Console, error) {
	if opts.API == nil {
		return nil, errors.New("console: Options.API is required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxSessions <= 0 {
		opts.MaxSessions = DefaultMaxSessions
	}
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = DefaultSessionTTL
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	key := slices.Clone(opts.SessionKey)
	if len(key) == 0 {
		key = make([]byte, 32)
		rand.Read(key)
	}
	c := &Console{
		api:  opts.API,
		opts: opts,
		now:  opts.Now,
		log:  opts.Logger,
		sessions: &sessions{key: key, max: opts.MaxSessions, ttl: opts.SessionTTL, idle: opts.IdleTimeout,
			now: opts.Now, m: map[string]*session{}},
		pages:  map[string]*template.Template{},
		assets: map[string]asset{},
	}
	c.mux = c.routes()
	return c, nil
}

// load parses the templates and reads the assets, once; every console
// request waits for it. They are embedded in the binary and parsed by the
// package's tests, so it fails only on a build that broke them.
func (c *Console) load() error {
	c.loadOnce.Do(func() {
		if err := c.parseTemplates(); err != nil {
			c.loadErr = err
			return
		}
		c.loadErr = c.loadAssets()
	})
	return c.loadErr
}

func (c *Console) parseTemplates() error {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return err
	}
	for _, n := range names {
		base := path.Base(n)
		if base == "layout.html" || base == "partials.html" {
			continue
		}
		t, err := template.New(base).Funcs(templateFuncs).ParseFS(templateFS, "templates/layout.html", "templates/partials.html", n)
		if err != nil {
			return fmt.Errorf("console: template %s: %w", base, err)
		}
		c.pages[strings.TrimSuffix(base, ".html")] = t
	}
	return nil
}

func (c *Console) loadAssets() error {
	return fs.WalkDir(assetFS, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := assetFS.ReadFile(p)
		if err != nil {
			return err
		}
		ct := "application/octet-stream"
		switch path.Ext(p) {
		case ".css":
			ct = "text/css; charset=utf-8"
		case ".js":
			ct = "text/javascript; charset=utf-8"
		case ".svg":
			ct = "image/svg+xml"
		case ".txt":
			ct = "text/plain; charset=utf-8"
		}
		c.assets[path.Base(p)] = asset{body: b, contentType: ct, etag: fmt.Sprintf(`"%x"`, hashBytes(b))}
		return nil
	})
}

// Mount returns a handler that serves the console under Prefix (and
// redirects "/ui" there) and passes every other request to api.
func (c *Console) Mount(api http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, Prefix):
			c.ServeHTTP(w, r)
		case r.URL.Path == "/ui":
			http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
		default:
			api.ServeHTTP(w, r)
		}
	})
}

// contentSecurityPolicy allows only the console's own script, style and
// images, forms posted to itself, and no framing.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// ServeHTTP serves the console's pages and assets under Prefix.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Cache-Control", "no-store") // the assets replace it
	if err := c.load(); err != nil {
		c.log.Error("console: templates or assets broken", "error", err.Error())
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	c.mux.ServeHTTP(w, r)
}

func (c *Console) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ui/{$}", c.authed(c.home))
	mux.HandleFunc("GET /ui/signin", c.signinPage)
	mux.HandleFunc("POST /ui/signin", c.signin)
	mux.HandleFunc("POST /ui/signout", c.authed(c.signout))
	mux.HandleFunc("GET /ui/flags", c.authed(c.flagsPage))
	mux.HandleFunc("GET /ui/flags/{key}", c.authed(c.flagPage))
	mux.HandleFunc("GET /ui/flags/{key}/kill", c.authed(c.killPage))
	mux.HandleFunc("POST /ui/flags/{key}/kill", c.authed(c.kill))
	mux.HandleFunc("POST /ui/flags/{key}/ramp", c.authed(c.ramp))
	mux.HandleFunc("GET /ui/changes", c.authed(c.changesPage))
	mux.HandleFunc("GET /ui/changes/{id}", c.authed(c.changePage))
	mux.HandleFunc("POST /ui/changes/{id}/{action}", c.authed(c.decide))
	mux.HandleFunc("GET /ui/audit", c.authed(c.auditPage))
	mux.HandleFunc("GET /ui/evaluate", c.authed(c.evaluatePage))
	mux.HandleFunc("POST /ui/evaluate", c.authed(c.evaluate))
	mux.HandleFunc("GET /ui/assets/{name}", c.serveAsset)
	mux.HandleFunc("/ui/", func(w http.ResponseWriter, r *http.Request) {
		if c.sessions.get(r) == nil {
			c.toSignin(w, r)
			return
		}
		c.message(w, r, nil, http.StatusNotFound, "Not found", "There is no console page at "+r.URL.Path+".")
	})
	return mux
}

// authed runs h with the request's session, or sends the browser to the
// sign-in page. A POST must carry the session's CSRF token (403 without).
func (c *Console) authed(h func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s := c.sessions.get(r)
		if s == nil {
			c.toSignin(w, r)
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
			if err := r.ParseForm(); err != nil {
				c.message(w, r, s, http.StatusBadRequest, "Form not accepted", "The form could not be read: "+err.Error())
				return
			}
			if !validCSRF(r.PostForm.Get("csrf"), s.csrf) {
				c.message(w, r, s, http.StatusForbidden, "Form expired", "The form was refused: its security token is missing or stale. Reload the page and submit it again.")
				return
			}
		}
		h(w, r, s)
	}
}

// toSignin redirects to the sign-in page, keeping the page asked for (a
// GET's path and query) to return to.
func (c *Console) toSignin(w http.ResponseWriter, r *http.Request) {
	target := Prefix + "signin"
	if r.Method == http.MethodGet && r.URL.Path != Prefix+"signin" {
		target += "?next=" + url.QueryEscape(r.URL.RequestURI())
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// safeNext returns next when it is a console path (never another origin),
// else the console's start page.
func safeNext(next string) string {
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || !strings.HasPrefix(u.Path, Prefix) ||
		strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") || strings.HasPrefix(u.Path, Prefix+"signin") {
		return Prefix
	}
	return u.RequestURI()
}

func (c *Console) serveAsset(w http.ResponseWriter, r *http.Request) {
	a, ok := c.assets[r.PathValue("name")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("Cache-Control", "public, max-age=3600")
	h.Set("ETag", a.etag)
	if r.Header.Get("If-None-Match") == a.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	c.write(w, r, http.StatusOK, a.body)
}

// write sends body, gzip-compressed when the client accepts it and it is
// worth it.
func (c *Console) write(w http.ResponseWriter, r *http.Request, status int, body []byte) {
	h := w.Header()
	h.Add("Vary", "Accept-Encoding")
	if len(body) < 1024 || !acceptsGzip(r) {
		w.WriteHeader(status)
		w.Write(body)
		return
	}
	h.Set("Content-Encoding", "gzip")
	w.WriteHeader(status)
	zw, _ := c.gzips.Get().(*gzip.Writer)
	if zw == nil {
		zw, _ = gzip.NewWriterLevel(w, gzip.BestSpeed)
	} else {
		zw.Reset(w)
	}
	zw.Write(body)
	zw.Close()
	c.gzips.Put(zw)
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") && strings.ReplaceAll(strings.TrimSpace(params), " ", "") != "q=0" {
			return true
		}
	}
	return false
}

// view is what every page's template gets: the layout's parts and the
// page's own data.
type view struct {
	Title   string
	Nav     string
	Me      *identity
	Env     string
	Envs    []string
	CSRF    string
	Path    string // the page's path, for the environment switcher
	Notice  string
	Error   string
	Data    any
	NoEnv   bool // the page has no environment switcher
	NowYear int
}

func (v *view) Can(scope string) bool { return v.Me != nil && v.Me.has(scope) }

// render executes page with v and writes it.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, page string, v *view) {
	t, ok := c.pages[page]
	if !ok {
		c.log.Error("console: no such template", "page", page)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		c.log.Error("console: rendering failed", "page", page, "error", err.Error())
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	c.write(w, r, status, buf.Bytes())
}

// newView starts a page's view for session s (nil on the sign-in page).
func (c *Console) newView(r *http.Request, s *session, title, nav string) *view {
	v := &view{Title: title, Nav: nav, Path: r.URL.Path}
	if s != nil {
		v.Me = &s.me
		v.CSRF = s.csrf
		v.Envs = s.me.ServedEnvironments
		v.Env = r.URL.Query().Get("environment")
		if r.Method == http.MethodPost && r.PostForm.Get("environment") != "" {
			v.Env = r.PostForm.Get("environment")
		}
		if v.Env == "" && len(v.Envs) > 0 {
			v.Env = v.Envs[0]
		}
	}
	return v
}

// message renders a page with a heading and a text: errors and outcomes.
func (c *Console) message(w http.ResponseWriter, r *http.Request, s *session, status int, title, text string) {
	v := c.newView(r, s, title, "")
	v.Data = text
	if status >= 400 {
		v.Error = text
		v.Data = ""
	}
	c.render(w, r, status, "message", v)
}

// apiFailure renders an API error as a page, signing the browser out on a
// 401 (the token was revoked or expired).
func (c *Console) apiFailure(w http.ResponseWriter, r *http.Request, s *session, err error) {
	var ae *apiError
	if errors.As(err, &ae) {
		if ae.Status == http.StatusUnauthorized {
			c.sessions.remove(s)
			c.clearSessionCookie(w, r)
			c.toSignin(w, r)
			return
		}
		status := ae.Status
		if status < 400 {
			status = http.StatusBadGateway
		}
		c.message(w, r, s, status, "The server refused", describeAPIError(ae))
		return
	}
	c.message(w, r, s, http.StatusBadGateway, "The server refused", err.Error())
}

func describeAPIError(ae *apiError) string {
	switch ae.Status {
	case http.StatusForbidden:
		return "Your token may not do this: " + ae.Message
	case http.StatusTooManyRequests:
		return "Too many requests for your token right now; try again in a moment. (" + ae.Message + ")"
	}
	return ae.Error()
}

// redirectWithNotice answers a successful form post with a redirect to
// target (so that reloading does not post again), where msg is shown.
func (c *Console) redirectWithNotice(w http.ResponseWriter, r *http.Request, s *session, target, msg string) {
	s.setNotice(msg)
	http.Redirect(w, r, target, http.StatusSeeOther)
}

func (c *Console) home(w http.ResponseWriter, r *http.Request, s *session) {
	http.Redirect(w, r, Prefix+"flags", http.StatusSeeOther)
}

func (c *Console) secure(r *http.Request) bool { return c.opts.SecureCookies || r.TLS != nil }

func (c *Console) clearSessionCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: Prefix, MaxAge: -1,
		HttpOnly: true, Secure: c.secure(r), SameSite: http.SameSiteStrictMode})
}

// signinPage shows the sign-in form, with a fresh CSRF token in a cookie
// of its own (there is no session yet).
func (c *Console) signinPage(w http.ResponseWriter, r *http.Request) {
	if c.sessions.get(r) != nil {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	c.renderSignin(w, r, http.StatusOK, r.URL.Query().Get("next"), "")
}

func (c *Console) renderSignin(w http.ResponseWriter, r *http.Request, status int, next, errText string) {
	tok := randomToken(24)
	http.SetCookie(w, &http.Cookie{Name: signinCookie, Value: tok, Path: Prefix + "signin", MaxAge: 3600,
		HttpOnly: true, Secure: c.secure(r), SameSite: http.SameSiteStrictMode})
	v := c.newView(r, nil, "Sign in", "signin")
	v.CSRF = tok
	v.NoEnv = true
	v.Error = errText
	v.Data = safeNext(next)
	c.render(w, r, status, "signin", v)
}

// signin checks the token with GET /v1/me and starts a session.
func (c *Console) signin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		c.renderSignin(w, r, http.StatusBadRequest, "", "The form could not be read.")
		return
	}
	next := r.PostForm.Get("next")
	ck, err := r.Cookie(signinCookie)
	if err != nil || !validCSRF(r.PostForm.Get("csrf"), ck.Value) {
		c.renderSignin(w, r, http.StatusForbidden, next, "The sign-in form expired. Paste your token again.")
		return
	}
	token := strings.TrimSpace(r.PostForm.Get("token"))
	if token == "" {
		c.renderSignin(w, r, http.StatusBadRequest, next, "Paste a token to sign in.")
		return
	}
	res := c.call(r, token, "GET", "/v1/me", nil, nil, nil)
	var me identity
	if err := res.decode(&me); err != nil {
		msg := "The server did not accept this token."
		if ae := res.err(); ae != nil && ae.Status == http.StatusTooManyRequests {
			msg = "Too many failed sign-ins from your address; wait a moment and try again."
		} else if ae != nil && ae.Status != http.StatusUnauthorized {
			msg = "The server could not check the token: " + ae.Error()
		}
		c.renderSignin(w, r, http.StatusUnauthorized, next, msg)
		return
	}
	if old := c.sessions.get(r); old != nil {
		c.sessions.remove(old)
	}
	s := c.sessions.create(token, me)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: c.sessions.cookieValue(s), Path: Prefix,
		HttpOnly: true, Secure: c.secure(r), SameSite: http.SameSiteStrictMode})
	http.SetCookie(w, &http.Cookie{Name: signinCookie, Value: "", Path: Prefix + "signin", MaxAge: -1,
		HttpOnly: true, Secure: c.secure(r), SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, safeNext(next), http.StatusSeeOther)
}

// signout ends the session and clears its cookie.
func (c *Console) signout(w http.ResponseWriter, r *http.Request, s *session) {
	c.sessions.remove(s)
	c.clearSessionCookie(w, r)
	http.Redirect(w, r, Prefix+"signin", http.StatusSeeOther)
}
