package caddy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// ErrMaintenance: the slot block is in maintenance mode, so its upstream
// cannot be switched until maintenance ends.
var ErrMaintenance = errors.New("slot block in maintenance mode")

// MaintenanceRetryAfter is the Retry-After header of the maintenance page:
// when clients should try again.
const MaintenanceRetryAfter = 5 * time.Minute

// savedPrefix starts each line of the live block kept in maintenance mode:
// indent, savedPrefix, a space unless the rest is empty, the rest.
const savedPrefix = "# togather-maintenance:"

// emptyPlaceholder is a Caddy placeholder that is always empty (an unset
// variable); it splits "{$" so that Caddy does not read an environment
// variable there, and it turns on brace unescaping in a body without "{".
const emptyPlaceholder = "{http.vars.togather_empty}"

// WithMaintenance returns caddyfile with its slot block in maintenance mode:
// every line of the block is kept, byte for byte, as a
// "# togather-maintenance: <line>" comment, followed by a handle answering
// every request 503 with page as HTML body, Retry-After and no caching.
// Everything outside the block is kept. A block already in maintenance
// mode gets the new page: with the same page nothing changes. page must be
// valid UTF-8; ErrMarkers and ErrUpstream are reported as by Parse.
func WithMaintenance(caddyfile []byte, page string) ([]byte, error) {
	body, err := quotePage(page)
	if err != nil {
		return nil, err
	}
	s, err := scan(caddyfile)
	if err != nil {
		return nil, err
	}
	lines := bytes.SplitAfter(caddyfile, []byte("\n"))
	indent, eol := leadingSpace(string(lines[s.start-1])), lineEnd(lines[s.start-1])
	out := bytes.Join(lines[:s.start], nil)
	for i := s.start + 1; i < s.end; i++ { // line numbers inside the block
		raw := lines[i-1]
		switch {
		case !s.maintenance:
			content, end := splitEnd(raw)
			out = append(append(out, commentOut(content)...), end...)
		case slices.Contains(s.saved, i):
			out = append(out, raw...)
		}
	}
	in := indent + "\t"
	out = fmt.Appendf(out, "%[1]s# Maintenance mode: the live block is kept above as comments, restored when maintenance ends.%[3]s"+
		"%[1]shandle {%[3]s"+
		"%[2]sheader Retry-After %[4]d%[3]s"+
		"%[2]sheader Content-Type \"text/html; charset=utf-8\"%[3]s"+
		"%[2]sheader Cache-Control no-store%[3]s"+
		"%[2]srespond * %[5]s 503%[3]s"+
		"%[1]s}%[3]s",
		indent, in, eol, int(MaintenanceRetryAfter/time.Second), body)
	return append(out, bytes.Join(lines[s.end-1:], nil)...), nil
}

// WithoutMaintenance returns caddyfile with its slot block as it was before
// WithMaintenance: the kept lines uncommented, the maintenance handle gone.
// A block not in maintenance mode is returned as it is.
func WithoutMaintenance(caddyfile []byte) ([]byte, error) {
	s, err := scan(caddyfile)
	if err != nil {
		return nil, err
	}
	if !s.maintenance {
		return caddyfile, nil
	}
	lines := bytes.SplitAfter(caddyfile, []byte("\n"))
	out := bytes.Join(lines[:s.start], nil)
	for _, n := range s.saved {
		content, end := splitEnd(lines[n-1])
		line, _ := uncomment(string(content))
		out = append(append(out, line...), end...)
	}
	return append(out, bytes.Join(lines[s.end-1:], nil)...), nil
}

// EnterMaintenance makes every site of the slot block answer 503 with page
// (an HTML body) and a Retry-After header, instead of proxying to the live
// slot; the live upstream is remembered inside the block, so ExitMaintenance
// restores it even from a new process. Idempotent: entering again only
// replaces the page. Caddy loads the new file first; the file is saved
// only once Caddy has accepted it.
func (p *Proxy) EnterMaintenance(ctx context.Context, page string) error {
	if _, err := quotePage(page); err != nil {
		return fmt.Errorf("enter maintenance: %w", err)
	}
	if err := p.edit(ctx, func(src []byte) ([]byte, error) { return WithMaintenance(src, page) }); err != nil {
		return fmt.Errorf("enter maintenance: %w", err)
	}
	return nil
}

// ExitMaintenance puts the slot block back exactly as it was before
// EnterMaintenance. Idempotent (no-op when not in maintenance).
func (p *Proxy) ExitMaintenance(ctx context.Context) error {
	if err := p.edit(ctx, WithoutMaintenance); err != nil {
		return fmt.Errorf("exit maintenance: %w", err)
	}
	return nil
}

// InMaintenance reports whether the Caddyfile is in maintenance mode.
func (p *Proxy) InMaintenance(context.Context) (bool, error) {
	src, err := p.files.ReadFile(p.path)
	if err != nil {
		return false, fmt.Errorf("read caddyfile: %w", err)
	}
	s, err := scan(src)
	if err != nil {
		return false, fmt.Errorf("%s: %w", p.path, err)
	}
	return s.maintenance, nil
}

