package statefile_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/togather-foundation/togather-chatops/ops"
	"github.com/togather-foundation/togather-chatops/ops/statefile"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var t0 = time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)

// scriptCurrent is current_deployment of testdata/deploysh.json and
// testdata/locked.json.
var scriptCurrent = ops.Deployment{ID: "dep_18ebf513a8564e6f_432641bca89827826700fd09", Version: "1a2b3c4",
	GitCommit: "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d", DeployedAt: time.Date(2025, 3, 10, 11, 2, 3, 0, time.UTC),
	DeployedBy: "deploy@prod-1", ActiveSlot: ops.Blue, HealthStatus: "unknown", Status: "active"}

// botDeploy is a deployment as the bot records it.
func botDeploy() *ops.Deployment {
	return &ops.Deployment{ID: "dep-20250314-092653-abcd", Version: "5d6e7f8", GitCommit: "5d6e7f8",
		Image: "togather-server:5d6e7f8", DeployedAt: t0.Add(500 * time.Millisecond), DeployedBy: "U123",
		ActiveSlot: ops.Green, HealthStatus: "healthy", Status: "active"}
}

// setup copies testdata/input (nothing when input is empty) to a fresh
// directory as name, mode 0640, and returns its path.
func setup(t *testing.T, input, name string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if input == "" {
		return path
	}
	data, err := os.ReadFile(filepath.Join("testdata", input))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o640); err != nil {
		t.Fatal(err)
	}
	return path
}

// problems returns what deploy.sh's validate_state_file would reject in
// data (reference: togather-deploy.md §1.4).
func problems(t *testing.T, data []byte) []string {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("written file is not JSON: %v\n%s", err, data)
	}
	var out []string
	if env, _ := doc["environment"].(string); env != "development" && env != "staging" && env != "production" {
		out = append(out, "environment "+env)
	}
	lock, _ := doc["lock"].(map[string]any)
	locked, ok := lock["locked"].(bool)
	if !ok {
		out = append(out, "lock.locked not a boolean")
	}
	if locked {
		for _, key := range []string{"lock_id", "locked_by", "locked_at", "lock_expires_at", "deployment_id"} {
			if v, _ := lock[key].(string); v == "" {
				out = append(out, "lock."+key+" empty")
			}
		}
	}
	if cur, ok := doc["current_deployment"].(map[string]any); ok {
		for _, key := range []string{"id", "version", "git_commit", "deployed_at", "deployed_by"} {
			if v, _ := cur[key].(string); v == "" {
				out = append(out, "current_deployment."+key+" empty")
			}
		}
		if slot, _ := cur["active_slot"].(string); slot != "blue" && slot != "green" {
			out = append(out, "current_deployment.active_slot "+slot)
		}
		switch health, _ := cur["health_status"].(string); health {
		case "healthy", "degraded", "unhealthy", "unknown":
		default:
			out = append(out, "current_deployment.health_status "+health)
		}
	}
	return out
}

func TestRead(t *testing.T) {
	goCLI := ops.Deployment{Version: "9f8e7d6", GitCommit: "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432",
		Image: "togather-server:9f8e7d6", DeployedAt: time.Date(2025, 3, 12, 8, 0, 0, 123456789, time.UTC),
		DeployedBy: "ops@example.org", ActiveSlot: ops.Green}
	tests := []struct {
		input string
		want  ops.DeploymentState
	}{
		{"", ops.DeploymentState{Environment: "production"}},
		{"deploysh.json", ops.DeploymentState{Environment: "production", Current: &scriptCurrent}},
		{"locked.json", ops.DeploymentState{Environment: "production", Current: &scriptCurrent, Locked: true, LockedBy: "deploy@prod-1"}},
		{"first-run-defect.json", ops.DeploymentState{Environment: "production"}},
		{"go-cli.json", ops.DeploymentState{Environment: "production", Current: &goCLI}},
	}
	for _, tt := range tests {
		t.Run(tt.input, func(t *testing.T) {
			got, err := statefile.New(setup(t, tt.input, "deployment-state.json"), "production").Read(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Read =\n %s\nwant\n %s", dump(got), dump(tt.want))
			}
		})
	}
}

