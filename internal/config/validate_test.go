package config_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/togather-foundation/togather-chatops/internal/config"
)

func TestValidateBroken(t *testing.T) {
	c := load(t, "testdata/broken.yaml", map[string]string{
		"SLACK_BOT_TOKEN": "xoxp-1234-user-token",
		"DATABASE_URL":    "mysql://bot:pw@db/chatops",
	})
	want := []config.Problem{
		{"DATABASE_URL", "not a PostgreSQL URL (postgres://…) or key=value connection string"},
		{"SLACK_APP_TOKEN", "not set"},
		{"SLACK_BOT_TOKEN", "must start with xoxb-"},
		{"channels.alerts_critical", "not a channel ID (C…, G… or D…; the ID, not the name)"},
		{"channels.announcements", "still holds the CHANGE_ME placeholder"},
		{"channels.deploys", "not a channel ID (C…, G… or D…; the ID, not the name)"},
		{"channels.incidents", "required"},
		{"environments.Prod", "environment name must match [a-z][a-z0-9-]*"},
		{"environments.production.caddy.admin_url", "required"},
		{"environments.production.database_url_var", "not a variable name"},
		{"environments.production.docker_host", "scheme must be unix:// or tcp://"},
		{"environments.production.env_file", "must be an absolute path"},
		{"environments.production.image", "must contain {version}"},
		{"environments.production.migrations", "set dir or image_path, not both"},
		{"environments.production.policy.approvals", "must be at least 1 when require_approval is true"},
		{"environments.production.policy.bake", "must be a positive duration"},
		{"environments.production.policy.health_consecutive", "must be at least 1"},
		{"environments.production.public_url", "not a URL (want http:// or https://)"},
		{"environments.production.restart_policy", "must be one of no, always, unless-stopped, on-failure"},
		{"environments.production.slots.blue.health_url", "not a URL (want http:// or https://)"},
		{"environments.production.slots.green.host_port", "port 8081 is also used by environments.production.slots.blue.host_port"},
		{"environments.production.snapshots.dir", "must be an absolute path"},
		{"environments.production.snapshots.retention_days", "must be at least 1"},
		{"environments.qa.slots.green.host_port", "port 8082 is also used by environments.dev.slots.green.host_port"},
		{"environments.staging.docker_host", "tcp:// needs a host"},
		{"environments.staging.slots.green.container", "container togather-server-blue is also used by environments.staging.slots.blue.container"},
		{"environments.staging.slots.green.host_port", "out of range 1-65535"},
		{"http.listen", `not a loopback address (set http.allow_public: true to listen on "0.0.0.0")`},
		{"policy.approval_ttl", "must be a positive duration"},
		{"policy.deploy_window.days[1]", "not a day (mon, tue, wed, thu, fri, sat or sun)"},
		{"policy.deploy_window.end", "not a time of day (HH:MM)"},
		{"policy.deploy_window.outside", "must be fail or warn"},
		{"policy.deploy_window.start", "not a time of day (HH:MM)"},
		{"policy.freezes[0].reason", "required"},
		{"policy.freezes[0].to", "must be after from (2027-01-04T00:00)"},
		{"policy.holidays[0]", "not a date (YYYY-MM-DD)"},
		{"roles[0].commands[1]", `unknown command "launch"`},
		{"roles[0].commands[3]", `unknown command "nothing.*"`},
		{"roles[0].environments[1]", `unknown environment "moon"`},
		{"roles[0].groups[0]", "not a user-group ID (S…; the ID, not the handle)"},
		{"roles[0].users[0]", "not a user ID (U… or W…; the ID, not the name)"},
		{"roles[1]", "grants nobody: list users or groups"},
		{"roles[1].commands", "grants no command"},
		{"roles[1].environments", "grants no environment"},
		{"roles[1].name", "duplicate of roles[0]"},
		{"slack.api_url", "not a URL (want http:// or https://)"},
		{"slack.command_timeout", "must be a positive duration"},
		{"slack.oncall_group", "not a user-group ID (S…)"},
		{"slack.ping_interval", "must be a positive duration"},
		{"slack.workers", "must be at least 1"},
		{"store.envelope_ttl", "must be a positive duration"},
		{"timezone", "not a time zone (want an IANA name such as America/Toronto)"},
	}
	got := c.Validate()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Validate() differs")
		for i := range max(len(got), len(want)) {
			var g, w config.Problem
			if i < len(got) {
				g = got[i]
			}
			if i < len(want) {
				w = want[i]
			}
			if g != w {
				t.Errorf("#%d:\n got %q\nwant %q", i, g, w)
			}
		}
	}
}

