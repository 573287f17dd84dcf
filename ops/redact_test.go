package ops

import (
	"strings"
	"testing"
)

func TestRedactSecrets(t *testing.T) {
	in := `DATABASE_URL=postgres://togather:s3cret-pw@db:5432/togather
JWT_SECRET=abcdefghijklmnopqrstuvwxyz123456
{"api_key": "k-123", "note": "keep me"}
Authorization: Bearer xoxb-1-2-3
password=hunter2&user=bob`
	out := RedactSecrets(in)
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
