// Package config holds togather-chatops' one configuration: a YAML file for
// everything that is not secret, plus secrets read from the environment.
//
// Only cmd loads it (Load, then LoadSecrets, then Validate) and hands plain
// values to the packages it wires. Keys written in the file are taken as
// written; keys left out get the defaults documented in
// deploy/config.example.yaml. Printing goes through Redacted, which never
// shows a secret value.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	// Embedded so the deploy window's time zone loads on hosts and
	// containers without /usr/share/zoneinfo.
	_ "time/tzdata"

	"gopkg.in/yaml.v3"
)

// Config is the whole configuration of the bot.
type Config struct {
	// Timezone is the IANA zone of the team: deploy windows, holidays and
	// freezes are read in it.
	Timezone     string                 `yaml:"timezone"`
	Slack        Slack                  `yaml:"slack"`
	Store        Store                  `yaml:"store"`
	HTTP         HTTP                   `yaml:"http"`
	Channels     Channels               `yaml:"channels"`
	Environments map[string]Environment `yaml:"environments"`
	SSH          SSH                    `yaml:"ssh"`
	Roles        []Role                 `yaml:"roles"`
	Policy       Policy                 `yaml:"policy"`
	Alerts       Alerts                 `yaml:"alerts"`
	// SecretRotation is how often each secret of the managed environments,
	// by variable NAME, must be rotated; the bot reminds in the deploys
	// channel when one is due. It holds names, never values.
	SecretRotation map[string]time.Duration `yaml:"secret_rotation"`
	Maintenance    Maintenance              `yaml:"maintenance"`
	Jobs           Jobs                     `yaml:"jobs"`
	Paging         Paging                   `yaml:"paging"`

	// Secrets come from the environment (LoadSecrets), never from the file.
	Secrets Secrets `yaml:"-"`

	loc *time.Location
}

// Slack configures the Slack connection.
type Slack struct {
	// APIURL is the Web API base URL; it always ends with "/".
	APIURL         string        `yaml:"api_url"`
	PingInterval   time.Duration `yaml:"ping_interval"`
	Workers        int           `yaml:"workers"`
	CommandTimeout time.Duration `yaml:"command_timeout"`
	// OncallGroup is the user-group ID (S…) mentioned when paging; optional.
	OncallGroup string `yaml:"oncall_group"`
}

// Store configures the bot's own PostgreSQL store.
type Store struct {
	// EnvelopeTTL is how long delivered Slack envelope IDs are remembered
	// for de-duplication.
	EnvelopeTTL time.Duration `yaml:"envelope_ttl"`
}

// HTTP configures the listener for /metrics, /healthz and /alertmanager.
type HTTP struct {
	Listen string `yaml:"listen"`
	// AllowPublic permits a non-loopback Listen address.
	AllowPublic bool `yaml:"allow_public"`
}

// Channels holds the Slack channel IDs the bot posts to.
type Channels struct {
	Deploys        string `yaml:"deploys"`
	AlertsWarning  string `yaml:"alerts_warning"`
	AlertsCritical string `yaml:"alerts_critical"`
	Incidents      string `yaml:"incidents"`
	Announcements  string `yaml:"announcements"`
}

// SSH is how the bot reaches the environments whose host is ssh://….
type SSH struct {
	// IdentityFile is the bot's private key (unencrypted; a key with a
	// passphrase goes into an agent, SSH_AUTH_SOCK, which is also used).
	IdentityFile string `yaml:"identity_file"`
	// KnownHosts pins the hosts' keys; an unknown or changed key is refused.
	KnownHosts string `yaml:"known_hosts"`
	// KeepAlive is the pace of keepalive requests; three missed drop the
	// connection, which is then opened again with backoff.
	KeepAlive      time.Duration `yaml:"keepalive"`
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// MaxChannels bounds the channels open at once on one host's connection.
	MaxChannels int `yaml:"max_channels"`
}

// LocalHost is the host value of an environment on the bot's own machine.
const LocalHost = "local"

