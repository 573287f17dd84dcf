// Package archtest enforces the dependency rules of DESIGN.md §3: the core
// packages import only the standard library (and small pure libraries), and
// slack-go is imported by bot/slack alone.
package archtest

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/togather-foundation/togather-chatops"

// deps lists the non-standard-library packages pkg depends on.
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", module+"/"+pkg).Output()
	if err != nil {
		t.Fatalf("go list %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

func TestCoreImportsNoAdapters(t *testing.T) {
	allowed := map[string][]string{
		"ops": {module + "/ops"},
		"bot": {module + "/bot", module + "/ops", module + "/incidents", "github.com/rs/zerolog", "github.com/mattn/go-colorable", "github.com/mattn/go-isatty", "golang.org/x/sys"},
	}
	for pkg, ok := range allowed {
		for _, d := range deps(t, pkg) {
			if !hasPrefixIn(d, ok) {
				t.Errorf("%s depends on %s; the core may not import adapters or SDKs", pkg, d)
			}
		}
	}
}

func TestOnlyBotSlackImportsSlackGo(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] == module+"/bot/slack" || strings.HasPrefix(f[0], module+"/internal/slackfake") {
			continue
		}
		for _, imp := range f[1:] {
			if strings.HasPrefix(imp, "github.com/slack-go/") {
				t.Errorf("%s imports %s; only bot/slack may", f[0], imp)
			}
		}
	}
}

func hasPrefixIn(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if s == p || strings.HasPrefix(s, p+"/") {
			return true
		}
	}
	return false
}
