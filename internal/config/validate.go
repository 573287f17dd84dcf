package config

import (
	"fmt"
	"net"
	"net/url"
	"path"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/togather-foundation/togather-chatops/ops/host"
)

// Problem is one thing wrong with a configuration.
type Problem struct {
	// Path locates the value: "environments.production.slots.blue.health_url",
	// "roles[0].users[1]", or a variable name such as "SLACK_BOT_TOKEN".
	// Empty when the problem concerns the whole file.
	Path    string
	Message string
}

// String formats the problem as "path: message".
func (p Problem) String() string {
	if p.Path == "" {
		return p.Message
	}
	return p.Path + ": " + p.Message
}

// KnownPermissions are the permission names roles may grant. The bot sets it
// from its command table at wiring time; the default matches that table.
var KnownPermissions = []string{
	"help", "status", "preflight", "deploy", "rollback",
	"snapshot.create", "snapshot.list", "snapshot.restore", "snapshot.prune", "snapshot.verify",
	"history", "lock", "unlock", "unlock.force", "locks",
	"incident.declare", "incident.update", "incident.sev", "incident.note", "incident.list",
	"incident.resolve", "incident.report",
	"maintenance.schedule", "maintenance.list", "maintenance.cancel", "maintenance.start", "maintenance.end",
	"secrets.rotated",
	"db.connections", "db.slow", "db.size", "db.unused-indexes", "db.analyze", "db.vacuum", "db.reindex",
	"approve",
}

// PermissionMatches reports whether a role's command pattern grants the
// permission name: "*" grants all, "x.*" every name starting "x.", anything
// else only itself.
func PermissionMatches(pattern, name string) bool {
	if pattern == "*" {
		return true
	}
	if prefix, ok := strings.CutSuffix(pattern, ".*"); ok {
		return strings.HasPrefix(name, prefix+".")
	}
	return pattern == name
}

// placeholder is the marker of a value nobody filled in.
const placeholder = "CHANGE_ME"

