package ops

import (
	"cmp"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// minSecretLen is the length under which a value is not redacted by value,
// since it would hide common words; the patterns still catch it in a URL or
// a KEY=value pair.
const minSecretLen = 6

// Redactor hides secrets in text bound for chat, logs and files: every
// secret value it knows, wherever it appears and whether or not a name is
// beside it, then what still looks like one (a URL's password, the value
// of a KEY=value or "key": "value" pair whose key names a secret), each
// replaced by ***. The zero Redactor knows no values.
type Redactor struct {
	values []string // longest first: a secret holding another goes whole
}

// NewRedactor returns a Redactor that knows values.
func NewRedactor(values ...string) Redactor { return Redactor{}.With(values...) }

// With returns a Redactor that knows values besides r's. Of a URL or a
// key=value connection string with a password, only the password is
// secret: the rest still says which server. Values shorter than
// minSecretLen and placeholders are no secrets.
func (r Redactor) With(values ...string) Redactor {
	known := slices.Clone(r.values)
	add := func(v string) {
		if len(v) >= minSecretLen && !hasPlaceholder(v) && !slices.Contains(known, v) {
			known = append(known, v)
		}
	}
	for _, v := range values {
		v = strings.TrimSpace(v)
		if m := urlPassword.FindStringSubmatch(v); m != nil {
			add(m[2])
			if pw, err := url.PathUnescape(m[2]); err == nil {
				add(pw)
			}
		} else if m := dsnPassword.FindStringSubmatch(v); m != nil {
			add(strings.Trim(m[2], "'"))
		} else {
			add(v)
		}
	}
	slices.SortFunc(known, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	return Redactor{values: known}
}

// Redact returns s with the secrets in it replaced by ***.
func (r Redactor) Redact(s string) string {
	for _, v := range r.values {
		s = strings.ReplaceAll(s, v, redacted)
	}
	s = urlPassword.ReplaceAllString(s, "${1}"+redacted+"@")
	return keyedSecret.ReplaceAllString(s, "${1}"+redacted)
}

// redacted stands in for a secret.
const redacted = "***"

// Patterns of what looks like a secret without being known: a URL's
// password, a key=value connection string's, and the value of a pair
// whose key names a secret.
var (
	urlPassword = regexp.MustCompile(`(://[^:/@\s]*:)([^@\s]+)@`)
	dsnPassword = regexp.MustCompile(`(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)
	keyedSecret = regexp.MustCompile(`(?i)((?:password|passwd|secret|token|api[_-]?key|jwt[_-]?secret|authorization)["']?\s*[:=]\s*["']?(?:bearer\s+)?)[^\s"',;&]+`)
)

// EnvSecrets returns the values of f's variables that are secrets: the
// database URL, those SecretVars names and those whose name looks like a
// secret's.
func (e Environment) EnvSecrets(f EnvFile) []string {
	var out []string
	for _, v := range f.Vars {
		if v.Key == e.DatabaseVar || slices.Contains(e.SecretVars, v.Key) || secretName(v.Key) {
			out = append(out, v.Value)
		}
	}
	return out
}

// secretName reports whether an environment variable's name says it holds
// a secret.
func secretName(key string) bool {
	upper := strings.ToUpper(key)
	for _, s := range []string{"SECRET", "PASSWORD", "PASSWD", "TOKEN", "KEY", "AUTH", "CREDENTIAL", "PRIVATE", "DATABASE_URL", "DSN"} {
		if strings.Contains(upper, s) {
			return true
		}
	}
	return false
}
