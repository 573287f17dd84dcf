package bot

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

const (
	maxInputRunes = 4000 // longer text is refused
	maxWords      = 400  // more words are refused
	maxEcho       = 40   // runes of a user's word quoted back in an error
	startLayout   = "2006-01-02T15:04"
)

// Parse turns the text of a chat command (what follows "/togather") into a
// ParseResult. envs are the configured environment names.
//
// The result is:
//   - Ignore when the text starts with "#" or "//": a comment someone typed;
//   - Command when the text is a valid command; empty text is help;
//   - Reply otherwise: a short error, a suggestion when a word is close to a
//     valid one, and the usage of the command.
//
// Words are separated by white space. "Double" or 'single' quotes group
// words, and so do Slack's smart quotes “ ” ‘ ’. A quote opens only at the
// start of a word (or right after --name=) and closes only before white
// space or the end, so apostrophes in words such as don't stay literal. Slack
// mentions and links (<@U123|bob>, <https://x|label>) are kept whole. A
// leading "/togather" is dropped. Command words, subcommands, flag names and
// environment names are case-insensitive; the environment is returned as
// configured.
//
// Flags may appear anywhere after the command word, as --name value,
// --name=value, or --name for booleans; a word starting with an em or en dash
// (what phones make of "--") counts as a flag, a quoted word never does, and
// "--" ends the flags. --help on any command asks for its help.
func Parse(text string, envs []string) ParseResult {
	text = strings.TrimSpace(text)
	if strings.HasPrefix(text, "#") || strings.HasPrefix(text, "//") {
		return ParseResult{Ignore: true}
	}
	c, err := parse(text, envs)
	if err != nil {
		return ParseResult{Reply: err.reply()}
	}
	return ParseResult{Command: c}
}

// parseError is a message for the user and the usage to show after it.
type parseError struct {
	msg   string
	usage string
}

func (e *parseError) reply() string {
	switch {
	case e.usage == "":
		return e.msg
	case strings.Contains(e.usage, "\n"):
		return e.msg + "\nUsage:\n  " + strings.ReplaceAll(e.usage, "\n", "\n  ")
	}
	return e.msg + "\nUsage: " + e.usage
}

func fail(usage, format string, a ...any) *parseError {
	return &parseError{msg: fmt.Sprintf(format, a...), usage: usage}
}

func parse(text string, envs []string) (*Command, *parseError) {
	if len(text) > maxInputRunes {
		if n := utf8.RuneCountInString(text); n > maxInputRunes {
			return nil, fail("", "command too long (%d characters; the limit is %d)", n, maxInputRunes)
		}
	}
	toks, err := tokenize(text)
	if err != nil {
		return nil, err
	}
	if len(toks) > 0 && strings.EqualFold(toks[0].text, "/togather") {
		toks = toks[1:]
	}
	if len(toks) == 0 {
		return &Command{Name: NameHelp}, nil
	}
	spec, err := lookupCommand(toks[0].text)
	if err != nil {
		return nil, err
	}
	p := &parser{envs: envs, spec: spec}
	if p.split(toks[1:]) {
		if spec.name == NameHelp {
			return &Command{Name: NameHelp}, nil
		}
		return &Command{Name: NameHelp, Args: []string{spec.name.String()}}, nil
	}
	return p.command()
}

// token is one word of the input; quoted when it began with a quote, which
// keeps it from being read as a flag.
type token struct {
	text   string
	quoted bool
}

// quoteFamily returns 1 for double quotes, 2 for single quotes (straight or
// smart), 0 otherwise.
func quoteFamily(r rune) int {
	switch r {
	case '"', '“', '”':
		return 1
	case '\'', '‘', '’':
		return 2
	}
	return 0
}

func tokenize(s string) ([]token, *parseError) {
	rs := []rune(s)
	var toks []token
	for i := 0; i < len(rs); {
		if unicode.IsSpace(rs[i]) {
			i++
			continue
		}
		if len(toks) == maxWords {
			return nil, fail("", "too many words (the limit is %d)", maxWords)
		}
		var b strings.Builder
		start := i
		quoted := false
		for i < len(rs) && !unicode.IsSpace(rs[i]) {
			r := rs[i]
			switch {
			case i == start && r == '<':
				if j := indexRune(rs, i+1, '>'); j >= 0 {
					b.WriteString(string(rs[i : j+1]))
					i = j + 1
					continue
				}
			case i == start && (r == '—' || r == '–') && i+1 < len(rs) && unicode.IsLetter(rs[i+1]):
				b.WriteString("--")
				i++
				continue
			case quoteFamily(r) != 0 && (i == start || opensQuote(b.String())):
				end := closingQuote(rs, i+1, quoteFamily(r))
				if end < 0 {
					return nil, fail("", "unbalanced quote: the %c is never closed", r)
				}
				quoted = quoted || i == start
				b.WriteString(string(rs[i+1 : end]))
				i = end + 1
				continue
			}
			b.WriteRune(r)
			i++
		}
		toks = append(toks, token{text: b.String(), quoted: quoted})
	}
	return toks, nil
}

