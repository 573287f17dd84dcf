// Package caddy is the ops adapter for the Caddy reverse proxy in front of a
// Togather host. The live slot is the block of the Caddyfile between the lines
// "# BLUE_GREEN_SLOT_START" and "# BLUE_GREEN_SLOT_END": its
// "reverse_proxy localhost:<port>" lines and its
// header_down X-Togather-Slot "<slot>" lines. Parse and Rewrite read and edit
// that block as text, byte for byte; Proxy switches traffic by loading the
// rewritten file through Caddy's admin API and saving it only once Caddy has
// accepted it. In maintenance mode (see WithMaintenance) the block's lines are
// kept as "# togather-maintenance:" comments above a handler answering 503;
// Parse reads the live upstream from those comments.
package caddy

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/togather-foundation/togather-chatops/ops"
)

// The marker comments delimiting the slot block; anything may follow the
// marker word on its line.
const (
	StartMarker = "# BLUE_GREEN_SLOT_START"
	EndMarker   = "# BLUE_GREEN_SLOT_END"
)

// slotHeader is the response header naming the live slot.
const slotHeader = "X-Togather-Slot"

// The kinds of problem Parse and Rewrite report; match them with errors.Is.
var (
	// ErrMarkers: the slot markers are missing, duplicated or out of order.
	ErrMarkers = errors.New("bad slot markers")
	// ErrUpstream: the block has no reverse_proxy to a loopback port, or one
	// whose upstream cannot be switched.
	ErrUpstream = errors.New("bad slot upstream")
	// ErrDrift: the block contradicts itself (upstreams on different ports,
	// X-Togather-Slot values that differ or name no slot, a header naming
	// another slot than the port) and needs a switch to make it agree.
	ErrDrift = errors.New("slot block drift")
)

// Block is what the slot block of a Caddyfile says.
type Block struct {
	Slot  ops.Slot // from header_down X-Togather-Slot; empty when the block sets no such header
	Port  int      // the port every reverse_proxy of the block points at
	Ports []int    // the port of each reverse_proxy line, in file order
	Start int      // line number (from 1) of the start marker
	End   int      // line number of the end marker
	// Maintenance: the block is in maintenance mode; the fields above then
	// describe the live block kept in its comments.
	Maintenance bool
}

// Parse reads the slot block of caddyfile. With ErrDrift the returned Block
// still holds the markers' lines and every port found; with any other error
// it is empty. A block without X-Togather-Slot header parses with an empty
// Slot: SlotForPort tells which slot its port belongs to.
func Parse(caddyfile []byte) (Block, error) {
	s, err := scan(caddyfile)
	if err != nil {
		return Block{}, err
	}
	b := Block{Start: s.start, End: s.end, Port: s.upstreams[0].port, Maintenance: s.maintenance}
	for _, u := range s.upstreams {
		b.Ports = append(b.Ports, u.port)
	}
	if slices.ContainsFunc(b.Ports, func(p int) bool { return p != b.Port }) {
		return b, fmt.Errorf("%w: reverse_proxy lines point at different ports (%s); switch to one slot to make them agree",
			ErrDrift, describe(s.upstreams, func(u upstream) (int, string) { return u.line, strconv.Itoa(u.port) }))
	}
	if len(s.headers) == 0 {
		return b, nil
	}
	for _, h := range s.headers {
		if !ops.Slot(h.value).Valid() {
			return b, fmt.Errorf("%w: line %d: %s is %q, want \"blue\" or \"green\"; switch to a slot to rewrite it",
				ErrDrift, h.line, slotHeader, h.value)
		}
	}
	if slices.ContainsFunc(s.headers, func(h header) bool { return h.value != s.headers[0].value }) {
		return b, fmt.Errorf("%w: %s headers name different slots (%s); switch to one slot to make them agree",
			ErrDrift, slotHeader, describe(s.headers, func(h header) (int, string) { return h.line, h.value }))
	}
	b.Slot = ops.Slot(s.headers[0].value)
	return b, nil
}

// SlotForPort tells which slot listens on port, given each slot's port.
func SlotForPort(ports map[ops.Slot]int, port int) (ops.Slot, bool) {
	for _, s := range ops.Slots {
		if p, ok := ports[s]; ok && p == port {
			return s, true
		}
	}
	return "", false
}

