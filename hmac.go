package flagwire

import (
	"net/http"
	"time"

	"github.com/flagwire/flagwire/internal/wire"
)

func signRequest(req *http.Request, body []byte, keyID string, secret []byte, now time.Time) {
	wire.SignRequest(req, body, keyID, secret, now)
}
