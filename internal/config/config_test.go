package config_test

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/togather-foundation/togather-chatops/internal/config"
)

// secrets is a valid environment for LoadSecrets.
var secrets = map[string]string{
	"SLACK_APP_TOKEN":    "xapp-1-A0123-4567-abcdefabcdef",
	"SLACK_BOT_TOKEN":    "xoxb-1234-5678-s3cr3tb0tt0k3n",
	"DATABASE_URL":       "postgres://bot:hunter2pass@127.0.0.1:5432/chatops?sslmode=disable",
	"ALERTMANAGER_TOKEN": "am-t0ken-v3ry-s3cret",
	// the routing key of the example paging target
	"PAGERDUTY_ROUTING_KEY": "0123456789abcdef0123456789abcdef",
}

func getenv(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

// load loads a file and its secrets and fails on any decode error.
func load(t *testing.T, path string, env map[string]string) *config.Config {
	t.Helper()
	c, err := config.Load(path)
	if err != nil {
		t.Fatalf("Load(%s): %v", path, err)
	}
	c.LoadSecrets(getenv(env))
	return c
}

func TestGoodFileAppliesDefaults(t *testing.T) {
	c := load(t, "testdata/good.yaml", secrets)
	if probs := c.Validate(); len(probs) != 0 {
		t.Fatalf("Validate() = %v, want no problem", probs)
	}

	prod, ok := c.Environment("production")
	if !ok {
		t.Fatal("no production environment")
	}
	qa, _ := c.Environment("qa")
	staging, _ := c.Environment("staging")
	tests := []struct {
		name      string
		got, want any
	}{
		{"timezone as written", c.Timezone, "Europe/Paris"},
		{"location", c.Location().String(), "Europe/Paris"},
		{"api_url gets its slash", c.Slack.APIURL, "http://127.0.0.1:3999/api/"},
		{"ping_interval", c.Slack.PingInterval, 30 * time.Second},
		{"workers", c.Slack.Workers, 16},
		{"command_timeout", c.Slack.CommandTimeout, 2 * time.Minute},
		{"oncall_group", c.Slack.OncallGroup, ""},
		{"envelope_ttl", c.Store.EnvelopeTTL, 24 * time.Hour},
		{"listen", c.HTTP.Listen, "127.0.0.1:9102"},
		{"window", c.Policy.DeployWindow, config.DeployWindow{Days: []string{"tue", "wed", "thu"}, Start: "10:00", End: "14:00", Outside: "fail"}},
		{"approval_ttl", c.Policy.ApprovalTTL, 30 * time.Minute},
		{"environment names", c.EnvironmentNames(), []string{"production", "qa", "staging"}},

		{"production, all defaults", prod, config.Environment{
			Name:           "production",
			Host:           "local",
			DockerHost:     "unix:///var/run/docker.sock",
			Image:          "togather-server:{version}",
			EnvFile:        "/opt/togather/.env.production",
			DatabaseURLVar: "DATABASE_URL",
			StateFile:      "/opt/togather/src/deploy/config/deployment-state.json",
			Network:        "togather-network",
			RestartPolicy:  "unless-stopped",
			Caddy:          config.Caddy{AdminURL: "http://localhost:2019", Caddyfile: "/etc/caddy/Caddyfile"},
			Slots: config.Slots{
				Blue:  config.Slot{Name: "blue", Container: "togather-server-blue", HostPort: 8081, HealthURL: "http://127.0.0.1:8081/health"},
				Green: config.Slot{Name: "green", Container: "togather-server-green", HostPort: 8082, HealthURL: "http://127.0.0.1:8082/health"},
			},
			Migrations: config.Migrations{ImagePath: "/app/migrations"},
			Snapshots:  config.Snapshots{Dir: "/var/lib/togather/db-snapshots", RetentionDays: 30, Dump: "local"},
			Policy: config.DeployPolicy{
				RequireApproval: true, Approvals: 1, EnforceWindow: true, HealthConsecutive: 3,
				HealthTimeout: time.Minute, HealthInterval: 2 * time.Second, Bake: 10 * time.Minute, AutoRollback: true,
				Watch: 30 * time.Minute, Lease: 30 * time.Second,
			},
		}},
		{"staging retention", staging.Snapshots.RetentionDays, 7},
		{"staging policy as written", staging.Policy.Approvals, 2},
		{"staging window not enforced", staging.Policy.EnforceWindow, false},
		{"qa docker_host merged from staging", qa.DockerHost, "tcp://10.0.0.2:2375"},
		{"qa policy merged from staging", qa.Policy.RequireApproval, true},
		{"qa health_url follows host_port", qa.Slots.Green.HealthURL, "http://127.0.0.1:9082/health"},
		{"qa migrations: {} means none", qa.Migrations, config.Migrations{}},
		{"qa env_file", qa.EnvFile, "/opt/togather/.env.qa"},
		{"qa retention as written", qa.Snapshots.RetentionDays, 3},
		{"image ref", prod.ImageRef("abc1234"), "togather-server:abc1234"},
		{"alerts", c.Alerts, config.Alerts{HealthInterval: 5 * time.Second, UnhealthyInterval: 5 * time.Second, AutoIncident: true, SEV1Every: 30 * time.Minute, SEV2Every: time.Hour}},
		{"secret rotation", c.SecretRotation, map[string]time.Duration{"JWT_SECRET": 90 * 24 * time.Hour, "CSRF_KEY": 90 * 24 * time.Hour,
			"POSTGRES_PASSWORD": 180 * 24 * time.Hour, "ADMIN_PASSWORD": 180 * 24 * time.Hour}},
		{"secret rotation is the default", c.DefaultSecretRotation("JWT_SECRET") && c.DefaultSecretRotation("POSTGRES_PASSWORD"), true},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s: got %#v, want %#v", tt.name, tt.got, tt.want)
		}
	}
}

