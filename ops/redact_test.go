package ops

import (
	"strings"
	"testing"
)

func TestRedactorPatterns(t *testing.T) {
	in := `DATABASE_URL=postgres://togather:s3cret-pw@db:5432/togather
JWT_SECRET=abcdefghijklmnopqrstuvwxyz123456
{"api_key": "k-123", "note": "keep me"}
Authorization: Bearer xoxb-1-2-3
password=hunter2&user=bob`
	out := Redactor{}.Redact(in)
	for _, secret := range []string{"s3cret-pw", "abcdefghijklmnop", "k-123", "xoxb-1-2-3", "hunter2"} {
		if strings.Contains(out, secret) {
			t.Errorf("%q survived redaction:\n%s", secret, out)
		}
	}
	for _, keep := range []string{"keep me", "user=bob", "postgres://togather:***@db:5432"} {
		if !strings.Contains(out, keep) {
			t.Errorf("redaction removed %q:\n%s", keep, out)
		}
	}
}

// TestRedactorValues: a known secret goes wherever it appears, with or
// without a name beside it; so do the passwords of known URLs and
// connection strings, escaped or not, while their servers still show.
func TestRedactorValues(t *testing.T) {
	r := NewRedactor("xoxb-bot-token-123", "postgres://app:p%40ss-w0rd@db/app", "host=db password='qu0ted pw' dbname=x", "short", "CHANGE_ME_LATER")
	r = r.With("pepper-567890")
	tests := map[string]string{
		"panic: connecting with xoxb-bot-token-123 failed":   "panic: connecting with *** failed",
		"auth p@ss-w0rd rejected; p%40ss-w0rd too":           "auth *** rejected; *** too",
		"login qu0ted pw refused":                            "login *** refused",
		"hashing with pepper-567890":                         "hashing with ***",
		"the short answer; CHANGE_ME_LATER is a placeholder": "the short answer; CHANGE_ME_LATER is a placeholder",
	}
	for in, want := range tests {
		if got := r.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEnvSecrets(t *testing.T) {
	f, err := ParseEnvFile([]byte("ENVIRONMENT=staging\nAPP_DB=postgres://a:b@c/d\nJWT_SECRET=jwt-value\nSIGNUP_PEPPER=pepper\nPORT=8080\n"))
	if err != nil {
		t.Fatal(err)
	}
	e := Environment{DatabaseVar: "APP_DB", SecretVars: []string{"SIGNUP_PEPPER"}}
	got := strings.Join(e.EnvSecrets(f), " ")
	if got != "postgres://a:b@c/d jwt-value pepper" {
		t.Errorf("EnvSecrets = %q, want the database URL, the JWT secret and the pepper", got)
	}
}
