package ops_test

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/togather-foundation/togather-chatops/ops"
)

// Func-field fakes of the ports the pre-flight reads. The embedded
// interfaces are nil: a method the checks should not call panics.

type pfEngine struct {
	ops.Engine
	inspect func(ctx context.Context, name string) (ops.ContainerInfo, error)
	imageID func(ctx context.Context, ref string) (string, error)
	pull    func(ctx context.Context, ref string) error
	stats   func(ctx context.Context, name string) (ops.ContainerStats, error)
	copy    func(ctx context.Context, image, src, dest string) error
}

func (e *pfEngine) Inspect(ctx context.Context, name string) (ops.ContainerInfo, error) {
	return e.inspect(ctx, name)
}
func (e *pfEngine) ImageID(ctx context.Context, ref string) (string, error) {
	return e.imageID(ctx, ref)
}
func (e *pfEngine) Pull(ctx context.Context, ref string) error { return e.pull(ctx, ref) }
func (e *pfEngine) Stats(ctx context.Context, name string) (ops.ContainerStats, error) {
	return e.stats(ctx, name)
}
func (e *pfEngine) CopyFromImage(ctx context.Context, image, src, dest string) error {
	return e.copy(ctx, image, src, dest)
}

type pfNetworks map[string]ops.NetworkInfo

func (n pfNetworks) Network(_ context.Context, name string) (ops.NetworkInfo, error) {
	if nw, ok := n[name]; ok {
		return nw, nil
	}
	return ops.NetworkInfo{Name: name}, nil
}

// pfDialer answers only at addr.
type pfDialer struct{ addr string }

func (d pfDialer) DialContext(_ context.Context, _, addr string) (net.Conn, error) {
	if addr != d.addr {
		return nil, errors.New("connection refused")
	}
	c, peer := net.Pipe()
	peer.Close()
	return c, nil
}

type pfProxy func(ctx context.Context) (ops.Slot, int, error)

func (f pfProxy) LiveSlot(ctx context.Context) (ops.Slot, int, error) { return f(ctx) }

type pfMode func(ctx context.Context) (bool, error)

func (f pfMode) InMaintenance(ctx context.Context) (bool, error) { return f(ctx) }

type pfProber func(ctx context.Context, url string) ops.Health

func (f pfProber) Probe(ctx context.Context, url string) ops.Health { return f(ctx, url) }

type pfLocker struct {
	ops.Locker
	get func(ctx context.Context, env string, now time.Time) (ops.Lock, bool, error)
}

func (l *pfLocker) Get(ctx context.Context, env string, now time.Time) (ops.Lock, bool, error) {
	return l.get(ctx, env, now)
}

type pfSnapshots struct {
	ops.Snapshotter
	list func(ctx context.Context) ([]ops.SnapshotInfo, error)
}

func (s *pfSnapshots) List(ctx context.Context) ([]ops.SnapshotInfo, error) { return s.list(ctx) }

type pfMigrator struct {
	ops.Migrator
	version func(ctx context.Context) (uint, bool, error)
	pending func(ctx context.Context, dir string) ([]ops.Migration, error)
}

func (m *pfMigrator) Version(ctx context.Context) (uint, bool, error) { return m.version(ctx) }
func (m *pfMigrator) Pending(ctx context.Context, dir string) ([]ops.Migration, error) {
	return m.pending(ctx, dir)
}

// pfFiles is the bot's own file system with some files of the host's
// kernel (/proc/sys/…) replaced: a missing value in sys is a missing file.
type pfFiles struct{ sys map[string]string }

func (f pfFiles) ReadFile(name string) ([]byte, error) {
	if strings.HasPrefix(name, "/proc/") {
		v, ok := f.sys[name]
		if !ok {
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		}
		return []byte(v), nil
	}
	return os.ReadFile(name)
}

func (pfFiles) Stat(name string) (fs.FileInfo, error) { return os.Stat(name) }

// zeroDropHost is a host with net.ipv4.tcp_migrate_req=1.
var zeroDropHost = pfFiles{sys: map[string]string{"/proc/sys/net/ipv4/tcp_migrate_req": "1\n", "/proc/sys/kernel/osrelease": "6.1.0-28-amd64\n"}}

type pfSizer func(ctx context.Context) (int64, error)

func (f pfSizer) Size(ctx context.Context) (int64, error) { return f(ctx) }

const (
	gib       = 1 << 30
	dbPass    = "db-pa55word"
	jwtSecret = "9f2c4e1a7b3d8e6f0a5c2b9d4e7f1a3c6b8d0e2f4a6c8e0b2d4f6a8c0e2b4d6f"
	imageID   = "sha256:4f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
)

var goodEnvFile = strings.Join([]string{
	"# production settings for togather",
	"ENVIRONMENT=production",
	"DATABASE_URL=postgres://togather:" + dbPass + "@db:5432/togather?sslmode=require",
	"JWT_SECRET=" + jwtSecret,
	"TLS_ENABLED=true",
	"DEBUG=false",
}, "\n")

// pfFixture is a production environment on which every check passes;
// cases change one thing.
type pfFixture struct {
	envFile string
	mode    os.FileMode
	deps    ops.PreflightDeps
	req     ops.PreflightRequest
	// the fakes, for cases to replace one behaviour
	engine    *pfEngine
	locker    *pfLocker
	snapshots *pfSnapshots
	migrator  *pfMigrator
	staging   *pfMigrator
	dialer    *pfDialer
	pending   []ops.Migration
}

// emptyHost makes neither slot have a container: a first deploy.
func emptyHost(f *pfFixture) {
	f.engine.inspect = func(_ context.Context, name string) (ops.ContainerInfo, error) {
		return ops.ContainerInfo{Name: name}, nil
	}
}

// withNetwork puts the containers on the network name, holding containers
// (name → address), and has the fake dialer answer at the database's
// address there.
func withNetwork(name string, containers map[string]string) func(f *pfFixture) {
	return func(f *pfFixture) {
		f.deps.Env.Network = name
		nws := pfNetworks{}
		if containers != nil {
			nws[name] = ops.NetworkInfo{Name: name, Exists: true, Containers: containers}
		}
		f.deps.Networks = nws
		f.dialer = &pfDialer{addr: containers["db"] + ":5432"}
		f.deps.Dialer = f.dialer
	}
}