func TestProblemString(t *testing.T) {
	p := config.Problem{Path: "environments.production.slots.blue.health_url", Message: "not a URL"}
	if got, want := p.String(), "environments.production.slots.blue.health_url: not a URL"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got := (config.Problem{Message: "the file is empty"}).String(); got != "the file is empty" {
		t.Errorf("String() without path = %q", got)
	}
}

// TestValidateCases changes one thing in a valid configuration and expects
// exactly the problems it causes.
func TestValidateCases(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *config.Config)
		want   []config.Problem
	}{
		// production and staging run the default slots on different Docker hosts.
		{"valid", func(c *config.Config) {}, nil},
		{"no environment", func(c *config.Config) {
			c.Environments = nil
			c.Roles = nil
		}, []config.Problem{{"environments", "at least one environment is required"}}},
		{"listen on localhost", func(c *config.Config) { c.HTTP.Listen = "localhost:9102" }, nil},
		{"listen on ::1", func(c *config.Config) { c.HTTP.Listen = "[::1]:9102" }, nil},
		{"listen on every interface", func(c *config.Config) { c.HTTP.Listen = ":9102" },
			[]config.Problem{{"http.listen", `not a loopback address (set http.allow_public: true to listen on "")`}}},
		{"public listen allowed", func(c *config.Config) {
			c.HTTP.Listen, c.HTTP.AllowPublic = "0.0.0.0:9102", true
		}, nil},
		{"listen without port", func(c *config.Config) { c.HTTP.Listen = "127.0.0.1" },
			[]config.Problem{{"http.listen", "not a host:port address"}}},
		{"listen port out of range", func(c *config.Config) { c.HTTP.Listen = "127.0.0.1:99999" },
			[]config.Problem{{"http.listen", `port "99999" out of range 1-65535`}}},
		{"empty window", func(c *config.Config) { c.Policy.DeployWindow.Days = nil },
			[]config.Problem{{"policy.deploy_window.days", "at least one day is required"}}},
		{"window ends before it starts", func(c *config.Config) {
			c.Policy.DeployWindow.Start, c.Policy.DeployWindow.End = "14:00", "10:00"
		}, []config.Problem{{"policy.deploy_window.end", "must be after start (14:00)"}}},
		{"empty window span", func(c *config.Config) {
			c.Policy.DeployWindow.Start, c.Policy.DeployWindow.End = "10:00", "10:00"
		}, []config.Problem{{"policy.deploy_window.end", "must be after start (10:00)"}}},
		{"release commands", func(c *config.Config) {
			setEnv(c, "qa", func(e *config.Environment) {
				e.ContainerEnv = map[string]string{"DATABASE_URL": "postgres://u:${POSTGRES_PASSWORD}@db/x"}
				e.Release.BeforeStart = []config.ReleaseCommand{{Name: "river", Command: []string{"migrate-up"}}}
				e.Release.AfterSwitch = []config.ReleaseCommand{{Name: "sync", Entrypoint: []string{"/app/server"}}}
			})
		}, nil},
		{"broken release commands", func(c *config.Config) {
			setEnv(c, "qa", func(e *config.Environment) {
				e.ContainerEnv = map[string]string{"not a name": "x"}
				e.Release.BeforeStart = []config.ReleaseCommand{{Name: "river", Command: []string{"migrate-up"}}, {Command: []string{"x"}, Timeout: -1}}
				e.Release.AfterSwitch = []config.ReleaseCommand{{Name: "river"}}
			})
		}, []config.Problem{
			{"environments.qa.container_env.not a name", "not a variable name"},
			{"environments.qa.release.after_switch[0].command", "required: the arguments of the image's entrypoint"},
			{"environments.qa.release.after_switch[0].name", `"river" is used by another release command`},
			{"environments.qa.release.before_start[1].name", "required"},
			{"environments.qa.release.before_start[1].timeout", "must not be negative"},
		}},
		{"snapshot clients in the database's container", func(c *config.Config) {
			setEnv(c, "qa", func(e *config.Environment) { e.Snapshots.Dump = "container:togather-db" })
		}, nil},
		{"snapshot clients nowhere", func(c *config.Config) {
			setEnv(c, "qa", func(e *config.Environment) { e.Snapshots.Dump = "container:" })
			setEnv(c, "staging", func(e *config.Environment) { e.Snapshots.Dump = "remote" })
		}, []config.Problem{
			{"environments.qa.snapshots.dump", `"container:" is neither local nor container:<name> (the database's container, e.g. container:togather-db)`},
			{"environments.staging.snapshots.dump", `"remote" is neither local nor container:<name> (the database's container, e.g. container:togather-db)`},
		}},
		{"environment on an ssh host", func(c *config.Config) {
			setEnv(c, "qa", func(e *config.Environment) {
				e.Host, e.DockerHost = "ssh://deploy@qa.example:2222", "unix:///var/run/docker.sock"
			})
		}, nil},
		{"docker_host ssh:// is no transport", func(c *config.Config) {
			setEnv(c, "qa", func(e *config.Environment) { e.DockerHost = "ssh://deploy@qa.example" })
		}, []config.Problem{{"environments.qa.docker_host", "ssh:// is not a Docker transport: set host: ssh://deploy@qa.example and leave docker_host as the host's socket (unix:///var/run/docker.sock)"}}},
		{"ssh host without a known_hosts file", func(c *config.Config) {
			c.SSH.KnownHosts = ""
			setEnv(c, "qa", func(e *config.Environment) {
				e.Host, e.DockerHost = "ssh://deploy@qa.example", "unix:///var/run/docker.sock"
			})
		}, []config.Problem{{"ssh.known_hosts", "required"}}},
		{"docker socket without path", func(c *config.Config) {
			setEnv(c, "production", func(e *config.Environment) { e.DockerHost = "unix://" })
		}, []config.Problem{{"environments.production.docker_host", "unix:// needs an absolute socket path"}}},
		{"ssh without host", func(c *config.Config) {
			setEnv(c, "staging", func(e *config.Environment) { e.Host, e.DockerHost = "ssh://", "unix:///var/run/docker.sock" })
		}, []config.Problem{{"environments.staging.host", `host "ssh://": want ssh://user@host[:port]`}}},
		{"environments sharing a docker host share no container", func(c *config.Config) {
			setEnv(c, "qa", func(e *config.Environment) { e.Slots.Blue.Container = "togather-server-green" })
		}, []config.Problem{{"environments.staging.slots.green.container",
			"container togather-server-green is also used by environments.qa.slots.blue.container"}}},
		{"no approval needed, none counted", func(c *config.Config) {
			setEnv(c, "production", func(e *config.Environment) { e.Policy.RequireApproval, e.Policy.Approvals = false, 0 })
		}, nil},
		{"public_url optional but a URL", func(c *config.Config) {
			setEnv(c, "production", func(e *config.Environment) { e.PublicURL = "https://toronto.togather.foundation" })
			setEnv(c, "staging", func(e *config.Environment) { e.PublicURL = "/health" })
		}, []config.Problem{{"environments.staging.public_url", "not a URL (want http:// or https://)"}}},
		{"migrations from a directory", func(c *config.Config) {
			setEnv(c, "production", func(e *config.Environment) { e.Migrations = config.Migrations{Dir: "migrations"} })
		}, []config.Problem{{"environments.production.migrations.dir", "must be an absolute path"}}},
		{"placeholder reported once, wherever it is", func(c *config.Config) {
			c.Roles[0].Users = []string{"U0123ABC", "CHANGE_ME"}
			setEnv(c, "staging", func(e *config.Environment) { e.Slots.Green.HealthURL = "http://CHANGE_ME:8082/health" })
			c.Secrets.DatabaseURL = "postgres://bot:CHANGE_ME@db/chatops"
		}, []config.Problem{
			{"DATABASE_URL", "still holds the CHANGE_ME placeholder"},
			{"environments.staging.slots.green.health_url", "still holds the CHANGE_ME placeholder"},
			{"roles[0].users[1]", "still holds the CHANGE_ME placeholder"},
		}},
		{"alertmanager token optional", func(c *config.Config) { c.Secrets.AlertmanagerToken = "" }, nil},
		{"key=value database URL", func(c *config.Config) { c.Secrets.DatabaseURL = "host=db dbname=chatops" }, nil},
		{"database URL neither form", func(c *config.Config) { c.Secrets.DatabaseURL = "db.example:5432" },
			[]config.Problem{{"DATABASE_URL", "not a PostgreSQL URL (postgres://…) or key=value connection string"}}},
		{"app token of the wrong kind", func(c *config.Config) {
			c.Secrets.SlackAppToken = c.Secrets.SlackBotToken
			c.Secrets.SlackBotToken = ""
		}, []config.Problem{
			{"SLACK_APP_TOKEN", "must start with xapp-"},
			{"SLACK_BOT_TOKEN", "not set"},
		}},
		{"wildcard environment and command", func(c *config.Config) {
			c.Roles[0].Commands = []string{"*", "db.*", "incident.*"}
			c.Roles[0].Environments = []string{"*"}
		}, nil},
		{"a prefix without .* is no pattern", func(c *config.Config) { c.Roles[0].Commands = []string{"snapshot", "snapshot*"} },
			[]config.Problem{
				{"roles[0].commands[0]", `unknown command "snapshot"`},
				{"roles[0].commands[1]", `unknown command "snapshot*"`},
			}},
		{"secret rotation off", func(c *config.Config) { c.SecretRotation = nil }, nil},
		{"secret rotation by NAME, positive", func(c *config.Config) {
			c.SecretRotation = map[string]time.Duration{"API_KEY_SECRET": 24 * time.Hour, "jwt_secret": time.Hour, "DATABASE_PASSWORD": 0}
		}, []config.Problem{
			{"secret_rotation.DATABASE_PASSWORD", "must be a positive duration"},
			{"secret_rotation.jwt_secret", "not an upper-case variable NAME, like JWT_SECRET"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := load(t, "testdata/good.yaml", secrets)
			tt.change(c)
			if got := c.Validate(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Validate():\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// setEnv changes one environment of c in place.
func setEnv(c *config.Config, name string, change func(*config.Environment)) {
	e := c.Environments[name]
	change(&e)
	c.Environments[name] = e
}

func TestPermissionMatches(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"*", "deploy", true},
		{"*", "snapshot.create", true},
		{"deploy", "deploy", true},
		{"deploy", "rollback", false},
		{"snapshot.*", "snapshot.restore", true},
		{"snapshot.*", "snapshot", false},
		{"unlock.*", "unlock.force", true},
		{"unlock.*", "unlock", false},
		{"db.*", "dbx.size", false},
		{"snapshot", "snapshot.list", false},
	}
	for _, tt := range tests {
		if got := config.PermissionMatches(tt.pattern, tt.name); got != tt.want {
			t.Errorf("PermissionMatches(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
}

func TestKnownPermissionsIsConfigurable(t *testing.T) {
	saved := config.KnownPermissions
	t.Cleanup(func() { config.KnownPermissions = saved })

	c := load(t, "testdata/good.yaml", secrets)
	c.Roles[0].Commands = []string{"deploy", "launch.*"}
	config.KnownPermissions = []string{"deploy", "launch.rocket"}
	if got := c.Validate(); len(got) != 0 {
		t.Errorf("with launch.rocket known: Validate() = %q, want no problem", got)
	}
	config.KnownPermissions = []string{"deploy"}
	want := []config.Problem{{"roles[0].commands[1]", `unknown command "launch.*"`}}
	if got := c.Validate(); !reflect.DeepEqual(got, want) {
		t.Errorf("without launch.rocket: Validate() = %q, want %q", got, want)
	}
}
