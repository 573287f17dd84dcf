package ops

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Release is what a deploy runs besides the golang-migrate migrations:
// commands of the new image, each in a one-off container with the
// environment's env file, container environment and network.
type Release struct {
	// BeforeStart runs after the migrations, before the new slot starts
	// (e.g. the migrations of another tool the server needs to start). A
	// failure fails the deploy: nothing was switched.
	BeforeStart []ReleaseCommand
	// AfterSwitch runs once traffic is verified on the new slot (e.g. a
	// sync). A failure is reported and leaves the deploy in place.
	AfterSwitch []ReleaseCommand
}

// ReleaseCommand is one command of a release.
type ReleaseCommand struct {
	Name       string   // shown in the thread, e.g. "river migrations"
	Command    []string // the arguments of the image's entrypoint, e.g. ["migrate-river"]
	Entrypoint []string // replaces the image's entrypoint when set
	Timeout    time.Duration
}

// DefaultReleaseTimeout bounds a release command with no timeout of its
// own.
const DefaultReleaseTimeout = 5 * time.Minute

// Output kept in the journal (a release command's, a failed container's
// logs) is bounded: the last lines say why.
const (
	outputLines = 30
	outputBytes = 2500
)

// runRelease runs cmds in order, noting each one's output in the journal,
// and stops at the first that fails. It returns a summary of what ran.
func (dp *Deployer) runRelease(ctx context.Context, r *run, phase string, cmds []ReleaseCommand) (string, error) {
	var ran []string
	for _, c := range cmds {
		timeout := c.Timeout
		if timeout <= 0 {
			timeout = DefaultReleaseTimeout
		}
		res, err := dp.d.Engine.RunOnce(ctx, dp.containerSpec(r, ContainerSpec{
			Name: dp.releaseContainer(r.op), Cmd: c.Command, Entrypoint: c.Entrypoint,
		}, map[string]string{labelRelease: c.Name}), timeout)
		if err != nil {
			return strings.Join(ran, "; "), fmt.Errorf("%s command %q could not run: %w", phase, c.Name, err)
		}
		outcome := fmt.Sprintf("exit %d in %s", res.ExitCode, res.Took.Round(100*time.Millisecond))
		if res.TimedOut {
			outcome = fmt.Sprintf("killed after %s", timeout)
		}
		r.note(ctx, fmt.Sprintf("%s command %q (%s): %s%s", phase, c.Name, strings.Join(append(c.Entrypoint, c.Command...), " "), outcome, quoteOutput(res.Output)))
		if res.TimedOut || res.ExitCode != 0 {
			return strings.Join(ran, "; "), fmt.Errorf("%s command %q %s (its output is in the journal)", phase, c.Name, outcome)
		}
		ran = append(ran, fmt.Sprintf("%s ok (%s)", c.Name, res.Took.Round(100*time.Millisecond)))
	}
	return strings.Join(ran, "; "), nil
}

// Labels of the containers a deploy creates, besides the slot's.
const (
	labelOperation = "com.togather.chatops.operation" // the operation's id
	labelRelease   = "com.togather.chatops.release"   // the release command's name, on its one-off container
)

// releaseContainer names the one-off container of op's release commands.
func (dp *Deployer) releaseContainer(op Operation) string {
	return dp.d.Env.Slots[op.ToSlot].Container + "-release"
}

// containerSpec completes spec as a container of the operation's image,
// by its content id once resolved: its env file, container environment,
// slot, network and labels.
func (dp *Deployer) containerSpec(r *run, spec ContainerSpec, labels map[string]string) ContainerSpec {
	e := dp.d.Env
	slot := string(r.op.ToSlot)
	spec.Image, spec.ImageID = r.op.Image, r.op.ImageID
	spec.EnvFile = e.EnvFile
	spec.Env = append(append([]string{}, e.ContainerEnv...), "SLOT="+slot, "DEPLOYMENT_SLOT="+slot)
	spec.Network = e.Network
	spec.Labels = map[string]string{
		"com.togather.deployment.slot":     slot,
		"com.togather.deployment.strategy": "blue-green",
		labelOperation:                     r.op.ID,
	}
	for k, v := range labels {
		spec.Labels[k] = v
	}
	return spec
}

// quoteOutput formats the last lines of a command's output for the
// journal, each line indented under a bar so it reads as output in a
// terminal and in a chat's code block alike, or nothing when there is
// none. Secrets are redacted; what is left out is cut at whole lines.
func quoteOutput(output string) string {
	output = strings.TrimRight(Redactor{}.Redact(output), "\n")
	if strings.TrimSpace(output) == "" {
		return ""
	}
	lines := strings.Split(output, "\n")
	kept, size := 0, 0
	for kept < len(lines) && kept < outputLines && size+len(lines[len(lines)-1-kept]) < outputBytes {
		size += len(lines[len(lines)-1-kept]) + 1
		kept++
	}
	kept = max(kept, 1) // the last line, however long
	var b strings.Builder
	if left := len(lines) - kept; left > 0 {
		fmt.Fprintf(&b, "\n%s… (%d earlier lines)", outputIndent, left)
	}
	for _, l := range lines[len(lines)-kept:] {
		b.WriteString("\n" + outputIndent + l)
	}
	return b.String()
}

// outputIndent starts each quoted line of output.
const outputIndent = "  | "

// describeContainer says why a container is not serving, from the engine's
// state: crash-looping, exited with a code, killed for memory, missing. It
// is empty for a container that runs without restarts.
func describeContainer(c ContainerInfo) string {
	switch {
	case !c.Exists:
		return c.Name + " does not exist"
	case c.OOMKilled:
		return fmt.Sprintf("%s was killed for running out of memory (exit code %d, restarted %d times)", c.Name, c.ExitCode, c.RestartCount)
	case c.State == "restarting" || (c.RestartCount > 0 && !c.Running):
		return fmt.Sprintf("%s is crash-looping: restarted %d times, last exit code %d", c.Name, c.RestartCount, c.ExitCode)
	case c.RestartCount > 0:
		return fmt.Sprintf("%s runs but has restarted %d times (last exit code %d)", c.Name, c.RestartCount, c.ExitCode)
	case !c.Running:
		s := fmt.Sprintf("%s exited with code %d", c.Name, c.ExitCode)
		if c.State != "exited" {
			s = fmt.Sprintf("%s is %s (exit code %d)", c.Name, c.State, c.ExitCode)
		}
		if c.Error != "" {
			s += ": " + c.Error
		}
		return s
	}
	return ""
}

// crashLoopRestarts is how many restarts make a starting container a
// crash loop the health gate stops waiting for.
const crashLoopRestarts = 3

// givenUp reports whether a starting container will not come up by itself:
// it exited and nothing restarts it, or it keeps crashing.
func givenUp(c ContainerInfo) bool {
	if !c.Exists || c.OOMKilled {
		return true
	}
	if c.Running {
		return c.RestartCount >= crashLoopRestarts
	}
	restarts := c.RestartPolicy == "always" || c.RestartPolicy == "unless-stopped" || c.RestartPolicy == "on-failure"
	return !restarts || c.RestartCount >= crashLoopRestarts
}
