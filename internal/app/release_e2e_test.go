package app_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/togather-foundation/togather-chatops/internal/apptest"
	"github.com/togather-foundation/togather-chatops/internal/slackfake"
	"github.com/togather-foundation/togather-chatops/internal/testenv"
	"github.com/togather-foundation/togather-chatops/ops"
)

// shown is what a user was shown of one deploy.
type shown struct {
	ok     bool   // the deploy reported its release live (exit code 0 or 3, or an outcome that is done)
	exit   int    // the terminal's exit code; -1 from chat, which has none
	report string // the pre-flight report the deploy was asked with
	all    string // everything: the report, the progress and the outcome
	code   string // what of all is shown monospaced, as output is
}

// releaseStory is the life of an environment like the real server's, told
// once from the terminal and once from chat: its releases run River's
// migrations before they start and a sync after the switch, and its slots
// restart always. The host starts empty; a release that crash-loops comes
// next, then one whose sync fails. Each step starts from where the last one
// left the environment.
var releaseStory = []struct {
	name    string
	version string
	before  func(t *testing.T, e *apptest.DeployEnv)
	ok      bool
	exit    int      // the terminal's: 0 done, 1 failed, 3 live but an after-switch command failed
	report  []string // in the pre-flight report
	want    []string // in what the user was shown; {green} is green's container
	said    []string // what the terminal says besides want
	output  []string // shown monospaced: the lines of a command's or a container's output
	serving ops.Slot // then serves, running serves
	serves  string
}{
	{
		name: "first deploy onto an empty host", version: apptest.V1, ok: true,
		report: []string{"first deploy"},
		want: []string{
			"first deploy: no container in either slot, so blue (the slot the proxy names) gets image",
			`before-start command "river" (migrate-river): exit 0`, `after-switch command "sync" (sync): exit 0`,
			"blue serves v1.0.0: the first deploy of staging, so there is no previous slot to roll back to",
		},
		output:  []string{"river: applied migrations", `"sources_found":3`},
		serving: ops.Blue, serves: apptest.V1,
	},
	{
		name: "crash loop", version: apptest.VCrash, exit: 1,
		want: []string{
			"green will not become healthy: {green} is crash-looping: restarted", "last exit code 1",
			"last log lines of {green}", "blue keeps serving",
		},
		output:  []string{`"message":"configuration loaded"`, "fatal: crashing at start"},
		serving: ops.Blue, serves: apptest.V1,
	},
	{
		name: "after-switch command fails", version: apptest.V2, ok: true, exit: 3,
		before: func(t *testing.T, e *apptest.DeployEnv) {
			appendFile(t, e.EnvFile, "TESTAPP_SYNC_FAIL=1\n")
		},
		want: []string{
			`after-switch command "sync" (sync): exit 1`,
			`green serves v2.0.0; blue stays warm`, `but after-switch command "sync" exit 1`, "the deploy stays",
		},
		said:    []string{`the deploy is live (green serves v2.0.0), but after-switch command "sync" exit 1`, "run it again by hand"},
		output:  []string{`"errors":1`, "sync: 1 source(s) failed"},
		serving: ops.Green, serves: apptest.V2,
	},
}

// releaseEnv is the environment of the releaseStory, with more options.
func releaseEnv(opts ...apptest.Option) []apptest.Option {
	return append([]apptest.Option{apptest.Empty(), river(""), apptest.RestartPolicy("always"),
		apptest.EnvYAML(func(*apptest.DeployEnv) string {
			return `    release:
      before_start: [{name: river, command: [migrate-river], timeout: 1m}]
      after_switch: [{name: sync, command: [sync], timeout: 1m}]
`
		})}, opts...)
}

// tellReleaseStory runs the releaseStory's steps on e, deploying with
// deploy, and checks after each what the user was shown and what serves.
func tellReleaseStory(t *testing.T, e *apptest.DeployEnv, deploy func(t *testing.T, version string) shown) {
	for _, step := range releaseStory {
		reached := false // the environment is where the step should leave it
		t.Run(step.name, func(t *testing.T) {
			if step.before != nil {
				step.before(t, e)
			}
			got := deploy(t, step.version)
			if got.ok != step.ok {
				t.Errorf("the deploy of %s succeeded: %v, want %v", step.version, got.ok, step.ok)
			}
			if got.exit >= 0 {
				if got.exit != step.exit {
					t.Errorf("the terminal exited %d, want %d", got.exit, step.exit)
				}
				for _, want := range step.said {
					if !strings.Contains(got.all, want) {
						t.Errorf("the terminal did not say %q:\n%s", want, got.all)
					}
				}
			}
			for _, want := range step.report {
				if !strings.Contains(got.report, want) {
					t.Errorf("the pre-flight report lacks %q:\n%s", want, got.report)
				}
			}
			for _, want := range step.want {
				if want = strings.ReplaceAll(want, "{green}", e.Names[ops.Green]); !strings.Contains(got.all, want) {
					t.Errorf("the user was not shown %q:\n%s", want, got.all)
				}
			}
			for _, want := range step.output {
				if !strings.Contains(got.code, want) {
					t.Errorf("the output line %q is not shown monospaced:\n%s", want, got.all)
				}
			}
			e.WantServing(step.serving, step.serves)
			e.WantNoLock()
			reached = true
			if !step.ok {
				if g := e.Container(ops.Green); g.Exists {
					t.Errorf("the failed container was left: %+v", g)
				}
			}
		})
		if !reached {
			return // the next step starts from where this one should have left
		}
	}
}

