package config

import (
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/togather-foundation/togather-chatops/ops"
)

// Secrets are the values read from the environment, never from the file.
type Secrets struct {
	// SlackAppToken (SLACK_APP_TOKEN, xapp-…) opens the Socket Mode connection.
	SlackAppToken string
	// SlackBotToken (SLACK_BOT_TOKEN, xoxb-…) calls the Web API.
	SlackBotToken string
	// DatabaseURL (DATABASE_URL) is the bot's own PostgreSQL store.
	DatabaseURL string
	// AlertmanagerToken (ALERTMANAGER_TOKEN) is the bearer token the
	// Alertmanager webhook must present; optional.
	AlertmanagerToken string
	// PagingKeys are the routing keys of the paging targets, by target
	// name, read from each target's routing_key_env.
	PagingKeys map[string]string
}

// The environment variables holding the secrets.
const (
	EnvSlackAppToken     = "SLACK_APP_TOKEN"
	EnvSlackBotToken     = "SLACK_BOT_TOKEN"
	EnvDatabaseURL       = "DATABASE_URL"
	EnvAlertmanagerToken = "ALERTMANAGER_TOKEN"
)

// EnvSlackAPIURL overrides slack.api_url, so the same configuration can run
// against Slack, the fake, or a proxy.
const EnvSlackAPIURL = "SLACK_API_URL"

// LoadSecrets reads the secrets through getenv (os.Getenv in production),
// trimming surrounding white space, and applies the SLACK_API_URL override.
func (c *Config) LoadSecrets(getenv func(string) string) {
	get := func(name string) string { return strings.TrimSpace(getenv(name)) }
	if u := get(EnvSlackAPIURL); u != "" {
		c.Slack.APIURL = strings.TrimSuffix(u, "/") + "/"
	}
	c.Secrets = Secrets{
		SlackAppToken:     get(EnvSlackAppToken),
		SlackBotToken:     get(EnvSlackBotToken),
		DatabaseURL:       get(EnvDatabaseURL),
		AlertmanagerToken: get(EnvAlertmanagerToken),
	}
	for name, t := range c.Paging.Targets {
		if t.RoutingKeyEnv != "" {
			if c.Secrets.PagingKeys == nil {
				c.Secrets.PagingKeys = map[string]string{}
			}
			c.Secrets.PagingKeys[name] = get(t.RoutingKeyEnv)
		}
	}
}

// secretVar describes one secret for validation and printing.
type secretVar struct {
	name     string
	value    string
	prefix   string // the value must start with it; "" for none
	required bool
	redact   func(secretVar) string
}

func (s Secrets) vars() []secretVar {
	return []secretVar{
		{name: EnvSlackAppToken, value: s.SlackAppToken, prefix: "xapp-", required: true, redact: redactToken},
		{name: EnvSlackBotToken, value: s.SlackBotToken, prefix: "xoxb-", required: true, redact: redactToken},
		{name: EnvDatabaseURL, value: s.DatabaseURL, required: true, redact: redactDatabaseURL},
		{name: EnvAlertmanagerToken, value: s.AlertmanagerToken, redact: redactToken},
	}
}

// Values are the secret values, for a redactor (ops.Redactor) to hide
// wherever they appear.
func (s Secrets) Values() []string {
	var out []string
	for _, sv := range s.vars() {
		out = append(out, sv.value)
	}
	for _, name := range slices.Sorted(maps.Keys(s.PagingKeys)) {
		out = append(out, s.PagingKeys[name])
	}
	return out
}

func (s Secrets) validate(v *validator) {
	for _, sv := range s.vars() {
		switch {
		case sv.value == "":
			v.check(!sv.required, sv.name, "not set")
		case strings.Contains(sv.value, placeholder):
			v.add(sv.name, "still holds the "+placeholder+" placeholder")
		case !strings.HasPrefix(sv.value, sv.prefix):
			v.add(sv.name, "must start with %s", sv.prefix)
		case sv.name == EnvDatabaseURL:
			v.check(validDatabaseURL(sv.value), sv.name, "not a PostgreSQL URL (postgres://…) or key=value connection string")
		}
	}
}

