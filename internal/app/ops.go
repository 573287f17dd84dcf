package app

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/togather-foundation/togather-chatops/bot"
	"github.com/togather-foundation/togather-chatops/incidents/prometheus"
	"github.com/togather-foundation/togather-chatops/internal/config"
	"github.com/togather-foundation/togather-chatops/ops"
	"github.com/togather-foundation/togather-chatops/ops/caddy"
	"github.com/togather-foundation/togather-chatops/ops/docker"
	"github.com/togather-foundation/togather-chatops/ops/host"
	"github.com/togather-foundation/togather-chatops/ops/pg"
	"github.com/togather-foundation/togather-chatops/ops/statefile"
	"github.com/togather-foundation/togather-chatops/store/postgres"
)

// Ops is every environment's operations, wired to their adapters, with the
// clients it owns.
type Ops struct {
	*ops.Service
	envs    map[string]*EnvOps
	engines []*docker.Engine
	hosts   []host.Host
}

// EnvOps are the operations of one environment.
type EnvOps struct {
	Env       ops.Environment
	Deployer  *ops.Deployer    // nil without a store
	Preflight *ops.Preflighter // nil without a store
	Snapshots ops.Snapshotter
	Database  ops.DatabaseInspector
	Engine    *docker.Engine
	Proxy     *caddy.Proxy
	// Host is the machine the environment runs on; Prober and HTTP reach
	// its loopback URLs through it.
	Host   host.Host
	Prober ops.HTTPProber
	// DiskFree reads the free space of a directory on the host.
	DiskFree func(path string) (free, total uint64, err error)
	State    ops.StateFile      // nil without a state file
	Metrics  ops.RequestMetrics // nil without a Prometheus URL
	// SnapshotDir is where snapshots go; the monitors watch its free disk.
	SnapshotDir string
	appDB       appDB
}

// OpsOptions tune NewOps.
type OpsOptions struct {
	// Store holds journals and locks; nil builds status only.
	Store  *postgres.Store
	Notify func(op ops.Operation, e ops.JournalEntry)
	Now    func() time.Time
}

