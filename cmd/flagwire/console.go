package main

import (
	"log/slog"
	"net/http"

	"github.com/flagwire/flagwire/flagserver"
	"github.com/flagwire/flagwire/flagserver/console"
)

// withConsole returns the handler `flagwire serve` serves: the Flag API,
// and with on the web console at /ui/ beside it (a client of the API in
// the same process).
func withConsole(srv *flagserver.Server, on bool, logger *slog.Logger) (http.Handler, error) {
	if !on {
		return srv, nil
	}
	ui, err := console.New(console.Options{API: srv, Logger: logger})
	if err != nil {
		return nil, err
	}
	return ui.Mount(srv), nil
}
