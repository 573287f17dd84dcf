package ops

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// CheckStatus is the outcome of one pre-flight check.
type CheckStatus string

// Check outcomes: a failed check blocks a deploy, a warning is shown to the
// approvers.
const (
	CheckPass CheckStatus = "pass"
	CheckWarn CheckStatus = "warn"
	CheckFail CheckStatus = "fail"
)

// Check is the outcome of one pre-flight check.
type Check struct {
	Name        string      `json:"name"` // stable, e.g. env_file.mode
	Status      CheckStatus `json:"status"`
	Message     string      `json:"message"`               // never holds a secret value
	Remediation string      `json:"remediation,omitempty"` // one line; empty when the check passed
}

// Report is the outcome of a pre-flight run. Approvals are bound to what
// it found (Binding), which its Hash sums up.
type Report struct {
	Env         string      `json:"env"`
	Version     string      `json:"version"`
	Image       string      `json:"image"`              // the image reference of Version
	ImageID     string      `json:"image_id,omitempty"` // empty when the image is neither present nor pullable
	Checks      []Check     `json:"checks"`
	Pending     []Migration `json:"pending,omitempty"`
	Findings    []Finding   `json:"findings,omitempty"` // lint findings of Pending
	Window      string      `json:"window"`             // where now is relative to the deploy window
	GeneratedAt time.Time   `json:"generated_at"`
	Hash        string      `json:"hash"`
	// The options the checks ran with (PreflightRequest).
	AllowDestructive string `json:"allow_destructive,omitempty"`
	OverrideWindow   string `json:"override_window,omitempty"`
}

// Verdict is fail when a check failed, else warn when one warned, else pass.
func (r Report) Verdict() CheckStatus {
	switch {
	case len(r.Blocking()) > 0:
		return CheckFail
	case len(r.Warnings()) > 0:
		return CheckWarn
	}
	return CheckPass
}

// Live returns the live.health check: what serves now, or that nothing
// does yet (a first deploy), the state the deploy starts from.
func (r Report) Live() (Check, bool) {
	i := slices.IndexFunc(r.Checks, func(c Check) bool { return c.Name == chkLiveHealth })
	if i < 0 {
		return Check{}, false
	}
	return r.Checks[i], true
}

// Blocking returns the failed checks.
func (r Report) Blocking() []Check { return r.withStatus(CheckFail) }

// Warnings returns the checks that warned.
func (r Report) Warnings() []Check { return r.withStatus(CheckWarn) }

func (r Report) withStatus(s CheckStatus) []Check {
	var out []Check
	for _, c := range r.Checks {
		if c.Status == s {
			out = append(out, c)
		}
	}
	return out
}

