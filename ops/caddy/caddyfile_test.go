package caddy_test

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/togather-foundation/togather-chatops/ops"
	"github.com/togather-foundation/togather-chatops/ops/caddy"
)

// production is the layout of Togather's Caddyfile.production: one upstream
// with an active health check, comments inside the block that mention ports.
const production = `# Togather Server Caddyfile - PRODUCTION Environment
{
	email admin@togather.foundation
	admin localhost:2019
}

toronto.togather.foundation {
	@metrics_block {
		path /metrics
		not remote_ip 127.0.0.1 ::1
	}
	respond @metrics_block "Forbidden" 403

	# BLUE_GREEN_SLOT_START - Managed by deployment script (do not remove this marker)
	# Reverse proxy to active slot
	# Current: Blue slot (port 8081)
	# To switch to green: Change to localhost:8082
	reverse_proxy localhost:8081 {
		health_uri /health
		health_interval 10s
		health_timeout 5s
		health_status 2xx

		header_up Host {host}
		header_up X-Real-IP {remote_host}
		transport http {
			keepalive off
		}

		# Update this when switching slots: "blue" or "green"
		header_down X-Togather-Slot "blue"
	}
	# BLUE_GREEN_SLOT_END - Managed by deployment script (do not remove this marker)

	encode gzip
}
`

// productionGreen is production switched to green by hand: only the
// upstream port and the header value differ.
const productionGreen = `# Togather Server Caddyfile - PRODUCTION Environment
{
	email admin@togather.foundation
	admin localhost:2019
}

toronto.togather.foundation {
	@metrics_block {
		path /metrics
		not remote_ip 127.0.0.1 ::1
	}
	respond @metrics_block "Forbidden" 403

	# BLUE_GREEN_SLOT_START - Managed by deployment script (do not remove this marker)
	# Reverse proxy to active slot
	# Current: Blue slot (port 8081)
	# To switch to green: Change to localhost:8082
	reverse_proxy localhost:8082 {
		health_uri /health
		health_interval 10s
		health_timeout 5s
		health_status 2xx

		header_up Host {host}
		header_up X-Real-IP {remote_host}
		transport http {
			keepalive off
		}

		# Update this when switching slots: "blue" or "green"
		header_down X-Togather-Slot "green"
	}
	# BLUE_GREEN_SLOT_END - Managed by deployment script (do not remove this marker)

	encode gzip
}
`

// staging has an SSE handle (without the slot header) and the main upstream
// inside the block, and loopback upstreams and a slot header outside it.
const staging = `{
	admin localhost:2019
}

staging.toronto.togather.foundation {
	handle_path /grafana/* {
		reverse_proxy localhost:3000
	}

	# BLUE_GREEN_SLOT_START
	handle /api/v1/admin/scraper/events {
		reverse_proxy localhost:8082 {
			flush_interval -1
		}
	}
	reverse_proxy localhost:8082 {
		header_down X-Togather-Slot "green"
	}
	# BLUE_GREEN_SLOT_END
}

old.example {
	reverse_proxy localhost:8082
	header_down X-Togather-Slot "green"
}
`

const stagingBlue = `{
	admin localhost:2019
}

staging.toronto.togather.foundation {
	handle_path /grafana/* {
		reverse_proxy localhost:3000
	}

	# BLUE_GREEN_SLOT_START
	handle /api/v1/admin/scraper/events {
		reverse_proxy localhost:8081 {
			flush_interval -1
		}
	}
	reverse_proxy localhost:8081 {
		header_down X-Togather-Slot "blue"
	}
	# BLUE_GREEN_SLOT_END
}

old.example {
	reverse_proxy localhost:8082
	header_down X-Togather-Slot "green"
}
`