// NewOps builds the operations of every configured environment: one Docker
// client per distinct host, one Caddy proxy per environment, and with a
// store the deployer and pre-flight checks. The terminal commands use it
// without Slack.
func NewOps(cfg *config.Config, o OpsOptions) (*Ops, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if crash := crashHook(); crash != nil {
		notify := o.Notify
		o.Notify = func(op ops.Operation, e ops.JournalEntry) {
			crash(op, e)
			if notify != nil {
				notify(op, e)
			}
		}
	}
	res := &Ops{envs: map[string]*EnvOps{}}
	botSecrets := ops.NewRedactor(cfg.Secrets.Values()...)
	hosts := map[string]host.Host{}
	engines := map[string]*docker.Engine{}
	var targets []ops.Target
	for _, name := range cfg.EnvironmentNames() {
		env, _ := cfg.Environment(name)
		h, ok := hosts[env.Host]
		if !ok {
			var err error
			if h, err = newHost(cfg, env); err != nil {
				res.Close()
				return nil, fmt.Errorf("environment %s: %w", name, err)
			}
			hosts[env.Host] = h
			res.hosts = append(res.hosts, h)
		}
		engineKey := env.Host + " " + env.DockerHost
		eng, ok := engines[engineKey]
		if !ok {
			var err error
			if eng, err = newEngine(h, env); err != nil {
				res.Close()
				return nil, fmt.Errorf("environment %s: docker host %s: %w", name, env.DockerHost, err)
			}
			engines[engineKey] = eng
			res.engines = append(res.engines, eng)
		}
		oe := OpsEnvironment(env)
		oe.SecretVars = slices.Sorted(maps.Keys(cfg.SecretRotation))
		ports := map[ops.Slot]int{}
		for s, spec := range oe.Slots {
			ports[s] = spec.HostPort
		}
		proxy := caddy.New(env.Caddy.AdminURL, env.Caddy.Caddyfile, ports, caddy.OnHost(h))
		files := h.Files()
		hc := host.HTTPClient(h, 5*time.Second)
		prober := ops.HTTPProber{Client: hc}
		state := stateFile(env, files)
		targets = append(targets, ops.Target{Env: oe, Engine: eng, Proxy: proxy, Running: proxy, State: state, Prober: prober})
		db := appDB{host: h, env: oe, bot: botSecrets}
		snaps := &lazySnapshots{db: db, opts: pg.SnapshotOptions{Dir: env.Snapshots.Dir, RetentionDays: retentionDays(env), Env: name, Now: o.Now, Files: files,
			Container: env.Snapshots.DumpContainer(), Exec: eng}}
		diskFree := ops.DiskFreeOn(files, func(dir string) (uint64, uint64, error) {
			d, err := files.Disk(dir)
			return d.Free, d.Total, err
		})
		eo := &EnvOps{Env: oe, Snapshots: snaps, Database: lazyInspector{db: db}, Engine: eng, Proxy: proxy, State: state,
			SnapshotDir: env.Snapshots.Dir, Host: h, Prober: prober, DiskFree: diskFree, appDB: db}
		if env.PrometheusURL != "" {
			eo.Metrics = prometheus.Client{URL: env.PrometheusURL, HTTP: hc}
		}
		if o.Store != nil {
			var migrator ops.Migrator
			if oe.Migrations.Dir != "" || oe.Migrations.ImagePath != "" {
				migrator = lazyMigrator{db: db}
			}
			eo.Deployer = ops.NewDeployer(ops.DeployerDeps{
				Env: oe, Engine: eng, Proxy: proxy, Page: proxy, Prober: prober, Journal: o.Store, Locker: o.Store.Locks(),
				Snapshots: snaps, Migrator: migrator, State: state, Metrics: eo.Metrics, Notify: o.Notify, Now: o.Now, HTTP: hc,
				MigrationsDir: migrationsDir(h, eng, oe.Migrations),
			})
			deps := ops.PreflightDeps{
				Env: oe, Window: window(cfg), Engine: eng, Proxy: proxy, Mode: proxy, Prober: prober, Locker: o.Store.Locks(),
				Snapshotter: snaps, DumpClient: snaps, SnapshotDir: env.Snapshots.Dir, Migrator: migrator, AppDB: lazyMigrator{db: db},
				Files: files, DiskFree: diskFree, MigrationsDir: migrationsDir(h, eng, oe.Migrations),
				Networks: eng, Dialer: h,
			}
			// Production checks that staging already runs the migrations.
			if st, ok := cfg.Environment("staging"); ok && oe.Production && migrator != nil {
				sh, ok := hosts[st.Host]
				if !ok {
					var err error
					if sh, err = newHost(cfg, st); err != nil {
						res.Close()
						return nil, fmt.Errorf("environment staging: %w", err)
					}
					hosts[st.Host] = sh
					res.hosts = append(res.hosts, sh)
				}
				deps.StagingMigrator = lazyMigrator{db: appDB{host: sh, env: OpsEnvironment(st), bot: botSecrets}}
			}
			eo.Preflight = ops.NewPreflighter(deps)
		}
		res.envs[name] = eo
	}
	res.Service = ops.NewService(ops.HTTPProber{}, targets...)
	return res, nil
}

// Env returns the operations of one environment.
func (o *Ops) Env(name string) (*EnvOps, error) {
	e, ok := o.envs[name]
	if !ok {
		return nil, fmt.Errorf("%w %q", ops.ErrUnknownEnvironment, name)
	}
	return e, nil
}

// CheckHost checks what a deploy needs of the named environment's host:
// `host check` and `config check --connect`.
func (o *Ops) CheckHost(ctx context.Context, name string) ([]ops.Check, error) {
	eo, err := o.Env(name)
	if err != nil {
		return nil, err
	}
	var user string
	if s, ok := eo.Host.(*host.SSH); ok {
		user = s.User()
	}
	return ops.CheckHost(ctx, ops.HostCheckDeps{
		Env: eo.Env, Files: eo.Host.Files(), User: user, Engine: eo.Engine, Proxy: eo.Proxy,
		AppDB: lazyMigrator{db: eo.appDB}, DiskFree: eo.DiskFree, SnapshotDir: eo.SnapshotDir,
	}), nil
}

// Close releases the Docker clients and the hosts' connections.
func (o *Ops) Close() {
	for _, e := range o.engines {
		_ = e.Close()
	}
	o.engines = nil
	for _, h := range o.hosts {
		_ = h.Close()
	}
	o.hosts = nil
}