// opensQuote reports whether a quote may open after word, a flag's "--name=".
func opensQuote(word string) bool {
	return strings.HasPrefix(word, "--") && strings.HasSuffix(word, "=") && strings.Count(word, "=") == 1
}

func indexRune(rs []rune, from int, r rune) int {
	for i := from; i < len(rs); i++ {
		if rs[i] == r {
			return i
		}
	}
	return -1
}

// closingQuote finds the quote of the same family that ends a quoted group:
// one followed by white space or the end of the text; -1 if there is none.
func closingQuote(rs []rune, from, family int) int {
	for i := from; i < len(rs); i++ {
		if quoteFamily(rs[i]) == family && (i+1 == len(rs) || unicode.IsSpace(rs[i+1])) {
			return i
		}
	}
	return -1
}

func lookupCommand(word string) (*commandSpec, *parseError) {
	w := strings.ToLower(word)
	for i := range grammar {
		if grammar[i].name.String() == w {
			return &grammar[i], nil
		}
	}
	words := names[:]
	if s := closest(w, words); s != "" {
		c, _ := lookupCommand(s)
		return nil, fail(c.usageAll(), "unknown command %s. Did you mean %q?", echo(word), s)
	}
	return nil, fail("", `unknown command %s. Try "help" for the list of commands.`, echo(word))
}

// flagToken is a flag as typed.
type flagToken struct {
	name     string // lower-cased, without "--"
	value    string
	hasValue bool // a value was given with "=" or as the next word
}

// parser holds the words of one command while its form is worked out.
type parser struct {
	envs  []string
	spec  *commandSpec
	flags []flagToken
	pos   []string // positionals not consumed yet
}

// split separates flags from positionals and reports whether --help was
// given. Empty quoted words are dropped from the positionals.
func (p *parser) split(toks []token) bool {
	help := false
	flagsDone := false
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		if flagsDone || t.quoted || !strings.HasPrefix(t.text, "--") {
			if t.text != "" {
				p.pos = append(p.pos, t.text)
			}
			continue
		}
		if t.text == "--" {
			flagsDone = true
			continue
		}
		name, value, hasValue := strings.Cut(t.text[2:], "=")
		f := flagToken{name: strings.ToLower(name), value: value, hasValue: hasValue}
		if placeholder, known := flagDefs[f.name]; known && placeholder != "" && !hasValue && i+1 < len(toks) {
			if next := toks[i+1]; next.quoted || !strings.HasPrefix(next.text, "--") {
				f.value, f.hasValue = next.text, true
				i++
			}
		}
		help = help || f.name == "help"
		p.flags = append(p.flags, f)
	}
	return help
}

func (p *parser) command() (*Command, *parseError) {
	c := &Command{Name: p.spec.name}
	usage := p.spec.usageAll()
	for _, a := range p.spec.lead {
		if err := p.take(c, a, p.spec.name.String(), usage); err != nil {
			return nil, err
		}
	}
	sub, err := p.sub()
	if err != nil {
		return nil, err
	}
	c.Sub = sub.sub
	label, usage := p.spec.label(sub), p.spec.usage(sub)
	if err := p.applyFlags(c, sub, label, usage); err != nil {
		return nil, err
	}
	for _, a := range sub.args {
		if err := p.take(c, a, label, usage); err != nil {
			return nil, err
		}
	}
	if len(p.pos) > 0 {
		msg := fmt.Sprintf("too many arguments for %s: %s", label, p.echo(strings.Join(p.pos, " ")))
		if f := p.lastValueFlag(); f != "" {
			msg += fmt.Sprintf(` (quote a value with spaces: --%s "two words")`, f)
		}
		return nil, &parseError{msg: msg, usage: usage}
	}
	return c, nil
}

// lastValueFlag names the last flag given a value, the likely culprit when
// words are left over; "" if none was.
func (p *parser) lastValueFlag() string {
	for i := len(p.flags) - 1; i >= 0; i-- {
		if p.flags[i].hasValue {
			return p.flags[i].name
		}
	}
	return ""
}