// Rewrite points every reverse_proxy of the slot block at port (keeping the
// host as written) and sets every X-Togather-Slot header of the block to
// slot. Every other byte of caddyfile is kept, so rewriting twice changes
// nothing more. A drifted block is rewritten into agreement; missing markers
// or an upstream that cannot be switched are errors, and so is a block in
// maintenance mode (ErrMaintenance).
func Rewrite(caddyfile []byte, slot ops.Slot, port int) ([]byte, error) {
	if !slot.Valid() {
		return nil, fmt.Errorf("rewrite: unknown slot %q", slot)
	}
	if port < 1 || port > 65535 {
		return nil, fmt.Errorf("rewrite: port %d out of range", port)
	}
	s, err := scan(caddyfile)
	if err != nil {
		return nil, err
	}
	if s.maintenance {
		return nil, fmt.Errorf("%w: the live block (lines %d-%d) is kept as comments; end maintenance mode before switching slots",
			ErrMaintenance, s.start, s.end)
	}
	var edits []edit
	for _, u := range s.upstreams {
		edits = append(edits, edit{u.at, strconv.Itoa(port)})
	}
	for _, h := range s.headers {
		edits = append(edits, edit{h.at, h.quote + string(slot) + h.quote})
	}
	slices.SortFunc(edits, func(a, b edit) int { return a.at.start - b.at.start })

	out := make([]byte, 0, len(caddyfile)+8*len(edits))
	prev := 0
	for _, e := range edits {
		out = append(out, caddyfile[prev:e.at.start]...)
		out = append(out, e.text...)
		prev = e.at.end
	}
	return append(out, caddyfile[prev:]...), nil
}

// span is a byte range [start, end) of the Caddyfile.
type span struct{ start, end int }

// edit replaces the bytes of at with text.
type edit struct {
	at   span
	text string
}

// upstream is one "reverse_proxy localhost:<port>" of the block.
type upstream struct {
	line, port int
	at         span // the port digits
}

// header is one header_down X-Togather-Slot of the block.
type header struct {
	line  int
	value string // unquoted
	quote string // the quote character around the value, or ""
	at    span   // the value token, quotes included
}

// block is the raw content of the slot block.
type block struct {
	start, end  int // marker line numbers
	upstreams   []upstream
	headers     []header
	maintenance bool  // the block holds saved lines: it is in maintenance mode
	saved       []int // line numbers of the saved lines, in order
}

// scan finds the slot block and its upstream and header lines. It fails with
// ErrMarkers or ErrUpstream; it leaves consistency checks to Parse. In
// maintenance mode the upstream and header lines are read from the saved
// lines; the other lines of the block, the maintenance handler, are read as
// Caddy reads them, so that no line of its page counts.
func scan(src []byte) (block, error) {
	var b block
	var page lexer // Caddy's lexer over the maintenance handler
	offset := 0
	for n, raw := range bytes.SplitAfter(src, []byte("\n")) {
		// The line without its end, so that no token runs over it.
		line := strings.TrimSuffix(strings.TrimSuffix(string(raw), "\n"), "\r")
		lineNo, lineStart := n+1, offset
		offset += len(raw)
		if b.maintenance && b.end == 0 && page.inQuotes() {
			page.feed(string(raw)) // a line of the page: nothing in it counts
			continue
		}
		switch markerOf(line) {
		case StartMarker:
			if b.start != 0 {
				return block{}, fmt.Errorf("%w: %s at lines %d and %d; keep exactly one pair of markers around the live upstream",
					ErrMarkers, StartMarker, b.start, lineNo)
			}
			b.start = lineNo
			continue
		case EndMarker:
			if b.end != 0 {
				return block{}, fmt.Errorf("%w: %s at lines %d and %d; keep exactly one pair of markers around the live upstream",
					ErrMarkers, EndMarker, b.end, lineNo)
			}
			if b.start == 0 {
				return block{}, fmt.Errorf("%w: %s at line %d comes before any %s; put the start marker above the live upstream",
					ErrMarkers, EndMarker, lineNo, StartMarker)
			}
			b.end = lineNo
			continue
		}
		if b.start == 0 || b.end != 0 {
			continue
		}
		if content, ok := uncomment(line); ok {
			b.maintenance = true
			b.saved = append(b.saved, lineNo)
			lineStart += len(line) - len(content) // the prefix sits between indent and tokens
			line = content
		} else if b.maintenance {
			page.feed(string(raw))
			continue
		}
		toks := tokens(line)
		if len(toks) == 0 {
			continue
		}
		switch toks[0].text {
		case "reverse_proxy":
			u, err := upstreamOf(toks[1:], lineNo)
			if err != nil {
				return block{}, err
			}
			u.at.start += lineStart
			u.at.end += lineStart
			b.upstreams = append(b.upstreams, u)
		case "header_down":
			if len(toks) >= 3 && strings.EqualFold(toks[1].text, slotHeader) {
				v := toks[2]
				h := header{line: lineNo, value: v.text, at: span{lineStart + v.start, lineStart + v.end}}
				if q := v.text[0]; q == '"' || q == '`' {
					h.quote = string(q)
					h.value = strings.TrimSuffix(v.text[1:], h.quote)
				}
				b.headers = append(b.headers, h)
			}
		}
	}
	switch {
	case b.start == 0 && b.end == 0:
		return block{}, fmt.Errorf("%w: no %s / %s lines; put them around the live reverse_proxy inside the site block",
			ErrMarkers, StartMarker, EndMarker)
	case b.end == 0:
		return block{}, fmt.Errorf("%w: %s at line %d has no %s after it; add the end marker below the live upstream",
			ErrMarkers, StartMarker, b.start, EndMarker)
	case len(b.upstreams) == 0:
		return block{}, fmt.Errorf("%w: no reverse_proxy localhost:<port> between the markers (lines %d-%d); put the live upstream there",
			ErrUpstream, b.start, b.end)
	}
	return b, nil
}