// migrationsDir resolves an environment's migrations to a directory the
// migrator reads on the bot's machine: a directory of a remote host is
// copied over SFTP first.
func migrationsDir(h host.Host, eng ops.Engine, src ops.MigrationSource) func(context.Context, string) (string, func(), error) {
	return func(ctx context.Context, image string) (string, func(), error) {
		if _, local := h.(host.Local); local || src.Dir == "" {
			return ops.MigrationsDir(ctx, src, eng, image)
		}
		tmp, err := os.MkdirTemp("", "togather-migrations-")
		if err != nil {
			return "", nil, fmt.Errorf("migrations: %w", err)
		}
		cleanup := func() { _ = os.RemoveAll(tmp) }
		if err := host.CopyDir(h.Files(), src.Dir, tmp); err != nil {
			cleanup()
			return "", nil, fmt.Errorf("copy migrations %s from %s: %w", src.Dir, h.Name(), err)
		}
		return tmp, cleanup, nil
	}
}

// newHost is the machine env runs on: the bot's own, or one reached over
// SSH with the configured key and pinned host keys.
func newHost(cfg *config.Config, env config.Environment) (host.Host, error) {
	if !env.Remote() {
		return host.Local{}, nil
	}
	return host.NewSSH(host.SSHConfig{
		URL: env.Host, IdentityFile: cfg.SSH.IdentityFile, AgentSocket: os.Getenv("SSH_AUTH_SOCK"),
		KnownHosts: cfg.SSH.KnownHosts, KeepAlive: cfg.SSH.KeepAlive, Timeout: cfg.SSH.ConnectTimeout,
		MaxChannels: cfg.SSH.MaxChannels,
	})
}

// newEngine is env's Docker engine: through the host's socket on a remote
// host, as configured on the local one.
func newEngine(h host.Host, env config.Environment) (*docker.Engine, error) {
	if !env.Remote() {
		return docker.New(env.DockerHost)
	}
	return docker.OnHost(h, strings.TrimPrefix(env.DockerHost, "unix://"))
}

// OpsEnvironment converts an environment's configuration to the plain values
// ops works with.
func OpsEnvironment(env config.Environment) ops.Environment {
	oe := ops.Environment{
		Name: env.Name, Slots: map[ops.Slot]ops.SlotSpec{}, Image: env.Image, EnvFile: env.EnvFile,
		DatabaseVar: env.DatabaseURLVar, Network: env.Network, RestartPolicy: env.RestartPolicy, ProxyURL: env.PublicURL,
		Migrations: ops.MigrationSource{Dir: env.Migrations.Dir, ImagePath: env.Migrations.ImagePath},
		Production: env.Name == "production",
		Policy: ops.Policy{
			RequireApproval: env.Policy.RequireApproval, Approvals: env.Policy.Approvals, AcceptDegraded: env.Policy.AcceptDegraded,
			HealthConsecutive: env.Policy.HealthConsecutive, HealthTimeout: env.Policy.HealthTimeout, HealthInterval: env.Policy.HealthInterval,
			Bake: env.Policy.Bake, Watch: env.Policy.Watch, AutoRollback: env.Policy.AutoRollback, EnforceWindow: env.Policy.EnforceWindow,
			Lease: env.Policy.Lease,
		},
	}
	for _, s := range env.Slots.All() {
		oe.Slots[ops.Slot(s.Name)] = ops.SlotSpec{Container: s.Container, HostPort: s.HostPort, HealthURL: s.HealthURL}
	}
	for _, k := range slices.Sorted(maps.Keys(env.ContainerEnv)) {
		oe.ContainerEnv = append(oe.ContainerEnv, k+"="+env.ContainerEnv[k])
	}
	oe.Release.BeforeStart = releaseCommands(env.Release.BeforeStart)
	oe.Release.AfterSwitch = releaseCommands(env.Release.AfterSwitch)
	return oe
}

func releaseCommands(cs []config.ReleaseCommand) []ops.ReleaseCommand {
	var out []ops.ReleaseCommand
	for _, c := range cs {
		out = append(out, ops.ReleaseCommand{Name: c.Name, Command: c.Command, Entrypoint: c.Entrypoint, Timeout: c.Timeout})
	}
	return out
}