// sub takes the subcommand (or db action) from the positionals.
func (p *parser) sub() (*subSpec, *parseError) {
	c := p.spec
	if c.subNoun == "" {
		return &c.subs[0], nil
	}
	words := c.subWords()
	if len(p.pos) == 0 {
		return nil, fail(c.usageAll(), "%s needs %s %s: %s", c.name, article(c.subNoun), c.subNoun, strings.Join(words, ", "))
	}
	word := p.pos[0]
	p.pos = p.pos[1:]
	if s := c.findSub(strings.ToLower(word)); s != nil {
		return s, nil
	}
	if s := closest(word, words); s != "" {
		return nil, fail(c.usageAll(), "unknown %s %s %s. Did you mean %q?", c.name, c.subNoun, p.echo(word), s)
	}
	return nil, fail(c.usageAll(), "unknown %s %s %s (choose %s)", c.name, c.subNoun, p.echo(word), strings.Join(words, ", "))
}

func (p *parser) applyFlags(c *Command, sub *subSpec, label, usage string) *parseError {
	for _, f := range p.flags {
		if !slices.Contains(sub.flags, f.name) {
			if _, known := flagDefs[f.name]; known {
				return fail(usage, "%s does not take --%s", label, f.name)
			}
			if s := closest(f.name, sub.flags); s != "" {
				return fail(usage, "unknown flag --%s for %s. Did you mean --%s?", clip(f.name), label, s)
			}
			return fail(usage, "unknown flag --%s for %s", clip(f.name), label)
		}
		if _, dup := c.Flags[f.name]; dup || (f.name == "env" && c.Env != "") {
			return fail(usage, "flag --%s given twice", f.name)
		}
		switch boolean := flagDefs[f.name] == ""; {
		case boolean && f.hasValue:
			return fail(usage, "flag --%s takes no value", f.name)
		case boolean:
			f.value = "true"
		case f.value == "":
			return fail(usage, "flag --%s needs a value", f.name)
		}
		if f.name == "env" {
			env, err := p.env(f.value, usage)
			if err != nil {
				return err
			}
			c.Env = env
			continue
		}
		if c.Flags == nil {
			c.Flags = map[string]string{}
		}
		c.Flags[f.name] = f.value
	}
	return nil
}

// take consumes the positional a into c.
func (p *parser) take(c *Command, a arg, label, usage string) *parseError {
	if len(p.pos) == 0 {
		if a.optional {
			return nil
		}
		msg := fmt.Sprintf("%s needs %s", label, a.noun)
		if a.kind == kindEnv && len(p.envs) > 0 {
			msg += ": " + strings.Join(p.envs, ", ")
		}
		return &parseError{msg: msg, usage: usage}
	}
	word := p.pos[0]
	p.pos = p.pos[1:]
	if a.rest {
		word = strings.Join(append([]string{word}, p.pos...), " ")
		p.pos = nil
	}
	if a.kind == kindEnv {
		env, err := p.env(word, usage)
		if err != nil {
			return err
		}
		c.Env = env
		return nil
	}
	v, msg := p.normalise(a.kind, word)
	if msg != "" {
		return &parseError{msg: msg, usage: usage}
	}
	c.Args = append(c.Args, v)
	return nil
}

// env matches word against the configured environments.
func (p *parser) env(word, usage string) (string, *parseError) {
	for _, e := range p.envs {
		if strings.EqualFold(e, word) {
			return e, nil
		}
	}
	if s := closest(word, p.envs); s != "" {
		return "", fail(usage, "unknown environment %s. Did you mean %q?", p.echo(word), s)
	}
	if len(p.envs) == 0 {
		return "", fail(usage, "unknown environment %s: no environments are configured", p.echo(word))
	}
	return "", fail(usage, "unknown environment %s. Known environments: %s", p.echo(word), strings.Join(p.envs, ", "))
}

var (
	hexRe        = regexp.MustCompile(`^(sha-)?[0-9a-fA-F]{7,40}$`)
	tagRe        = regexp.MustCompile(`^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z]+(\.[0-9A-Za-z]+)*)?$`)
	incidentRe   = regexp.MustCompile(`^(?i:inc-)?([0-9]{1,9})$`)
	secretNameRe = regexp.MustCompile(`^[A-Z_][A-Z0-9_]{0,127}$`)
)

// NormaliseVersion validates a version as every command takes it (a
// commit sha, sha-<hex>, or a v1.2.3 tag) and returns its normal form; the
// terminal twins use it so that chat and terminal accept the same words.
func NormaliseVersion(word string) (string, error) {
	v, msg := (&parser{spec: &commandSpec{}}).normalise(kindVersion, word)
	if msg != "" {
		return "", errors.New(msg)
	}
	return v, nil
}