// Environment is one deployment target: a Docker host running the blue and
// green slots behind Caddy.
type Environment struct {
	// Name is the key under environments (set by Parse).
	Name string `yaml:"-"`
	// Host is where the environment runs: "local" or ssh://user@host[:port].
	// Every path and loopback URL below is that host's.
	Host       string `yaml:"host"`
	DockerHost string `yaml:"docker_host"`
	// Image is the image reference template; it contains {version}.
	Image string `yaml:"image"`
	// EnvFile is the app's env file on the host.
	EnvFile string `yaml:"env_file"`
	// DatabaseURLVar names the variable in EnvFile holding the app database URL.
	DatabaseURLVar string `yaml:"database_url_var"`
	// StateFile is the scripts' deployment-state.json, kept in sync.
	StateFile     string `yaml:"state_file"`
	Network       string `yaml:"network"`
	RestartPolicy string `yaml:"restart_policy"`
	// PublicURL is what verification through the proxy requests; optional.
	PublicURL string `yaml:"public_url"`
	// PrometheusURL, when set, is queried for the error rate and p95 of
	// the Togather server (alert rules and post-deploy watch summaries).
	PrometheusURL string       `yaml:"prometheus_url"`
	Caddy         Caddy        `yaml:"caddy"`
	Slots         Slots        `yaml:"slots"`
	Migrations    Migrations   `yaml:"migrations"`
	Snapshots     Snapshots    `yaml:"snapshots"`
	Policy        DeployPolicy `yaml:"policy"`
	// ContainerEnv is set in the app's containers after EnvFile, with
	// ${NAME} filled in from EnvFile: Togather's compose gives the slots a
	// DATABASE_URL on the container network, where EnvFile's is the
	// host's.
	ContainerEnv map[string]string `yaml:"container_env,omitempty"`
	// Release lists the commands of the new image a deploy runs besides
	// the migrations.
	Release Release `yaml:"release,omitempty"`
}

// Release lists a deploy's release commands, each run in a one-off
// container of the new image with the env file, container_env and network.
type Release struct {
	// BeforeStart runs after the migrations, before the new slot starts;
	// a failure fails the deploy (nothing is switched).
	BeforeStart []ReleaseCommand `yaml:"before_start,omitempty"`
	// AfterSwitch runs once traffic is verified on the new slot; a
	// failure is reported and the deploy stays.
	AfterSwitch []ReleaseCommand `yaml:"after_switch,omitempty"`
}

// ReleaseCommand is one release command.
type ReleaseCommand struct {
	Name string `yaml:"name"`
	// Command is the arguments of the image's entrypoint, e.g.
	// ["migrate-river"]; Entrypoint replaces the entrypoint when set.
	Command    []string      `yaml:"command"`
	Entrypoint []string      `yaml:"entrypoint,omitempty"`
	Timeout    time.Duration `yaml:"timeout,omitempty"` // default 5m
}

// Caddy locates the proxy of one environment.
type Caddy struct {
	AdminURL  string `yaml:"admin_url"`
	Caddyfile string `yaml:"caddyfile"`
}

// Slots are the two app slots of one environment.
type Slots struct {
	Blue  Slot `yaml:"blue"`
	Green Slot `yaml:"green"`
}

// Slot is one app container.
type Slot struct {
	// Name is "blue" or "green" (set by Parse).
	Name      string `yaml:"-"`
	Container string `yaml:"container"`
	HostPort  int    `yaml:"host_port"`
	HealthURL string `yaml:"health_url"`
}

// Migrations says where the database migrations of a release are found: a
// directory on the bot's host, or a path inside the release image. Both
// empty means the environment runs no migrations.
type Migrations struct {
	Dir       string `yaml:"dir"`
	ImagePath string `yaml:"image_path"`
}