// ComputeHash is the SHA-256 (hex) of the environment, the version and
// the report's Binding: what it found, not how it words it, so an
// unchanged system gives the same hash on every run.
func (r Report) ComputeHash() string {
	b, err := json.Marshal(struct {
		Env, Version string
		Binding      Binding
	}{r.Env, r.Version, r.Binding()})
	if err != nil { // strings, a sorted map and slices only: cannot happen
		panic(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// PreflightRequest asks for the pre-flight checks of one version.
type PreflightRequest struct {
	Env     string
	Version string
	// AllowDestructive is the reason destructive migrations are accepted;
	// empty refuses them.
	AllowDestructive string
	// OverrideWindow is the reason to deploy outside the window; empty
	// refuses (or warns, per the policy).
	OverrideWindow string
	Now            time.Time // zero: time.Now()
}

// DatabaseSizer reports the size of the application database.
type DatabaseSizer interface {
	Size(ctx context.Context) (int64, error)
}

// DumpClient is the snapshot client: its major version, the app
// database's server's, and where the client runs.
type DumpClient struct {
	Client, Server int
	Where          string // "the bot's machine", "container togather-db"
}

// DumpVersioner reports the snapshot client's version and the server's.
type DumpVersioner interface {
	DumpVersions(ctx context.Context) (DumpClient, error)
}

// MaintenanceModeReader tells whether the proxy answers with the
// maintenance page instead of the app (a window with the 503 mode runs).
type MaintenanceModeReader interface {
	InMaintenance(ctx context.Context) (bool, error)
}

// PreflightDeps are the adapters and settings the checks of one environment
// read.
type PreflightDeps struct {
	Env    Environment
	Window Window
	Engine Engine
	Proxy  LiveSlotReader
	// Mode tells whether the proxy shows the maintenance page; nil skips
	// that check.
	Mode        MaintenanceModeReader
	Prober      Prober
	Locker      Locker
	Snapshotter Snapshotter
	// DumpClient compares the snapshot client with the server; nil skips
	// that check.
	DumpClient  DumpVersioner
	SnapshotDir string   // where snapshots are written, for the disk checks
	Migrator    Migrator // the app database; nil when the environment has no migrations
	AppDB       DatabaseSizer
	// StagingMigrator reads staging's database, for the parity check of a
	// production deploy; nil skips that check.
	StagingMigrator Migrator
	// RequiredVars must be set in the env file; default ENVIRONMENT,
	// DATABASE_URL, JWT_SECRET.
	RequiredVars []string
	// DiskFree reports the bytes free (for an unprivileged user) and in
	// total on the file system of path; default statfs(2) on the bot's
	// machine.
	DiskFree func(path string) (free, total uint64, err error)
	// Files reads the env file on the environment's host; default the bot's
	// own file system.
	Files HostFiles
	// MigrationsDir resolves Env.Migrations for an image (see the package
	// function MigrationsDir, the default); cleanup removes a copy.
	MigrationsDir func(ctx context.Context, image string) (dir string, cleanup func(), err error)
	// Networks and Dialer check the container network and the database
	// from it (network.exists, database.from_containers); nil Networks
	// skips both checks, nil Dialer only the connection.
	Networks    NetworkInspector
	Dialer      Dialer
	Timeout     time.Duration // per group of checks and per image look-up; default 15 s
	PullTimeout time.Duration // for pulling the image; default 5 min
}

// Preflighter runs the pre-flight checks of one environment.
type Preflighter struct {
	d PreflightDeps
}

// NewPreflighter returns a Preflighter with defaults applied.
func NewPreflighter(d PreflightDeps) *Preflighter {
	if len(d.RequiredVars) == 0 {
		d.RequiredVars = []string{"ENVIRONMENT", "DATABASE_URL", "JWT_SECRET"}
	}
	if d.Env.DatabaseVar == "" {
		d.Env.DatabaseVar = "DATABASE_URL"
	}
	if d.DiskFree == nil {
		d.DiskFree = DiskFree
	}
	if d.Files == nil {
		d.Files = localFiles{}
	}
	if d.MigrationsDir == nil {
		d.MigrationsDir = func(ctx context.Context, image string) (string, func(), error) {
			return MigrationsDir(ctx, d.Env.Migrations, d.Engine, image)
		}
	}
	if d.Timeout <= 0 {
		d.Timeout = 15 * time.Second
	}
	if d.PullTimeout <= 0 {
		d.PullTimeout = 5 * time.Minute
	}
	return &Preflighter{d: d}
}

// Stable check names, in report order.
const (
	chkEnvExists        = "env_file.exists"
	chkEnvMode          = "env_file.mode"
	chkEnvRequired      = "env_file.required"
	chkEnvPlaceholders  = "env_file.placeholders"
	chkDBSSL            = "security.db_ssl"
	chkFlags            = "security.flags"
	chkJWT              = "security.jwt_secret"
	chkDatabase         = "database.migrations"
	chkImage            = "image.present"
	chkMigrationsSafety = "migrations.safety"
	chkStagingParity    = "migrations.staging_parity"
	chkSnapshotsFresh   = "snapshots.fresh"
	chkSnapshotClient   = "snapshots.client"
	chkDiskFree         = "disk.free"
	chkSnapshotRoom     = "disk.snapshot_room"
	chkLock             = "lock.free"
	chkWindow           = "window"
	chkLiveResources    = "live.resources"
	chkLiveHealth       = "live.health"
	chkProxyMode        = "proxy.mode"
)

var checkOrder = []string{
	chkEnvExists, chkEnvMode, chkEnvRequired, chkEnvPlaceholders, chkDBSSL, chkFlags, chkJWT,
	chkDatabase, chkImage, chkMigrationsSafety, chkStagingParity, chkSnapshotsFresh, chkSnapshotClient, chkDiskFree,
	chkSnapshotRoom, chkLock, chkWindow, chkLiveResources, chkLiveHealth, chkZeroDrop, chkNetwork, chkContainerDB,
}

// Thresholds of the best-practices guide.
const (
	snapshotMaxAge  = 24 * time.Hour
	diskWarnPercent = 20
	diskFailPercent = 10
	cpuWarnPercent  = 70
	memWarnPercent  = 80
	minJWTSecretLen = 32
)

// Run runs every check and reports each outcome, pass, warn or fail, in the
// Report; it fails only when the request or the setup is unusable. The
// checks that wait on a dependency run concurrently, each group under its
// own deadline: a group that does not finish in time fails as timed out
// and the report is returned anyway. A check that cannot be evaluated
// fails, except the advisory live.resources, which warns.
//
// The checks: env_file.exists, env_file.mode, env_file.required,
// env_file.placeholders; for production security.db_ssl, security.flags,
// security.jwt_secret; database.migrations, image.present,
// migrations.safety, migrations.staging_parity (production with a staging
// migrator), snapshots.fresh, disk.free, disk.snapshot_room, lock.free,
// window, live.resources, live.health, host.tcp_migrate_req. The env file checks that need its
// content are left out when it cannot be read or parsed.
func (p *Preflighter) Run(ctx context.Context, req PreflightRequest) (Report, error) {
	d := p.d
	if req.Env != d.Env.Name {
		return Report{}, fmt.Errorf("preflight: %w %q", ErrUnknownEnvironment, req.Env)
	}
	if req.Version == "" {
		return Report{}, errors.New("preflight: no version given")
	}
	if err := d.missing(); err != nil {
		return Report{}, fmt.Errorf("preflight %s: %w", req.Env, err)
	}
	now := req.Now
	if now.IsZero() {
		now = time.Now()
	}
	ref := d.Env.ImageRef(req.Version)
	rep := Report{Env: req.Env, Version: req.Version, Image: ref, GeneratedAt: now,
		AllowDestructive: req.AllowDestructive, OverrideWindow: req.OverrideWindow}
	checks, env := p.envChecks()
	window, why := p.windowCheck(now, req.OverrideWindow)
	rep.Window = why
	checks = append(checks, window)

	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	merge := func(part partial) {
		mu.Lock()
		defer mu.Unlock()
		checks = append(checks, part.checks...)
		rep.Pending = append(rep.Pending, part.pending...)
		rep.Findings = append(rep.Findings, part.findings...)
		if part.imageID != "" {
			rep.ImageID = part.imageID
		}
	}
	groups := p.independentGroups(now)
	if d.Networks != nil {
		groups = append(groups, p.networkGroup(env))
	}
	for _, g := range groups {
		wg.Go(func() { merge(g.run(ctx)) })
	}
	wg.Go(func() {
		img := p.imageGroup(ref).run(ctx)
		merge(img)
		merge(p.migrationGroup(req, img.imageID).run(ctx))
	})
	wg.Wait()

	slices.SortStableFunc(checks, func(a, b Check) int {
		return cmp.Compare(slices.Index(checkOrder, a.Name), slices.Index(checkOrder, b.Name))
	})
	redact := NewRedactor(d.Env.EnvSecrets(env)...)
	for i := range checks {
		checks[i].Message, checks[i].Remediation = redact.Redact(checks[i].Message), redact.Redact(checks[i].Remediation)
	}
	rep.Checks = checks
	rep.Hash = rep.ComputeHash()
	return rep, nil
}

// missing reports the dependencies Run cannot do without.
func (d PreflightDeps) missing() error {
	var names []string
	for name, isNil := range map[string]bool{
		"environment name": d.Env.Name == "", "engine": d.Engine == nil, "proxy": d.Proxy == nil,
		"prober": d.Prober == nil, "locker": d.Locker == nil, "snapshotter": d.Snapshotter == nil,
		"snapshot directory": d.SnapshotDir == "", "app database": d.AppDB == nil,
	} {
		if isNil {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	slices.Sort(names)
	return fmt.Errorf("setup lacks: %s", strings.Join(names, ", "))
}

// partial is what one group of checks adds to a report.
type partial struct {
	checks   []Check
	imageID  string
	pending  []Migration
	findings []Finding
}

// checkGroup is checks that share dependencies and a deadline.
type checkGroup struct {
	names   []string
	waitsOn string // the dependency, for the timeout message
	timeout time.Duration
	check   func(ctx context.Context) partial
}

// run runs the group under its deadline. A group still running at the
// deadline is left to finish in the background, its result dropped, and
// its checks fail as timed out.
func (g checkGroup) run(ctx context.Context) partial {
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	done := make(chan partial, 1)
	go func() { done <- g.check(ctx) }()
	var part partial
	select {
	case part = <-done:
	case <-ctx.Done():
	}
	err := ctx.Err()
	if err == nil {
		return part
	}
	msg := fmt.Sprintf("timed out after %s waiting for %s", g.timeout, g.waitsOn)
	if !errors.Is(err, context.DeadlineExceeded) {
		msg = fmt.Sprintf("not finished (%v) while waiting for %s", err, g.waitsOn)
	}
	return failAll(g.names, msg, fmt.Sprintf("check that %s answers, then run the pre-flight again", g.waitsOn))
}

func failAll(names []string, msg, remediation string) partial {
	var part partial
	for _, n := range names {
		part.checks = append(part.checks, fail(n, msg, remediation))
	}
	return part
}

func pass(name, format string, args ...any) Check {
	return Check{Name: name, Status: CheckPass, Message: fmt.Sprintf(format, args...)}
}

func warn(name, msg, remediation string) Check {
	return Check{Name: name, Status: CheckWarn, Message: msg, Remediation: remediation}
}

func fail(name, msg, remediation string) Check {
	return Check{Name: name, Status: CheckFail, Message: msg, Remediation: remediation}
}

// one is the partial of a group with a single check.
func one(c Check) partial { return partial{checks: []Check{c}} }

// independentGroups are the groups that need nothing from one another.
func (p *Preflighter) independentGroups(now time.Time) []checkGroup {
	d := p.d
	groups := []checkGroup{
		{[]string{chkDatabase}, "the app database", d.Timeout, p.checkDatabase},
		{[]string{chkSnapshotsFresh}, "the snapshot store", d.Timeout, func(ctx context.Context) partial { return one(p.checkSnapshots(ctx, now)) }},
		{[]string{chkDiskFree, chkSnapshotRoom}, "the snapshot disk and the app database", d.Timeout, p.checkDisk},
		{[]string{chkLock}, "the lock store", d.Timeout, func(ctx context.Context) partial { return one(p.checkLock(ctx, now)) }},
		{[]string{chkLiveResources}, "the proxy and the container engine", d.Timeout, func(ctx context.Context) partial { return one(p.checkResources(ctx)) }},
		{[]string{chkLiveHealth}, "the proxy and the live slot", d.Timeout, func(ctx context.Context) partial { return one(p.checkLiveHealth(ctx)) }},
		{[]string{chkZeroDrop}, "the host's kernel settings", d.Timeout, func(context.Context) partial { return one(zeroDropCheck(d.Files)) }},
	}
	if d.DumpClient != nil {
		groups = append(groups, checkGroup{[]string{chkSnapshotClient}, "the app database", d.Timeout, func(ctx context.Context) partial { return one(p.checkDumpClient(ctx)) }})
	}
	if d.Mode != nil {
		groups = append(groups, checkGroup{[]string{chkProxyMode}, "the proxy configuration", d.Timeout, func(ctx context.Context) partial { return one(p.checkProxyMode(ctx)) }})
	}
	return groups
}

// checkDumpClient fails when the pre-deploy snapshot would: pg_dump
// refuses a server of a newer major version.
func (p *Preflighter) checkDumpClient(ctx context.Context) Check {
	d, err := p.d.DumpClient.DumpVersions(ctx)
	switch {
	case err != nil:
		return warn(chkSnapshotClient, fmt.Sprintf("the snapshot client's version cannot be compared with the server's: %v", err),
			fmt.Sprintf("check that pg_dump runs on %s", cmp.Or(d.Where, "the bot's machine")))
	case d.Client < d.Server:
		return fail(chkSnapshotClient, fmt.Sprintf("pg_dump %d on %s cannot dump the PostgreSQL %d server: the pre-deploy snapshot would fail", d.Client, d.Where, d.Server),
			fmt.Sprintf("install postgresql-client-%d (or newer) on the bot's machine, or set snapshots.dump: container:<the database's container> to use the server's own pg_dump", d.Server))
	}
	return pass(chkSnapshotClient, "pg_dump %d on %s dumps the PostgreSQL %d server", d.Client, d.Where, d.Server)
}

// checkProxyMode fails while the proxy shows the maintenance page: the
// switch would be refused, so the deploy would start a slot for nothing.
func (p *Preflighter) checkProxyMode(ctx context.Context) Check {
	in, err := p.d.Mode.InMaintenance(ctx)
	switch {
	case err != nil:
		return fail(chkProxyMode, fmt.Sprintf("the proxy configuration cannot be read: %v", err), "check the proxy with `status "+p.d.Env.Name+"`")
	case in:
		return fail(chkProxyMode, "the proxy shows the maintenance page (a maintenance window with --mode 503 is in progress); the switch would be refused",
			"end the window first (`maintenance end <id>`), then deploy")
	}
	return pass(chkProxyMode, "the proxy serves the app, not the maintenance page")
}

// envChecks reads the env file (a local file, read in line) and checks it;
// it also returns the parsed file, empty when unreadable.
func (p *Preflighter) envChecks() ([]Check, EnvFile) {
	e := p.d.Env
	path := e.EnvFile
	if path == "" {
		return []Check{fail(chkEnvExists, "no env file is configured for "+e.Name, "set the environment's env file in the bot's configuration")}, EnvFile{}
	}
	info, err := p.d.Files.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return []Check{fail(chkEnvExists, path+" does not exist", fmt.Sprintf("create %s from the environment's .env example, then chmod 600 %s", path, path))}, EnvFile{}
	}
	if err != nil {
		return []Check{fail(chkEnvExists, fmt.Sprintf("%s cannot be read: %v", path, err), "make "+path+" readable by the bot's user")}, EnvFile{}
	}
	var checks []Check
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		checks = append(checks, warn(chkEnvMode, fmt.Sprintf("%s has mode %04o: others than its owner can read its secrets", path, perm), "chmod 600 "+path))
	} else {
		checks = append(checks, pass(chkEnvMode, "%s has mode %04o", path, perm))
	}
	data, err := p.d.Files.ReadFile(path)
	if err != nil {
		return append(checks, fail(chkEnvExists, fmt.Sprintf("%s cannot be read: %v", path, err), "make "+path+" readable by the bot's user")), EnvFile{}
	}
	f, err := ParseEnvFile(data)
	if err != nil {
		return append(checks, fail(chkEnvExists, fmt.Sprintf("%s: %v", path, err), "fix that line of "+path+" to read KEY=VALUE")), EnvFile{}
	}
	checks = append(checks,
		pass(chkEnvExists, "%s exists with %d variables", path, len(f.Vars)),
		p.requiredCheck(f),
		placeholderCheck(path, f))
	if e.Production {
		checks = append(checks, p.dbSSLCheck(f), flagsCheck(path, f), jwtCheck(path, f))
	}
	return checks, f
}

func (p *Preflighter) requiredCheck(f EnvFile) Check {
	var missing []string
	for _, k := range p.d.RequiredVars {
		if strings.TrimSpace(f.Value(k)) == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		list := strings.Join(missing, ", ")
		return fail(chkEnvRequired, "missing or empty: "+list, fmt.Sprintf("set %s in %s", list, p.d.Env.EnvFile))
	}
	return pass(chkEnvRequired, "%s are set", strings.Join(p.d.RequiredVars, ", "))
}

const placeholder = "CHANGE_ME"

func hasPlaceholder(s string) bool { return strings.Contains(strings.ToUpper(s), placeholder) }

// placeholderCheck fails on CHANGE_ME in a value and warns on CHANGE_ME in
// a comment, which the scripts wrongly fail on.
func placeholderCheck(path string, f EnvFile) Check {
	var inValues []string
	var inComments []string
	for _, v := range f.Vars {
		if hasPlaceholder(v.Value) {
			inValues = append(inValues, fmt.Sprintf("%s (line %d)", v.Key, v.Line))
		}
	}
	for _, c := range f.Comments {
		if hasPlaceholder(c.Text) {
			inComments = append(inComments, strconv.Itoa(c.Line))
		}
	}
	comments := "line " + strings.Join(inComments, ", ")
	if len(inComments) > 1 {
		comments = "lines " + strings.Join(inComments, ", ")
	}
	switch {
	case len(inValues) > 0:
		msg := placeholder + " in the value of " + strings.Join(inValues, ", ")
		if len(inComments) > 0 {
			msg += "; also in comments on " + comments
		}
		return fail(chkEnvPlaceholders, msg, "replace the placeholder values in "+path+" with real ones")
	case len(inComments) > 0:
		return warn(chkEnvPlaceholders, placeholder+" only in comments, on "+comments+"; no value is a placeholder",
			"reword those comments of "+path+" once the values are set")
	}
	return pass(chkEnvPlaceholders, "no %s placeholder", placeholder)
}

func (p *Preflighter) dbSSLCheck(f EnvFile) Check {
	key := p.d.Env.DatabaseVar
	raw := f.Value(key)
	if raw == "" {
		return fail(chkDBSSL, key+" is not set", fmt.Sprintf("set %s in %s", key, p.d.Env.EnvFile))
	}
	mode := sslMode(raw)
	if mode == "" {
		mode = f.Value("PGSSLMODE")
	}
	switch mode {
	case "require", "verify-ca", "verify-full":
		return pass(chkDBSSL, "%s uses sslmode=%s", key, mode)
	case "":
		return fail(chkDBSSL, key+" sets no sslmode, so the connection may fall back to plain text",
			"add sslmode=require (or verify-full) to "+key)
	}
	return fail(chkDBSSL, fmt.Sprintf("%s uses sslmode=%s, which allows plain text", key, mode),
		"set sslmode=require (or verify-full) in "+key)
}

// sslMode reads sslmode from a postgres:// URL or a key=value DSN.
func sslMode(dsn string) string {
	if strings.Contains(dsn, "://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return ""
		}
		return u.Query().Get("sslmode")
	}
	for _, field := range strings.Fields(dsn) {
		if v, ok := strings.CutPrefix(field, "sslmode="); ok {
			return strings.Trim(v, `'"`)
		}
	}
	return ""
}

// flagsCheck fails on the settings the guide forbids in production.
func flagsCheck(path string, f EnvFile) Check {
	var bad, fixes []string
	if v, set := envBool(f.Value("TLS_ENABLED")); set && !v {
		bad, fixes = append(bad, "TLS_ENABLED is false"), append(fixes, "TLS_ENABLED=true")
	}
	for _, k := range []string{"DEBUG", "ALLOW_INSECURE_COOKIES", "CORS_ALLOW_ALL"} {
		if v, _ := envBool(f.Value(k)); v {
			bad, fixes = append(bad, k+" is true"), append(fixes, k+"=false")
		}
	}
	if env := f.Value("ENVIRONMENT"); env != "" && env != "production" {
		bad, fixes = append(bad, fmt.Sprintf("ENVIRONMENT is %q, not production", env)), append(fixes, "ENVIRONMENT=production")
	}
	if len(bad) > 0 {
		return fail(chkFlags, strings.Join(bad, "; "), fmt.Sprintf("set %s in %s", strings.Join(fixes, ", "), path))
	}
	return pass(chkFlags, "TLS_ENABLED, DEBUG, ALLOW_INSECURE_COOKIES, CORS_ALLOW_ALL and ENVIRONMENT are safe for production")
}

// envBool reads a boolean setting; set is false when v is empty or not a
// boolean.
func envBool(v string) (value, set bool) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "t", "true", "yes", "y", "on":
		return true, true
	case "0", "f", "false", "no", "n", "off":
		return false, true
	}
	return false, false
}