// markerOf returns StartMarker or EndMarker when line is that marker comment
// (the marker word first, anything after it), and "" otherwise.
func markerOf(line string) string {
	rest, ok := strings.CutPrefix(strings.TrimSpace(line), "#")
	if !ok {
		return ""
	}
	words := strings.Fields(rest)
	if len(words) == 0 {
		return ""
	}
	switch words[0] {
	case StartMarker[2:]:
		return StartMarker
	case EndMarker[2:]:
		return EndMarker
	}
	return ""
}

// upstreamOf reads the arguments of a reverse_proxy line: an optional
// matcher, exactly one loopback upstream, an optional "{". The returned span
// is relative to the line.
func upstreamOf(args []token, line int) (upstream, error) {
	if n := len(args); n > 0 && args[n-1].text == "{" {
		args = args[:n-1]
	}
	if len(args) > 0 && isMatcher(args[0].text) {
		args = args[1:]
	}
	if len(args) != 1 {
		return upstream{}, fmt.Errorf("%w: line %d: reverse_proxy has %d upstreams on its line; write exactly one as reverse_proxy localhost:<port>",
			ErrUpstream, line, len(args))
	}
	a := args[0]
	hostPort := strings.TrimPrefix(a.text, "http://")
	host, digits, _ := strings.Cut(hostPort, ":")
	port, err := strconv.Atoi(digits)
	if (host != "localhost" && host != "127.0.0.1") || err != nil || port < 1 || port > 65535 || strings.Trim(digits, "0123456789") != "" {
		return upstream{}, fmt.Errorf("%w: line %d: upstream %q is not localhost:<port> or 127.0.0.1:<port>; only a loopback port can be switched",
			ErrUpstream, line, a.text)
	}
	return upstream{line: line, port: port, at: span{a.end - len(digits), a.end}}, nil
}

// isMatcher reports whether a directive's first argument is a matcher token.
func isMatcher(s string) bool {
	return s == "*" || strings.HasPrefix(s, "/") || strings.HasPrefix(s, "@")
}

// token is one Caddyfile token of a line, with its byte range in the line.
type token struct {
	text       string
	start, end int
}

// tokens splits one Caddyfile line into tokens as Caddy does: separated by
// white space, "..." (with \ escapes) and `...` quoted, and a token starting
// with # begins a comment that runs to the end of the line.
func tokens(line string) []token {
	var out []token
	for i := 0; i < len(line); {
		c := line[i]
		if isSpace(c) {
			i++
			continue
		}
		if c == '#' {
			break
		}
		start := i
		if c == '"' || c == '`' {
			for i++; i < len(line) && line[i] != c; i++ {
				if c == '"' && line[i] == '\\' {
					i++
				}
			}
			i = min(i+1, len(line))
		} else {
			for i < len(line) && !isSpace(line[i]) {
				i++
			}
		}
		out = append(out, token{line[start:i], start, i})
	}
	return out
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// describe lists items as "line 12: 8081, line 20: 8082".
func describe[T any](items []T, f func(T) (int, string)) string {
	parts := make([]string, len(items))
	for i, it := range items {
		line, v := f(it)
		parts[i] = fmt.Sprintf("line %d: %s", line, v)
	}
	return strings.Join(parts, ", ")
}
