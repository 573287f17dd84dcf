package host

import (
	"os"
	"slices"
	"strings"
)

// childBase is what every program the bot runs gets of its environment.
var childBase = []string{"PATH", "HOME", "USER", "LANG", "TZ", "TMPDIR"}

// ChildEnv is the environment for a program the bot runs on its own
// machine: of the bot's, only PATH, HOME, USER, the locale, TZ, TMPDIR and
// the variables whose names start with one of prefixes, so the program
// never sees the bot's tokens or database URL.
func ChildEnv(prefixes ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		key, _, _ := strings.Cut(kv, "=")
		if slices.Contains(childBase, key) || strings.HasPrefix(key, "LC_") ||
			slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(key, p) }) {
			env = append(env, kv)
		}
	}
	return env
}
