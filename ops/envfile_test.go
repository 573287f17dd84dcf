package ops_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/togather-foundation/togather-chatops/ops"
)

func TestParseEnvFile(t *testing.T) {
	data := strings.Join([]string{
		"# ⚠️  CHANGE_ME: set to your production domain",
		"",
		"export ENVIRONMENT=production",
		`  JWT_SECRET = "quoted value"  `,
		"ADMIN_PASSWORD='single # not a comment'",
		"EMPTY=",
		"MISMATCHED=\"open",
		"   # indented comment",
		"URL=postgres://u:p@h/db?sslmode=require&x=1",
		"ENVIRONMENT=staging\r",
	}, "\n")
	got, err := ops.ParseEnvFile([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	want := ops.EnvFile{
		Vars: []ops.EnvVar{
			{Key: "ENVIRONMENT", Value: "production", Line: 3},
			{Key: "JWT_SECRET", Value: "quoted value", Line: 4},
			{Key: "ADMIN_PASSWORD", Value: "single # not a comment", Line: 5},
			{Key: "EMPTY", Value: "", Line: 6},
			{Key: "MISMATCHED", Value: `"open`, Line: 7},
			{Key: "URL", Value: "postgres://u:p@h/db?sslmode=require&x=1", Line: 9},
			{Key: "ENVIRONMENT", Value: "staging", Line: 10},
		},
		Comments: []ops.EnvComment{
			{Text: " ⚠️  CHANGE_ME: set to your production domain", Line: 1},
			{Text: " indented comment", Line: 8},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseEnvFile:\n got %+v\nwant %+v", got, want)
	}
	if v, ok := got.Lookup("ENVIRONMENT"); !ok || v.Value != "staging" || v.Line != 10 {
		t.Errorf("Lookup(ENVIRONMENT) = %+v, %v; want the last assignment", v, ok)
	}
	if _, ok := got.Lookup("NOPE"); ok {
		t.Error("Lookup(NOPE) found something")
	}
}

func TestParseEnvFileErrorsNameTheLineNotTheContent(t *testing.T) {
	for _, line := range []string{"no equals sign s3cr3t", "=s3cr3t", "BAD KEY=s3cr3t", `"Q"=s3cr3t`} {
		_, err := ops.ParseEnvFile([]byte("A=1\n" + line + "\n"))
		if err == nil {
			t.Errorf("%q: no error", line)
			continue
		}
		if !strings.Contains(err.Error(), "line 2") || strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("%q: error %q should name line 2 and not the content", line, err)
		}
	}
}
