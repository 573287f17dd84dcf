package pg

import (
	"reflect"
	"strings"
	"testing"
)

func TestSanitizeReason(t *testing.T) {
	tests := []struct{ in, want string }{
		{"pre-deploy-production", "pre-deploy-production"},
		{"Pre deploy/Production!", "pre-deploy-production"},
		{"  manual__backup  ", "manual-backup"},
		{"v1.2.3 rollback", "v1-2-3-rollback"},
		{"ünïcode", "n-code"},
		{strings.Repeat("ab-", 40), strings.TrimSuffix(strings.Repeat("ab-", 22), "-")[:64]},
		{"", ""},
		{"!!!", ""},
	}
	for _, tt := range tests {
		got, err := sanitizeReason(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("sanitizeReason(%q) = %q, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("sanitizeReason(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestParseServer(t *testing.T) {
	tests := []struct {
		url     string
		want    server // url field ignored
		wantErr string
	}{
		{
			url:  "postgres://app:s3cret@db.internal:5433/togather?sslmode=require&pool_max_conns=10",
			want: server{host: "db.internal", port: "5433", user: "app", password: "s3cret", database: "togather", env: []string{"PGSSLMODE=require"}},
		},
		{
			url:  "postgresql://app@localhost/togather",
			want: server{host: "localhost", user: "app", database: "togather"},
		},
		{
			url:  "postgres:///togather?host=/var/run/postgresql&user=me&password=p%3Aw",
			want: server{host: "/var/run/postgresql", user: "me", password: "p:w", database: "togather"},
		},
		{url: "host=localhost dbname=x", wantErr: "must start with postgres://"},
		{url: "postgres://app:pw@localhost:5432/", wantErr: "names no database"},
		{url: "postgres://app:s3cret@local host/x", wantErr: "invalid character"},
	}
	for _, tt := range tests {
		got, err := parseServer(tt.url)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "s3cret") {
				t.Errorf("parseServer(%q) error %v, want one containing %q and no password", tt.url, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseServer(%q): %v", tt.url, err)
			continue
		}
		got.url = nil
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseServer(%q) = %+v, want %+v", tt.url, got, tt.want)
		}
	}
}

func TestWithDatabase(t *testing.T) {
	tests := []struct{ url, want string }{
		{"postgres://u:p@h:1/app?sslmode=disable", "postgres://u:p@h:1/other?sslmode=disable"},
		{"postgres://u@h/?dbname=app", "postgres://u@h/other?dbname=other"},
	}
	for _, tt := range tests {
		s, err := parseServer(tt.url)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.withDatabase("other"); got != tt.want {
			t.Errorf("withDatabase of %s = %s, want %s", tt.url, got, tt.want)
		}
	}
}

func TestScratchName(t *testing.T) {
	for _, db := range []string{"togather", strings.Repeat("x", 63)} {
		name := scratchName(db)
		if len(name) > 63 || !strings.Contains(name, "_verify_") || !strings.HasPrefix(name, db[:min(len(db), 40)]) {
			t.Errorf("scratchName(%q) = %q", db, name)
		}
		if scratchName(db) == name {
			t.Errorf("scratchName(%q) repeats itself", db)
		}
	}
}

func TestDefaultRetentionDays(t *testing.T) {
	for env, want := range map[string]int{"development": 1, "staging": 7, "production": 30, "": 7} {
		if got := DefaultRetentionDays(env); got != want {
			t.Errorf("DefaultRetentionDays(%q) = %d, want %d", env, got, want)
		}
	}
}