func TestDefaultTimezone(t *testing.T) {
	c, err := config.Parse([]byte("environments: {production: {}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Location().String(); got != "America/Toronto" {
		t.Errorf("Location() = %s, want America/Toronto", got)
	}
}

func TestLocationOfABuiltConfig(t *testing.T) {
	if got := (&config.Config{Timezone: "Asia/Tokyo"}).Location().String(); got != "Asia/Tokyo" {
		t.Errorf("Location() = %s, want Asia/Tokyo", got)
	}
	if got := (&config.Config{Timezone: "Nowhere/Atlantis"}).Location(); got != time.UTC {
		t.Errorf("Location() of an unknown zone = %s, want UTC", got)
	}
}

func TestMergeKeysCountAsWritten(t *testing.T) {
	c, err := config.Parse([]byte(`
environments:
  a: &a {docker_host: "tcp://a:2375", policy: {auto_rollback: false}}
  b: &b {network: net-b}
  c:
    <<: [*a, *b]
    network: net-c
  d: *a
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"c", "d"} {
		e := c.Environments[name]
		if e.DockerHost != "tcp://a:2375" || e.Policy.AutoRollback {
			t.Errorf("%s: merged keys replaced by defaults: docker_host %q, auto_rollback %v", name, e.DockerHost, e.Policy.AutoRollback)
		}
	}
	if got := c.Environments["c"].Network; got != "net-c" {
		t.Errorf("c.network = %q, want the key written over the merge", got)
	}
}

func TestExplicitValuesAreKept(t *testing.T) {
	c, err := config.Parse([]byte(`
environments:
  development:
    image: ""
    policy: {require_approval: true, auto_rollback: false, approvals: 0}
`))
	if err != nil {
		t.Fatal(err)
	}
	dev := c.Environments["development"]
	if dev.Image != "" || !dev.Policy.RequireApproval || dev.Policy.AutoRollback || dev.Policy.Approvals != 0 {
		t.Errorf("explicit values replaced by defaults: %+v", dev)
	}
	if dev.Snapshots.RetentionDays != 1 || dev.Policy.EnforceWindow {
		t.Errorf("development defaults: retention %d, enforce_window %v; want 1, false",
			dev.Snapshots.RetentionDays, dev.Policy.EnforceWindow)
	}
}

// TestExampleFile checks deploy/config.example.yaml is valid and documents
// the real defaults: its production environment and global settings equal
// what an omitted key gives, apart from the values an operator must choose.
func TestExampleFile(t *testing.T) {
	example := load(t, "../../deploy/config.example.yaml", secrets)
	if probs := example.Validate(); len(probs) != 0 {
		t.Fatalf("example has problems: %v", probs)
	}
	if got, want := example.EnvironmentNames(), []string{"development", "production", "staging"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("example environments = %v, want %v", got, want)
	}

	defaults, err := config.Parse([]byte("environments: {development: {}, staging: {}, production: {}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range example.EnvironmentNames() {
		got, want := example.Environments[name], defaults.Environments[name]
		// Chosen per installation: the host, where the engine is, the public
		// URL, what the containers get and run besides the server, where
		// the database's container is.
		want.Host, want.DockerHost, want.PublicURL = got.Host, got.DockerHost, got.PublicURL
		want.ContainerEnv, want.Release, want.Snapshots.Dump = got.ContainerEnv, got.Release, got.Snapshots.Dump
		if !reflect.DeepEqual(got, want) {
			t.Errorf("example environment %s differs from the defaults:\n got %+v\nwant %+v", name, got, want)
		}
	}
	want := defaults.Slack
	want.OncallGroup = example.Slack.OncallGroup
	ssh := defaults.SSH
	ssh.IdentityFile = example.SSH.IdentityFile
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"timezone", example.Timezone, defaults.Timezone},
		{"slack", example.Slack, want},
		{"store", example.Store, defaults.Store},
		{"ssh", example.SSH, ssh},
		{"http", example.HTTP, defaults.HTTP},
		{"deploy window", example.Policy.DeployWindow, defaults.Policy.DeployWindow},
		{"approval ttl", example.Policy.ApprovalTTL, defaults.Policy.ApprovalTTL},
		{"secret rotation", example.SecretRotation, defaults.SecretRotation},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("example %s = %+v, default %+v", c.name, c.got, c.want)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []config.Problem
	}{
		{
			name: "unknown keys at every level",
			yaml: `slack:
  workerz: 4
environments:
  production:
    slots:
      blue: {container: x, colour: blue}
    polcy: {}
roles:
  - name: a
    user: [U1]
alerts:
  rules: []
`,
			want: []config.Problem{
				{"slack.workerz", "line 2: unknown key"},
				{"environments.production.slots.blue.colour", "line 6: unknown key"},
				{"environments.production.polcy", "line 7: unknown key"},
				{"roles[0].user", "line 10: unknown key"},
				{"alerts.rules", "line 12: unknown key"},
			},
		},
		{
			name: "wrong types",
			yaml: `slack:
  workers: many
  ping_interval: 3 minutes
  command_timeout: 120
environments:
  production:
    slots: {blue: {host_port: "80a"}, green: {host_port: [8082]}}
roles: {name: x}
policy:
  holidays: "2026-12-25"
http: {allow_public: perhaps}
`,
			want: []config.Problem{
				{"slack.workers", `line 2: expected an integer, got "many"`},
				{"slack.ping_interval", `line 3: expected a duration such as 30s or 10m, got "3 minutes"`},
				{"slack.command_timeout", `line 4: expected a duration such as 30s or 10m, got "120"`},
				{"environments.production.slots.blue.host_port", `line 7: expected an integer, got "80a"`},
				{"environments.production.slots.green.host_port", `line 7: expected an integer, got a list`},
				{"roles", `line 8: expected a list, got a mapping`},
				{"policy.holidays", `line 10: expected a list, got "2026-12-25"`},
				{"http.allow_public", `line 11: expected true or false, got "perhaps"`},
			},
		},
		{
			name: "long value shown truncated",
			yaml: "slack: {workers: sixteen-thousand}\n",
			want: []config.Problem{{"slack.workers", `line 1: expected an integer, got "sixteen..."`}},
		},
		{
			name: "unknown key inside a merged anchor is reported where written",
			yaml: `environments:
  staging: &base
    imagee: x
  production:
    <<: *base
`,
			want: []config.Problem{{"environments.staging.imagee", "line 3: unknown key"}},
		},
		{
			name: "duplicate key",
			yaml: "timezone: UTC\ntimezone: UTC\n",
			want: []config.Problem{{"timezone", `line 2: mapping key "timezone" already defined at line 1`}},
		},
		{
			name: "syntax error",
			yaml: "timezone: UTC\nslack:\n\tworkers: 4\n",
			want: []config.Problem{{"", "line 3: found character that cannot start any token"}},
		},
		{
			name: "not a mapping",
			yaml: "- a\n- b\n",
			want: []config.Problem{{"", "line 1: expected a mapping, got a list"}},
		},
		{
			name: "empty",
			yaml: "# nothing\n",
			want: []config.Problem{{"", "the file is empty"}},
		},
		{
			name: "two documents",
			yaml: "timezone: UTC\n---\ntimezone: UTC\n",
			want: []config.Problem{{"", "the file holds more than one YAML document"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Parse([]byte(tt.yaml))
			var de *config.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("Parse error = %v, want a *DecodeError", err)
			}
			if c != nil {
				t.Errorf("Parse returned a config along with its error")
			}
			if !reflect.DeepEqual(de.Problems, tt.want) {
				t.Errorf("problems:\n got %q\nwant %q", de.Problems, tt.want)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	if _, err := config.Load("testdata/missing.yaml"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want an error wrapping os.ErrNotExist", err)
	}

	path := t.TempDir() + "/c.yaml"
	if err := os.WriteFile(path, []byte("timezone: UTC\nslak: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := config.Load(path)
	var de *config.DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("Load = %v, want a *DecodeError", err)
	}
	if want := "config " + path + ": decode: slak: line 2: unknown key"; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
}

func TestHelpers(t *testing.T) {
	c := load(t, "testdata/good.yaml", secrets)
	paris := c.Location()

	if got, want := c.Policy.DeployWindow.Weekdays(), []time.Weekday{time.Tuesday, time.Wednesday, time.Thursday}; !reflect.DeepEqual(got, want) {
		t.Errorf("Weekdays() = %v, want %v", got, want)
	}
	start, end, ok := c.Policy.DeployWindow.Bounds()
	if !ok || start != 10*time.Hour || end != 14*time.Hour {
		t.Errorf("Bounds() = %v, %v, %v; want 10h, 14h, true", start, end, ok)
	}
	if _, _, ok := (config.DeployWindow{Start: "10:00", End: "noon"}).Bounds(); ok {
		t.Error("Bounds() ok for an unparsable end")
	}
	if got, want := c.HolidayDates(), []time.Time{time.Date(2026, 12, 25, 0, 0, 0, 0, paris)}; !reflect.DeepEqual(got, want) {
		t.Errorf("HolidayDates() = %v, want %v", got, want)
	}
	wantFreeze := []config.FreezeRange{{
		From:   time.Date(2026, 12, 20, 0, 0, 0, 0, paris),
		To:     time.Date(2027, 1, 4, 0, 0, 0, 0, paris),
		Reason: "holiday freeze",
	}}
	if got := c.FreezeRanges(); !reflect.DeepEqual(got, wantFreeze) {
		t.Errorf("FreezeRanges() = %v, want %v", got, wantFreeze)
	}

	slots := c.Environments["qa"].Slots
	if s, ok := slots.Get("green"); !ok || s.Container != "qa-green" {
		t.Errorf(`Get("green") = %+v, %v`, s, ok)
	}
	if _, ok := slots.Get("red"); ok {
		t.Error(`Get("red") found a slot`)
	}
	if _, ok := c.Environment("nowhere"); ok {
		t.Error(`Environment("nowhere") found one`)
	}
}

func TestRedacted(t *testing.T) {
	c := load(t, "testdata/good.yaml", secrets)
	out := c.Redacted()
	for name, value := range secrets {
		if strings.Contains(out, value) {
			t.Errorf("Redacted() shows %s", name)
		}
	}
	for _, want := range []string{
		`SLACK_APP_TOKEN: "<redacted (xapp-…, 30 chars)>"`,
		`SLACK_BOT_TOKEN: "<redacted (xoxb-…, 29 chars)>"`,
		`DATABASE_URL: "postgres://bot:***@127.0.0.1:5432/chatops?sslmode=disable"`,
		`ALERTMANAGER_TOKEN: "<redacted (20 chars)>"`,
		"api_url: http://127.0.0.1:3999/api/",
		"    docker_host: tcp://10.0.0.2:2375",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("Redacted() lacks %q:\n%s", want, out)
		}
	}

	// The output is the effective configuration: it parses back to it.
	body, _, _ := strings.Cut(out, "secrets:")
	back, err := config.Parse([]byte(body))
	if err != nil {
		t.Fatalf("Redacted() does not parse back: %v", err)
	}
	back.Secrets = c.Secrets
	if !reflect.DeepEqual(back, c) {
		t.Errorf("Redacted() parses back to a different config")
	}
}

// TestRedactedMasksURLPasswords: the printed configuration shows the user
// of every URL but not its password, nor a value that is one of the bot's
// secrets.
func TestRedactedMasksURLPasswords(t *testing.T) {
	c := load(t, "testdata/good.yaml", secrets)
	staging := c.Environments["staging"]
	staging.PrometheusURL = "https://metrics:pr0m-pa55word@prometheus.internal:9090/"
	staging.ContainerEnv = map[string]string{
		"DATABASE_URL": "postgres://togather:app-db-pa55@db:5432/togather?sslmode=disable",
		"BOT_TOKEN":    secrets["SLACK_BOT_TOKEN"],
	}
	c.Environments["staging"] = staging
	out := c.Redacted()
	for _, want := range []string{
		"prometheus_url: https://metrics:***@prometheus.internal:9090/",
		"DATABASE_URL: postgres://togather:***@db:5432/togather?sslmode=disable",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("Redacted() lacks %q:\n%s", want, out)
		}
	}
	for _, secret := range []string{"pr0m-pa55word", "app-db-pa55", secrets["SLACK_BOT_TOKEN"]} {
		if strings.Contains(out, secret) {
			t.Errorf("Redacted() shows %q:\n%s", secret, out)
		}
	}
}

func TestRedactedSecrets(t *testing.T) {
	tests := []struct {
		name   string
		env    map[string]string
		want   []string
		hidden []string
	}{
		{
			name: "unset",
			env:  nil,
			want: []string{`SLACK_APP_TOKEN: "<not set>"`, `DATABASE_URL: "<not set>"`},
		},
		{
			name:   "token with the wrong prefix shows no prefix",
			env:    map[string]string{"SLACK_BOT_TOKEN": "xoxp-personal-token"},
			want:   []string{`SLACK_BOT_TOKEN: "<redacted (19 chars)>"`},
			hidden: []string{"xoxp"},
		},
		{
			name:   "password in the query",
			env:    map[string]string{"DATABASE_URL": "postgresql:///chatops?host=/run/postgresql&Password=qu3ry"},
			want:   []string{`DATABASE_URL: "postgresql:///chatops?host=/run/postgresql&Password=***"`},
			hidden: []string{"qu3ry"},
		},
		{
			name:   "escaped password",
			env:    map[string]string{"DATABASE_URL": "postgres://bot:p%40ss@db/chatops"},
			want:   []string{`DATABASE_URL: "postgres://bot:***@db/chatops"`},
			hidden: []string{"p%40ss", "p@ss"},
		},
		{
			name: "no password",
			env:  map[string]string{"DATABASE_URL": "postgres://bot@db/chatops"},
			want: []string{`DATABASE_URL: "postgres://bot@db/chatops"`},
		},
		{
			name:   "key=value string",
			env:    map[string]string{"DATABASE_URL": "host=db user=bot password='s3 cr\\'t' dbname=chatops"},
			want:   []string{`DATABASE_URL: "host=db user=bot password=*** dbname=chatops"`},
			hidden: []string{"s3 cr"},
		},
		{
			name:   "URL that does not parse",
			env:    map[string]string{"DATABASE_URL": "postgres://bot:pa ss@db:port/x"},
			want:   []string{`DATABASE_URL: "<redacted (30 chars)>"`},
			hidden: []string{"pa ss"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := load(t, "testdata/good.yaml", tt.env)
			out := c.Redacted()
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("Redacted() lacks %q", w)
				}
			}
			_, section, _ := strings.Cut(out, "secrets:")
			for _, h := range tt.hidden {
				if strings.Contains(section, h) {
					t.Errorf("Redacted() shows %q:\n%s", h, section)
				}
			}
		})
	}
}

func TestDefaultSecretRotation(t *testing.T) {
	c, err := config.Parse([]byte("environments: {staging: {}}\nsecret_rotation: {JWT_SECRET: 720h, POSTGRES_PASSWORD: 4320h, API_KEY: 24h}\n"))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{"JWT_SECRET": false, "POSTGRES_PASSWORD": true, "API_KEY": false, "CSRF_KEY": false} {
		if got := c.DefaultSecretRotation(name); got != want {
			t.Errorf("DefaultSecretRotation(%s) = %v, want %v", name, got, want)
		}
	}
}