// edit rewrites the Caddyfile with change: Caddy loads the result, then it
// is saved. Nothing happens when change leaves the file as it is. When the
// save fails, Caddy is put back on the file's configuration.
func (p *Proxy) edit(ctx context.Context, change func([]byte) ([]byte, error)) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	current, err := p.files.ReadFile(p.path)
	if err != nil {
		return fmt.Errorf("read caddyfile: %w", err)
	}
	next, err := change(current)
	if err != nil {
		return fmt.Errorf("%s: %w", p.path, err)
	}
	if bytes.Equal(next, current) {
		return nil
	}
	if err := p.Load(ctx, next); err != nil {
		return err
	}
	if err := p.save(next); err != nil {
		// Put Caddy back even when ctx has ended meanwhile.
		if rerr := p.Load(context.WithoutCancel(ctx), current); rerr != nil {
			return fmt.Errorf("%w; putting caddy back on the file's configuration failed too, so caddy and the file disagree: %w", err, rerr)
		}
		return fmt.Errorf("%w; caddy was put back on the file's configuration", err)
	}
	return nil
}

// commentOut returns content (a line without its end) as a saved line.
func commentOut(content []byte) []byte {
	indent := leadingSpace(string(content))
	rest := content[len(indent):]
	out := append([]byte(indent), savedPrefix...)
	if len(rest) > 0 {
		out = append(append(out, ' '), rest...)
	}
	return out
}

// uncomment returns the line a saved line (without its end) was made from,
// dropping one space after the prefix, and whether line is a saved line.
func uncomment(line string) (string, bool) {
	indent := leadingSpace(line)
	rest, ok := strings.CutPrefix(line[len(indent):], savedPrefix)
	if !ok {
		return "", false
	}
	return indent + strings.TrimPrefix(rest, " "), true
}

// leadingSpace returns the spaces and tabs line starts with.
func leadingSpace(line string) string {
	return line[:len(line)-len(strings.TrimLeft(line, " \t"))]
}

// splitEnd splits raw into its content and its line end ("\r\n", "\n" or
// "").
func splitEnd(raw []byte) (content, end []byte) {
	n := len(lineEnd(raw))
	return raw[:len(raw)-n], raw[len(raw)-n:]
}

// lineEnd returns the line end of raw.
func lineEnd(raw []byte) string {
	switch {
	case bytes.HasSuffix(raw, []byte("\r\n")):
		return "\r\n"
	case bytes.HasSuffix(raw, []byte("\n")):
		return "\n"
	}
	return ""
}

// quotePage returns page as one Caddyfile token that Caddy 2.6's respond
// serves byte for byte. Caddy replaces "{$VAR}" in the file before lexing it
// and placeholders in the body when serving it, unescaping \{ and \} then
// (only if the body holds a "{"); so every brace gets a backslash, and "{$"
// an empty placeholder in between. The result is quoted with backticks,
// inside which nothing is escaped, or, when it holds a backtick, with
// double quotes, inside which only \" is an escape (a backslash before
// anything else stays). Caddy 2.6 has no heredocs.
func quotePage(page string) (string, error) {
	if !utf8.ValidString(page) {
		return "", errors.New("maintenance page is not valid UTF-8")
	}
	r := page
	if strings.ContainsAny(page, "{}") {
		var b strings.Builder
		for i := 0; i < len(page); i++ {
			switch c := page[i]; c {
			case '{', '}':
				b.WriteByte('\\')
				b.WriteByte(c)
				if c == '{' && strings.HasPrefix(page[i+1:], "$") {
					b.WriteString(emptyPlaceholder)
				}
			default:
				b.WriteByte(page[i])
			}
		}
		r = b.String()
		if !strings.Contains(r, "{") {
			r = emptyPlaceholder + r // so that Caddy unescapes the \}
		}
	}
	if !strings.Contains(r, "`") {
		return "`" + r + "`", nil
	}
	// In double quotes a backslash escapes the next character, and stays
	// unless that is a quote: an odd run of backslashes cannot precede a
	// quote or the end.
	for i := 0; i < len(r); {
		j := i
		for j < len(r) && r[j] == '\\' {
			j++
		}
		if (j-i)%2 == 1 && (j == len(r) || r[j] == '"') {
			return "", errors.New(`maintenance page holds a backtick and an odd run of backslashes before a double quote or at its end: Caddy 2.6 cannot quote that; write the backslash as &#92; or the backtick as &#96;`)
		}
		i = j + 1
	}
	return `"` + strings.ReplaceAll(r, `"`, `\"`) + `"`, nil
}

// lexer follows Caddy 2.6's Caddyfile lexer across lines, far enough to
// tell where quoted tokens, which may span lines, begin and end.
type lexer struct {
	quoted, backticks bool // inside a "..." or `...` token
	escaped           bool // the last character was an escaping backslash
	comment           bool // inside a # comment
	token             bool // inside an unquoted token
}

// inQuotes reports whether the lexer is inside a quoted token.
func (l *lexer) inQuotes() bool { return l.quoted || l.backticks }

// feed runs the lexer over s.
func (l *lexer) feed(s string) {
	for _, ch := range s {
		if !l.escaped && !l.backticks && ch == '\\' {
			l.escaped = true
			continue
		}
		if l.inQuotes() {
			switch {
			case l.quoted && l.escaped:
				l.escaped = false
			case l.quoted && ch == '"', l.backticks && ch == '`':
				*l = lexer{} // the token ends: Caddy starts the next one afresh
			}
			continue
		}
		if unicode.IsSpace(ch) {
			switch {
			case ch == '\r': // ignored
			case ch == '\n' || l.token:
				*l = lexer{} // the line or the token ends
			}
			continue
		}
		if ch == '#' && !l.token {
			l.comment = true
		}
		if l.comment {
			continue
		}
		if !l.token && (ch == '"' || ch == '`') {
			l.quoted, l.backticks = ch == '"', ch == '`'
			continue
		}
		l.escaped = false
		l.token = true
	}
}
