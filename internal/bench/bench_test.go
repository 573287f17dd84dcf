// Package bench measures the figures of DESIGN.md §8. Each figure is a
// TestBench… test that runs only with TOGATHER_BENCH=1 (make bench), measures
// in one run and prints one "RESULT name=value" line. The tests assert
// behaviour, never timings: the numbers are for people to compare with §8.
package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/togather-foundation/togather-chatops/internal/config"
	"github.com/togather-foundation/togather-chatops/internal/slackfake"
)

// requireBench skips t unless TOGATHER_BENCH=1: benchmarks are slow and
// their numbers only mean something when run on purpose.
func requireBench(t *testing.T) {
	t.Helper()
	if os.Getenv("TOGATHER_BENCH") != "1" {
		t.Skip("benchmark: set TOGATHER_BENCH=1 (make bench) to run it")
	}
}

// printResult prints the one line make bench keeps for a figure.
func printResult(name string, value float64) {
	fmt.Printf("RESULT %s=%.1f\n", name, value)
}

// botConfig is a configuration with one environment whose Docker host,
// Caddy admin API and Caddyfile do not exist: the bot builds their adapters
// without contacting them, so it serves any command that does not look at
// the environment (help). Secrets come from the environment as in production.
func botConfig(t *testing.T, httpPort int) []byte {
	t.Helper()
	dir := t.TempDir()
	return fmt.Appendf(nil, `
channels: {deploys: CDEPLOYS, alerts_warning: CWARN, alerts_critical: CCRIT, incidents: CINC, announcements: CANN}
http: {listen: "127.0.0.1:%d"}
environments:
  staging:
    docker_host: unix://%s
    migrations: {}
    caddy: {admin_url: "http://127.0.0.1:1", caddyfile: %q}
roles:
  - {name: admins, users: [%s], commands: ["*"], environments: ["*"]}
`, httpPort, filepath.Join(dir, "docker.sock"), filepath.Join(dir, "Caddyfile"), benchUser)
}

// secrets are the variables the bot reads from its environment, set to talk
// to fake and keep its store in the database at dsn.
func secrets(fake *slackfake.Fake, dsn string) map[string]string {
	return map[string]string{
		config.EnvSlackAppToken: fake.AppToken(),
		config.EnvSlackBotToken: fake.BotToken(),
		config.EnvSlackAPIURL:   fake.APIURL(),
		config.EnvDatabaseURL:   dsn,
	}
}

// benchUser is the user who sends every command; the configuration grants
// it everything.
const benchUser = "UBENCH"