func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestReleaseStoryFromTheTerminal tells the releaseStory with the built
// binary's `deploy`, as on the day Slack is down: what it prints is what
// the user was shown, each journal entry once; its exit code whether the
// release is live and whether an after-switch command failed.
func TestReleaseStoryFromTheTerminal(t *testing.T) {
	bin := testenv.Binary(t, "./cmd/togather-chatops")
	e := apptest.NewDeployEnv(t, releaseEnv()...)
	tellReleaseStory(t, e, func(t *testing.T, version string) shown {
		cmd := exec.Command(bin, "deploy", "staging", version, "--no-wait", "--reason", "release story", "--config", e.ConfigPath)
		cmd.Env = append(os.Environ(), "DATABASE_URL="+e.StoreDSN)
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatalf("deploy %s: %v", version, err)
		}
		// The report comes before the journal, whose first line is the request.
		report, _, found := strings.Cut(string(out), "deploy of "+version+" to staging requested by")
		if !found {
			t.Fatalf("deploy %s printed no journal:\n%s", version, out)
		}
		hist, herr := e.Store.History(t.Context(), "staging", 1)
		if herr != nil || len(hist) == 0 {
			t.Fatalf("the deploy of %s is not in the history: %v", version, herr)
		}
		wantJournalOnce(t, string(out), hist[0])
		code := cmd.ProcessState.ExitCode()
		return shown{ok: code == 0 || code == 3, exit: code, report: report, all: string(out), code: string(out)}
	})
}

// wantJournalOnce fails t unless out, a terminal's output, prints each
// entry of op's journal once (the begin entries, which it leaves out,
// aside): a line with the entry's step that ends with its detail's first
// line.
func wantJournalOnce(t *testing.T, out string, op ops.Operation) {
	t.Helper()
	lines := strings.Split(out, "\n")
	var wrong []string
	for _, e := range op.Journal {
		first, _, _ := strings.Cut(e.Detail, "\n")
		if e.Phase == ops.PhaseBegin || first == "" {
			continue
		}
		n := 0
		for _, l := range lines {
			if strings.Contains(l, " "+string(e.Step)+" ") && strings.HasSuffix(l, " "+first) {
				n++
			}
		}
		if n != 1 {
			wrong = append(wrong, fmt.Sprintf("%s %s %q: %d times", e.Step, e.Phase, first, n))
		}
	}
	if len(wrong) > 0 {
		t.Errorf("journal entries not printed once:\n%s\noutput:\n%s", strings.Join(wrong, "\n"), out)
	}
}

// TestReleaseStoryFromChat tells the releaseStory with `/togather deploy`
// through the fake Slack: what the user was shown is every post and edit
// of the request in the deploys channel and of its thread, until the
// request shows the outcome.
func TestReleaseStoryFromChat(t *testing.T) {
	c := startChatWith(t, false, "", releaseEnv()...)
	tellReleaseStory(t, c.DeployEnv, func(t *testing.T, version string) shown {
		events, stop := c.fake.Subscribe()
		defer stop()
		c.slash(t, "UALICE", "deploy staging "+version)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		got := shown{exit: -1}
		var all []string
		request := ""
		for {
			var ev slackfake.Event
			select {
			case ev = <-events:
			case <-ctx.Done():
				t.Fatalf("the deploy of %s shows no outcome; shown so far:\n%s", version, strings.Join(all, "\n---\n"))
			}
			m := ev.Message
			switch {
			case ev.Kind == slackfake.EventPost && m.Channel == deploys && m.ThreadTS == "" &&
				slackfake.TextContains("asks to deploy `"+version+"`")(m):
				request, got.report = m.TS, slackfake.Render(m)
			case request == "" || (m.TS != request && m.ThreadTS != request):
				continue // not this deploy's
			}
			all = append(all, slackfake.Render(m))
			got.code += codeBlocks(all[len(all)-1])
			if ev.Kind == slackfake.EventEdit && m.TS == request {
				got.ok = slackfake.TextContains(": done*")(m)
				got.all = strings.Join(all, "\n---\n")
				if r := c.fake.Rejections(); len(r) > 0 {
					t.Errorf("Slack would reject: %+v", r)
				}
				return got
			}
		}
	})
}

// codeBlocks returns the text of the ```code blocks``` of a message as
// Slack's mrkdwn reads it: a ``` inside a block ends it.
func codeBlocks(mrkdwn string) string {
	var b strings.Builder
	for i, part := range strings.Split(mrkdwn, "```") {
		if i%2 == 1 {
			b.WriteString(part + "\n")
		}
	}
	return b.String()
}