func window(cfg *config.Config) ops.Window {
	w := ops.Window{Days: cfg.Policy.DeployWindow.Weekdays(), Location: cfg.Location(), Holidays: cfg.HolidayDates()}
	w.Start, w.End, _ = cfg.Policy.DeployWindow.Bounds()
	for _, f := range cfg.FreezeRanges() {
		w.Freezes = append(w.Freezes, ops.Freeze{From: f.From, To: f.To, Reason: f.Reason})
	}
	return w
}

// maintenanceRules are the configured rules for maintenance windows.
func maintenanceRules(cfg *config.Config) ops.MaintenanceRules {
	m := cfg.Maintenance
	bh := ops.Window{Days: m.BusinessHours.Weekdays(), Location: cfg.Location()}
	bh.Start, bh.End, _ = m.BusinessHours.Bounds()
	return ops.MaintenanceRules{BusinessHours: bh, MaxDuration: m.MaxDuration, AnnounceDays: m.AnnounceDays,
		Watch: m.Watch, Location: cfg.Location()}
}

func stateFile(env config.Environment, files host.Files) ops.StateFile {
	if env.StateFile == "" {
		return nil
	}
	return statefile.OnHost(env.StateFile, env.Name, files)
}

// retentionDays is the environment's snapshot retention; RETENTION_DAYS
// overrides it, as it does for Togather's scripts.
func retentionDays(env config.Environment) int {
	if v, err := strconv.Atoi(os.Getenv("RETENTION_DAYS")); err == nil && v > 0 {
		return v
	}
	return env.Snapshots.RetentionDays
}

// appDB finds the application database URL in the app's env file on the
// host, read at use so a rotated password is picked up without a restart.
// On a remote host the URL's server is reached through a forward of the
// host's connection. It knows, likewise, the secrets to hide in what the
// database and its client programs say.
type appDB struct {
	host host.Host
	env  ops.Environment // its EnvFile, DatabaseVar and SecretVars
	bot  ops.Redactor    // knows the bot's own secrets
}

func (a appDB) url() (string, error) {
	raw, err := a.fileURL()
	if err != nil {
		return "", err
	}
	return reachDatabase(a.host, raw)
}

// reachDatabase rewrites a postgres:// URL so that its server, as the host
// sees it, is reached from the bot's machine.
func reachDatabase(h host.Host, raw string) (string, error) {
	if _, local := h.(host.Local); local {
		return raw, nil
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("app database URL: not a postgres://user:password@host:port/db URL")
	}
	if u.Query().Has("host") {
		return "", fmt.Errorf("app database URL: a host= parameter cannot be reached through %s; put the server in the URL's host part", h.Name())
	}
	port := u.Port()
	if port == "" {
		port = "5432"
	}
	addr, err := h.Reach(net.JoinHostPort(u.Hostname(), port))
	if err != nil {
		return "", fmt.Errorf("app database: %w", err)
	}
	u.Host = addr
	return u.String(), nil
}

func (a appDB) fileURL() (string, error) {
	f, err := a.envFile()
	if err != nil {
		return "", fmt.Errorf("app database URL: %w", err)
	}
	v := f.Value(a.env.DatabaseVar)
	if v == "" {
		return "", fmt.Errorf("app database URL: %s is not set in %s", a.env.DatabaseVar, a.env.EnvFile)
	}
	return v, nil
}

// envFile reads the environment's env file on the host.
func (a appDB) envFile() (ops.EnvFile, error) {
	data, err := a.host.Files().ReadFile(a.env.EnvFile)
	if err != nil {
		return ops.EnvFile{}, err
	}
	f, err := ops.ParseEnvFile(data)
	if err != nil {
		return ops.EnvFile{}, fmt.Errorf("%s: %w", a.env.EnvFile, err)
	}
	return f, nil
}

// redactor knows the bot's secrets and the env file's, read now; only the
// bot's when the file cannot be read.
func (a appDB) redactor() ops.Redactor {
	f, err := a.envFile()
	if err != nil {
		return a.bot
	}
	return a.bot.With(a.env.EnvSecrets(f)...)
}

// lazySnapshots is a pg.Snapshotter whose database URL is read from the env
// file at each use.
type lazySnapshots struct {
	db   appDB
	opts pg.SnapshotOptions
}

var _ ops.Snapshotter = (*lazySnapshots)(nil)