// normalise validates a positional of kind k and returns its normal form, or
// a message saying what was expected.
func (p *parser) normalise(k argKind, word string) (string, string) {
	switch k {
	case kindVersion:
		switch {
		case hexRe.MatchString(word):
			return strings.ToLower(word), ""
		case len(word) <= 128 && tagRe.MatchString(word):
			return word, ""
		}
		return "", fmt.Sprintf("invalid version %s: use a commit sha (7 to 40 hex characters), sha-<hex>, or a tag like v1.2.3 or v1.2.3-rc.1", p.echo(word))
	case kindIncident:
		if m := incidentRe.FindStringSubmatch(word); m != nil {
			if n, _ := strconv.Atoi(m[1]); n > 0 {
				return "INC-" + strconv.Itoa(n), ""
			}
		}
		return "", fmt.Sprintf("invalid incident id %s: use INC-42 or 42", p.echo(word))
	case kindSeverity:
		if w := strings.ToLower(word); w == "sev1" || w == "sev2" || w == "sev3" {
			return w, ""
		}
		return "", fmt.Sprintf("invalid severity %s: use sev1, sev2 or sev3", p.echo(word))
	case kindStart:
		if _, err := time.Parse(startLayout, word); err != nil {
			return "", fmt.Sprintf("invalid start %s: use YYYY-MM-DDTHH:MM, like 2026-12-08T02:00", p.echo(word))
		}
	case kindDuration:
		if d, err := time.ParseDuration(word); err != nil || d <= 0 {
			return "", fmt.Sprintf("invalid duration %s: use a duration like 2h or 90m", p.echo(word))
		}
	case kindSecretName:
		if !secretNameRe.MatchString(word) {
			return "", "the secret must be named by its upper-case variable NAME, like DATABASE_URL, never by its value"
		}
	case kindCommand:
		w := strings.ToLower(word)
		if _, err := lookupCommand(w); err != nil {
			return "", err.msg
		}
		return w, ""
	}
	return word, ""
}

// echo quotes a user's word for a message, unless the command is sensitive.
func (p *parser) echo(word string) string {
	if p.spec.sensitive {
		return "(not shown)"
	}
	return echo(word)
}

// echo quotes a user's word for a message, clipped to a readable length.
func echo(word string) string {
	return strconv.Quote(clip(word))
}

func clip(word string) string {
	if utf8.RuneCountInString(word) <= maxEcho {
		return word
	}
	return string([]rune(word)[:maxEcho]) + "…"
}

func article(noun string) string {
	if strings.ContainsRune("aeiou", rune(noun[0])) {
		return "an"
	}
	return "a"
}

// closest returns the candidate a mistyped word most likely meant, or "".
// Candidates are compared case-insensitively and returned as given. A
// candidate is close when its edit distance (Damerau–Levenshtein, optimal
// string alignment) is at most 2 or a third of the word's length, and less
// than the word's length; failing that, the only candidate the word is a
// prefix or an abbreviation of ("prod", "stg") is close.
func closest(word string, candidates []string) string {
	w := []rune(strings.ToLower(word))
	if len(w) < 2 || len(w) > 64 {
		return ""
	}
	limit := max(2, len(w)/3)
	best, bestDist := "", limit+1
	for _, c := range candidates {
		if d := editDistance(w, []rune(strings.ToLower(c))); d < bestDist && d < len(w) {
			best, bestDist = c, d
		}
	}
	if best != "" {
		return best
	}
	for _, match := range []func(w, c []rune) bool{isPrefix, isAbbreviation} {
		found := ""
		for _, c := range candidates {
			if !match(w, []rune(strings.ToLower(c))) {
				continue
			}
			if found != "" {
				found = ""
				break
			}
			found = c
		}
		if found != "" {
			return found
		}
	}
	return ""
}

func isPrefix(w, c []rune) bool {
	return len(w) < len(c) && string(c[:len(w)]) == string(w)
}

// isAbbreviation reports whether w keeps c's first letter and then some of
// its letters in order, as "prd" does "production".
func isAbbreviation(w, c []rune) bool {
	if len(c) == 0 || w[0] != c[0] {
		return false
	}
	j := 0
	for _, r := range c {
		if j < len(w) && w[j] == r {
			j++
		}
	}
	return j == len(w)
}

// editDistance is the optimal-string-alignment distance between a and b:
// insertions, deletions, substitutions and transpositions of neighbours.
func editDistance(a, b []rune) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