// obviousSecrets are substrings of placeholder or guessable secrets.
var obviousSecrets = []string{"change_me", "changeme", "change-me", "secret", "password", "example", "placeholder", "your", "replace", "todo", "xxxx", "1234", "abcd", "default", "test"}

func jwtCheck(path string, f EnvFile) Check {
	const remedy = "generate one with `openssl rand -hex 32` and set JWT_SECRET in "
	v := f.Value("JWT_SECRET")
	switch {
	case v == "":
		return fail(chkJWT, "JWT_SECRET is not set", remedy+path)
	case len(v) < minJWTSecretLen:
		return fail(chkJWT, fmt.Sprintf("JWT_SECRET has %d characters; at least %d are needed", len(v), minJWTSecretLen), remedy+path)
	case obviousSecret(v):
		return fail(chkJWT, "JWT_SECRET looks like a placeholder or a guessable value", remedy+path)
	}
	return pass(chkJWT, "JWT_SECRET is long enough and looks random")
}

func obviousSecret(v string) bool {
	lower := strings.ToLower(v)
	for _, s := range obviousSecrets {
		if strings.Contains(lower, s) {
			return true
		}
	}
	distinct := map[rune]bool{}
	for _, r := range v {
		distinct[r] = true
	}
	return len(distinct) < 10
}