func newFixture(t *testing.T) *pfFixture {
	t.Helper()
	loc := toronto(t)
	now := wall(t, loc, "2026-06-16 11:00") // a Tuesday
	f := &pfFixture{envFile: goodEnvFile, mode: 0o600}
	f.pending = []ops.Migration{{Version: 13, Name: "add_venue", UpSQL: "ALTER TABLE events ADD COLUMN IF NOT EXISTS venue text;", HasDown: true}}
	f.engine = &pfEngine{
		inspect: func(_ context.Context, name string) (ops.ContainerInfo, error) {
			return ops.ContainerInfo{Name: name, Exists: name == "togather-server-blue", Running: name == "togather-server-blue"}, nil
		},
		imageID: func(context.Context, string) (string, error) { return imageID, nil },
		stats: func(context.Context, string) (ops.ContainerStats, error) {
			return ops.ContainerStats{CPUPercent: 12.5, MemPercent: 40}, nil
		},
	}
	f.locker = &pfLocker{get: func(context.Context, string, time.Time) (ops.Lock, bool, error) { return ops.Lock{}, false, nil }}
	f.snapshots = &pfSnapshots{list: func(context.Context) ([]ops.SnapshotInfo, error) {
		return []ops.SnapshotInfo{
			{Name: "togather_togather_20260616_090000_daily.sql.gz", CreatedAt: now.Add(-2 * time.Hour)},
			{Name: "togather_togather_20260615_090000_daily.sql.gz", CreatedAt: now.Add(-26 * time.Hour)},
		}, nil
	}}
	f.migrator = &pfMigrator{
		version: func(context.Context) (uint, bool, error) { return 12, false, nil },
		pending: func(context.Context, string) ([]ops.Migration, error) { return f.pending, nil },
	}
	f.staging = &pfMigrator{version: func(context.Context) (uint, bool, error) { return 13, false, nil }}
	f.deps = ops.PreflightDeps{
		Env: ops.Environment{
			Name:        "production",
			Production:  true,
			Image:       "togather-server:{version}",
			EnvFile:     filepath.Join(t.TempDir(), ".env.production"),
			DatabaseVar: "DATABASE_URL",
			Migrations:  ops.MigrationSource{Dir: "/srv/togather/migrations"},
			Slots: map[ops.Slot]ops.SlotSpec{
				ops.Blue:  {Container: "togather-server-blue", HostPort: 8081, HealthURL: "http://127.0.0.1:8081/health"},
				ops.Green: {Container: "togather-server-green", HostPort: 8082, HealthURL: "http://127.0.0.1:8082/health"},
			},
			Policy: ops.Policy{EnforceWindow: true},
		},
		Window: ops.Window{Location: loc},
		Engine: f.engine,
		Proxy:  pfProxy(func(context.Context) (ops.Slot, int, error) { return ops.Blue, 8081, nil }),
		Prober: pfProber(func(_ context.Context, url string) ops.Health {
			if url != "http://127.0.0.1:8081/health" {
				return ops.Health{Status: ops.Unreachable, Problem: "connection refused"}
			}
			return ops.Health{Status: ops.Healthy, Version: "v1.2.2"}
		}),
		Locker:          f.locker,
		Snapshotter:     f.snapshots,
		SnapshotDir:     "/var/lib/togather/db-snapshots",
		Migrator:        f.migrator,
		AppDB:           pfSizer(func(context.Context) (int64, error) { return 4 * gib, nil }),
		StagingMigrator: f.staging,
		DiskFree:        func(string) (uint64, uint64, error) { return 60 * gib, 100 * gib, nil },
		Files:           zeroDropHost,
		Timeout:         2 * time.Second,
	}
	f.req = ops.PreflightRequest{Env: "production", Version: "v1.2.3", Now: now}
	return f
}