func (l *lazySnapshots) get() (*pg.Snapshotter, error) {
	u, err := l.db.url()
	if err != nil {
		return nil, err
	}
	o := l.opts
	o.DatabaseURL, o.Redactor = u, l.db.redactor()
	return pg.NewSnapshotter(o), nil
}

func (l *lazySnapshots) Create(ctx context.Context, reason string, progress func(ops.Progress)) (ops.SnapshotInfo, error) {
	s, err := l.get()
	if err != nil {
		return ops.SnapshotInfo{}, err
	}
	return s.Create(ctx, reason, progress)
}

// DumpVersions compares the snapshot client with the app database's server.
func (l *lazySnapshots) DumpVersions(ctx context.Context) (ops.DumpClient, error) {
	s, err := l.get()
	if err != nil {
		return ops.DumpClient{}, err
	}
	return s.DumpVersions(ctx)
}

func (l *lazySnapshots) List(ctx context.Context) ([]ops.SnapshotInfo, error) {
	// Listing reads the directory only; it must work when the database is down.
	o := l.opts
	if u, err := l.db.url(); err == nil {
		o.DatabaseURL = u
	}
	return pg.NewSnapshotter(o).List(ctx)
}

func (l *lazySnapshots) Restore(ctx context.Context, name string, progress func(ops.Progress)) error {
	s, err := l.get()
	if err != nil {
		return err
	}
	return s.Restore(ctx, name, progress)
}

func (l *lazySnapshots) Verify(ctx context.Context, name string) (ops.VerifyResult, error) {
	s, err := l.get()
	if err != nil {
		return ops.VerifyResult{}, err
	}
	return s.Verify(ctx, name)
}

func (l *lazySnapshots) Prune(ctx context.Context, now time.Time, dryRun bool) ([]ops.SnapshotInfo, error) {
	o := l.opts
	if u, err := l.db.url(); err == nil {
		o.DatabaseURL = u
	}
	return pg.NewSnapshotter(o).Prune(ctx, now, dryRun)
}

// lazyMigrator is a pg.Migrator (and database sizer) over the env file's URL.
type lazyMigrator struct{ db appDB }

var _ ops.Migrator = lazyMigrator{}

func (l lazyMigrator) get() (*pg.Migrator, error) {
	u, err := l.db.url()
	if err != nil {
		return nil, err
	}
	return pg.NewMigrator(u), nil
}

func (l lazyMigrator) Version(ctx context.Context) (uint, bool, error) {
	m, err := l.get()
	if err != nil {
		return 0, false, err
	}
	return m.Version(ctx)
}

func (l lazyMigrator) Pending(ctx context.Context, dir string) ([]ops.Migration, error) {
	m, err := l.get()
	if err != nil {
		return nil, err
	}
	return m.Pending(ctx, dir)
}

func (l lazyMigrator) Up(ctx context.Context, dir string) error {
	m, err := l.get()
	if err != nil {
		return err
	}
	return m.Up(ctx, dir)
}

func (l lazyMigrator) Size(ctx context.Context) (int64, error) {
	m, err := l.get()
	if err != nil {
		return 0, err
	}
	return m.Size(ctx)
}

// lazyInspector is a pg.Inspector over the env file's URL, read at each
// call.
type lazyInspector struct{ db appDB }

var _ ops.DatabaseInspector = lazyInspector{}

// inspect runs f on a pg.Inspector over the env file's current URL.
func inspect[T any](l lazyInspector, f func(*pg.Inspector) (T, error)) (T, error) {
	u, err := l.db.url()
	if err != nil {
		var zero T
		return zero, err
	}
	return f(pg.NewInspector(u, l.db.redactor()))
}

func (l lazyInspector) Connections(ctx context.Context) ([]ops.ConnState, int, error) {
	type conns struct {
		states []ops.ConnState
		max    int
	}
	c, err := inspect(l, func(i *pg.Inspector) (conns, error) {
		states, maxConns, err := i.Connections(ctx)
		return conns{states, maxConns}, err
	})
	return c.states, c.max, err
}

func (l lazyInspector) Slow(ctx context.Context, over time.Duration) ([]ops.SlowQuery, error) {
	return inspect(l, func(i *pg.Inspector) ([]ops.SlowQuery, error) { return i.Slow(ctx, over) })
}

func (l lazyInspector) Size(ctx context.Context) (ops.DBSize, error) {
	return inspect(l, func(i *pg.Inspector) (ops.DBSize, error) { return i.Size(ctx) })
}