func (p *Preflighter) windowCheck(now time.Time, override string) (Check, string) {
	open, why := p.d.Window.Open(now)
	switch {
	case open:
		return pass(chkWindow, "%s", why), why
	case override != "":
		return warn(chkWindow, fmt.Sprintf("%s; override: %q; needs the policy's extra approval", why, override),
			"an approver must accept the override"), why
	}
	remedy := fmt.Sprintf("deploy inside the window (%s), or give an override reason (needs an extra approval)", p.d.Window)
	if p.d.Env.Policy.EnforceWindow {
		return fail(chkWindow, why, remedy), why
	}
	return warn(chkWindow, why, remedy), why
}

func (p *Preflighter) checkDatabase(ctx context.Context) partial {
	if p.d.Migrator == nil {
		return one(pass(chkDatabase, "no database migrations are configured for %s", p.d.Env.Name))
	}
	v, dirty, err := p.d.Migrator.Version(ctx)
	switch {
	case err != nil:
		return one(fail(chkDatabase, fmt.Sprintf("the app database cannot be read: %v", err),
			fmt.Sprintf("check that the database is up and %s in %s is right", p.d.Env.DatabaseVar, p.d.Env.EnvFile)))
	case dirty:
		return one(fail(chkDatabase, fmt.Sprintf("migration %d is dirty: it failed half-way", v),
			"repair the schema by hand, then reset schema_migrations (docs/operations.md, \"A dirty migration\")"))
	case v == 0:
		return one(pass(chkDatabase, "the app database answers; no migration is applied yet"))
	}
	return one(pass(chkDatabase, "the app database answers at migration %d", v))
}

