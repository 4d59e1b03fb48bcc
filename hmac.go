package flagwire

import (
	"net/http"
	"time"

	"github.com/flagwire/flagwire/internal/wire"
)

// signRequest signs req with a fresh nonce (scheme
// FLAGWIRE-HMAC-SHA256-V2, see wire.SignRequest): every send, including a
// retry or a stream reconnect, must be signed again.
func signRequest(req *http.Request, body []byte, keyID string, secret []byte, now time.Time) {
	wire.SignRequest(req, body, keyID, secret, now)
}
