// Package ops is the deploy domain of togather-chatops: environments and their
// blue/green slots, container and health state, status and drift, and (later)
// pre-flight checks and the deploy/rollback state machine. It knows nothing of
// Slack, Docker or SQL: it declares the small ports it needs and adapters in
// ops/docker, ops/caddy and ops/pg implement them.
package ops

import (
	"fmt"
	"strings"
	"time"
)

// Slot is one of the two blue/green slots of an environment.
type Slot string

// The two slots.
const (
	Blue  Slot = "blue"
	Green Slot = "green"
)

// Valid reports whether s names a known slot.
func (s Slot) Valid() bool { return s == Blue || s == Green }

// Other returns the opposite slot; an invalid slot has no opposite and
// returns itself.
func (s Slot) Other() Slot {
	switch s {
	case Blue:
		return Green
	case Green:
		return Blue
	}
	return s
}

// ParseSlot turns a name into a Slot.
func ParseSlot(name string) (Slot, error) {
	s := Slot(name)
	if !s.Valid() {
		return "", fmt.Errorf("unknown slot %q (want blue or green)", name)
	}
	return s, nil
}

// Slots lists the slots in display order.
var Slots = []Slot{Blue, Green}

// SlotSpec is how one slot of an environment is run and reached.
type SlotSpec struct {
	Container string // container name, e.g. togather-server-blue
	HostPort  int    // host port bound on 127.0.0.1, e.g. 8081
	HealthURL string // e.g. http://127.0.0.1:8081/health
}

// Environment is the plain description of one deploy target, built from
// configuration in cmd.
type Environment struct {
	Name        string
	Slots       map[Slot]SlotSpec
	Image       string // reference template with {version}, e.g. togather-server:{version}
	EnvFile     string // the app's env file on the bot's host
	DatabaseVar string // the variable in EnvFile that holds the app database URL
	// SecretVars are variables of EnvFile that hold secrets whatever their
	// names say (those the rotation policy names).
	SecretVars    []string
	Network       string
	RestartPolicy string
	ProxyURL      string // where the proxy serves the app, for verification
	Migrations    MigrationSource
	// ContainerEnv is set in every container of the app after EnvFile, with
	// ${NAME} filled in from EnvFile: e.g. the DATABASE_URL that reaches the
	// database from the container network, where EnvFile's is the host's.
	ContainerEnv []string
	Release      Release
	Production   bool // production rules apply (security checks, staging parity)
	Policy       Policy
}

// ImageRef is the image reference of version.
func (e Environment) ImageRef(version string) string {
	return strings.ReplaceAll(e.Image, "{version}", version)
}

// MigrationSource is where a version's migrations come from: a directory
// on the bot's host, or a path inside the version's image. Both empty means
// the environment has no migrations.
type MigrationSource struct {
	Dir       string
	ImagePath string
}

// Policy is how deploys to an environment are gated and watched.
type Policy struct {
	RequireApproval   bool
	Approvals         int
	AcceptDegraded    bool          // degraded passes the health gate
	HealthConsecutive int           // consecutive passing probes needed
	HealthTimeout     time.Duration // for the gate
	HealthInterval    time.Duration // between probes
	Bake              time.Duration // the previous slot stays warm this long
	Watch             time.Duration // health watched after the switch
	AutoRollback      bool          // roll back when the new slot fails during the watch
	EnforceWindow     bool          // outside the deploy window needs an override
	Lease             time.Duration // lock lease, renewed while an operation runs
}

// ContainerInfo is what an Engine reports about one container.
type ContainerInfo struct {
	Name         string
	ID           string
	Exists       bool   // false when no container of that name exists
	State        string // Docker state: created, running, restarting, exited, paused, dead
	Running      bool
	Image        string // the image reference the container was created from
	ImageID      string // content-addressable image id (sha256:...)
	Labels       map[string]string
	RestartCount int
	StartedAt    time.Time
	// Why it stopped, when it is not running: the last exit code, whether
	// the kernel killed it for memory, and the engine's error (e.g. an
	// entrypoint that does not exist).
	ExitCode      int
	OOMKilled     bool
	Error         string
	RestartPolicy string // no, always, unless-stopped, on-failure
}

// ContainerSpec is everything needed to create one slot container.
type ContainerSpec struct {
	Name  string
	Image string // the reference; what Inspect reports
	// ImageID, when set, is the content the container is created from, so
	// a tag re-pointed since it was approved cannot change what runs.
	ImageID       string
	Env           []string // KEY=VALUE, applied after EnvFile
	EnvFile       string   // path of a KEY=VALUE file read on the bot's host; empty for none
	HostPort      int      // bound on 127.0.0.1
	ContainerPort int      // defaults to 8080
	Labels        map[string]string
	RestartPolicy string // "no", "always", "unless-stopped", "on-failure"
	Network       string // empty for the engine's default
	// Cmd replaces the image's command (the arguments of its entrypoint);
	// Entrypoint, when set, replaces the entrypoint too.
	Cmd        []string
	Entrypoint []string
}

// OneOff is the outcome of a command run to completion in a container of
// its own (RunOnce).
type OneOff struct {
	ExitCode int
	Output   string // the last lines of stdout and stderr, interleaved
	TimedOut bool   // killed when its time was up
	Took     time.Duration
}

// ContainerStats is one sample of a running container's resource use.
type ContainerStats struct {
	CPUPercent float64 // of all host CPUs, 0–100
	MemPercent float64 // of the container's memory limit, 0–100
	MemUsage   uint64  // bytes, page cache excluded
	MemLimit   uint64  // bytes
}