// imageGroup finds the image, pulling it when it is not on the host. The
// group has the pull's budget; each look-up has the short one.
func (p *Preflighter) imageGroup(ref string) checkGroup {
	e := p.d.Engine
	lookup := func(ctx context.Context) (string, error) {
		ctx, cancel := context.WithTimeout(ctx, p.d.Timeout)
		defer cancel()
		return e.ImageID(ctx, ref)
	}
	return checkGroup{[]string{chkImage}, "the container engine and the registry", p.d.PullTimeout, func(ctx context.Context) partial {
		id, err := lookup(ctx)
		if err != nil {
			if err := e.Pull(ctx, ref); err != nil {
				return one(fail(chkImage, fmt.Sprintf("%s is not on the host and could not be pulled: %v", ref, err),
					"build or push "+ref+", or check the version and the registry access"))
			}
			if id, err = lookup(ctx); err != nil {
				return one(fail(chkImage, fmt.Sprintf("%s was pulled but cannot be inspected: %v", ref, err), "check the container engine"))
			}
		}
		return partial{checks: []Check{pass(chkImage, "%s is on the host as %s", ref, short(id))}, imageID: id}
	}}
}

// migrationGroup lists and lints the pending migrations of the image
// imageID ("" when it is not available) and compares them with staging.
func (p *Preflighter) migrationGroup(req PreflightRequest, imageID string) checkGroup {
	d := p.d
	names := []string{chkMigrationsSafety}
	parity := d.Env.Production && d.StagingMigrator != nil
	if parity {
		names = append(names, chkStagingParity)
	}
	return checkGroup{names, "the migrations and the databases", d.Timeout, func(ctx context.Context) partial {
		src := d.Env.Migrations
		switch {
		case d.Migrator == nil || src == (MigrationSource{}):
			return partial{checks: passAll(names, "no database migrations are configured for "+d.Env.Name)}
		case src.Dir == "" && imageID == "":
			return failAll(names, "not checked: the migrations are in the image, which is not available", "fix "+chkImage+" first")
		}
		dir, cleanup, err := d.MigrationsDir(ctx, imageID)
		if err != nil {
			return failAll(names, fmt.Sprintf("the migrations cannot be read: %v", err), "check the migration source of "+d.Env.Name)
		}
		defer cleanup()
		pending, err := d.Migrator.Pending(ctx, dir)
		if err != nil {
			return failAll(names, fmt.Sprintf("the pending migrations cannot be listed: %v", err), "check the app database and the migration files")
		}
		part := partial{pending: pending}
		if v, dirty, err := d.Migrator.Version(ctx); err == nil && v == 0 && !dirty && len(pending) > 0 {
			// A first install: the statements have no data to destroy
			// and no traffic to block.
			part.checks = append(part.checks, pass(chkMigrationsSafety,
				"%d pending on a database with no migration applied (a first install): nothing to lose, so they are not linted", len(pending)))
		} else {
			for _, m := range pending {
				part.findings = append(part.findings, LintMigration(m)...)
			}
			part.checks = append(part.checks, safetyCheck(pending, part.findings, req.AllowDestructive))
		}
		if parity {
			part.checks = append(part.checks, p.parityCheck(ctx, req.Version, pending))
		}
		return part
	}}
}