func TestReadErrors(t *testing.T) {
	for _, input := range []string{"malformed.json", "staging.json", "bad-time.json"} {
		t.Run(input, func(t *testing.T) {
			path := setup(t, input, "deployment-state.json")
			_, err := statefile.New(path, "production").Read(t.Context())
			if err == nil || !strings.Contains(err.Error(), path) {
				t.Errorf("Read error = %v, want one naming %s", err, path)
			}
		})
	}
}

func TestWrite(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		env     string
		edit    func(*ops.DeploymentState)
		newLock bool // the bot writes a lock of its own
	}{
		{"first deploy", "", "production", func(s *ops.DeploymentState) { s.Current = botDeploy() }, false},
		{"deploy after deploysh", "deploysh.json", "production", func(s *ops.DeploymentState) {
			s.Previous, s.Current = s.Current, botDeploy()
		}, false},
		{"first-run defect", "first-run-defect.json", "production", func(s *ops.DeploymentState) { s.Current = botDeploy() }, false},
		{"deploy after the go cli", "go-cli.json", "production", func(s *ops.DeploymentState) {
			s.Previous, s.Current = s.Current, botDeploy()
		}, false},
		{"script lock kept", "locked.json", "production", func(s *ops.DeploymentState) { s.Current.HealthStatus = "healthy" }, false},
		{"unlock", "locked.json", "production", func(s *ops.DeploymentState) { s.Locked = false }, false},
		{"bot lock", "deploysh.json", "production", func(s *ops.DeploymentState) { s.Locked, s.LockedBy = true, "U123" }, true},
		{"lock changes hands", "locked.json", "production", func(s *ops.DeploymentState) { s.LockedBy = "U123" }, true},
		{"health defaults to unknown", "", "production", func(s *ops.DeploymentState) {
			s.Current = botDeploy()
			s.Current.HealthStatus = ""
		}, false},
		{"other environment name", "", "demo", func(s *ops.DeploymentState) { s.Current = botDeploy() }, false},
	}
	// The ids of a lock the bot writes end in random digits.
	randomPart := regexp.MustCompile(`("(?:lock_id|deployment_id)": "(?:lock|dep)_[0-9a-f]{16})_[0-9a-f]{24}"`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := setup(t, tt.input, "deployment-state.json")
			f := statefile.New(path, tt.env)
			f.Now = func() time.Time { return t0 }
			s, err := f.Read(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			tt.edit(&s)
			if err := f.Write(t.Context(), s); err != nil {
				t.Fatal(err)
			}

			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var wantProblems []string
			if tt.env == "demo" {
				wantProblems = []string{"environment demo"} // written anyway
			}
			if got := problems(t, data); !slices.Equal(got, wantProblems) {
				t.Errorf("validate_state_file would reject: %q\n%s", got, data)
			}
			golden := filepath.Join("testdata", strings.ReplaceAll(tt.name, " ", "-")+".golden.json")
			if tt.newLock {
				data = randomPart.ReplaceAll(data, []byte(`${1}_RANDOM"`))
			}
			checkGolden(t, golden, data)

			wantMode := fs.FileMode(0o600)
			if tt.input != "" {
				wantMode = 0o640
			}
			if info, err := os.Stat(path); err != nil || info.Mode().Perm() != wantMode {
				t.Errorf("mode = %v (%v), want %v", info.Mode().Perm(), err, wantMode)
			}

			// What was written reads back, to the second.
			got, err := f.Read(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			want := s
			for _, d := range []**ops.Deployment{&want.Current, &want.Previous} {
				if *d != nil {
					c := **d
					c.DeployedAt = c.DeployedAt.Truncate(time.Second)
					c.HealthStatus = cmp.Or(c.HealthStatus, "unknown")
					*d = &c
				}
			}
			if !want.Locked {
				want.LockedBy = ""
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("read back =\n %s\nwant\n %s", dump(got), dump(want))
			}
		})
	}
}

