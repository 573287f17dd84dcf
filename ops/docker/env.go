package docker

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/togather-foundation/togather-chatops/ops/host"
)

// readEnvFile reads a KEY=VALUE env file; see parseEnv.
func readEnvFile(files host.Files, path string) ([]string, error) {
	data, err := files.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("env file: %w", err)
	}
	env, err := parseEnv(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("env file %s: %w", path, err)
	}
	return env, nil
}

// parseEnv reads KEY=VALUE lines. Blank lines and # comments are skipped, an
// "export " prefix is allowed, spaces around key and value are trimmed, and
// one pair of matching quotes around the value is removed. Errors name the
// line, never its content, which may be a secret.
func parseEnv(r io.Reader) ([]string, error) {
	var env []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, value, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		key = strings.TrimSpace(key)
		if !ok || key == "" || strings.ContainsAny(key, " \t\"'") {
			return nil, fmt.Errorf("line %d: want KEY=VALUE", n)
		}
		env = append(env, key+"="+unquote(strings.TrimSpace(value)))
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return env, nil
}

func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		return v[1 : len(v)-1]
	}
	return v
}

// mergeEnv concatenates env lists, later entries replacing earlier ones of
// the same key in place.
func mergeEnv(lists ...[]string) []string {
	var out []string
	index := map[string]int{}
	for _, list := range lists {
		for _, kv := range list {
			k, _, _ := strings.Cut(kv, "=")
			if i, ok := index[k]; ok {
				out[i] = kv
				continue
			}
			index[k] = len(out)
			out = append(out, kv)
		}
	}
	return out
}
