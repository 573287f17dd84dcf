package testenv

import (
	"os"
	"testing"
)

// migrateRequestsSysctl hands connections waiting in a closing listener's
// queue to its replacement. Caddy 2.6 listens with SO_REUSEPORT and, on
// every config load, closes the old socket: without this setting Linux
// resets the connections queued on it, a few per thousand switches under
// load. docs/operations.md lists it as a host requirement for zero-drop
// switches; tests of zero-drop behaviour run with the documented host configuration.
const migrateRequestsSysctl = "/proc/sys/net/ipv4/tcp_migrate_req"

// MigrateRequests applies the host setting for the test and restores it.
func MigrateRequests(t *testing.T) {
	t.Helper()
	old, err := os.ReadFile(migrateRequestsSysctl)
	if err != nil {
		t.Logf("net.ipv4.tcp_migrate_req unavailable (%v): measuring without it", err)
		return
	}
	if err := os.WriteFile(migrateRequestsSysctl, []byte("1\n"), 0o644); err != nil {
		t.Logf("net.ipv4.tcp_migrate_req not writable (%v): measuring without it", err)
		return
	}
	t.Cleanup(func() { _ = os.WriteFile(migrateRequestsSysctl, old, 0o644) })
}