// site wraps the lines of a slot block in a small Caddyfile: the start
// marker is line 5, the end marker line 6+len(block).
func site(block ...string) string {
	return "{\n\tadmin localhost:2019\n}\nexample.com {\n\t# BLUE_GREEN_SLOT_START\n" +
		strings.Join(block, "\n") + "\n\t# BLUE_GREEN_SLOT_END\n}\n"
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    caddy.Block
		wantErr error  // the kind, for errors.Is
		errText string // part of the message
	}{
		{name: "production", in: production,
			want: caddy.Block{Slot: ops.Blue, Port: 8081, Ports: []int{8081}, Start: 14, End: 33}},
		{name: "sse and main, header on one", in: staging,
			want: caddy.Block{Slot: ops.Green, Port: 8082, Ports: []int{8082, 8082}, Start: 10, End: 19}},
		{name: "no header, 127.0.0.1", in: site("\treverse_proxy 127.0.0.1:8081"),
			want: caddy.Block{Port: 8081, Ports: []int{8081}, Start: 5, End: 7}},
		{name: "matcher and scheme", in: site("\treverse_proxy /api/* http://localhost:9001 {", "\t}"),
			want: caddy.Block{Port: 9001, Ports: []int{9001}, Start: 5, End: 8}},
		{name: "named matcher", in: site("\treverse_proxy @sse localhost:9001"),
			want: caddy.Block{Port: 9001, Ports: []int{9001}, Start: 5, End: 7}},
		{name: "unquoted header", in: site("\treverse_proxy localhost:8082 {", "\t\theader_down x-togather-slot green", "\t}"),
			want: caddy.Block{Slot: ops.Green, Port: 8082, Ports: []int{8082}, Start: 5, End: 9}},
		{name: "comments ignored", in: site("\t# reverse_proxy localhost:9999", "\treverse_proxy localhost:8081 # not localhost:9999", "\t#header_down X-Togather-Slot \"green\""),
			want: caddy.Block{Port: 8081, Ports: []int{8081}, Start: 5, End: 9}},
		{name: "CRLF", in: strings.ReplaceAll(production, "\n", "\r\n"),
			want: caddy.Block{Slot: ops.Blue, Port: 8081, Ports: []int{8081}, Start: 14, End: 33}},
		{name: "marker without space", in: "#BLUE_GREEN_SLOT_START\nreverse_proxy localhost:1\n\t#  BLUE_GREEN_SLOT_END\tnote\n",
			want: caddy.Block{Port: 1, Ports: []int{1}, Start: 1, End: 3}},

		{name: "no markers", in: "example.com {\n\treverse_proxy localhost:8081\n}\n",
			wantErr: caddy.ErrMarkers, errText: "no # BLUE_GREEN_SLOT_START / # BLUE_GREEN_SLOT_END lines"},
		{name: "marker mentioned in a comment only", in: "# keep the BLUE_GREEN_SLOT_START marker\nreverse_proxy localhost:8081\n",
			wantErr: caddy.ErrMarkers, errText: "no # BLUE_GREEN_SLOT_START"},
		{name: "start only", in: "# BLUE_GREEN_SLOT_START\nreverse_proxy localhost:8081\n",
			wantErr: caddy.ErrMarkers, errText: "line 1 has no # BLUE_GREEN_SLOT_END after it"},
		{name: "end only", in: "reverse_proxy localhost:8081\n# BLUE_GREEN_SLOT_END\n",
			wantErr: caddy.ErrMarkers, errText: "# BLUE_GREEN_SLOT_END at line 2 comes before any # BLUE_GREEN_SLOT_START"},
		{name: "end before start", in: "# BLUE_GREEN_SLOT_END\nreverse_proxy localhost:8081\n# BLUE_GREEN_SLOT_START\n",
			wantErr: caddy.ErrMarkers, errText: "comes before"},
		{name: "two starts", in: site("\t# BLUE_GREEN_SLOT_START", "\treverse_proxy localhost:8081"),
			wantErr: caddy.ErrMarkers, errText: "# BLUE_GREEN_SLOT_START at lines 5 and 6"},
		{name: "two pairs", in: site("\treverse_proxy localhost:8081") + site("\treverse_proxy localhost:8081"),
			wantErr: caddy.ErrMarkers, errText: "at lines 5 and 13"},
		{name: "no upstream", in: site("\trespond 503"),
			wantErr: caddy.ErrUpstream, errText: "no reverse_proxy localhost:<port> between the markers (lines 5-7)"},
		{name: "upstream only outside", in: "reverse_proxy localhost:8081\n" + site(),
			wantErr: caddy.ErrUpstream, errText: "no reverse_proxy"},
		{name: "container upstream", in: site("\treverse_proxy togather-server-blue:8080"),
			wantErr: caddy.ErrUpstream, errText: `line 6: upstream "togather-server-blue:8080" is not localhost:<port>`},
		{name: "two upstreams", in: site("\treverse_proxy localhost:8081 localhost:8082"),
			wantErr: caddy.ErrUpstream, errText: "line 6: reverse_proxy has 2 upstreams"},
		{name: "upstreams in a to subdirective", in: site("\treverse_proxy {", "\t\tto localhost:8081", "\t}"),
			wantErr: caddy.ErrUpstream, errText: "has 0 upstreams"},
		{name: "port out of range", in: site("\treverse_proxy localhost:80810"),
			wantErr: caddy.ErrUpstream, errText: `"localhost:80810"`},
		{name: "signed port", in: site("\treverse_proxy localhost:+8081"),
			wantErr: caddy.ErrUpstream, errText: `"localhost:+8081"`},
		{name: "placeholder port", in: site("\treverse_proxy localhost:{$PORT}"),
			wantErr: caddy.ErrUpstream, errText: "only a loopback port can be switched"},
		{name: "ports differ", in: site("\treverse_proxy /events localhost:8081", "\treverse_proxy localhost:8082"),
			want:    caddy.Block{Port: 8081, Ports: []int{8081, 8082}, Start: 5, End: 8},
			wantErr: caddy.ErrDrift, errText: "different ports (line 6: 8081, line 7: 8082)"},
		{name: "header names no slot", in: site("\treverse_proxy localhost:8081 {", "\t\theader_down X-Togather-Slot \"purple\"", "\t}"),
			want:    caddy.Block{Port: 8081, Ports: []int{8081}, Start: 5, End: 9},
			wantErr: caddy.ErrDrift, errText: `line 7: X-Togather-Slot is "purple"`},
		{name: "headers differ", in: site(
			"\treverse_proxy /events localhost:8081 {", "\t\theader_down X-Togather-Slot \"blue\"", "\t}",
			"\treverse_proxy localhost:8081 {", "\t\theader_down X-Togather-Slot \"green\"", "\t}"),
			want:    caddy.Block{Port: 8081, Ports: []int{8081, 8081}, Start: 5, End: 12},
			wantErr: caddy.ErrDrift, errText: "headers name different slots (line 7: blue, line 10: green)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := caddy.Parse([]byte(tt.in))
			if tt.wantErr == nil && err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.errText) {
					t.Fatalf("Parse error = %v, want %v containing %q", err, tt.wantErr, tt.errText)
				}
			}
			if got.Slot != tt.want.Slot || got.Port != tt.want.Port || !slices.Equal(got.Ports, tt.want.Ports) ||
				got.Start != tt.want.Start || got.End != tt.want.End {
				t.Errorf("Parse = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestSlotForPort(t *testing.T) {
	ports := map[ops.Slot]int{ops.Blue: 8081, ops.Green: 8082}
	tests := []struct {
		ports  map[ops.Slot]int
		port   int
		want   ops.Slot
		wantOK bool
	}{
		{ports, 8081, ops.Blue, true},
		{ports, 8082, ops.Green, true},
		{ports, 8083, "", false},
		{nil, 8081, "", false},
		{map[ops.Slot]int{ops.Green: 9000}, 9000, ops.Green, true},
	}
	for _, tt := range tests {
		got, ok := caddy.SlotForPort(tt.ports, tt.port)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("SlotForPort(%v, %d) = %q, %v; want %q, %v", tt.ports, tt.port, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestRewrite(t *testing.T) {
	tests := []struct {
		name string
		in   string
		slot ops.Slot
		port int
		want string
	}{
		{"production to green", production, ops.Green, 8082, productionGreen},
		{"production to blue is unchanged", production, ops.Blue, 8081, production},
		{"green back to blue", productionGreen, ops.Blue, 8081, production},
		{"every upstream in the block, nothing outside", staging, ops.Blue, 8081, stagingBlue},
		{"CRLF kept", strings.ReplaceAll(production, "\n", "\r\n"), ops.Green, 8082, strings.ReplaceAll(productionGreen, "\n", "\r\n")},
		{"host, scheme and quoting kept",
			site("\treverse_proxy @sse http://127.0.0.1:8081 {", "\t\theader_down X-Togather-Slot blue", "\t}",
				"\treverse_proxy localhost:8081 {", "\t\theader_down X-Togather-Slot `blue`", "\t}"),
			ops.Green, 9999,
			site("\treverse_proxy @sse http://127.0.0.1:9999 {", "\t\theader_down X-Togather-Slot green", "\t}",
				"\treverse_proxy localhost:9999 {", "\t\theader_down X-Togather-Slot `green`", "\t}")},
		{"drift repaired",
			site("\treverse_proxy /events localhost:8081 {", "\t\theader_down X-Togather-Slot \"purple\"", "\t}",
				"\treverse_proxy localhost:08082 {", "\t\theader_down X-Togather-Slot \"blue\"", "\t}"),
			ops.Green, 8082,
			site("\treverse_proxy /events localhost:8082 {", "\t\theader_down X-Togather-Slot \"green\"", "\t}",
				"\treverse_proxy localhost:8082 {", "\t\theader_down X-Togather-Slot \"green\"", "\t}")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := caddy.Rewrite([]byte(tt.in), tt.slot, tt.port)
			if err != nil {
				t.Fatalf("Rewrite: %v", err)
			}
			if string(got) != tt.want {
				t.Fatalf("Rewrite =\n%s\nwant\n%s", got, tt.want)
			}
			again, err := caddy.Rewrite(got, tt.slot, tt.port)
			if err != nil || !bytes.Equal(again, got) {
				t.Errorf("second Rewrite changed the result (err %v):\n%s", err, again)
			}
			b, err := caddy.Parse(got)
			if err != nil || b.Port != tt.port || b.Slot != tt.slot {
				t.Errorf("Parse(Rewrite) = %+v, %v; want slot %s port %d", b, err, tt.slot, tt.port)
			}
		})
	}
}

func TestRewriteErrors(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		slot    ops.Slot
		port    int
		wantErr error
		errText string
	}{
		{"unknown slot", production, "purple", 8082, nil, `unknown slot "purple"`},
		{"port zero", production, ops.Green, 0, nil, "port 0 out of range"},
		{"port too high", production, ops.Green, 65536, nil, "port 65536 out of range"},
		{"no markers", "example.com {\n\treverse_proxy localhost:8081\n}\n", ops.Green, 8082, caddy.ErrMarkers, "no # BLUE_GREEN_SLOT_START"},
		{"container upstream", site("\treverse_proxy app:8080"), ops.Green, 8082, caddy.ErrUpstream, `"app:8080"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := caddy.Rewrite([]byte(tt.in), tt.slot, tt.port)
			if err == nil || !strings.Contains(err.Error(), tt.errText) || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Fatalf("Rewrite error = %v, want %v containing %q", err, tt.wantErr, tt.errText)
			}
			if got != nil {
				t.Errorf("Rewrite returned %q with its error", got)
			}
		})
	}
}

// FuzzParse checks that Parse never panics and classifies every error, and
// that whatever Parse accepts, or finds drifted, Rewrite turns into a block
// that parses to the new port and slot, touching nothing outside it (or, in
// maintenance mode, refuses with ErrMaintenance).
func FuzzParse(f *testing.F) {
	for _, s := range []string{production, productionGreen, staging, site("\treverse_proxy localhost:8081"),
		site("\treverse_proxy localhost:8081 localhost:1"), site("\treverse_proxy /x http://127.0.0.1:1 {", "\t\theader_down X-Togather-Slot `blue", "\t}"),
		"# BLUE_GREEN_SLOT_END\n# BLUE_GREEN_SLOT_START\n", site("\theader_down X-Togather-Slot \"a\\\"b\""), "\r\n#BLUE_GREEN_SLOT_START\r\n",
		site("\t# togather-maintenance: reverse_proxy localhost:8081", "\trespond * `# BLUE_GREEN_SLOT_END", "` 503")} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		b, err := caddy.Parse(in)
		structural := errors.Is(err, caddy.ErrMarkers) || errors.Is(err, caddy.ErrUpstream)
		if err != nil && !structural && !errors.Is(err, caddy.ErrDrift) {
			t.Fatalf("Parse error of no known kind: %v", err)
		}
		out, rerr := caddy.Rewrite(in, ops.Green, 8082)
		if b.Maintenance {
			if !errors.Is(rerr, caddy.ErrMaintenance) {
				t.Fatalf("Rewrite in maintenance mode = %v, want ErrMaintenance", rerr)
			}
			return
		}
		if structural {
			if rerr == nil {
				t.Fatalf("Parse failed with %v but Rewrite succeeded", err)
			}
			return
		}
		if rerr != nil {
			t.Fatalf("Parse gave %v but Rewrite failed: %v", err, rerr)
		}
		nb, err := caddy.Parse(out)
		if err != nil || nb.Port != 8082 || (nb.Slot != ops.Green && nb.Slot != "") || nb.Start != b.Start || nb.End != b.End {
			t.Fatalf("Parse(Rewrite) = %+v, %v; want port 8082, lines %d-%d", nb, err, b.Start, b.End)
		}
		if again, _ := caddy.Rewrite(out, ops.Green, 8082); !bytes.Equal(again, out) {
			t.Fatalf("Rewrite is not idempotent:\n%q\n%q", out, again)
		}
		inLines, outLines := bytes.SplitAfter(in, []byte("\n")), bytes.SplitAfter(out, []byte("\n"))
		if len(inLines) != len(outLines) {
			t.Fatalf("Rewrite changed the line count from %d to %d", len(inLines), len(outLines))
		}
		for i := range inLines {
			if (i+1 <= b.Start || i+1 >= b.End) && !bytes.Equal(inLines[i], outLines[i]) {
				t.Fatalf("Rewrite changed line %d outside the block: %q -> %q", i+1, inLines[i], outLines[i])
			}
		}
	})
}