// Snapshots configures pre-deploy database snapshots.
type Snapshots struct {
	Dir           string `yaml:"dir"`
	RetentionDays int    `yaml:"retention_days"`
	// Dump is where pg_dump and psql run: "local" (the bot's machine, the
	// default) or "container:<name>", the database's container, whose
	// clients are the server's own version.
	Dump string `yaml:"dump"`
}

// DumpContainer is the container snapshots.dump names, or "" for local.
func (s Snapshots) DumpContainer() string {
	name, _ := strings.CutPrefix(s.Dump, "container:")
	if name == s.Dump {
		return ""
	}
	return name
}

// DeployPolicy is the deploy policy of one environment.
type DeployPolicy struct {
	RequireApproval bool `yaml:"require_approval"`
	// Approvals is how many approvers, none of them the requester, are needed.
	Approvals int `yaml:"approvals"`
	// EnforceWindow makes the global deploy window, holidays and freezes
	// apply to this environment.
	EnforceWindow bool `yaml:"enforce_window"`
	// AcceptDegraded lets a "degraded" /health pass the health gate.
	AcceptDegraded bool `yaml:"accept_degraded"`
	// HealthConsecutive is how many healthy answers in a row pass the gate.
	HealthConsecutive int           `yaml:"health_consecutive"`
	HealthTimeout     time.Duration `yaml:"health_timeout"`
	// HealthInterval is the pause between health probes.
	HealthInterval time.Duration `yaml:"health_interval"`
	// Bake is how long the previous slot stays warm after a switch, for a
	// rollback without a restart; then it is stopped.
	Bake time.Duration `yaml:"bake"`
	// AutoRollback switches back by itself when the new slot fails its
	// health checks during the watch window.
	AutoRollback bool `yaml:"auto_rollback"`
	// Watch is how long after a deploy the new slot's health is watched.
	Watch time.Duration `yaml:"watch"`
	// Lease is the environment lock's lease, renewed while an operation
	// runs; a crashed bot's operation is recovered after it runs out.
	Lease time.Duration `yaml:"lease"`
}

// Role grants commands in environments to Slack users and user groups.
type Role struct {
	Name string `yaml:"name"`
	// Users are Slack user IDs (U… or W…).
	Users []string `yaml:"users"`
	// Groups are Slack user-group IDs (S…).
	Groups []string `yaml:"groups"`
	// Commands are permission patterns: a name from KnownPermissions, "x.*"
	// or "*" (see PermissionMatches).
	Commands []string `yaml:"commands"`
	// Environments are environment names or "*".
	Environments []string `yaml:"environments"`
}

// Policy is the team-wide deploy policy.
type Policy struct {
	DeployWindow DeployWindow `yaml:"deploy_window"`
	// Holidays are dates (YYYY-MM-DD) with no deploy window.
	Holidays []string `yaml:"holidays"`
	Freezes  []Freeze `yaml:"freezes"`
	// ApprovalTTL is how long an approval stays valid.
	ApprovalTTL time.Duration `yaml:"approval_ttl"`
}

// DeployWindow is when deploys may run without an override.
type DeployWindow struct {
	// Days are lower-case three-letter weekdays (mon … sun).
	Days []string `yaml:"days"`
	// Start and End are HH:MM in the config's time zone; Start < End.
	Start string `yaml:"start"`
	End   string `yaml:"end"`
	// Outside is "fail" (refuse without override) or "warn".
	Outside string `yaml:"outside"`
}

// Hours are some weekdays between two wall-clock times in the config's time
// zone.
type Hours struct {
	// Days are lower-case three-letter weekdays (mon … sun).
	Days []string `yaml:"days"`
	// Start and End are HH:MM; Start < End.
	Start string `yaml:"start"`
	End   string `yaml:"end"`
}

// Maintenance configures maintenance windows.
type Maintenance struct {
	// BusinessHours is when a window's start needs its owner's confirmation.
	BusinessHours Hours `yaml:"business_hours"`
	// MaxDuration is how long a window may last without confirmation.
	MaxDuration time.Duration `yaml:"max_duration"`
	// AnnounceDays are how many days before its start a window is
	// announced again.
	AnnounceDays []int `yaml:"announce_days"`
	// Watch is how long the environment is watched after a window ends.
	Watch time.Duration `yaml:"watch"`
}