func (f *pfFixture) run(t *testing.T) ops.Report {
	t.Helper()
	if f.envFile != "" || f.mode != 0 {
		if err := os.WriteFile(f.deps.Env.EnvFile, []byte(f.envFile), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(f.deps.Env.EnvFile, f.mode); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := ops.NewPreflighter(f.deps).Run(context.Background(), f.req)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return rep
}

// setVar replaces (or adds, or with value "" removes) a line of the env file.
func (f *pfFixture) setVar(key, value string) {
	var lines []string
	found := false
	for _, l := range strings.Split(f.envFile, "\n") {
		if strings.HasPrefix(l, key+"=") {
			found = true
			if value == "" {
				continue
			}
			l = key + "=" + value
		}
		lines = append(lines, l)
	}
	if !found && value != "" {
		lines = append(lines, key+"="+value)
	}
	f.envFile = strings.Join(lines, "\n")
}

func findCheck(rep ops.Report, name string) (ops.Check, bool) {
	for _, c := range rep.Checks {
		if c.Name == name {
			return c, true
		}
	}
	return ops.Check{}, false
}

var allChecks = []string{
	"env_file.exists", "env_file.mode", "env_file.required", "env_file.placeholders",
	"security.db_ssl", "security.flags", "security.jwt_secret", "database.migrations", "image.present",
	"migrations.safety", "migrations.staging_parity", "snapshots.fresh", "disk.free", "disk.snapshot_room",
	"lock.free", "window", "live.resources", "live.health", "host.tcp_migrate_req",
}

func TestPreflightAllPass(t *testing.T) {
	rep := newFixture(t).run(t)
	var names []string
	for _, c := range rep.Checks {
		names = append(names, c.Name)
		if c.Status != ops.CheckPass || c.Remediation != "" {
			t.Errorf("%s: %s %q (remediation %q), want a plain pass", c.Name, c.Status, c.Message, c.Remediation)
		}
	}
	if !slices.Equal(names, allChecks) {
		t.Errorf("checks = %v\nwant %v", names, allChecks)
	}
	if rep.Verdict() != ops.CheckPass || len(rep.Blocking()) != 0 || len(rep.Warnings()) != 0 {
		t.Errorf("verdict %s, blocking %v, warnings %v", rep.Verdict(), rep.Blocking(), rep.Warnings())
	}
	if rep.Image != "togather-server:v1.2.3" || rep.ImageID != imageID {
		t.Errorf("image %q id %q", rep.Image, rep.ImageID)
	}
	if len(rep.Pending) != 1 || rep.Pending[0].Version != 13 || len(rep.Findings) != 0 {
		t.Errorf("pending %+v findings %+v", rep.Pending, rep.Findings)
	}
	if !strings.HasPrefix(rep.Window, "inside the deploy window") || rep.Hash != rep.ComputeHash() || len(rep.Hash) != 64 {
		t.Errorf("window %q, hash %q", rep.Window, rep.Hash)
	}
}

func TestPreflightChecks(t *testing.T) {
	failing := func(msg string) func(f *pfFixture) {
		return func(f *pfFixture) {
			f.migrator.version = func(context.Context) (uint, bool, error) { return 0, false, errors.New(msg) }
		}
	}
	lock := ops.Lock{Env: "production", Owner: "U1", Holder: "alice", Reason: "db upgrade", Manual: true,
		AcquiredAt: time.Date(2026, 6, 16, 13, 0, 0, 0, time.UTC)}
	friday := func(f *pfFixture) { f.req.Now = f.req.Now.AddDate(0, 0, 3).Add(2 * time.Hour) }
	tests := []struct {
		name   string
		setup  func(f *pfFixture)
		check  string
		status ops.CheckStatus // "" means the check must be absent
		msg    string          // a substring of Message
		remedy string          // a substring of Remediation
	}{
		// env_file.*
		{"env file missing", func(f *pfFixture) { f.envFile, f.mode = "", 0 }, "env_file.exists", ops.CheckFail, "does not exist", "chmod 600"},
		{"no mode without a file", func(f *pfFixture) { f.envFile, f.mode = "", 0 }, "env_file.mode", "", "", ""},
		{"no content checks without a file", func(f *pfFixture) { f.envFile, f.mode = "", 0 }, "security.jwt_secret", "", "", ""},
		{"env file not configured", func(f *pfFixture) { f.deps.Env.EnvFile, f.envFile, f.mode = "", "", 0 }, "env_file.exists", ops.CheckFail, "no env file is configured", "configuration"},
		{"env file unparsable", func(f *pfFixture) { f.envFile += "\nnot an assignment" }, "env_file.exists", ops.CheckFail, ".env.production: line 7: want KEY=VALUE", "KEY=VALUE"},
		{"no placeholder check when unparsable", func(f *pfFixture) { f.envFile += "\nnot an assignment" }, "env_file.placeholders", "", "", ""},
		{"env file present", nil, "env_file.exists", ops.CheckPass, "exists with 5 variables", ""},
		{"mode 644", func(f *pfFixture) { f.mode = 0o644 }, "env_file.mode", ops.CheckWarn, "has mode 0644", "chmod 600 /"},
		{"mode 640", func(f *pfFixture) { f.mode = 0o640 }, "env_file.mode", ops.CheckWarn, "has mode 0640", "chmod 600"},
		{"mode 400", func(f *pfFixture) { f.mode = 0o400 }, "env_file.mode", ops.CheckPass, "has mode 0400", ""},
		{"required missing", func(f *pfFixture) { f.setVar("JWT_SECRET", ""); f.setVar("ENVIRONMENT", "  ") }, "env_file.required", ops.CheckFail,
			"missing or empty: ENVIRONMENT, JWT_SECRET", "set ENVIRONMENT, JWT_SECRET in"},
		{"required custom", func(f *pfFixture) { f.deps.RequiredVars = []string{"ADMIN_PASSWORD"} }, "env_file.required", ops.CheckFail, "missing or empty: ADMIN_PASSWORD", ""},
		{"placeholder in a value", func(f *pfFixture) { f.setVar("ADMIN_PASSWORD", "CHANGE_ME_strong_password") }, "env_file.placeholders", ops.CheckFail,
			"CHANGE_ME in the value of ADMIN_PASSWORD (line 7)", "replace the placeholder values"},
		{"a bare placeholder is not redacted as a secret", func(f *pfFixture) { f.setVar("ADMIN_PASSWORD", "CHANGE_ME") }, "env_file.placeholders", ops.CheckFail,
			"CHANGE_ME in the value of ADMIN_PASSWORD (line 7)", ""},
		{"placeholder in a comment", func(f *pfFixture) { f.envFile = "# ⚠️  CHANGE_ME: set your domain\n" + f.envFile }, "env_file.placeholders", ops.CheckWarn,
			"only in comments, on line 1;", "reword"},
		{"placeholders in several comments", func(f *pfFixture) { f.envFile = "# CHANGE_ME a\n" + f.envFile + "\n# change_me b" }, "env_file.placeholders", ops.CheckWarn,
			"only in comments, on lines 1, 8; no value is a placeholder", ""},
		{"placeholder in a commented-out assignment and a value", func(f *pfFixture) {
			f.envFile += "\n# ALERT_WEBHOOK_AUTH=CHANGE_ME\nCSRF_KEY=change_me"
		}, "env_file.placeholders", ops.CheckFail, "CSRF_KEY (line 8); also in comments on line 7", ""},

		// security.*
		{"sslmode disable", func(f *pfFixture) { f.setVar("DATABASE_URL", "postgres://u:"+dbPass+"@db/t?sslmode=disable") }, "security.db_ssl", ops.CheckFail, "sslmode=disable", "sslmode=require"},
		{"sslmode absent", func(f *pfFixture) { f.setVar("DATABASE_URL", "postgres://u:"+dbPass+"@db/t") }, "security.db_ssl", ops.CheckFail, "sets no sslmode", ""},
		{"sslmode from PGSSLMODE", func(f *pfFixture) {
			f.setVar("DATABASE_URL", "postgres://u:"+dbPass+"@db/t")
			f.setVar("PGSSLMODE", "verify-full")
		}, "security.db_ssl", ops.CheckPass, "sslmode=verify-full", ""},
		{"sslmode in a key=value DSN", func(f *pfFixture) { f.setVar("DATABASE_URL", "'host=db password="+dbPass+" sslmode=verify-full'") }, "security.db_ssl", ops.CheckPass, "sslmode=verify-full", ""},
		{"database variable unset", func(f *pfFixture) { f.deps.Env.DatabaseVar = "APP_DATABASE_URL" }, "security.db_ssl", ops.CheckFail, "APP_DATABASE_URL is not set", ""},
		{"insecure flags", func(f *pfFixture) {
			f.setVar("TLS_ENABLED", "false")
			f.setVar("DEBUG", "TRUE")
			f.setVar("CORS_ALLOW_ALL", "1")
			f.setVar("ALLOW_INSECURE_COOKIES", "off")
			f.setVar("ENVIRONMENT", "staging")
		}, "security.flags", ops.CheckFail, `TLS_ENABLED is false; DEBUG is true; CORS_ALLOW_ALL is true; ENVIRONMENT is "staging", not production`,
			"set TLS_ENABLED=true, DEBUG=false, CORS_ALLOW_ALL=false, ENVIRONMENT=production in"},
		{"TLS_ENABLED unset is fine", func(f *pfFixture) { f.setVar("TLS_ENABLED", "") }, "security.flags", ops.CheckPass, "safe for production", ""},
		{"JWT secret short", func(f *pfFixture) { f.setVar("JWT_SECRET", "s3cr3tvalu") }, "security.jwt_secret", ops.CheckFail, "has 10 characters; at least 32", "openssl rand"},
		{"JWT secret placeholder", func(f *pfFixture) { f.setVar("JWT_SECRET", "CHANGE_ME_to_a_long_random_value_0123") }, "security.jwt_secret", ops.CheckFail, "looks like a placeholder", ""},
		{"JWT secret repetitive", func(f *pfFixture) { f.setVar("JWT_SECRET", strings.Repeat("ab12", 10)) }, "security.jwt_secret", ops.CheckFail, "guessable", ""},
		{"no security checks outside production", func(f *pfFixture) { f.deps.Env.Production = false }, "security.db_ssl", "", "", ""},
		{"no parity outside production", func(f *pfFixture) { f.deps.Env.Production = false }, "migrations.staging_parity", "", "", ""},

		// database.migrations
		{"database unreachable", failing("dial tcp 10.0.0.5:5432: connection refused"), "database.migrations", ops.CheckFail, "cannot be read: dial tcp", "DATABASE_URL in /"},
		{"secrets in errors are redacted", failing(`parse "postgres://togather:` + dbPass + `@db:5432/togather?sslmode=require": bad`), "database.migrations", ops.CheckFail, `parse "postgres://togather:***@db:5432`, ""},
		{"URL passwords in errors are redacted", failing("open postgres://other:hunter2hunter2@staging/db: refused"), "database.migrations", ops.CheckFail, "postgres://other:***@staging/db", ""},
		{"dirty", func(f *pfFixture) {
			f.migrator.version = func(context.Context) (uint, bool, error) { return 12, true, nil }
		}, "database.migrations", ops.CheckFail, "migration 12 is dirty", "reset schema_migrations"},
		{"clean", nil, "database.migrations", ops.CheckPass, "answers at migration 12", ""},
		{"no migrator", func(f *pfFixture) { f.deps.Migrator = nil }, "database.migrations", ops.CheckPass, "no database migrations are configured", ""},

		// migrations.safety
		{"no pending", func(f *pfFixture) { f.pending = nil }, "migrations.safety", ops.CheckPass, "no pending migrations", ""},
		{"pending without findings", nil, "migrations.safety", ops.CheckPass, "1 pending (000013_add_venue); no findings", ""},
		{"destructive", func(f *pfFixture) {
			f.pending = append(f.pending, ops.Migration{Version: 14, Name: "drop_legacy", UpSQL: "ALTER TABLE events DROP COLUMN legacy;\nDROP TABLE old_events;", HasDown: true})
		}, "migrations.safety", ops.CheckFail, "2 pending (000013_add_venue, 000014_drop_legacy); destructive: 000014_drop_legacy line 1: DROP COLUMN events.legacy deletes the column and its data (and 1 more)", "--allow-destructive"},
		{"destructive allowed", func(f *pfFixture) {
			f.pending = []ops.Migration{{Version: 14, Name: "drop_legacy", UpSQL: "ALTER TABLE events DROP COLUMN legacy;", HasDown: true}}
			f.req.AllowDestructive = "legacy is unused since v1.0"
		}, "migrations.safety", ops.CheckWarn, `destructive changes allowed ("legacy is unused since v1.0"): 000014_drop_legacy line 1: DROP COLUMN`, "snapshot"},
		{"warnings only", func(f *pfFixture) { f.pending[0].HasDown = false }, "migrations.safety", ops.CheckWarn, "000013_add_venue no .down.sql", "review the findings"},
		{"pending unreadable", func(f *pfFixture) {
			f.migrator.pending = func(context.Context, string) ([]ops.Migration, error) { return nil, errors.New("no such directory") }
		}, "migrations.safety", ops.CheckFail, "cannot be listed: no such directory", ""},
		{"parity not checked when pending unreadable", func(f *pfFixture) {
			f.migrator.pending = func(context.Context, string) ([]ops.Migration, error) { return nil, errors.New("no such directory") }
		}, "migrations.staging_parity", ops.CheckFail, "cannot be listed", ""},
		{"migrations in a missing image", func(f *pfFixture) {
			f.deps.Env.Migrations = ops.MigrationSource{ImagePath: "/app/migrations"}
			f.engine.imageID = func(context.Context, string) (string, error) { return "", errors.New("no such image") }
			f.engine.pull = func(context.Context, string) error { return errors.New("no registry") }
		}, "migrations.safety", ops.CheckFail, "not checked: the migrations are in the image", "fix image.present first"},
		{"migration source unreadable", func(f *pfFixture) {
			f.deps.MigrationsDir = func(context.Context, string) (string, func(), error) { return "", nil, errors.New("copy failed") }
		}, "migrations.safety", ops.CheckFail, "the migrations cannot be read: copy failed", ""},
		{"no migration source", func(f *pfFixture) { f.deps.Env.Migrations = ops.MigrationSource{} }, "migrations.safety", ops.CheckPass, "no database migrations are configured", ""},

		// migrations.staging_parity
		{"staging behind", func(f *pfFixture) {
			f.staging.version = func(context.Context) (uint, bool, error) { return 12, false, nil }
		},
			"migrations.staging_parity", ops.CheckFail, "staging is at migration 12; this release goes up to 13", "deploy v1.2.3 to staging first"},
		{"staging dirty", func(f *pfFixture) {
			f.staging.version = func(context.Context) (uint, bool, error) { return 13, true, nil }
		},
			"migrations.staging_parity", ops.CheckFail, "staging's migration 13 is dirty", ""},
		{"staging unreachable", func(f *pfFixture) {
			f.staging.version = func(context.Context) (uint, bool, error) { return 0, false, errors.New("refused") }
		}, "migrations.staging_parity", ops.CheckFail, "staging database cannot be read: refused", ""},
		{"staging ahead", func(f *pfFixture) {
			f.staging.version = func(context.Context) (uint, bool, error) { return 15, false, nil }
		},
			"migrations.staging_parity", ops.CheckPass, "staging is at migration 15, which includes this release's 13", ""},
		{"nothing to compare", func(f *pfFixture) { f.pending = nil }, "migrations.staging_parity", ops.CheckPass, "no pending migrations", ""},
		{"no staging", func(f *pfFixture) { f.deps.StagingMigrator = nil }, "migrations.staging_parity", "", "", ""},

		// snapshots.fresh
		{"no snapshot", func(f *pfFixture) {
			f.snapshots.list = func(context.Context) ([]ops.SnapshotInfo, error) { return nil, nil }
		},
			"snapshots.fresh", ops.CheckWarn, "no snapshot", "snapshot create production"},
		{"stale snapshot", func(f *pfFixture) { f.req.Now = f.req.Now.Add(23 * time.Hour) }, "snapshots.fresh", ops.CheckWarn,
			"togather_togather_20260616_090000_daily.sql.gz, was taken 2026-06-16 13:00 UTC, more than 24 h ago", "snapshot create"},
		{"fresh snapshot", nil, "snapshots.fresh", ops.CheckPass, "togather_togather_20260616_090000_daily.sql.gz, was taken 2026-06-16 13:00 UTC", ""},
		{"snapshots unreadable", func(f *pfFixture) {
			f.snapshots.list = func(context.Context) ([]ops.SnapshotInfo, error) { return nil, errors.New("permission denied") }
		}, "snapshots.fresh", ops.CheckFail, "cannot be listed: permission denied", "/var/lib/togather/db-snapshots"},

		// disk.*
		{"disk low", func(f *pfFixture) {
			f.deps.DiskFree = func(string) (uint64, uint64, error) { return 15 * gib, 100 * gib, nil }
		},
			"disk.free", ops.CheckWarn, "15 % free on /var/lib/togather/db-snapshots (15.0 GiB of 100.0 GiB); below 20 %", "snapshot prune production"},
		{"disk critical", func(f *pfFixture) {
			f.deps.DiskFree = func(string) (uint64, uint64, error) { return 9 * gib, 100 * gib, nil }
		},
			"disk.free", ops.CheckFail, "9 % free", ""},
		{"disk fine", nil, "disk.free", ops.CheckPass, "60 % free on /var/lib/togather/db-snapshots", ""},
		{"disk unreadable", func(f *pfFixture) {
			f.deps.DiskFree = func(string) (uint64, uint64, error) { return 0, 0, errors.New("no such file or directory") }
		}, "disk.snapshot_room", ops.CheckFail, "cannot be read: no such file", "create /var/lib/togather/db-snapshots"},
		{"no room for a snapshot", func(f *pfFixture) {
			f.deps.AppDB = pfSizer(func(context.Context) (int64, error) { return 140 * gib, nil })
		}, "disk.snapshot_room", ops.CheckFail, "the 140.0 GiB database needs about 70.0 GiB with margin, but /var/lib/togather/db-snapshots has 60.0 GiB free", ""},
		{"room for a snapshot", nil, "disk.snapshot_room", ops.CheckPass, "the 4.0 GiB database needs about 2.0 GiB", ""},
		{"database size unreadable", func(f *pfFixture) {
			f.deps.AppDB = pfSizer(func(context.Context) (int64, error) { return 0, errors.New("refused") })
		}, "disk.snapshot_room", ops.CheckFail, "size cannot be read: refused", ""},

		// image.present
		{"image pulled", func(f *pfFixture) {
			pulled := false
			f.engine.pull = func(_ context.Context, ref string) error { pulled = ref == "togather-server:v1.2.3"; return nil }
			f.engine.imageID = func(context.Context, string) (string, error) {
				if !pulled {
					return "", errors.New("no such image")
				}
				return imageID, nil
			}
		}, "image.present", ops.CheckPass, "togather-server:v1.2.3 is on the host as 4f1e2d3c4b5a", ""},
		{"image missing", func(f *pfFixture) {
			f.engine.imageID = func(context.Context, string) (string, error) { return "", errors.New("no such image") }
			f.engine.pull = func(context.Context, string) error { return errors.New("manifest unknown") }
		}, "image.present", ops.CheckFail, "togather-server:v1.2.3 is not on the host and could not be pulled: manifest unknown", "build or push"},

		// lock.free
		{"manual lock", func(f *pfFixture) {
			f.locker.get = func(context.Context, string, time.Time) (ops.Lock, bool, error) { return lock, true, nil }
		}, "lock.free", ops.CheckFail, `production is locked by alice (a manual lock, "db upgrade") since 2026-06-16T13:00:00Z`, "ask alice to `unlock production`"},
		{"operation lock", func(f *pfFixture) {
			l := lock
			l.Manual = false
			f.locker.get = func(context.Context, string, time.Time) (ops.Lock, bool, error) { return l, true, nil }
		}, "lock.free", ops.CheckFail, "a running operation", "wait"},
		{"lock store down", func(f *pfFixture) {
			f.locker.get = func(context.Context, string, time.Time) (ops.Lock, bool, error) {
				return ops.Lock{}, false, errors.New("refused")
			}
		}, "lock.free", ops.CheckFail, "lock store cannot be read: refused", ""},

		// proxy.mode
		{"maintenance page up", func(f *pfFixture) {
			f.deps.Mode = pfMode(func(context.Context) (bool, error) { return true, nil })
		}, "proxy.mode", ops.CheckFail, "the proxy shows the maintenance page", "end the window first"},
		{"maintenance page down", func(f *pfFixture) {
			f.deps.Mode = pfMode(func(context.Context) (bool, error) { return false, nil })
		}, "proxy.mode", ops.CheckPass, "the proxy serves the app", ""},
		{"proxy mode unreadable", func(f *pfFixture) {
			f.deps.Mode = pfMode(func(context.Context) (bool, error) { return false, errors.New("permission denied") })
		}, "proxy.mode", ops.CheckFail, "cannot be read: permission denied", "status production"},

		// window
		{"outside, enforced", friday, "window", ops.CheckFail, "Friday afternoon; the window opens next on Tue 2026-06-23 10:00 EDT", "or give an override reason"},
		{"outside, not enforced", func(f *pfFixture) { friday(f); f.deps.Env.Policy.EnforceWindow = false }, "window", ops.CheckWarn, "Friday afternoon", "inside the window (Tue–Thu 10:00–14:00 America/Toronto)"},
		{"outside with an override", func(f *pfFixture) { friday(f); f.req.OverrideWindow = "login is broken" }, "window", ops.CheckWarn,
			`Friday afternoon; the window opens next on Tue 2026-06-23 10:00 EDT; override: "login is broken"; needs the policy's extra approval`, "approver"},

		// live.*
		{"busy CPU", func(f *pfFixture) {
			f.engine.stats = func(context.Context, string) (ops.ContainerStats, error) {
				return ops.ContainerStats{CPUPercent: 85, MemPercent: 10}, nil
			}
		}, "live.resources", ops.CheckWarn, "togather-server-blue is busy: CPU at 85 % (warn from 70 %)", "blue/green"},
		{"busy memory", func(f *pfFixture) {
			f.engine.stats = func(_ context.Context, name string) (ops.ContainerStats, error) {
				if name != "togather-server-blue" {
					return ops.ContainerStats{}, errors.New("wrong container")
				}
				return ops.ContainerStats{CPUPercent: 70, MemPercent: 80}, nil
			}
		}, "live.resources", ops.CheckWarn, "CPU at 70 % (warn from 70 %), memory at 80 % (warn from 80 %)", ""},
		{"stats unreadable", func(f *pfFixture) {
			f.engine.stats = func(context.Context, string) (ops.ContainerStats, error) {
				return ops.ContainerStats{}, errors.New("no such container")
			}
		}, "live.resources", ops.CheckWarn, "cannot be read: no such container", ""},
		{"degraded", func(f *pfFixture) {
			f.deps.Prober = pfProber(func(context.Context, string) ops.Health {
				return ops.Health{Status: ops.Degraded, Checks: []ops.HealthCheck{{Name: "database", Status: "pass"}, {Name: "job_queue", Status: "warn"}}}
			})
		}, "live.health", ops.CheckWarn, "the live slot blue is degraded (failing: job_queue)", ""},
		{"unreachable", func(f *pfFixture) {
			f.deps.Prober = pfProber(func(context.Context, string) ops.Health {
				return ops.Health{Status: ops.Unreachable, Problem: "connection refused"}
			})
		}, "live.health", ops.CheckFail, "the live slot blue is unreachable: connection refused", "roll back"},
		{"unhealthy", func(f *pfFixture) {
			f.deps.Prober = pfProber(func(context.Context, string) ops.Health { return ops.Health{Status: ops.Unhealthy} })
		}, "live.health", ops.CheckFail, "the live slot blue is unhealthy", ""},
		{"proxy unreadable", func(f *pfFixture) {
			f.deps.Proxy = pfProxy(func(context.Context) (ops.Slot, int, error) { return "", 0, errors.New("no slot markers") })
		}, "live.health", ops.CheckFail, "which slot is live: no slot markers", "status production"},
		{"green is live", func(f *pfFixture) {
			f.deps.Proxy = pfProxy(func(context.Context) (ops.Slot, int, error) { return ops.Green, 8082, nil })
		}, "live.health", ops.CheckFail, "the live slot green is unreachable: connection refused", ""},
		{"first deploy", emptyHost, "live.health", ops.CheckPass, "first deploy: no container in either slot; the deploy starts blue", ""},
		{"first deploy uses nothing", emptyHost, "live.resources", ops.CheckPass, "first deploy: nothing runs yet", ""},
		{"containers are inspected", func(f *pfFixture) {
			f.engine.inspect = func(context.Context, string) (ops.ContainerInfo, error) {
				return ops.ContainerInfo{}, errors.New("engine gone")
			}
		}, "live.health", ops.CheckFail, "engine gone", "container engine"},

		// a first install: old destructive migrations have nothing to destroy
		{"fresh database", func(f *pfFixture) {
			f.migrator.version = func(context.Context) (uint, bool, error) { return 0, false, nil }
			f.pending = []ops.Migration{{Version: 1, Name: "core", UpSQL: "CREATE TABLE events (id int, legacy text);"},
				{Version: 2, Name: "drop_legacy", UpSQL: "ALTER TABLE events DROP COLUMN legacy;"}}
		}, "migrations.safety", ops.CheckPass, "2 pending on a database with no migration applied (a first install)", ""},
		{"destructive on a database in use", func(f *pfFixture) {
			f.pending = []ops.Migration{{Version: 13, Name: "drop_legacy", UpSQL: "ALTER TABLE events DROP COLUMN legacy;"}}
		}, "migrations.safety", ops.CheckFail, "destructive", "--allow-destructive"},

		// network.exists, database.from_containers
		{"no network check without an inspector", nil, "network.exists", "", "", ""},
		{"network missing", withNetwork("togather-network", nil), "network.exists", ops.CheckFail,
			"the Docker network togather-network does not exist", "docker network create togather-network"},
		{"network present", withNetwork("togather-network", map[string]string{"db": "172.30.0.5"}), "network.exists", ops.CheckPass,
			"togather-network exists (1 containers attached)", ""},
		{"database on the network", withNetwork("togather-network", map[string]string{"db": "172.30.0.5"}), "database.from_containers", ops.CheckPass,
			"reaches 172.30.0.5:5432 (at 172.30.0.5, its address on the togather-network network)", ""},
		{"database no container on the network", withNetwork("togather-network", map[string]string{"cache": "172.30.0.6"}), "database.from_containers", ops.CheckFail,
			"names db, which is no container on the togather-network network", "attach the database container"},
		{"database only on the host's loopback", func(f *pfFixture) {
			withNetwork("togather-network", nil)(f)
			f.setVar("DATABASE_URL", "postgres://u:"+dbPass+"@127.0.0.1:5433/t?sslmode=require")
		}, "database.from_containers", ops.CheckFail, "points at 127.0.0.1: inside a container that is the container itself", "container_env.DATABASE_URL"},
		{"container env gives the network's URL", func(f *pfFixture) {
			withNetwork("togather-network", map[string]string{"togather-db": "172.30.0.7"})(f)
			f.dialer.addr = "172.30.0.7:5432"
			f.setVar("DATABASE_URL", "postgres://u:"+dbPass+"@localhost:5433/t?sslmode=require")
			f.setVar("POSTGRES_PASSWORD", "hunter2hunter2")
			f.deps.Env.ContainerEnv = []string{"DATABASE_URL=postgresql://togather:${POSTGRES_PASSWORD}@togather-db:5432/togather"}
		}, "database.from_containers", ops.CheckPass, "reaches 172.30.0.7:5432", ""},
		{"container env names a variable the env file lacks", func(f *pfFixture) {
			withNetwork("togather-network", nil)(f)
			f.deps.Env.ContainerEnv = []string{"DATABASE_URL=postgresql://togather:${POSTGRES_PASSWORD}@togather-db:5432/togather"}
		}, "database.from_containers", ops.CheckFail, "DATABASE_URL refers to ${POSTGRES_PASSWORD}, which the env file does not hold", ""},
		{"database does not answer", func(f *pfFixture) {
			withNetwork("togather-network", map[string]string{"db": "172.30.0.5"})(f)
			f.dialer.addr = "elsewhere:1"
		}, "database.from_containers", ops.CheckFail, "does not answer at 172.30.0.5", "container_env.DATABASE_URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			if tt.setup != nil {
				tt.setup(f)
			}
			rep := f.run(t)
			for _, c := range rep.Checks {
				for _, secret := range []string{dbPass, jwtSecret, "hunter2hunter2"} {
					if strings.Contains(c.Message+c.Remediation, secret) {
						t.Errorf("%s shows a secret: %q / %q", c.Name, c.Message, c.Remediation)
					}
				}
			}
			c, ok := findCheck(rep, tt.check)
			if tt.status == "" {
				if ok {
					t.Fatalf("%s is reported (%+v), want it absent", tt.check, c)
				}
				return
			}
			if !ok {
				t.Fatalf("%s is missing from %+v", tt.check, rep.Checks)
			}
			if c.Status != tt.status || !strings.Contains(c.Message, tt.msg) || !strings.Contains(c.Remediation, tt.remedy) {
				t.Errorf("%s = %s %q (remediation %q)\nwant %s with %q (remediation with %q)", c.Name, c.Status, c.Message, c.Remediation, tt.status, tt.msg, tt.remedy)
			}
			if (c.Status == ops.CheckPass) != (c.Remediation == "") {
				t.Errorf("%s: status %s with remediation %q: only warnings and failures have one", c.Name, c.Status, c.Remediation)
			}
			if strings.Contains(c.Remediation, "\n") {
				t.Errorf("%s: remediation is not one line: %q", c.Name, c.Remediation)
			}
			if wantVerdict := tt.status; wantVerdict != ops.CheckPass && rep.Verdict() == ops.CheckPass {
				t.Errorf("verdict pass with %s %s", c.Name, c.Status)
			}
		})
	}
}

