// Package testenv gives tests the real services they run against — PostgreSQL,
// Caddy and the Docker engine — and enforces the house rule: on a developer
// machine a missing service skips the test with a message naming it; under
// CI (CI set) a missing service fails the test.
package testenv

import (
	"os"
	"testing"
)

// Missing reports that a service a test needs is not available: a failure
// under CI, a skip elsewhere. It never returns.
func Missing(t testing.TB, what string, err error) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is required under CI but not available: %v", what, err)
	}
	t.Skipf("%s not available (%v); start it to run this test", what, err)
}