// Jobs are the leader's scheduled jobs: standard five-field cron specs in
// the config's time zone; an empty spec turns the job off.
type Jobs struct {
	// SnapshotPrune prunes every environment's snapshots past retention.
	SnapshotPrune string `yaml:"snapshot_prune"`
	// RestoreTest restores the newest snapshot of RestoreTestEnv (empty:
	// production, when there is one) into a scratch database and compares
	// per-table row counts.
	RestoreTest    string `yaml:"restore_test"`
	RestoreTestEnv string `yaml:"restore_test_env"`
	// DBReport posts the database report of every environment.
	DBReport string `yaml:"db_report"`
}

// Freeze is a period in which deploys need an override.
type Freeze struct {
	// From and To are YYYY-MM-DDTHH:MM in the config's time zone.
	From   string `yaml:"from"`
	To     string `yaml:"to"`
	Reason string `yaml:"reason"`
}

// Alerts configures the monitors, the alert rules and incidents.
type Alerts struct {
	// HealthInterval is how often the leader probes each live slot;
	// UnhealthyInterval how often while it is not healthy.
	HealthInterval    time.Duration `yaml:"health_interval"`
	UnhealthyInterval time.Duration `yaml:"unhealthy_interval"`
	// For overrides how long a built-in rule's condition must hold before
	// it fires, by rule name (e.g. health_unhealthy: 2m).
	For map[string]time.Duration `yaml:"for,omitempty"`
	// AutoIncident declares a SEV2 incident for a critical alert when its
	// environment has no open incident.
	AutoIncident bool `yaml:"auto_incident"`
	// SEV1Every and SEV2Every are the update reminder cadences.
	SEV1Every time.Duration `yaml:"sev1_every"`
	SEV2Every time.Duration `yaml:"sev2_every"`
}

// Paging configures the targets that page the on-call person beyond a
// Slack mention, by target name.
type Paging struct {
	Targets map[string]PagingTarget `yaml:"targets,omitempty"`
}

// PagingTarget is one paging target. Its routing key is read from the
// environment variable RoutingKeyEnv (LoadSecrets), never from the file.
type PagingTarget struct {
	// Type is the kind of target; only "pagerduty" (Events API v2).
	Type          string `yaml:"type"`
	RoutingKeyEnv string `yaml:"routing_key_env"`
	// Severities are the alert severities it pages for (critical, warning).
	Severities []string `yaml:"severities"`
	// EventsURL overrides the Events API v2 enqueue URL; optional.
	EventsURL string `yaml:"events_url,omitempty"`
}

// Pages reports whether t pages alerts of severity sev.
func (t PagingTarget) Pages(sev string) bool { return slices.Contains(t.Severities, sev) }

// Formats of the policy's dates and times.
const (
	clockLayout  = "15:04"
	dateLayout   = "2006-01-02"
	freezeLayout = "2006-01-02T15:04"
)

// Load reads and parses the configuration file at path (see Parse).
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes a YAML configuration and applies defaults. Syntax errors,
// unknown keys and wrongly typed values make it fail with a *DecodeError
// naming each path and line. Any other problem is left to Validate, so the
// returned Config may still be invalid.
func Parse(data []byte) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, syntaxError(err)
	}
	if len(root.Content) == 0 {
		return nil, &DecodeError{Problems: []Problem{{Message: "the file is empty"}}}
	}
	doc := indexDocument(&root)

	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	c := &Config{}
	if err := dec.Decode(c); err != nil {
		return nil, doc.decodeError(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, &DecodeError{Problems: []Problem{{Message: "the file holds more than one YAML document"}}}
	}

	c.applyDefaults(doc.present)
	return c, nil
}