func TestPreflightDefaultMigrationsDirCopiesFromTheImageID(t *testing.T) {
	f := newFixture(t)
	f.deps.Env.Migrations = ops.MigrationSource{ImagePath: "/app/migrations"}
	var copiedFrom, copiedTo string
	f.engine.copy = func(_ context.Context, image, src, dest string) error {
		copiedFrom, copiedTo = image+":"+src, dest
		return os.WriteFile(filepath.Join(dest, "000013_add_venue.up.sql"), []byte("SELECT 1;"), 0o600)
	}
	f.migrator.pending = func(_ context.Context, dir string) ([]ops.Migration, error) {
		if _, err := os.Stat(filepath.Join(dir, "000013_add_venue.up.sql")); err != nil {
			return nil, err
		}
		return f.pending, nil
	}
	rep := f.run(t)
	if c, _ := findCheck(rep, "migrations.safety"); c.Status != ops.CheckPass {
		t.Fatalf("migrations.safety = %+v", c)
	}
	if copiedFrom != imageID+":/app/migrations" {
		t.Errorf("copied from %q, want the image id's /app/migrations", copiedFrom)
	}
	if _, err := os.Stat(copiedTo); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the copy in %s was not removed: %v", copiedTo, err)
	}
}

func TestPreflightDefaultDiskFree(t *testing.T) {
	f := newFixture(t)
	f.deps.DiskFree = nil
	f.deps.SnapshotDir = t.TempDir()
	if c, _ := findCheck(f.run(t), "disk.free"); !strings.Contains(c.Message, "% free on "+f.deps.SnapshotDir) {
		t.Errorf("disk.free = %+v, want the free space of the temp dir", c)
	}
	// A directory the first snapshot will create is measured on the file
	// system it will be on.
	f.deps.SnapshotDir = filepath.Join(f.deps.SnapshotDir, "missing", "snapshots")
	if c, _ := findCheck(f.run(t), "disk.free"); c.Status == ops.CheckFail || !strings.Contains(c.Message, "% free on ") {
		t.Errorf("disk.free of a dir not made yet = %+v, want its parent file system measured", c)
	}
}