func TestWriteKeepsUnknownKeys(t *testing.T) {
	path := setup(t, "go-cli.json", "deployment-state.json")
	f := statefile.New(path, "production")
	if err := f.Write(t.Context(), ops.DeploymentState{Current: botDeploy()}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if got := string(doc["deployment_history"]); got != "null" {
		t.Errorf("deployment_history = %s, want it kept as null", got)
	}
	if len(doc) != 5 {
		t.Errorf("keys = %d, want the 4 the bot owns and deployment_history:\n%s", len(doc), data)
	}
}

func TestWriteFailureKeepsOldFile(t *testing.T) {
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	with := func(edit func(*ops.Deployment)) *ops.Deployment {
		d := botDeploy()
		edit(d)
		return d
	}
	tests := []struct {
		name  string
		input string
		file  string // file name; the default is deployment-state.json
		ctx   context.Context
		state ops.DeploymentState
	}{
		{name: "malformed file", input: "malformed.json", state: ops.DeploymentState{Current: botDeploy()}},
		{name: "file of another environment", input: "staging.json", state: ops.DeploymentState{Current: botDeploy()}},
		{name: "state of another environment", input: "deploysh.json", state: ops.DeploymentState{Environment: "staging"}},
		{name: "current without id", input: "deploysh.json", state: ops.DeploymentState{Current: with(func(d *ops.Deployment) { d.ID = "" })}},
		{name: "current without time", input: "deploysh.json", state: ops.DeploymentState{Current: with(func(d *ops.Deployment) { d.DeployedAt = time.Time{} })}},
		{name: "current on no slot", input: "deploysh.json", state: ops.DeploymentState{Current: with(func(d *ops.Deployment) { d.ActiveSlot = "" })}},
		{name: "current with bad health", input: "deploysh.json", state: ops.DeploymentState{Current: with(func(d *ops.Deployment) { d.HealthStatus = "fine" })}},
		{name: "locked by nobody", input: "deploysh.json", state: ops.DeploymentState{Locked: true}},
		{name: "cancelled", input: "deploysh.json", ctx: cancelled, state: ops.DeploymentState{Current: botDeploy()}},
		// Running as root ignores directory permissions; a name at the
		// limit makes creating the temporary file fail for anyone.
		{name: "temporary file cannot be created", input: "deploysh.json", file: strings.Repeat("s", 250),
			state: ops.DeploymentState{Current: botDeploy()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := setup(t, tt.input, cmp.Or(tt.file, "deployment-state.json"))
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := statefile.New(path, "production").Write(cmp.Or(tt.ctx, t.Context()), tt.state); err == nil {
				t.Fatal("Write: got nil error")
			}
			after, err := os.ReadFile(path)
			if err != nil || !bytes.Equal(after, before) {
				t.Errorf("the old file changed (%v):\n%s", err, after)
			}
			entries, err := os.ReadDir(filepath.Dir(path))
			if err != nil || len(entries) != 1 {
				t.Errorf("directory holds %v (%v), want only the state file", entries, err)
			}
		})
	}
}

func TestWriteMissingDirectory(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "missing", "deployment-state.json")
	if err := statefile.New(path, "production").Write(t.Context(), ops.DeploymentState{Current: botDeploy()}); err == nil {
		t.Fatal("Write into a missing directory: got nil error")
	}
}

// checkGolden compares got with the golden file, or rewrites it under
// -update.
func checkGolden(t *testing.T, golden string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("written file differs from %s:\n got %s\nwant %s", golden, got, want)
	}
}

// dump renders a state for a failure message.
func dump(s ops.DeploymentState) string {
	data, _ := json.Marshal(struct {
		ops.DeploymentState
		Locked   bool
		LockedBy string
	}{s, s.Locked, s.LockedBy})
	return string(data)
}
