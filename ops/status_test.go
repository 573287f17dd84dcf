package ops_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/togather-foundation/togather-chatops/ops"
)

type fakeProxy struct {
	slot ops.Slot
	port int
	err  error
}

func (f fakeProxy) LiveSlot(context.Context) (ops.Slot, int, error) { return f.slot, f.port, f.err }

type fakeEngine map[string]ops.ContainerInfo

func (f fakeEngine) Inspect(_ context.Context, name string) (ops.ContainerInfo, error) {
	return f[name], nil
}

type fakeState ops.Slot

func (f fakeState) Read(context.Context) (ops.DeploymentState, error) {
	return ops.DeploymentState{Current: &ops.Deployment{ActiveSlot: ops.Slot(f)}}, nil
}

func (fakeState) Write(context.Context, ops.DeploymentState) error { return nil }

type fakeProber map[string]ops.Health

func (f fakeProber) Probe(_ context.Context, url string) ops.Health { return f[url] }

var testEnv = ops.Environment{Name: "staging", Slots: map[ops.Slot]ops.SlotSpec{
	ops.Blue:  {Container: "b", HostPort: 8081, HealthURL: "http://b/health"},
	ops.Green: {Container: "g", HostPort: 8082, HealthURL: "http://g/health"},
}}

func TestStatus(t *testing.T) {
	running := ops.ContainerInfo{Exists: true, Running: true, State: "running"}
	tests := []struct {
		name      string
		proxy     fakeProxy
		state     ops.StateFile
		engine    fakeEngine
		prober    fakeProber
		wantLive  ops.Slot
		wantDrift []string
	}{
		{
			name:     "consistent",
			proxy:    fakeProxy{slot: ops.Blue, port: 8081},
			engine:   fakeEngine{"b": running},
			prober:   fakeProber{"http://b/health": {Status: ops.Healthy, Slot: "blue"}, "http://g/health": {Status: ops.Unreachable}},
			wantLive: ops.Blue,
		},
		{
			name:      "live slot down and answering as the other slot",
			proxy:     fakeProxy{slot: ops.Green, port: 8082},
			engine:    fakeEngine{"b": running, "g": {Exists: true, State: "exited"}},
			prober:    fakeProber{"http://b/health": {Status: ops.Healthy, Slot: "blue"}, "http://g/health": {Status: ops.Unhealthy, Slot: "blue"}},
			wantLive:  ops.Green,
			wantDrift: []string{"no running container (exited)", "live slot green is unhealthy", `green port answers as slot "blue"`},
		},
		{
			name:      "proxy unreadable",
			proxy:     fakeProxy{err: errors.New("markers missing")},
			engine:    fakeEngine{"b": running},
			prober:    fakeProber{"http://b/health": {Status: ops.Healthy}},
			wantDrift: []string{"could not be read: markers missing"},
		},
		{
			name:      "state file disagrees with the proxy",
			proxy:     fakeProxy{slot: ops.Blue, port: 8081},
			state:     fakeState(ops.Green),
			engine:    fakeEngine{"b": running},
			prober:    fakeProber{"http://b/health": {Status: ops.Healthy}},
			wantLive:  ops.Blue,
			wantDrift: []string{"deployment-state.json says green is live but the proxy serves blue"},
		},
		{
			name:      "port drift",
			proxy:     fakeProxy{slot: ops.Blue, port: 9999},
			engine:    fakeEngine{"b": running},
			prober:    fakeProber{"http://b/health": {Status: ops.Healthy}},
			wantLive:  ops.Blue,
			wantDrift: []string{"points at port 9999 but the blue slot listens on 8081"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			svc := ops.NewService(tc.prober, ops.Target{Env: testEnv, Proxy: tc.proxy, Engine: tc.engine, State: tc.state})
			st, err := svc.Status(context.Background(), "staging")
			if err != nil {
				t.Fatal(err)
			}
			if st.Live != tc.wantLive {
				t.Errorf("live = %q, want %q", st.Live, tc.wantLive)
			}
			all := strings.Join(st.Drift, "\n")
			if len(st.Drift) != len(tc.wantDrift) {
				t.Errorf("drift = %q, want %d entries", st.Drift, len(tc.wantDrift))
			}
			for _, w := range tc.wantDrift {
				if !strings.Contains(all, w) {
					t.Errorf("drift %q does not mention %q", all, w)
				}
			}
		})
	}
	if _, err := ops.NewService(fakeProber{}).Status(context.Background(), "nope"); !errors.Is(err, ops.ErrUnknownEnvironment) {
		t.Errorf("unknown env: err = %v", err)
	}
}
