package ops

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"strings"
)

// EnvFile is a parsed KEY=VALUE env file: its assignments and its comment
// lines, each with its line number, so a check can tell a placeholder in a
// value from one in a comment.
type EnvFile struct {
	Vars     []EnvVar     // in file order; a key assigned twice appears twice
	Comments []EnvComment // whole-line comments
}

// EnvVar is one assignment of an env file.
type EnvVar struct {
	Key   string
	Value string // quotes stripped
	Line  int
}

// EnvComment is one comment line of an env file.
type EnvComment struct {
	Text string // without the leading '#'
	Line int
}

// Lookup returns the last assignment of key, the one that takes effect.
func (f EnvFile) Lookup(key string) (EnvVar, bool) {
	for i := len(f.Vars) - 1; i >= 0; i-- {
		if f.Vars[i].Key == key {
			return f.Vars[i], true
		}
	}
	return EnvVar{}, false
}

// Value returns the value of key, "" when it is not set.
func (f EnvFile) Value(key string) string {
	v, _ := f.Lookup(key)
	return v.Value
}

// ParseEnvFile parses KEY=VALUE lines the way the docker adapter reads them
// for containers: blank lines are skipped, lines starting with '#' are
// comments, an "export " prefix is allowed, spaces around key and value are
// trimmed and one pair of matching quotes around the value is removed. A '#'
// after a value is part of the value. Errors name the line, never its
// content, which may be a secret.
func ParseEnvFile(data []byte) (EnvFile, error) {
	var f EnvFile
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "":
			continue
		case strings.HasPrefix(line, "#"):
			f.Comments = append(f.Comments, EnvComment{Text: line[1:], Line: n})
			continue
		}
		key, value, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		key = strings.TrimSpace(key)
		if !ok || key == "" || strings.ContainsAny(key, " \t\"'") {
			return EnvFile{}, fmt.Errorf("line %d: want KEY=VALUE", n)
		}
		f.Vars = append(f.Vars, EnvVar{Key: key, Value: unquoteEnv(strings.TrimSpace(value)), Line: n})
	}
	if err := sc.Err(); err != nil {
		return EnvFile{}, fmt.Errorf("env file: %w", err)
	}
	return f, nil
}

func unquoteEnv(v string) string {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		return v[1 : len(v)-1]
	}
	return v
}

// reference is a ${NAME} in a value of Environment.ContainerEnv.
var reference = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// ExpandEnv replaces each ${NAME} in the values of the KEY=VALUE entries
// with lookup(NAME), as Compose interpolates a service's environment from
// the env file. A name lookup does not know is an error naming both, never
// a value.
func ExpandEnv(entries []string, lookup func(name string) (string, bool)) ([]string, error) {
	out := make([]string, len(entries))
	for i, kv := range entries {
		k, v, _ := strings.Cut(kv, "=")
		v, err := Expand(v, lookup)
		if err != nil {
			return nil, fmt.Errorf("%s %w", k, err)
		}
		out[i] = k + "=" + v
	}
	return out, nil
}

// Expand replaces each ${NAME} in s with lookup(NAME); a name lookup does
// not know is an error naming it.
func Expand(s string, lookup func(name string) (string, bool)) (string, error) {
	var missing []string
	s = reference.ReplaceAllStringFunc(s, func(ref string) string {
		val, ok := lookup(ref[2 : len(ref)-1])
		if !ok {
			missing = append(missing, ref)
		}
		return val
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("refers to %s, which the env file does not hold", strings.Join(missing, ", "))
	}
	return s, nil
}
