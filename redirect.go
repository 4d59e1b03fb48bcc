package flagwire

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// maxRedirects bounds a chain of same-origin redirects, as net/http's
// default policy does.
const maxRedirects = 10

// withRedirectPolicy returns a shallow copy of hc (never modified) that
// refuses redirects to another origin than the original request's: the
// 3xx answer is returned as is (http.ErrUseLastResponse), so no request,
// header or body reaches the other origin, and statusError turns it into
// BAD_RESPONSE. Same-origin redirects go through hc's own CheckRedirect,
// or net/http's limit of 10.
func withRedirectPolicy(hc *http.Client) *http.Client {
	cp := *hc
	next := hc.CheckRedirect
	cp.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if !sameOrigin(req.URL, via[0].URL) {
			return http.ErrUseLastResponse
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= maxRedirects {
			return fmt.Errorf("stopped after %d redirects", maxRedirects)
		}
		return nil
	}
	return &cp
}

// sameOrigin reports whether a and b have the same scheme, host and port
// (a missing port is the scheme's default).
func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Hostname(), b.Hostname()) && portOf(a) == portOf(b)
}

func portOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return "443"
	case "http":
		return "80"
	}
	return ""
}

// redirectMessage describes a redirect answer the SDK did not follow. It
// names the other origin only, never the Location's path or query.
func redirectMessage(resp *http.Response) string {
	switch resp.StatusCode {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
	default: // 300, 304, 305…: not a redirect the API may answer
		return fmt.Sprintf("unexpected HTTP %d (%s)", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	loc, err := resp.Location()
	switch {
	case err != nil:
		return fmt.Sprintf("redirect (HTTP %d) without a usable Location: not followed", resp.StatusCode)
	case resp.Request != nil && !sameOrigin(loc, resp.Request.URL):
		return fmt.Sprintf("redirect to another origin (%s://%s) refused: API calls only follow redirects within the endpoint's origin", loc.Scheme, loc.Host)
	}
	return fmt.Sprintf("redirect (HTTP %d) not followed", resp.StatusCode)
}