// applyDefaults fills every key absent from the document (present holds the
// paths of the keys it has) and normalises what needs it.
func (c *Config) applyDefaults(present map[string]bool) {
	d := defaulter(present)
	setDefault(d, "timezone", &c.Timezone, "America/Toronto")
	setDefault(d, "slack.api_url", &c.Slack.APIURL, "https://slack.com/api/")
	if c.Slack.APIURL != "" && !strings.HasSuffix(c.Slack.APIURL, "/") {
		c.Slack.APIURL += "/"
	}
	setDefault(d, "slack.ping_interval", &c.Slack.PingInterval, 30*time.Second)
	setDefault(d, "slack.workers", &c.Slack.Workers, 16)
	setDefault(d, "slack.command_timeout", &c.Slack.CommandTimeout, 2*time.Minute)
	setDefault(d, "store.envelope_ttl", &c.Store.EnvelopeTTL, 24*time.Hour)
	setDefault(d, "ssh.known_hosts", &c.SSH.KnownHosts, "/etc/togather-chatops/known_hosts")
	setDefault(d, "ssh.keepalive", &c.SSH.KeepAlive, 10*time.Second)
	setDefault(d, "ssh.connect_timeout", &c.SSH.ConnectTimeout, 10*time.Second)
	setDefault(d, "ssh.max_channels", &c.SSH.MaxChannels, 64)
	setDefault(d, "http.listen", &c.HTTP.Listen, "127.0.0.1:9102")

	w := &c.Policy.DeployWindow
	setDefault(d, "policy.deploy_window.days", &w.Days, []string{"tue", "wed", "thu"})
	setDefault(d, "policy.deploy_window.start", &w.Start, "10:00")
	setDefault(d, "policy.deploy_window.end", &w.End, "14:00")
	setDefault(d, "policy.deploy_window.outside", &w.Outside, "fail")
	setDefault(d, "policy.approval_ttl", &c.Policy.ApprovalTTL, 30*time.Minute)
	m := &c.Maintenance
	setDefault(d, "maintenance.business_hours.days", &m.BusinessHours.Days, []string{"mon", "tue", "wed", "thu", "fri"})
	setDefault(d, "maintenance.business_hours.start", &m.BusinessHours.Start, "09:00")
	setDefault(d, "maintenance.business_hours.end", &m.BusinessHours.End, "17:00")
	setDefault(d, "maintenance.max_duration", &m.MaxDuration, 4*time.Hour)
	setDefault(d, "maintenance.announce_days", &m.AnnounceDays, []int{7, 3, 1})
	setDefault(d, "maintenance.watch", &m.Watch, 30*time.Minute)
	setDefault(d, "jobs.snapshot_prune", &c.Jobs.SnapshotPrune, "0 3 * * *")
	setDefault(d, "jobs.restore_test", &c.Jobs.RestoreTest, "0 4 1 * *")
	setDefault(d, "jobs.db_report", &c.Jobs.DBReport, "0 8 * * 1")
	setDefault(d, "alerts.health_interval", &c.Alerts.HealthInterval, 5*time.Second)
	setDefault(d, "alerts.unhealthy_interval", &c.Alerts.UnhealthyInterval, 5*time.Second)
	setDefault(d, "alerts.auto_incident", &c.Alerts.AutoIncident, true)
	setDefault(d, "alerts.sev1_every", &c.Alerts.SEV1Every, 30*time.Minute)
	setDefault(d, "alerts.sev2_every", &c.Alerts.SEV2Every, time.Hour)
	setDefault(d, "secret_rotation", &c.SecretRotation, maps.Clone(defaultSecretRotation))

	for name, env := range c.Environments {
		env.applyDefaults(d, name)
		c.Environments[name] = env
	}
	if loc, err := time.LoadLocation(c.Timezone); err == nil {
		c.loc = loc
	}
}

// retentionDays is the default snapshot retention per environment name.
var retentionDays = map[string]int{"development": 1, "staging": 7, "production": 30}

