package testenv

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/togather-foundation/togather-chatops/internal/localenv"
	"github.com/togather-foundation/togather-chatops/ops"
)

// Caddy starts a real Caddy on free loopback ports in a temporary directory,
// serving localenv.TogatherCaddyfile with slot live on ports[slot], stops it
// when the test ends, and returns it with the proxied site's base URL. A
// missing caddy binary is reported through Missing.
func Caddy(t testing.TB, slot ops.Slot, ports map[ops.Slot]int) (*localenv.Caddy, string) {
	t.Helper()
	if _, err := exec.LookPath("caddy"); err != nil {
		Missing(t, "Caddy", err)
	}
	port, ok := ports[slot]
	if !ok {
		t.Fatalf("testenv.Caddy: no port for slot %q in %v", slot, ports)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	c, url, err := localenv.StartTogatherCaddy(ctx, t.TempDir(), localenv.CaddyfileOptions{Slot: slot, UpstreamPort: port})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c, url
}
