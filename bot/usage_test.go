package bot_test

import (
	"strings"
	"testing"

	"github.com/togather-foundation/togather-chatops/bot"
)

// usageSamples fills each placeholder of a usage line with a valid value.
var usageSamples = strings.NewReplacer(
	"<env>", "staging",
	"<version>", "abc1234",
	"<name>", "snap1",
	"[id]", "42",
	"<id>", "42",
	"<sev1|sev2|sev3>", "sev2",
	"<start>", "2026-12-08T02:00",
	"<duration>", "2h",
	"<NAME>", "DATABASE_URL",
	"[command]", "deploy",
	`"<reason>"`, `"some reason"`,
	"<mode>", "503",
	"<reason…>", "two words",
	"<title…>", "two words",
	"<text…>", "two words",
	"<description…>", "two words",
	"[", "",
	"]", "",
)

// TestCommandsParse checks that every usage line, filled with valid values,
// parses to a command with the listed permission and every listed flag, so
// help never shows a form the parser refuses.
func TestCommandsParse(t *testing.T) {
	for _, info := range bot.Commands() {
		in := usageSamples.Replace(info.Usage)
		res := bot.Parse(in, parseEnvs)
		if res.Command == nil {
			t.Errorf("usage %q: Parse(%q) = %s", info.Usage, in, describe(res))
			continue
		}
		c := res.Command
		if c.Name.String() != info.Name || c.Sub != info.Sub || c.Permission() != info.Permission {
			t.Errorf("Parse(%q) = %s %q (%s), want %s %q (%s)", in, c.Name, c.Sub, c.Permission(), info.Name, info.Sub, info.Permission)
		}
		if got := c.Env != ""; got != info.TakesEnv {
			t.Errorf("Parse(%q) set Env %q, but TakesEnv is %v", in, c.Env, info.TakesEnv)
		}
		for _, w := range strings.Fields(in) {
			if name, ok := strings.CutPrefix(w, "--"); ok && name != "env" {
				if _, given := c.Flag(name); !given {
					t.Errorf("Parse(%q) lost flag --%s", in, name)
				}
			}
		}
		if info.Summary == "" {
			t.Errorf("%s has no summary", info.Permission)
		}
	}
}

func TestCommandsCoverEveryName(t *testing.T) {
	infos := bot.Commands()
	seen := map[string]bool{}
	for _, info := range infos {
		if seen[info.Permission] {
			t.Errorf("permission %q listed twice", info.Permission)
		}
		seen[info.Permission] = true
	}
	for n := bot.NameHelp; n <= bot.NameDB; n++ {
		var lines []string
		for _, info := range infos {
			if info.Name == n.String() {
				lines = append(lines, info.Usage)
			}
		}
		if len(lines) == 0 {
			t.Errorf("Commands() has no entry for %s", n)
		}
		if got, want := bot.Usage(n), strings.Join(lines, "\n"); got != want {
			t.Errorf("Usage(%s) = %q, want %q", n, got, want)
		}
	}
	if got := bot.Usage(bot.NameDB + 1); got != "" {
		t.Errorf("Usage of an unknown Name = %q, want empty", got)
	}
}