func (l lazyInspector) UnusedIndexes(ctx context.Context) ([]ops.IndexUse, error) {
	return inspect(l, func(i *pg.Inspector) ([]ops.IndexUse, error) { return i.UnusedIndexes(ctx) })
}

func (l lazyInspector) Report(ctx context.Context) (ops.DBReport, error) {
	return inspect(l, func(i *pg.Inspector) (ops.DBReport, error) { return i.Report(ctx) })
}

func (l lazyInspector) Analyze(ctx context.Context) error {
	_, err := inspect(l, func(i *pg.Inspector) (struct{}, error) { return struct{}{}, i.Analyze(ctx) })
	return err
}

func (l lazyInspector) Reindex(ctx context.Context) error {
	_, err := inspect(l, func(i *pg.Inspector) (struct{}, error) { return struct{}{}, i.Reindex(ctx) })
	return err
}

func (l lazyInspector) Vacuum(ctx context.Context, full bool) error {
	_, err := inspect(l, func(i *pg.Inspector) (struct{}, error) { return struct{}{}, i.Vacuum(ctx, full) })
	return err
}

// chatEnvironments gives the chat layer the operations of every
// environment.
type chatEnvironments struct{ o *Ops }

func (c chatEnvironments) Maintenance(env string) (bot.MaintenancePage, bool) {
	e, err := c.o.Env(env)
	if err != nil || e.Proxy == nil {
		return nil, false
	}
	return e.Proxy, true
}

func (c chatEnvironments) Policy(env string) (ops.Policy, bool) {
	e, err := c.o.Env(env)
	if err != nil {
		return ops.Policy{}, false
	}
	return e.Env.Policy, true
}

func (c chatEnvironments) Preflight(ctx context.Context, req ops.PreflightRequest) (ops.Report, error) {
	e, err := c.o.Env(req.Env)
	if err != nil {
		return ops.Report{}, err
	}
	return e.Preflight.Run(ctx, req)
}

func (c chatEnvironments) Deploy(ctx context.Context, env string, req ops.DeployRequest) (ops.Operation, error) {
	e, err := c.o.Env(env)
	if err != nil {
		return ops.Operation{}, err
	}
	return e.Deployer.Deploy(ctx, req)
}

func (c chatEnvironments) Rollback(ctx context.Context, env string, req ops.RollbackRequest) (ops.Operation, error) {
	e, err := c.o.Env(env)
	if err != nil {
		return ops.Operation{}, err
	}
	return e.Deployer.Rollback(ctx, req)
}

func (c chatEnvironments) Restore(ctx context.Context, env string, req ops.RestoreRequest) (ops.Operation, error) {
	e, err := c.o.Env(env)
	if err != nil {
		return ops.Operation{}, err
	}
	return e.Deployer.Restore(ctx, req)
}

func (c chatEnvironments) Snapshots(env string) (ops.Snapshotter, bool) {
	e, err := c.o.Env(env)
	if err != nil {
		return nil, false
	}
	return e.Snapshots, true
}

func (c chatEnvironments) Database(env string) (ops.DatabaseInspector, bool) {
	e, err := c.o.Env(env)
	if err != nil {
		return nil, false
	}
	return e.Database, true
}

// EnvFileVars lists the variables of the environment's env file, read on
// its host.
func (c chatEnvironments) EnvFileVars(_ context.Context, env string) ([]string, error) {
	e, err := c.o.Env(env)
	if err != nil {
		return nil, err
	}
	f, err := e.appDB.envFile()
	if err != nil {
		return nil, fmt.Errorf("env file of %s: %w", env, err)
	}
	names := make([]string, len(f.Vars))
	for i, v := range f.Vars {
		names[i] = v.Key
	}
	return names, nil
}

// chatOperations is the store seen as the chat layer's operation journal.
type chatOperations struct{ *postgres.Store }

func (c chatOperations) SetChat(ctx context.Context, id string, chat map[string]string) error {
	return c.SetOperationChat(ctx, id, chat)
}

func (c chatOperations) Transition(ctx context.Context, id string, from []ops.Step, to ops.Step, e ops.JournalEntry) (ops.Operation, bool, error) {
	return c.TransitionOperation(ctx, id, from, to, e)
}