func TestPreflightRunErrors(t *testing.T) {
	f := newFixture(t)
	p := ops.NewPreflighter(f.deps)
	if _, err := p.Run(context.Background(), ops.PreflightRequest{Env: "staging", Version: "v1"}); !errors.Is(err, ops.ErrUnknownEnvironment) {
		t.Errorf("unknown env: %v", err)
	}
	if _, err := p.Run(context.Background(), ops.PreflightRequest{Env: "production"}); err == nil {
		t.Error("no version: no error")
	}
	f.deps.Locker, f.deps.AppDB = nil, nil
	_, err := ops.NewPreflighter(f.deps).Run(context.Background(), f.req)
	if err == nil || !strings.Contains(err.Error(), "app database, locker") {
		t.Errorf("missing deps: %v", err)
	}
}

func TestReportHash(t *testing.T) {
	f := newFixture(t)
	first := f.run(t)
	f.req.Now = f.req.Now.Add(90 * time.Minute) // still in the window, the snapshot still fresh
	second := f.run(t)
	if first.GeneratedAt.Equal(second.GeneratedAt) {
		t.Fatal("the runs should differ in time")
	}
	if first.Hash != second.Hash {
		t.Errorf("same system, different hash:\n%+v\n%+v", first.Checks, second.Checks)
	}

	shuffled := first
	shuffled.Checks = slices.Clone(first.Checks)
	slices.Reverse(shuffled.Checks)
	shuffled.GeneratedAt = time.Time{}
	if shuffled.ComputeHash() != first.Hash {
		t.Error("the hash depends on the order of the checks or on the time")
	}

	reworded := first
	reworded.Checks = slices.Clone(first.Checks)
	reworded.Checks[3].Message += " (12.4 MiB now)"
	if reworded.ComputeHash() != first.Hash {
		t.Error("the wording of a check changes the hash: approvals would be void on a busy database")
	}

	for name, change := range map[string]func(r *ops.Report){
		"a check's status": func(r *ops.Report) { r.Checks[3].Status = ops.CheckWarn },
		"an option":        func(r *ops.Report) { r.OverrideWindow = "hotfix" },
		"the image id":     func(r *ops.Report) { r.ImageID = "sha256:other" },
		"the version":      func(r *ops.Report) { r.Version = "v9" },
		"a pending name":   func(r *ops.Report) { r.Pending[0].Name = "other" },
	} {
		r := first
		r.Checks, r.Pending = slices.Clone(first.Checks), slices.Clone(first.Pending)
		change(&r)
		if r.ComputeHash() == first.Hash {
			t.Errorf("changing %s keeps the hash", name)
		}
	}

	f.locker.get = func(context.Context, string, time.Time) (ops.Lock, bool, error) {
		return ops.Lock{Env: "production", Holder: "bob", Reason: "x", Manual: true}, true, nil
	}
	if third := f.run(t); third.Hash == first.Hash || third.Hash != third.ComputeHash() {
		t.Error("a changed check gives the same hash")
	}
}