func (e *Environment) applyDefaults(d defaulter, name string) {
	e.Name = name
	p := "environments." + name + "."
	setDefault(d, p+"host", &e.Host, LocalHost)
	setDefault(d, p+"docker_host", &e.DockerHost, "unix:///var/run/docker.sock")
	setDefault(d, p+"image", &e.Image, "togather-server:{version}")
	setDefault(d, p+"env_file", &e.EnvFile, "/opt/togather/.env."+name)
	setDefault(d, p+"database_url_var", &e.DatabaseURLVar, "DATABASE_URL")
	setDefault(d, p+"state_file", &e.StateFile, "/opt/togather/src/deploy/config/deployment-state.json")
	setDefault(d, p+"network", &e.Network, "togather-network")
	setDefault(d, p+"restart_policy", &e.RestartPolicy, "unless-stopped")
	setDefault(d, p+"caddy.admin_url", &e.Caddy.AdminURL, "http://localhost:2019")
	setDefault(d, p+"caddy.caddyfile", &e.Caddy.Caddyfile, "/etc/caddy/Caddyfile")

	for _, s := range []struct {
		slot *Slot
		name string
		port int
	}{{&e.Slots.Blue, "blue", 8081}, {&e.Slots.Green, "green", 8082}} {
		sp := p + "slots." + s.name + "."
		s.slot.Name = s.name
		setDefault(d, sp+"container", &s.slot.Container, "togather-server-"+s.name)
		setDefault(d, sp+"host_port", &s.slot.HostPort, s.port)
		setDefault(d, sp+"health_url", &s.slot.HealthURL, fmt.Sprintf("http://127.0.0.1:%d/health", s.slot.HostPort))
	}

	if !d[p+"migrations"] {
		e.Migrations.ImagePath = "/app/migrations"
	}
	setDefault(d, p+"snapshots.dir", &e.Snapshots.Dir, "/var/lib/togather/db-snapshots")
	retention, ok := retentionDays[name]
	if !ok {
		retention = 7
	}
	setDefault(d, p+"snapshots.retention_days", &e.Snapshots.RetentionDays, retention)
	setDefault(d, p+"snapshots.dump", &e.Snapshots.Dump, "local")

	pp := p + "policy."
	production := name == "production"
	setDefault(d, pp+"require_approval", &e.Policy.RequireApproval, production)
	setDefault(d, pp+"approvals", &e.Policy.Approvals, 1)
	setDefault(d, pp+"enforce_window", &e.Policy.EnforceWindow, production)
	setDefault(d, pp+"health_consecutive", &e.Policy.HealthConsecutive, 3)
	setDefault(d, pp+"health_timeout", &e.Policy.HealthTimeout, 60*time.Second)
	setDefault(d, pp+"health_interval", &e.Policy.HealthInterval, 2*time.Second)
	setDefault(d, pp+"lease", &e.Policy.Lease, 30*time.Second)
	setDefault(d, pp+"bake", &e.Policy.Bake, 10*time.Minute)
	setDefault(d, pp+"auto_rollback", &e.Policy.AutoRollback, true)
	setDefault(d, pp+"watch", &e.Policy.Watch, 30*time.Minute)
}

// defaulter is the set of key paths present in the document.
type defaulter map[string]bool

// setDefault gives *field its default unless the document has the key at path.
func setDefault[T any](d defaulter, path string, field *T, def T) {
	if !d[path] {
		*field = def
	}
}

// defaultSecretRotation follows best-practices.md: JWT secrets every 90
// days, database passwords every 180. It names the secrets of Togather's
// env files (its database password is POSTGRES_PASSWORD).
var defaultSecretRotation = map[string]time.Duration{
	"JWT_SECRET": 90 * 24 * time.Hour, "CSRF_KEY": 90 * 24 * time.Hour,
	"POSTGRES_PASSWORD": 180 * 24 * time.Hour, "ADMIN_PASSWORD": 180 * 24 * time.Hour,
}

