package app_test

import (
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/togather-foundation/togather-chatops/internal/apptest"
	"github.com/togather-foundation/togather-chatops/internal/testenv"
	"github.com/togather-foundation/togather-chatops/ops"
)

// The terminal takes versions by the chat's grammar: what chat refuses
// (v2) is a usage error there too, before anything is touched.
func TestTerminalVersionGrammarIsTheChats(t *testing.T) {
	e := apptest.NewDeployEnv(t)
	bin := testenv.Binary(t, "./cmd/togather-chatops")
	for _, verb := range []string{"deploy", "preflight"} {
		out, err := exec.Command(bin, verb, "staging", "v2", "--config", e.ConfigPath).CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), "invalid version") {
			t.Errorf("%s staging v2: %v\n%s\nwant exit 2 with the chat's message", verb, err, out)
		}
	}
	e.WantServing(ops.Blue, apptest.V1)
}