func passAll(names []string, msg string) []Check {
	var out []Check
	for _, n := range names {
		out = append(out, pass(n, "%s", msg))
	}
	return out
}

func safetyCheck(pending []Migration, findings []Finding, allow string) Check {
	if len(pending) == 0 {
		return pass(chkMigrationsSafety, "no pending migrations")
	}
	names := make([]string, len(pending))
	for i, m := range pending {
		names[i] = fmt.Sprintf("%06d_%s", m.Version, m.Name)
	}
	summary := fmt.Sprintf("%d pending (%s)", len(pending), strings.Join(names, ", "))
	var destructive, warnings []Finding
	for _, f := range findings {
		if f.Destructive {
			destructive = append(destructive, f)
		} else {
			warnings = append(warnings, f)
		}
	}
	switch {
	case len(destructive) > 0 && allow == "":
		return fail(chkMigrationsSafety, fmt.Sprintf("%s; destructive: %s", summary, describeFindings(destructive)),
			`split the change into expand and contract steps, or allow it with --allow-destructive "<reason>"`)
	case len(destructive) > 0:
		return warn(chkMigrationsSafety, fmt.Sprintf("%s; destructive changes allowed (%q): %s", summary, allow, describeFindings(destructive)),
			"make sure the pre-deploy snapshot is the way back: the down migrations cannot bring data back")
	case len(warnings) > 0:
		return warn(chkMigrationsSafety, fmt.Sprintf("%s; %s", summary, describeFindings(warnings)), "review the findings before deploying")
	}
	return pass(chkMigrationsSafety, "%s; no findings", summary)
}