// validDatabaseURL accepts what pgx accepts: a postgres:// or postgresql://
// URL, or a key=value connection string.
func validDatabaseURL(s string) bool {
	if !strings.Contains(s, "://") {
		return strings.Contains(s, "=")
	}
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql")
}

// redactToken shows the expected prefix (only if the value has it) and the
// length, never the value.
func redactToken(sv secretVar) string {
	if sv.value == "" {
		return "<not set>"
	}
	if sv.prefix != "" && strings.HasPrefix(sv.value, sv.prefix) {
		return fmt.Sprintf("<redacted (%s…, %d chars)>", sv.prefix, len(sv.value))
	}
	return fmt.Sprintf("<redacted (%d chars)>", len(sv.value))
}

// dsnPasswordRE finds the password of a key=value connection string.
var dsnPasswordRE = regexp.MustCompile(`(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)

// redactDatabaseURL shows the connection string with its password replaced
// by ***; a URL that does not parse is redacted whole.
func redactDatabaseURL(sv secretVar) string {
	switch {
	case sv.value == "":
		return "<not set>"
	case !strings.Contains(sv.value, "://"):
		return dsnPasswordRE.ReplaceAllString(sv.value, "${1}***")
	}
	u, err := url.Parse(sv.value)
	if err != nil {
		return redactToken(sv)
	}
	params := strings.Split(u.RawQuery, "&")
	for i, kv := range params {
		if k, _, _ := strings.Cut(kv, "="); strings.EqualFold(k, "password") {
			params[i] = k + "=***"
		}
	}
	u.RawQuery = strings.Join(params, "&")
	user := u.User
	u.User = nil
	rest := strings.TrimPrefix(u.String(), u.Scheme+"://")
	switch {
	case user == nil:
		return u.Scheme + "://" + rest
	case hasPassword(user):
		return u.Scheme + "://" + url.User(user.Username()).String() + ":***@" + rest
	default:
		return u.Scheme + "://" + user.String() + "@" + rest
	}
}

func hasPassword(u *url.Userinfo) bool {
	_, ok := u.Password()
	return ok
}

// Redacted returns the effective configuration as YAML, followed by a
// secrets section in which no secret value appears. In the configuration,
// URLs show their user but not their password (user:***@), and a value
// that is one of the secrets is hidden too.
func (c *Config) Redacted() string {
	var doc yaml.Node
	if err := doc.Encode(*c); err != nil {
		// Every field of Config is a plain type yaml.v3 encodes.
		panic(fmt.Sprintf("config: encode: %v", err))
	}
	redactScalars(&doc, ops.NewRedactor(c.Secrets.Values()...))
	secrets := &yaml.Node{Kind: yaml.MappingNode}
	for _, sv := range c.Secrets.vars() {
		secrets.Content = append(secrets.Content,
			&yaml.Node{Kind: yaml.ScalarNode, Value: sv.name},
			&yaml.Node{Kind: yaml.ScalarNode, Value: sv.redact(sv), Style: yaml.DoubleQuotedStyle})
	}
	for _, name := range slices.Sorted(maps.Keys(c.Secrets.PagingKeys)) {
		sv := secretVar{name: c.Paging.Targets[name].RoutingKeyEnv, value: c.Secrets.PagingKeys[name]}
		secrets.Content = append(secrets.Content,
			&yaml.Node{Kind: yaml.ScalarNode, Value: sv.name},
			&yaml.Node{Kind: yaml.ScalarNode, Value: redactToken(sv), Style: yaml.DoubleQuotedStyle})
	}
	doc.Content = append(doc.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: "secrets"}, secrets)

	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		panic(fmt.Sprintf("config: encode: %v", err))
	}
	return b.String()
}

// redactScalars redacts the value of every scalar under n.
func redactScalars(n *yaml.Node, r ops.Redactor) {
	if n.Kind == yaml.ScalarNode {
		n.Value = r.Redact(n.Value)
	}
	for _, child := range n.Content {
		redactScalars(child, r)
	}
}
