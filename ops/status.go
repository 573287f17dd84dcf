package ops

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// ErrUnknownEnvironment is returned for an environment the service does not
// manage.
var ErrUnknownEnvironment = errors.New("unknown environment")

// ContainerInspector reports the state of a container by name.
type ContainerInspector interface {
	Inspect(ctx context.Context, name string) (ContainerInfo, error)
}

// LiveSlotReader tells which slot the proxy sends traffic to, and on which
// port, as the proxy configuration says.
type LiveSlotReader interface {
	LiveSlot(ctx context.Context) (Slot, int, error)
}

// RunningSlotReader tells which slot the proxy serves as its running
// configuration says, which differs from its saved one after a switch
// interrupted between loading and saving.
type RunningSlotReader interface {
	RunningSlot(ctx context.Context) (Slot, int, error)
}

// Prober reads a slot's /health. It reports every outcome in the Health
// value and never fails.
type Prober interface {
	Probe(ctx context.Context, url string) Health
}

// Target is one managed environment with the adapters that reach it.
type Target struct {
	Env   Environment
	Proxy LiveSlotReader
	// Running reads what the proxy serves, which wins over Proxy (its
	// saved configuration) when they differ; nil takes Proxy's word.
	Running RunningSlotReader
	Engine  ContainerInspector
	State   StateFile // nil when the environment keeps no deployment-state.json
	// Prober reads health on the environment's host; nil uses the
	// Service's.
	Prober Prober
}

// Service runs operations on the managed environments.
type Service struct {
	targets map[string]Target
	prober  Prober
}

// NewService returns a Service over the given targets.
func NewService(prober Prober, targets ...Target) *Service {
	s := &Service{targets: make(map[string]Target, len(targets)), prober: prober}
	for _, t := range targets {
		s.targets[t.Env.Name] = t
	}
	return s
}

func (s *Service) target(env string) (Target, error) {
	t, ok := s.targets[env]
	if !ok {
		return Target{}, fmt.Errorf("%w %q", ErrUnknownEnvironment, env)
	}
	return t, nil
}

// SlotStatus is what is known about one slot.
type SlotStatus struct {
	Slot         Slot
	Spec         SlotSpec
	Live         bool // the proxy sends traffic here
	Container    ContainerInfo
	ContainerErr string // the engine could not be asked
	Health       Health
}

// EnvStatus is the observed state of one environment.
type EnvStatus struct {
	Env      string
	Live     Slot   // empty when the proxy configuration could not be read
	LivePort int    // the port the proxy points at
	ProxyErr string // why Live is unknown
	Slots    []SlotStatus
	// FileSlot is the slot the proxy's saved configuration names when it
	// is not the one the proxy runs; empty when they agree.
	FileSlot Slot
	// StateSlot is the live slot deployment-state.json records; empty when
	// there is no state file or it records none.
	StateSlot Slot
	Drift     []string // disagreements between the proxy, the state file, the containers and health
}

// Status reads the environment's proxy, containers and health in parallel
// and reports what disagrees. It fails only for an unknown environment: every
// other problem is part of the status.
func (s *Service) Status(ctx context.Context, env string) (EnvStatus, error) {
	t, err := s.target(env)
	if err != nil {
		return EnvStatus{}, err
	}
	st := EnvStatus{Env: env, Slots: make([]SlotStatus, len(Slots))}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		st.Live, st.LivePort, st.FileSlot, st.ProxyErr = proxyStatus(ctx, t)
	}()
	if t.State != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s, err := t.State.Read(ctx); err == nil && s.Current != nil {
				st.StateSlot = s.Current.ActiveSlot
			}
		}()
	}
	for i, slot := range Slots {
		spec := t.Env.Slots[slot]
		st.Slots[i] = SlotStatus{Slot: slot, Spec: spec}
		ss := &st.Slots[i]
		wg.Add(2)
		go func() {
			defer wg.Done()
			info, err := t.Engine.Inspect(ctx, spec.Container)
			if err != nil {
				ss.ContainerErr = err.Error()
				return
			}
			ss.Container = info
		}()
		go func() {
			defer wg.Done()
			prober := s.prober
			if t.Prober != nil {
				prober = t.Prober
			}
			ss.Health = prober.Probe(ctx, spec.HealthURL)
		}()
	}
	wg.Wait()
	for i := range st.Slots {
		st.Slots[i].Live = st.Slots[i].Slot == st.Live
	}
	st.Drift = drift(st)
	return st, nil
}

// proxyStatus reads the slot the proxy serves: the running configuration's,
// with the saved one's as file when it differs.
func proxyStatus(ctx context.Context, t Target) (live Slot, port int, file Slot, problem string) {
	saved, savedPort, err := t.Proxy.LiveSlot(ctx)
	if t.Running == nil {
		if err != nil {
			return "", 0, "", err.Error()
		}
		return saved, savedPort, "", ""
	}
	live, port, rerr := t.Running.RunningSlot(ctx)
	switch {
	case rerr != nil && err != nil:
		return "", 0, "", fmt.Sprintf("%v; and what it runs cannot be read: %v", err, rerr)
	case rerr != nil:
		return saved, savedPort, "", fmt.Sprintf("what the proxy runs cannot be read (%v); its saved configuration says %s", rerr, saved)
	case err == nil && saved != live:
		return live, port, saved, ""
	}
	return live, port, "", ""
}

// drift lists what an operator should look at: the live slot not running or
// not serving, a health answer from the wrong slot, or a proxy pointing at a
// port that is not the live slot's.
func drift(st EnvStatus) []string {
	var out []string
	if st.ProxyErr != "" {
		out = append(out, "the proxy configuration could not be read: "+st.ProxyErr)
	}
	if st.FileSlot != "" {
		out = append(out, fmt.Sprintf("the Caddyfile says %s but the proxy serves %s (a switch interrupted between loading and saving, or a load by hand): recovering the interrupted operation (reconcile) saves what the proxy runs", st.FileSlot, st.Live))
	}
	if st.StateSlot != "" && st.Live != "" && st.StateSlot != st.Live {
		out = append(out, fmt.Sprintf("deployment-state.json says %s is live but the proxy serves %s: Togather's scripts would recreate the live container; the next deploy or rollback rewrites the file", st.StateSlot, st.Live))
	}
	for _, ss := range st.Slots {
		if ss.Live {
			if ss.Spec.HostPort != 0 && st.LivePort != ss.Spec.HostPort {
				out = append(out, fmt.Sprintf("the proxy points at port %d but the %s slot listens on %d", st.LivePort, ss.Slot, ss.Spec.HostPort))
			}
			if ss.ContainerErr == "" && !ss.Container.Running {
				out = append(out, fmt.Sprintf("the live slot %s has no running container (%s)", ss.Slot, containerState(ss.Container)))
			}
			if !ss.Health.Status.Serving() {
				out = append(out, fmt.Sprintf("the live slot %s is %s", ss.Slot, ss.Health.Status))
			}
		}
		if ss.Health.Slot != "" && ss.Health.Slot != string(ss.Slot) {
			out = append(out, fmt.Sprintf("the %s port answers as slot %q", ss.Slot, ss.Health.Slot))
		}
	}
	return out
}

func containerState(c ContainerInfo) string {
	if !c.Exists {
		return "no such container"
	}
	return c.State
}