var (
	envNameRE       = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
	channelRE       = regexp.MustCompile(`^[CGD][A-Z0-9]+$`)
	userRE          = regexp.MustCompile(`^[UW][A-Z0-9]+$`)
	groupRE         = regexp.MustCompile(`^S[A-Z0-9]+$`)
	clockRE         = regexp.MustCompile(`^\d\d:\d\d$`)
	envVarRE        = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	containerRE     = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`) // Docker's container names
	secretNameRE    = regexp.MustCompile(`^[A-Z_][A-Z0-9_]{0,127}$`)     // as `secrets rotated <env> <NAME>` accepts
	restartPolicies = []string{"no", "always", "unless-stopped", "on-failure"}
)

// Validate returns every problem of the configuration and its secrets, sorted
// by path; none means it is usable. A value holding CHANGE_ME is reported
// once, as a placeholder.
func (c *Config) Validate() []Problem {
	v := &validator{placeholders: map[string]bool{}}
	walkStrings(reflect.ValueOf(*c), "", func(p, s string) {
		if strings.Contains(s, placeholder) {
			v.add(p, "still holds the "+placeholder+" placeholder")
			v.placeholders[p] = true
		}
	})
	c.Secrets.validate(v)

	if v.required("timezone", c.Timezone) {
		_, err := time.LoadLocation(c.Timezone)
		v.check(err == nil, "timezone", "not a time zone (want an IANA name such as America/Toronto)")
	}
	c.Slack.validate(v)
	v.positive("store.envelope_ttl", c.Store.EnvelopeTTL)
	c.HTTP.validate(v)
	c.Channels.validate(v)

	if len(c.Environments) == 0 {
		v.add("environments", "at least one environment is required")
	}
	taken := resources{}
	remote := false
	for _, name := range c.EnvironmentNames() {
		c.Environments[name].validate(v, "environments."+name, taken)
		remote = remote || c.Environments[name].Remote()
	}
	if remote {
		c.SSH.validate(v)
	}
	c.validateRoles(v)
	c.Policy.validate(v)
	c.Alerts.validate(v)
	c.Maintenance.validate(v)
	c.Jobs.validate(v, c.Environments)
	c.validatePaging(v)
	for name, period := range c.SecretRotation {
		v.pattern(secretNameRE, "secret_rotation."+name, name, "an upper-case variable NAME, like JWT_SECRET")
		v.positive("secret_rotation."+name, period)
	}

	sort.SliceStable(v.problems, func(i, j int) bool { return v.problems[i].Path < v.problems[j].Path })
	return v.problems
}

// validator collects problems.
type validator struct {
	problems     []Problem
	placeholders map[string]bool
}

func (v *validator) add(path, format string, args ...any) {
	v.problems = append(v.problems, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

// check reports the formatted message at path when ok is false, unless the
// value there is a placeholder (already reported).
func (v *validator) check(ok bool, path, format string, args ...any) {
	if !ok && !v.placeholders[path] {
		v.add(path, format, args...)
	}
}

func (v *validator) required(path, value string) bool {
	v.check(value != "", path, "required")
	return value != ""
}

func (v *validator) positive(path string, d time.Duration) {
	v.check(d > 0, path, "must be a positive duration")
}

func (v *validator) httpURL(path, value string) {
	if v.required(path, value) {
		u, err := url.Parse(value)
		v.check(err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "", path, "not a URL (want http:// or https://)")
	}
}

func (v *validator) absPath(path, value string) {
	if v.required(path, value) {
		v.check(strings.HasPrefix(value, "/"), path, "must be an absolute path")
	}
}

func (v *validator) pattern(re *regexp.Regexp, path, value, what string) {
	if v.required(path, value) {
		v.check(re.MatchString(value), path, "not %s", what)
	}
}

func (s Slack) validate(v *validator) {
	v.httpURL("slack.api_url", s.APIURL)
	v.positive("slack.ping_interval", s.PingInterval)
	v.check(s.Workers >= 1, "slack.workers", "must be at least 1")
	v.positive("slack.command_timeout", s.CommandTimeout)
	if s.OncallGroup != "" {
		v.check(groupRE.MatchString(s.OncallGroup), "slack.oncall_group", "not a user-group ID (S…)")
	}
}

func (h HTTP) validate(v *validator) {
	if !v.required("http.listen", h.Listen) {
		return
	}
	host, port, err := net.SplitHostPort(h.Listen)
	if err != nil {
		v.check(false, "http.listen", "not a host:port address")
		return
	}
	v.check(validPort(port), "http.listen", "port %q out of range 1-65535", port)
	if !h.AllowPublic {
		ip := net.ParseIP(host)
		v.check(host == "localhost" || (ip != nil && ip.IsLoopback()), "http.listen",
			"not a loopback address (set http.allow_public: true to listen on %q)", host)
	}
}

func validPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 1 && n <= 65535
}

const channelWhat = "a channel ID (C…, G… or D…; the ID, not the name)"

func (ch Channels) validate(v *validator) {
	for _, f := range []struct{ key, id string }{
		{"deploys", ch.Deploys},
		{"alerts_warning", ch.AlertsWarning},
		{"alerts_critical", ch.AlertsCritical},
		{"incidents", ch.Incidents},
		{"announcements", ch.Announcements},
	} {
		v.pattern(channelRE, "channels."+f.key, f.id, channelWhat)
	}
}

func (e Environment) validate(v *validator, p string, taken resources) {
	v.check(envNameRE.MatchString(e.Name), p, "environment name must match [a-z][a-z0-9-]*")
	e.validateHost(v, p)
	if v.required(p+".image", e.Image) {
		v.check(strings.Contains(e.Image, "{version}"), p+".image", "must contain {version}")
	}
	v.absPath(p+".env_file", e.EnvFile)
	v.pattern(envVarRE, p+".database_url_var", e.DatabaseURLVar, "a variable name")
	v.absPath(p+".state_file", e.StateFile)
	v.check(slices.Contains(restartPolicies, e.RestartPolicy), p+".restart_policy", "must be one of %s", strings.Join(restartPolicies, ", "))
	if e.PublicURL != "" {
		v.httpURL(p+".public_url", e.PublicURL)
	}
	if e.PrometheusURL != "" {
		v.httpURL(p+".prometheus_url", e.PrometheusURL)
	}
	v.httpURL(p+".caddy.admin_url", e.Caddy.AdminURL)
	v.absPath(p+".caddy.caddyfile", e.Caddy.Caddyfile)

	for _, s := range e.Slots.All() {
		sp := p + ".slots." + s.Name
		if v.required(sp+".container", s.Container) {
			taken.claim(v, e.Host+" "+e.DockerHost, "container "+s.Container, sp+".container")
		}
		if s.HostPort < 1 || s.HostPort > 65535 {
			v.check(false, sp+".host_port", "out of range 1-65535")
		} else {
			taken.claim(v, e.Host+" "+e.DockerHost, fmt.Sprintf("port %d", s.HostPort), sp+".host_port")
		}
		v.httpURL(sp+".health_url", s.HealthURL)
	}

	m := e.Migrations
	v.check(m.Dir == "" || m.ImagePath == "", p+".migrations", "set dir or image_path, not both")
	if m.Dir != "" {
		v.absPath(p+".migrations.dir", m.Dir)
	}
	if m.ImagePath != "" {
		v.absPath(p+".migrations.image_path", m.ImagePath)
	}
	v.absPath(p+".snapshots.dir", e.Snapshots.Dir)
	v.check(e.Snapshots.RetentionDays >= 1, p+".snapshots.retention_days", "must be at least 1")
	if d := e.Snapshots.Dump; d != "" && d != "local" {
		v.check(containerRE.MatchString(e.Snapshots.DumpContainer()), p+".snapshots.dump",
			"%q is neither local nor container:<name> (the database's container, e.g. container:togather-db)", d)
	}

	for k := range e.ContainerEnv {
		v.pattern(envVarRE, p+".container_env."+k, k, "a variable name")
	}
	e.Release.validate(v, p+".release")

	pol, pp := e.Policy, p+".policy"
	if pol.RequireApproval {
		v.check(pol.Approvals >= 1, pp+".approvals", "must be at least 1 when require_approval is true")
	}
	v.check(pol.HealthConsecutive >= 1, pp+".health_consecutive", "must be at least 1")
	v.positive(pp+".health_timeout", pol.HealthTimeout)
	v.positive(pp+".health_interval", pol.HealthInterval)
	v.positive(pp+".lease", pol.Lease)
	v.positive(pp+".bake", pol.Bake)
	v.positive(pp+".watch", pol.Watch)
}

func (r Release) validate(v *validator, p string) {
	names := map[string]bool{}
	for _, phase := range []struct {
		name string
		cmds []ReleaseCommand
	}{{"before_start", r.BeforeStart}, {"after_switch", r.AfterSwitch}} {
		for i, c := range phase.cmds {
			cp := fmt.Sprintf("%s.%s[%d]", p, phase.name, i)
			if v.required(cp+".name", c.Name) {
				v.check(!names[c.Name], cp+".name", "%q is used by another release command", c.Name)
				names[c.Name] = true
			}
			v.check(len(c.Command) > 0 || len(c.Entrypoint) > 0, cp+".command", "required: the arguments of the image's entrypoint")
			v.check(c.Timeout >= 0, cp+".timeout", "must not be negative")
		}
	}
}

// resources records which path first claimed a container name or host port
// on a Docker host: slots, of one environment or of several sharing a host,
// cannot share either.
type resources map[[2]string]string

func (r resources) claim(v *validator, dockerHost, what, path string) {
	key := [2]string{dockerHost, what}
	if first, ok := r[key]; ok {
		v.check(false, path, "%s is also used by %s", what, first)
		return
	}
	r[key] = path
}

// validateHost checks host and docker_host: on an ssh:// host the engine
// is the host's own socket, reached through the connection.
func (e Environment) validateHost(v *validator, p string) {
	if e.Remote() {
		_, err := host.ParseTarget(e.Host)
		v.check(err == nil, p+".host", "%v", err)
	}
	dp := p + ".docker_host"
	if !v.required(dp, e.DockerHost) {
		return
	}
	u, err := url.Parse(e.DockerHost)
	switch {
	case err != nil:
		v.check(false, dp, "not a URL")
	case u.Scheme == "unix":
		v.check(path.IsAbs(u.Path), dp, "unix:// needs an absolute socket path")
	case u.Scheme == "ssh":
		v.check(false, dp, "ssh:// is not a Docker transport: set host: %s and leave docker_host as the host's socket (unix:///var/run/docker.sock)", e.DockerHost)
	case u.Scheme == "tcp":
		v.check(u.Host != "", dp, "tcp:// needs a host")
		v.check(!e.Remote(), dp, "on an ssh:// host the engine is reached through its socket: use unix:///var/run/docker.sock")
	default:
		v.check(false, dp, "scheme must be unix:// or tcp://")
	}
}

func (s SSH) validate(v *validator) {
	if s.IdentityFile != "" {
		v.absPath("ssh.identity_file", s.IdentityFile)
	}
	v.absPath("ssh.known_hosts", s.KnownHosts)
	v.positive("ssh.keepalive", s.KeepAlive)
	v.positive("ssh.connect_timeout", s.ConnectTimeout)
	v.check(s.MaxChannels >= 1, "ssh.max_channels", "must be at least 1")
}

func (c *Config) validateRoles(v *validator) {
	names := map[string]int{}
	for i, r := range c.Roles {
		p := fmt.Sprintf("roles[%d]", i)
		if v.required(p+".name", r.Name) {
			first, dup := names[r.Name]
			v.check(!dup, p+".name", "duplicate of roles[%d]", first)
			names[r.Name] = i
		}
		v.check(len(r.Users)+len(r.Groups) > 0, p, "grants nobody: list users or groups")
		for j, u := range r.Users {
			v.pattern(userRE, fmt.Sprintf("%s.users[%d]", p, j), u, "a user ID (U… or W…; the ID, not the name)")
		}
		for j, g := range r.Groups {
			v.pattern(groupRE, fmt.Sprintf("%s.groups[%d]", p, j), g, "a user-group ID (S…; the ID, not the handle)")
		}
		v.check(len(r.Commands) > 0, p+".commands", "grants no command")
		for j, cmd := range r.Commands {
			v.check(knownPattern(cmd), fmt.Sprintf("%s.commands[%d]", p, j), "unknown command %q", cmd)
		}
		v.check(len(r.Environments) > 0, p+".environments", "grants no environment")
		for j, env := range r.Environments {
			_, ok := c.Environments[env]
			v.check(ok || env == "*", fmt.Sprintf("%s.environments[%d]", p, j), "unknown environment %q", env)
		}
	}
}

// knownPattern reports whether a command pattern grants at least one known
// permission and is "*", "x.*" or a known name.
func knownPattern(pattern string) bool {
	if pattern != "*" && !strings.HasSuffix(pattern, ".*") && !slices.Contains(KnownPermissions, pattern) {
		return false
	}
	for _, name := range KnownPermissions {
		if PermissionMatches(pattern, name) {
			return true
		}
	}
	return false
}

func (p Policy) validate(v *validator) {
	w, wp := p.DeployWindow, "policy.deploy_window"
	w.hours().validate(v, wp)
	v.check(w.Outside == "fail" || w.Outside == "warn", wp+".outside", "must be fail or warn")

	for i, h := range p.Holidays {
		_, err := time.Parse(dateLayout, h)
		v.check(err == nil, fmt.Sprintf("policy.holidays[%d]", i), "not a date (YYYY-MM-DD)")
	}
	for i, f := range p.Freezes {
		fp := fmt.Sprintf("policy.freezes[%d]", i)
		from, errFrom := time.Parse(freezeLayout, f.From)
		to, errTo := time.Parse(freezeLayout, f.To)
		v.check(errFrom == nil, fp+".from", "not a date and time (YYYY-MM-DDTHH:MM)")
		v.check(errTo == nil, fp+".to", "not a date and time (YYYY-MM-DDTHH:MM)")
		if errFrom == nil && errTo == nil {
			v.check(from.Before(to), fp+".to", "must be after from (%s)", f.From)
		}
		v.required(fp+".reason", f.Reason)
	}
	v.positive("policy.approval_ttl", p.ApprovalTTL)

}

func (h Hours) validate(v *validator, path string) {
	v.check(len(h.Days) > 0, path+".days", "at least one day is required")
	for i, d := range h.Days {
		_, ok := weekdays[d]
		v.check(ok, fmt.Sprintf("%s.days[%d]", path, i), "not a day (mon, tue, wed, thu, fri, sat or sun)")
	}
	startOK, endOK := validClock(h.Start), validClock(h.End)
	v.check(startOK, path+".start", "not a time of day (HH:MM)")
	v.check(endOK, path+".end", "not a time of day (HH:MM)")
	if startOK && endOK {
		v.check(h.Start < h.End, path+".end", "must be after start (%s)", h.Start)
	}
}

func (m Maintenance) validate(v *validator) {
	m.BusinessHours.validate(v, "maintenance.business_hours")
	v.positive("maintenance.max_duration", m.MaxDuration)
	v.positive("maintenance.watch", m.Watch)
	for i, d := range m.AnnounceDays {
		v.check(d > 0, fmt.Sprintf("maintenance.announce_days[%d]", i), "must be a positive number of days")
	}
}

func (j Jobs) validate(v *validator, envs map[string]Environment) {
	for path, spec := range map[string]string{"jobs.snapshot_prune": j.SnapshotPrune, "jobs.restore_test": j.RestoreTest, "jobs.db_report": j.DBReport} {
		if spec != "" {
			_, err := cron.ParseStandard(spec)
			v.check(err == nil, path, "not a cron spec (minute hour day-of-month month day-of-week): %v", err)
		}
	}
	if j.RestoreTest != "" && j.RestoreTestEnv != "" {
		_, ok := envs[j.RestoreTestEnv]
		v.check(ok, "jobs.restore_test_env", "not a configured environment")
	}
}

func validClock(s string) bool {
	_, err := time.Parse(clockLayout, s)
	return err == nil && clockRE.MatchString(s)
}

// walkStrings calls fn with the path of every string in v, a value of the
// Config tree, naming fields by their YAML keys.
func walkStrings(v reflect.Value, p string, fn func(path, s string)) {
	join := func(key string) string {
		if p == "" {
			return key
		}
		return p + "." + key
	}
	switch v.Kind() {
	case reflect.String:
		fn(p, v.String())
	case reflect.Slice:
		for i := range v.Len() {
			walkStrings(v.Index(i), fmt.Sprintf("%s[%d]", p, i), fn)
		}
	case reflect.Map:
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		for _, k := range keys {
			walkStrings(v.MapIndex(k), join(k.String()), fn)
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			key, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
			if key == "" || key == "-" {
				continue
			}
			walkStrings(v.Field(i), join(key), fn)
		}
	}
}

func (a Alerts) validate(v *validator) {
	v.positive("alerts.health_interval", a.HealthInterval)
	v.positive("alerts.unhealthy_interval", a.UnhealthyInterval)
	v.positive("alerts.sev1_every", a.SEV1Every)
	v.positive("alerts.sev2_every", a.SEV2Every)
	for name, d := range a.For {
		v.check(d >= 0, "alerts.for."+name, "must not be negative")
	}
}

// pagerDutyKeyLen is the length of a PagerDuty Events API v2 routing key.
const pagerDutyKeyLen = 32

func (c *Config) validatePaging(v *validator) {
	for name, t := range c.Paging.Targets {
		p := "paging.targets." + name
		v.check(t.Type == "pagerduty", p+".type", "unknown type %q (want pagerduty)", t.Type)
		if v.required(p+".routing_key_env", t.RoutingKeyEnv) {
			v.pattern(envVarRE, p+".routing_key_env", t.RoutingKeyEnv, "an environment variable NAME")
			switch key := c.Secrets.PagingKeys[name]; {
			case key == "":
				v.add(t.RoutingKeyEnv, "not set (the routing key of paging target %s)", name)
			case len(key) != pagerDutyKeyLen:
				v.add(t.RoutingKeyEnv, "a PagerDuty routing key is %d characters, this one is %d", pagerDutyKeyLen, len(key))
			}
		}
		v.check(len(t.Severities) > 0, p+".severities", "at least one severity is required (critical, warning)")
		for i, sev := range t.Severities {
			v.check(sev == "critical" || sev == "warning", fmt.Sprintf("%s.severities[%d]", p, i), "unknown severity %q (want critical or warning)", sev)
		}
		if t.EventsURL != "" {
			v.httpURL(p+".events_url", t.EventsURL)
		}
	}
}

// Warnings returns what is usable but likely a mistake: today, critical
// alerts that page no one beyond Slack.
func (c *Config) Warnings() []Problem {
	for _, t := range c.Paging.Targets {
		if t.Pages("critical") {
			return nil
		}
	}
	return []Problem{{Path: "paging", Message: "no paging target pages critical alerts: they only mention the on-call group in Slack (add a pagerduty target with severities: [critical])"}}
}
