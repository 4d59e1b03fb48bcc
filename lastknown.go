package flagwire

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
)

// persistLastKnown fetches the signed envelope of the current config and
// writes it atomically.
func (c *Client) persistLastKnown(ctx context.Context) error {
	req, err := c.getEnv(ctx, c.eps[c.lastEndpoint.Load()].url, "bootstrap")
	if err != nil {
		return err
	}
	c.authorize(req, nil)
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, c.cfg.localOptions.maxConfig+1))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return statusError(resp, data, c.cfg.clock.Now())
	}
	st, err := c.loadEnvelope(data, c.cfg.clock.Now())
	if err != nil {
		return fmt.Errorf("server's envelope does not verify: %w", err)
	}
	if v := st.snap.Version(); v < c.local.persistedVersion {
		return nil // never overwrite a newer last-known config
	}
	if err := writeFileAtomic(c.cfg.localOptions.lastKnownPath, data); err != nil {
		return err
	}
	c.local.persistedVersion = st.snap.Version()
	return nil
}

// abandonPersist cancels a last-known write in progress: Close calls it
// when its ctx ends before the client's goroutines have stopped.
func (c *Client) abandonPersist() {
	if c.local != nil && c.local.persistStop != nil {
		c.local.persistStop()
	}
}

// writeFileAtomic writes data to path via a temp file, fsync and rename, so
// a crash leaves either the old file or the new one.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
