package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/togather-foundation/togather-chatops/internal/testenv"
	"github.com/togather-foundation/togather-chatops/ops"
	"github.com/togather-foundation/togather-chatops/ops/host"
)

func TestLazyInspectorReadsTheURLAtEachCall(t *testing.T) {
	dsn := testenv.Postgres(t)
	envFile := filepath.Join(t.TempDir(), ".env")
	in := lazyInspector{db: appDB{host: host.Local{}, env: ops.Environment{EnvFile: envFile, DatabaseVar: "DATABASE_URL"}}}

	if _, err := in.Size(t.Context()); err == nil || !strings.Contains(err.Error(), "app database URL") {
		t.Fatalf("Size without an env file: %v, want an app database URL error", err)
	}
	if err := os.WriteFile(envFile, []byte("DATABASE_URL="+dsn+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	size, err := in.Size(t.Context())
	if err != nil || size.Bytes <= 0 {
		t.Fatalf("Size once the env file names the database = %+v, %v", size, err)
	}
}