func TestPreflightHungDependencies(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	f := newFixture(t)
	f.deps.Timeout = 150 * time.Millisecond
	// The lock store honours its context; the prober ignores it.
	f.locker.get = func(ctx context.Context, _ string, _ time.Time) (ops.Lock, bool, error) {
		<-ctx.Done()
		return ops.Lock{}, false, ctx.Err()
	}
	f.deps.Prober = pfProber(func(context.Context, string) ops.Health {
		<-release
		return ops.Health{Status: ops.Healthy}
	})
	start := time.Now()
	rep := f.run(t)
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("Run took %s with a 150ms timeout", elapsed)
	}
	for name, wait := range map[string]string{"lock.free": "the lock store", "live.health": "the proxy and the live slot"} {
		c, _ := findCheck(rep, name)
		if c.Status != ops.CheckFail || c.Message != "timed out after 150ms waiting for "+wait || c.Remediation == "" {
			t.Errorf("%s = %+v, want a timeout failure", name, c)
		}
	}
	if c, _ := findCheck(rep, "image.present"); c.Status != ops.CheckPass {
		t.Errorf("image.present = %+v; the other checks should not suffer", c)
	}
	if len(rep.Checks) != len(allChecks) {
		t.Errorf("%d checks, want %d", len(rep.Checks), len(allChecks))
	}
}

