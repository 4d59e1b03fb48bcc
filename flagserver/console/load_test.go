package console

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"testing"
)

// New prepares no template or asset: the first console request does,
// once, and it finds every page template and asset embedded in the binary.
func TestFirstRequestLoadsTemplatesAndAssets(t *testing.T) {
	c, err := New(Options{API: http.NotFoundHandler()})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.pages) != 0 || len(c.assets) != 0 {
		t.Fatalf("New prepared %d templates and %d assets; want none before the first request", len(c.pages), len(c.assets))
	}
	rec := httptest.NewRecorder()
	c.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, Prefix+"signin", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %ssignin = %d, want 200:\n%s", Prefix, rec.Code, rec.Body)
	}
	tmpls, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		t.Fatal(err)
	}
	if want := len(tmpls) - 2; len(c.pages) != want { // layout and partials are in every page
		t.Errorf("%d page templates loaded, want %d", len(c.pages), want)
	}
	var assets int
	fs.WalkDir(assetFS, "assets", func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			assets++
		}
		return err
	})
	if len(c.assets) != assets || assets == 0 {
		t.Errorf("%d assets loaded, want the %d embedded", len(c.assets), assets)
	}
}
