package flagwire

// localConfig holds the local/offline mode and bootstrap settings.
type localConfig struct {
	bootstrap    any
	bootstrapErr error
}

func defaultLocalConfig() localConfig { return localConfig{} }

// localState is the config syncer's state (local mode).
type localState struct{}

// startLocal loads the bootstrap and starts the config sync, per mode.
func (c *Client) startLocal() error { return nil }