// DefaultSecretRotation reports whether secret_rotation's entry name is the
// default's, with its period: an environment whose env file does not hold
// it is not reminded of it. Any other entry is the user's, and an env file
// that lacks it is a configuration mistake.
func (c *Config) DefaultSecretRotation(name string) bool {
	p, ok := defaultSecretRotation[name]
	return ok && c.SecretRotation[name] == p
}

// Location is the team's time zone: Timezone loaded, or UTC when it does
// not load (a problem Validate reports).
func (c *Config) Location() *time.Location {
	if c.loc != nil {
		return c.loc
	}
	if loc, err := time.LoadLocation(c.Timezone); err == nil {
		return loc
	}
	return time.UTC
}

// EnvironmentNames returns the environment names in alphabetical order.
func (c *Config) EnvironmentNames() []string {
	names := make([]string, 0, len(c.Environments))
	for name := range c.Environments {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// Environment returns the environment called name.
func (c *Config) Environment(name string) (Environment, bool) {
	e, ok := c.Environments[name]
	return e, ok
}

// Remote reports whether the environment runs on another machine, reached
// over SSH.
func (e Environment) Remote() bool { return e.Host != "" && e.Host != LocalHost }

// ImageRef is the image reference of a version: Image with {version}
// replaced.
func (e Environment) ImageRef(version string) string {
	return strings.ReplaceAll(e.Image, "{version}", version)
}

// All returns the slots, blue first.
func (s Slots) All() []Slot {
	return []Slot{s.Blue, s.Green}
}

// Get returns the slot called name ("blue" or "green").
func (s Slots) Get(name string) (Slot, bool) {
	for _, slot := range s.All() {
		if slot.Name == name {
			return slot, true
		}
	}
	return Slot{}, false
}

// weekdays maps the accepted day names.
var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

// Weekdays returns the window's days; invalid names are left out.
func (w DeployWindow) Weekdays() []time.Weekday { return w.hours().Weekdays() }

// Bounds returns the window's start and end as offsets from midnight; ok is
// false when either does not parse.
func (w DeployWindow) Bounds() (start, end time.Duration, ok bool) { return w.hours().Bounds() }

func (w DeployWindow) hours() Hours { return Hours{Days: w.Days, Start: w.Start, End: w.End} }

// Weekdays returns the days as time.Weekday values; unknown names are left
// out.
func (h Hours) Weekdays() []time.Weekday {
	var days []time.Weekday
	for _, d := range h.Days {
		if wd, ok := weekdays[d]; ok {
			days = append(days, wd)
		}
	}
	return days
}

// Bounds returns the start and end as offsets from midnight; ok is false
// when either does not parse.
func (h Hours) Bounds() (start, end time.Duration, ok bool) {
	s, err1 := time.Parse(clockLayout, h.Start)
	e, err2 := time.Parse(clockLayout, h.End)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	midnight := time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)
	return s.Sub(midnight), e.Sub(midnight), true
}

// HolidayDates returns the holidays as midnights in the config's time zone;
// entries that do not parse are left out.
func (c *Config) HolidayDates() []time.Time {
	var dates []time.Time
	for _, h := range c.Policy.Holidays {
		if t, err := time.ParseInLocation(dateLayout, h, c.Location()); err == nil {
			dates = append(dates, t)
		}
	}
	return dates
}

// FreezeRange is a freeze as instants.
type FreezeRange struct {
	From, To time.Time
	Reason   string
}

// FreezeRanges returns the freezes in the config's time zone; entries that
// do not parse are left out.
func (c *Config) FreezeRanges() []FreezeRange {
	var ranges []FreezeRange
	for _, f := range c.Policy.Freezes {
		from, err1 := time.ParseInLocation(freezeLayout, f.From, c.Location())
		to, err2 := time.ParseInLocation(freezeLayout, f.To, c.Location())
		if err1 == nil && err2 == nil {
			ranges = append(ranges, FreezeRange{From: from, To: to, Reason: f.Reason})
		}
	}
	return ranges
}