// describeFindings names the first finding and counts the rest.
func describeFindings(found []Finding) string {
	s := found[0].Migration + " " + found[0].Message
	if len(found) > 1 {
		s += fmt.Sprintf(" (and %d more)", len(found)-1)
	}
	return s
}

func (p *Preflighter) parityCheck(ctx context.Context, version string, pending []Migration) Check {
	if len(pending) == 0 {
		return pass(chkStagingParity, "no pending migrations to compare with staging")
	}
	var want uint
	for _, m := range pending {
		want = max(want, m.Version)
	}
	remedy := fmt.Sprintf("deploy %s to staging first", version)
	v, dirty, err := p.d.StagingMigrator.Version(ctx)
	switch {
	case err != nil:
		return fail(chkStagingParity, fmt.Sprintf("the staging database cannot be read: %v", err), "check staging's database, then run the pre-flight again")
	case dirty:
		return fail(chkStagingParity, fmt.Sprintf("staging's migration %d is dirty", v), "repair staging's schema first")
	case v < want:
		return fail(chkStagingParity, fmt.Sprintf("staging is at migration %d; this release goes up to %d, untried there", v, want), remedy)
	}
	return pass(chkStagingParity, "staging is at migration %d, which includes this release's %d", v, want)
}

func (p *Preflighter) checkSnapshots(ctx context.Context, now time.Time) Check {
	env := p.d.Env.Name
	list, err := p.d.Snapshotter.List(ctx)
	if err != nil {
		return fail(chkSnapshotsFresh, fmt.Sprintf("the snapshots cannot be listed: %v", err), "check the snapshot directory "+p.d.SnapshotDir)
	}
	if len(list) == 0 {
		return warn(chkSnapshotsFresh, "no snapshot of the database exists yet", "take one with `snapshot create "+env+"`")
	}
	latest := slices.MaxFunc(list, func(a, b SnapshotInfo) int { return a.CreatedAt.Compare(b.CreatedAt) })
	taken := latest.CreatedAt.UTC().Format("2006-01-02 15:04 MST")
	if now.Sub(latest.CreatedAt) >= snapshotMaxAge {
		return warn(chkSnapshotsFresh, fmt.Sprintf("the latest snapshot, %s, was taken %s, more than 24 h ago", latest.Name, taken),
			"check the scheduled snapshots, or take one with `snapshot create "+env+"`")
	}
	return pass(chkSnapshotsFresh, "the latest snapshot, %s, was taken %s", latest.Name, taken)
}

func (p *Preflighter) checkDisk(ctx context.Context) partial {
	dir := p.d.SnapshotDir
	disk, free, err := diskFreeCheck(p.d.DiskFree, dir, p.d.Env.Name)
	if err != nil {
		return failAll([]string{chkDiskFree, chkSnapshotRoom}, disk.Message, disk.Remediation)
	}
	part := partial{checks: []Check{disk}}
	remedy := pruneRemedy(p.d.Env.Name)
	size, err := p.d.AppDB.Size(ctx)
	if err != nil {
		part.checks = append(part.checks, fail(chkSnapshotRoom, fmt.Sprintf("the app database size cannot be read: %v", err), "check the app database"))
		return part
	}
	// A compressed dump is about a quarter of the database; keep twice that.
	dbBytes := uint64(max(size, 0))
	need := dbBytes / 4 * 2
	if free < need {
		part.checks = append(part.checks, fail(chkSnapshotRoom,
			fmt.Sprintf("a snapshot of the %s database needs about %s with margin, but %s has %s free", formatBytes(dbBytes), formatBytes(need), dir, formatBytes(free)),
			remedy))
		return part
	}
	part.checks = append(part.checks, pass(chkSnapshotRoom, "a snapshot of the %s database needs about %s with margin", formatBytes(dbBytes), formatBytes(need)))
	return part
}

// diskFreeCheck measures the free space of dir against the guide's
// thresholds; err is set, and the check failed, when it cannot be read.
func diskFreeCheck(diskFree func(string) (uint64, uint64, error), dir, env string) (c Check, free uint64, err error) {
	free, total, err := diskFree(dir)
	if err == nil && total == 0 {
		err = errors.New("the file system reports no size")
	}
	if err != nil {
		return fail(chkDiskFree, fmt.Sprintf("the free space of %s cannot be read: %v", dir, err),
			"create "+dir+" or fix the snapshot directory setting"), 0, err
	}
	pct := int(free * 100 / total)
	remedy := pruneRemedy(env)
	switch msg := fmt.Sprintf("%d %% free on %s (%s of %s)", pct, dir, formatBytes(free), formatBytes(total)); {
	case pct < diskFailPercent:
		return fail(chkDiskFree, msg+fmt.Sprintf("; below %d %%", diskFailPercent), remedy), free, nil
	case pct < diskWarnPercent:
		return warn(chkDiskFree, msg+fmt.Sprintf("; below %d %%", diskWarnPercent), remedy), free, nil
	}
	return pass(chkDiskFree, "%d %% free on %s", pct, dir), free, nil
}

func pruneRemedy(env string) string {
	return "make room: `snapshot prune " + env + "`, or remove unused images"
}

// formatBytes writes n in binary units with one decimal, e.g. 1.5 GiB.
func formatBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func (p *Preflighter) checkLock(ctx context.Context, now time.Time) Check {
	env := p.d.Env.Name
	l, held, err := p.d.Locker.Get(ctx, env, now)
	switch {
	case err != nil:
		return fail(chkLock, fmt.Sprintf("the lock store cannot be read: %v", err), "check the bot's database")
	case held && l.Manual:
		return fail(chkLock, (&LockError{Held: l}).Error(), fmt.Sprintf("ask %s to `unlock %s`", l.Holder, env))
	case held:
		return fail(chkLock, (&LockError{Held: l}).Error(), "wait for the running operation to finish")
	}
	return pass(chkLock, "%s is not locked", env)
}

