package config

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// DecodeError is a configuration that could not be decoded: invalid YAML,
// unknown keys or wrongly typed values. Each problem's message starts with
// its line number.
type DecodeError struct {
	Problems []Problem
}

// Error lists every problem.
func (e *DecodeError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return "decode: " + strings.Join(lines, "; ")
}

// document indexes the nodes of a parsed YAML document by key path.
type document struct {
	// present holds the path of every key in the document, merged keys included.
	present map[string]bool
	// entries are the keys and sequence items in document order.
	entries []entry
}

// entry is one key (or sequence item) with its value.
type entry struct {
	path    string
	key     string // "" for a sequence item
	keyLine int
	value   *yaml.Node
}

func indexDocument(root *yaml.Node) *document {
	d := &document{present: map[string]bool{}}
	d.walk(root, "")
	return d
}

func (d *document) walk(n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			d.walk(c, path)
		}
	case yaml.AliasNode:
		d.walk(n.Alias, path)
	case yaml.SequenceNode:
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			d.entries = append(d.entries, entry{path: p, keyLine: item.Line, value: item})
			d.walk(item, p)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if isMerge(k) {
				// "<<: *base" or "<<: [*a, *b]": the merged keys belong here.
				d.walkMerge(v, path)
				continue
			}
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			d.present[p] = true
			d.entries = append(d.entries, entry{path: p, key: k.Value, keyLine: k.Line, value: v})
			d.walk(v, p)
		}
	}
}

func (d *document) walkMerge(v *yaml.Node, path string) {
	if v.Kind == yaml.SequenceNode {
		for _, item := range v.Content {
			d.walk(item, path)
		}
		return
	}
	d.walk(v, path)
}

// isMerge reports whether k is a merge key, as yaml.v3 decides it.
func isMerge(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Value == "<<" && (k.Tag == "" || k.Tag == "!" || k.ShortTag() == "!!merge")
}

var (
	lineRE    = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	unknownRE = regexp.MustCompile(`^field (\S+) not found in type \S+$`)
	typeRE    = regexp.MustCompile("^cannot unmarshal (\\S+)(?: `(.*)`)? into (.+)$")
)

// syntaxError turns a YAML parser error into a DecodeError.
func syntaxError(err error) error {
	msg := err.Error()
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		msg = "line " + m[1] + ": " + m[2]
	}
	return &DecodeError{Problems: []Problem{{Message: strings.TrimPrefix(msg, "yaml: ")}}}
}

// decodeError maps each of yaml.v3's decode errors to the path it is about.
func (d *document) decodeError(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return syntaxError(err)
	}
	problems := make([]Problem, 0, len(te.Errors))
	for _, msg := range te.Errors {
		// A key merged into several mappings is reported once per merge.
		if p := d.problem(msg); !slices.Contains(problems, p) {
			problems = append(problems, p)
		}
	}
	return &DecodeError{Problems: problems}
}

func (d *document) problem(msg string) Problem {
	m := lineRE.FindStringSubmatch(msg)
	if m == nil {
		return Problem{Message: msg}
	}
	line, _ := strconv.Atoi(m[1])
	at := "line " + m[1] + ": "
	rest := m[2]

	if u := unknownRE.FindStringSubmatch(rest); u != nil {
		e := d.find(func(e entry) bool { return e.keyLine == line && e.key == u[1] })
		return Problem{Path: e.path, Message: at + "unknown key"}
	}
	if t := typeRE.FindStringSubmatch(rest); t != nil {
		tag, value, into := t[1], t[2], t[3]
		e := d.find(func(e entry) bool {
			return e.value.Line == line && e.value.ShortTag() == tag && sameShown(e.value.Value, value)
		})
		return Problem{Path: e.path, Message: at + "expected " + friendlyType(into) + ", got " + shown(tag, value)}
	}
	e := d.find(func(e entry) bool { return e.keyLine == line })
	return Problem{Path: e.path, Message: at + rest}
}

// find returns the first entry matching, or a zero entry.
func (d *document) find(match func(entry) bool) entry {
	for _, e := range d.entries {
		if match(e) {
			return e
		}
	}
	return entry{}
}

// sameShown reports whether value is what yaml.v3 shows of full: the value,
// or its first 7 bytes and "..." when longer than 10.
func sameShown(full, shown string) bool {
	if short, ok := strings.CutSuffix(shown, "..."); ok && len(full) > 10 {
		return strings.HasPrefix(full, short)
	}
	return full == shown
}

// shown describes a decoded value for a message.
func shown(tag, value string) string {
	switch tag {
	case "!!seq":
		return "a list"
	case "!!map":
		return "a mapping"
	}
	return strconv.Quote(value)
}

// friendlyType names a Go type the way a config author thinks of it.
func friendlyType(goType string) string {
	switch {
	case goType == "time.Duration":
		return "a duration such as 30s or 10m"
	case goType == "int":
		return "an integer"
	case goType == "bool":
		return "true or false"
	case goType == "string":
		return "a string"
	case strings.HasPrefix(goType, "[]"):
		return "a list"
	case strings.HasPrefix(goType, "map["), strings.HasPrefix(goType, "config."):
		return "a mapping"
	}
	return goType
}
