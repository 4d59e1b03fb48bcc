package wire_test

import (
	"testing"

	"github.com/flagwire/flagwire/evaluate"
	"github.com/flagwire/flagwire/internal/wire"
)

// TestMaxConfigBytesIsShared: the config size limit is one number, 64 MiB,
// for the SDK (which uses wire.MaxConfigBytes), the decoder of JSON configs
// and the server (which keeps room for the envelope).
func TestMaxConfigBytesIsShared(t *testing.T) {
	if wire.MaxConfigBytes != 64<<20 || evaluate.MaxConfigJSONSize != wire.MaxConfigBytes {
		t.Fatalf("MaxConfigBytes %d, evaluate.MaxConfigJSONSize %d, want both 64 MiB", wire.MaxConfigBytes, evaluate.MaxConfigJSONSize)
	}
	if wire.MaxServedConfigBytes+wire.MaxEnvelopeOverhead != wire.MaxConfigBytes {
		t.Fatal("served limit plus envelope overhead must be the SDK's limit")
	}
}