// liveSpec is the slot the proxy sends traffic to, with its settings.
func (p *Preflighter) liveSpec(ctx context.Context) (Slot, SlotSpec, error) {
	slot, _, err := p.d.Proxy.LiveSlot(ctx)
	if err != nil {
		return "", SlotSpec{}, fmt.Errorf("which slot is live: %w", err)
	}
	spec, ok := p.d.Env.Slots[slot]
	if !ok {
		return "", SlotSpec{}, fmt.Errorf("the live slot %q is not configured", slot)
	}
	return slot, spec, nil
}

func (p *Preflighter) checkResources(ctx context.Context) Check {
	const remedy = "deploy when the load is lower: blue/green runs both slots for a while"
	_, spec, err := p.liveSpec(ctx)
	if err != nil {
		return warn(chkLiveResources, fmt.Sprintf("resource use not checked: %v", err), "see "+chkLiveHealth)
	}
	if first, err := FirstDeploy(ctx, p.d.Engine, p.d.Env); err == nil && first {
		return pass(chkLiveResources, "first deploy: nothing runs yet")
	}
	st, err := p.d.Engine.Stats(ctx, spec.Container)
	if err != nil {
		return warn(chkLiveResources, fmt.Sprintf("the resource use of %s cannot be read: %v", spec.Container, err), "check the live container")
	}
	var high []string
	if st.CPUPercent >= cpuWarnPercent {
		high = append(high, fmt.Sprintf("CPU at %.0f %% (warn from %d %%)", st.CPUPercent, cpuWarnPercent))
	}
	if st.MemPercent >= memWarnPercent {
		high = append(high, fmt.Sprintf("memory at %.0f %% (warn from %d %%)", st.MemPercent, memWarnPercent))
	}
	if len(high) > 0 {
		return warn(chkLiveResources, spec.Container+" is busy: "+strings.Join(high, ", "), remedy)
	}
	return pass(chkLiveResources, "%s runs below %d %% CPU and %d %% memory", spec.Container, cpuWarnPercent, memWarnPercent)
}

func (p *Preflighter) checkLiveHealth(ctx context.Context) Check {
	const remedy = "fix the live slot first, or roll back"
	slot, spec, err := p.liveSpec(ctx)
	if err != nil {
		return fail(chkLiveHealth, err.Error(), "check the proxy configuration with `status "+p.d.Env.Name+"`")
	}
	first, err := FirstDeploy(ctx, p.d.Engine, p.d.Env)
	if err != nil {
		return fail(chkLiveHealth, err.Error(), "check the container engine")
	}
	if first {
		return pass(chkLiveHealth, "first deploy: no container in either slot; the deploy starts %s, the slot the proxy names", slot)
	}
	h := p.d.Prober.Probe(ctx, spec.HealthURL)
	switch h.Status {
	case Healthy:
		return pass(chkLiveHealth, "the live slot %s is healthy (version %s)", slot, h.Version)
	case Degraded:
		var failing []string
		for _, c := range h.Failing() {
			failing = append(failing, c.Name)
		}
		return warn(chkLiveHealth, fmt.Sprintf("the live slot %s is degraded (failing: %s)", slot, strings.Join(failing, ", ")),
			"look at the failing checks before deploying on top of them")
	}
	msg := fmt.Sprintf("the live slot %s is %s", slot, h.Status)
	if h.Problem != "" {
		msg += ": " + h.Problem
	}
	return fail(chkLiveHealth, msg, remedy)
}

// HostFiles is what pre-flight reads of the environment's host's files.
type HostFiles interface {
	Stat(name string) (fs.FileInfo, error)
	ReadFile(name string) ([]byte, error)
}

// localFiles is the bot's own file system.
type localFiles struct{}

func (localFiles) Stat(name string) (fs.FileInfo, error) { return os.Stat(name) }
func (localFiles) ReadFile(name string) ([]byte, error)  { return os.ReadFile(name) }

// DiskFree reports the bytes free (for an unprivileged user) and in total
// on the bot's machine's file system of path, or of its nearest existing
// parent.
func DiskFree(path string) (free, total uint64, err error) {
	return DiskFreeOn(localFiles{}, func(dir string) (uint64, uint64, error) {
		var st syscall.Statfs_t
		if err := syscall.Statfs(dir, &st); err != nil {
			return 0, 0, fmt.Errorf("statfs %s: %w", dir, err)
		}
		bsize := uint64(st.Bsize)
		return st.Bavail * bsize, st.Blocks * bsize, nil
	})(path)
}

// DiskFreeOn is DiskFree on any host: statfs measures one existing
// directory of files. A snapshot directory not made yet is created by the
// first snapshot, so its nearest existing parent is measured.
func DiskFreeOn(files HostFiles, statfs func(dir string) (free, total uint64, err error)) func(path string) (uint64, uint64, error) {
	return func(path string) (uint64, uint64, error) {
		for dir := filepath.Clean(path); ; dir = filepath.Dir(dir) {
			if _, err := files.Stat(dir); err == nil || dir == filepath.Dir(dir) {
				return statfs(dir)
			}
		}
	}
}
