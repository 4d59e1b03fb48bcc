package testkit

import (
	"os"
	"testing"
)

// PostgresDSN returns the DSN of the test database
// (FLAGWIRE_TEST_POSTGRES). Without one the test is skipped, except in CI
// (CI=true), where it fails: CI starts a cluster (.ci/postgres.sh) and
// must run the PostgreSQL tests.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("FLAGWIRE_TEST_POSTGRES")
	if dsn == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("FLAGWIRE_TEST_POSTGRES is not set in CI: .ci/run starts a PostgreSQL cluster and exports it")
		}
		t.Skip("FLAGWIRE_TEST_POSTGRES is not set: skipping the PostgreSQL tests (start a cluster with `eval \"$(.ci/postgres.sh start)\"`)")
	}
	return dsn
}
