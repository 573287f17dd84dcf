package ops

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// memState is a StateFile in memory.
type memState struct{ s DeploymentState }

func (m *memState) Read(context.Context) (DeploymentState, error) { return m.s, nil }
func (m *memState) Write(_ context.Context, s DeploymentState) error {
	m.s = s
	return nil
}

// TestWriteStateRecordsTheSlotsGitCommit checks that deployment-state.json
// gets the commit the new slot's /version reports, not the version string,
// and the version only when the server reports no commit.
func TestWriteStateRecordsTheSlotsGitCommit(t *testing.T) {
	const full = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d"
	tests := []struct{ name, body, want string }{
		{"reported", `{"version":"1a2b3c4","git_commit":"` + full + `","build_date":"2026-12-01T00:00:00Z"}`, full},
		{"unknown", `{"version":"1a2b3c4","git_commit":"unknown"}`, "1a2b3c4"},
		{"not JSON", `not found`, "1a2b3c4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/api/version" {
					http.NotFound(w, r)
					return
				}
				_, _ = w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			state := &memState{}
			dp := NewDeployer(DeployerDeps{
				Env:   Environment{Name: "staging", Slots: map[Slot]SlotSpec{Green: {HealthURL: srv.URL + "/api/health?full=1"}}},
				State: state,
				Now:   func() time.Time { return time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC) },
			})
			r := &run{dp: dp, op: Operation{ID: "dep_1", Version: "1a2b3c4", ToSlot: Green, Requester: "U1"}}
			dp.writeState(context.Background(), r, "active")
			cur := state.s.Current
			if cur == nil || cur.GitCommit != tt.want || cur.Version != "1a2b3c4" {
				t.Fatalf("current deployment = %+v, want git_commit %s", cur, tt.want)
			}
		})
	}
}
