package localenv_test

import (
	"testing"

	"github.com/togather-foundation/togather-chatops/internal/localenv"
)

func TestWithDatabase(t *testing.T) {
	tests := []struct {
		dsn, db, want string
	}{
		{
			"postgres://postgres:postgres@127.0.0.1:5432/postgres?sslmode=disable", "t_x",
			"postgres://postgres:postgres@127.0.0.1:5432/t_x?sslmode=disable",
		},
		{"postgresql://u@h", "app", "postgresql://u@h/app"},
		{"postgres://u:p%40ss@h/old%20db", "new", "postgres://u:p%40ss@h/new"},
		{"host=h user=u dbname=old", "new", "host=h user=u dbname=old dbname='new'"},
		{"host=h", `it's\`, `host=h dbname='it\'s\\'`},
	}
	for _, tt := range tests {
		if got := localenv.WithDatabase(tt.dsn, tt.db); got != tt.want {
			t.Errorf("WithDatabase(%q, %q) = %q, want %q", tt.dsn, tt.db, got, tt.want)
		}
	}
}
