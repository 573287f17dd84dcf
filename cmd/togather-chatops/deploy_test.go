package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/togather-foundation/togather-chatops/bot"
	"github.com/togather-foundation/togather-chatops/internal/testenv"
	"github.com/togather-foundation/togather-chatops/store/postgres"
)

// TestTerminalDeployRefusedByPreflightIsInHistory deploys to an
// environment whose env file does not exist: pre-flight refuses, and the
// refusal is a failed operation in the history and a denied audit entry.
// Nothing answers on the environment's Docker, Caddy or slot ports.
func TestTerminalDeployRefusedByPreflightIsInHistory(t *testing.T) {
	dsn := testenv.Postgres(t)
	dir := t.TempDir()
	caddyfile := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(caddyfile, []byte(":80 {\n\t# BLUE_GREEN_SLOT_START\n\treverse_proxy localhost:1\n\t# BLUE_GREEN_SLOT_END\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := configFile(t)
	cfg, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	env := fmt.Sprintf(`  staging:
    docker_host: tcp://127.0.0.1:1
    image: 127.0.0.1:1/togather-server:{version}
    env_file: %s/.env.staging
    caddy: {admin_url: "http://127.0.0.1:1", caddyfile: %s}
    slots:
      blue: {host_port: 1, health_url: "http://127.0.0.1:1/health"}
      green: {host_port: 2, health_url: "http://127.0.0.1:2/health"}
    migrations: {}
    snapshots: {dir: %s}
`, dir, caddyfile, dir)
	if err := os.WriteFile(path, []byte(strings.Replace(string(cfg), "  staging: {}\n", env, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DATABASE_URL", dsn)

	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"deploy", "staging", "v1.2.3", "--reason", "hotfix", "--config", path}, &stdout, &stderr); code != 1 {
		t.Fatalf("deploy exited %d, want 1:\n%s%s", code, stdout.String(), stderr.String())
	}
	if !strings.Contains(stderr.String(), "pre-flight failed: nothing was deployed") {
		t.Fatalf("deploy did not fail by pre-flight:\n%s%s", stdout.String(), stderr.String())
	}

	store, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	hist, err := store.History(t.Context(), "staging", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 1 || hist[0].Version != "v1.2.3" || hist[0].State != "failed" || hist[0].Reason != "hotfix" ||
		!strings.HasPrefix(hist[0].Requester, "cli:") || !strings.Contains(hist[0].Error, "refused by pre-flight: env_file.exists: ") {
		t.Fatalf("history = %+v", hist)
	}
	audit, err := store.AuditLog(t.Context(), postgres.AuditQuery{Environment: "staging", Action: "deploy"})
	if err != nil {
		t.Fatal(err)
	}
	if len(audit) != 1 || audit[0].Decision != bot.Denied || !strings.Contains(audit[0].Detail, "v1.2.3 refused by pre-flight: env_file.exists") ||
		!strings.Contains(audit[0].Detail, hist[0].ID) {
		t.Errorf("audit = %+v", audit)
	}
}