// Each dependency waits until all of them were called: the checks only
// finish if they run at the same time.
func TestPreflightRunsDependenciesConcurrently(t *testing.T) {
	f := newFixture(t)
	var barrier sync.WaitGroup
	barrier.Add(5)
	arrive := func(ctx context.Context) error {
		barrier.Done()
		done := make(chan struct{})
		go func() { barrier.Wait(); close(done) }()
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	lockGet, list, version, size := f.locker.get, f.snapshots.list, f.migrator.version, f.deps.AppDB
	f.locker.get = func(ctx context.Context, env string, now time.Time) (ops.Lock, bool, error) {
		if err := arrive(ctx); err != nil {
			return ops.Lock{}, false, err
		}
		return lockGet(ctx, env, now)
	}
	f.snapshots.list = func(ctx context.Context) ([]ops.SnapshotInfo, error) {
		if err := arrive(ctx); err != nil {
			return nil, err
		}
		return list(ctx)
	}
	var versionArrived sync.Once // the migration checks read the version too
	f.migrator.version = func(ctx context.Context) (uint, bool, error) {
		var err error
		versionArrived.Do(func() { err = arrive(ctx) })
		if err != nil {
			return 0, false, err
		}
		return version(ctx)
	}
	f.deps.AppDB = pfSizer(func(ctx context.Context) (int64, error) {
		if err := arrive(ctx); err != nil {
			return 0, err
		}
		return size.Size(ctx)
	})
	imageIDOf := f.engine.imageID
	f.engine.imageID = func(ctx context.Context, ref string) (string, error) {
		if err := arrive(ctx); err != nil {
			return "", err
		}
		return imageIDOf(ctx, ref)
	}
	rep := f.run(t)
	if v := rep.Verdict(); v != ops.CheckPass {
		t.Errorf("verdict %s: %+v", v, rep.Blocking())
	}
}

// A hung image look-up has the short timeout, not the pull's.
func TestPreflightHungImageLookup(t *testing.T) {
	f := newFixture(t)
	f.deps.Timeout = 100 * time.Millisecond
	f.engine.imageID = func(ctx context.Context, _ string) (string, error) {
		<-ctx.Done()
		return "", ctx.Err()
	}
	f.engine.pull = func(context.Context, string) error { return nil }
	start := time.Now()
	rep := f.run(t)
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("Run took %s", elapsed)
	}
	c, _ := findCheck(rep, "image.present")
	if c.Status != ops.CheckFail || !strings.Contains(c.Message, "was pulled but cannot be inspected: context deadline exceeded") || rep.ImageID != "" {
		t.Errorf("image.present = %+v, image id %q", c, rep.ImageID)
	}
}

// The zero-drop sysctl is read on the environment's host: off or missing
// warns with the exact fix, never blocks.
func TestPreflightZeroDropSysctl(t *testing.T) {
	for _, c := range []struct {
		name   string
		sys    map[string]string
		status ops.CheckStatus
		msg    string
	}{
		{"on", map[string]string{"/proc/sys/net/ipv4/tcp_migrate_req": "1\n"}, ops.CheckPass, "tcp_migrate_req=1"},
		{"off", map[string]string{"/proc/sys/net/ipv4/tcp_migrate_req": "0\n"}, ops.CheckWarn, "tcp_migrate_req=0: a switch can reset"},
		{"old kernel", map[string]string{"/proc/sys/kernel/osrelease": "5.10.0-9-amd64\n"}, ops.CheckWarn, "the kernel (Linux 5.10.0-9-amd64) has no net.ipv4.tcp_migrate_req"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			f.deps.Files = pfFiles{sys: c.sys}
			rep := f.run(t)
			got, ok := findCheck(rep, "host.tcp_migrate_req")
			if !ok || got.Status != c.status || !strings.Contains(got.Message, c.msg) {
				t.Fatalf("host.tcp_migrate_req = %+v, want %s with %q", got, c.status, c.msg)
			}
			if c.status == ops.CheckWarn && !strings.Contains(got.Remediation, "sysctl -w net.ipv4.tcp_migrate_req=1") {
				t.Errorf("remediation %q lacks the sysctl fix", got.Remediation)
			}
			if len(rep.Blocking()) != 0 {
				t.Errorf("the sysctl blocked the deploy: %+v", rep.Blocking())
			}
		})
	}
}

type pfDumpClient struct{ client, server int }

func (d pfDumpClient) DumpVersions(context.Context) (ops.DumpClient, error) {
	return ops.DumpClient{Client: d.client, Server: d.server, Where: "the bot's machine"}, nil
}

// A pg_dump older than the server fails pre-flight: the pre-deploy
// snapshot would fail after the deploy started.
func TestPreflightSnapshotClient(t *testing.T) {
	f := newFixture(t)
	f.deps.DumpClient = pfDumpClient{client: 15, server: 16}
	c, _ := findCheck(f.run(t), "snapshots.client")
	if c.Status != ops.CheckFail || !strings.Contains(c.Message, "pg_dump 15 on the bot's machine cannot dump the PostgreSQL 16 server") ||
		!strings.Contains(c.Remediation, "postgresql-client-16") || !strings.Contains(c.Remediation, "snapshots.dump: container:") {
		t.Errorf("snapshots.client = %+v, want a failure naming both versions, the client to install and the container option", c)
	}
	f = newFixture(t)
	f.deps.DumpClient = pfDumpClient{client: 16, server: 15}
	if c, _ := findCheck(f.run(t), "snapshots.client"); c.Status != ops.CheckPass {
		t.Errorf("a newer client: %+v, want pass", c)
	}
}
