package caddy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/togather-foundation/togather-chatops/ops"
	"github.com/togather-foundation/togather-chatops/ops/host"
)

// Proxy is one environment's Caddy: its admin API and the Caddyfile it runs.
type Proxy struct {
	admin  string
	path   string
	ports  map[ops.Slot]int
	client *http.Client
	files  host.Files
	mu     sync.Mutex // serialises the read-load-save of Switch and Restore
}

// Option configures a Proxy.
type Option func(*Proxy)

// WithHTTPClient sets the client used for the admin API (default: one with
// a 30 s timeout).
func WithHTTPClient(c *http.Client) Option { return func(p *Proxy) { p.client = c } }

// OnHost reaches the admin API and the Caddyfile on h (default: the bot's
// own machine).
func OnHost(h host.Host) Option {
	return func(p *Proxy) {
		p.client = host.HTTPClient(h, 30*time.Second)
		p.files = h.Files()
	}
}

// New returns the Proxy whose admin API is at adminURL (for example
// http://localhost:2019) and whose configuration is the Caddyfile at
// caddyfilePath; ports is each slot's upstream port. The Caddyfile must keep
// its admin address: it is loaded whole, global options included.
func New(adminURL, caddyfilePath string, ports map[ops.Slot]int, opts ...Option) *Proxy {
	p := &Proxy{
		admin:  strings.TrimSuffix(adminURL, "/"),
		path:   caddyfilePath,
		ports:  maps.Clone(ports),
		client: &http.Client{Timeout: 30 * time.Second},
		files:  host.Local{}.Files(),
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

// LiveSlot returns the slot, and its port, that the Caddyfile sends traffic
// to. A block without X-Togather-Slot header takes the slot of its port; a
// header naming another slot than the port's, or a port of no slot, is
// ErrDrift.
func (p *Proxy) LiveSlot(context.Context) (ops.Slot, int, error) {
	src, err := p.files.ReadFile(p.path)
	if err != nil {
		return "", 0, fmt.Errorf("read caddyfile: %w", err)
	}
	return p.fileSlot(src)
}

// fileSlot is LiveSlot of the Caddyfile src.
func (p *Proxy) fileSlot(src []byte) (ops.Slot, int, error) {
	b, err := Parse(src)
	if err != nil {
		return "", 0, fmt.Errorf("%s: %w", p.path, err)
	}
	portSlot, known := SlotForPort(p.ports, b.Port)
	switch {
	case !known:
		return "", 0, fmt.Errorf("%s: %w: upstream port %d belongs to no slot (blue %d, green %d); switch to a slot to fix it",
			p.path, ErrDrift, b.Port, p.ports[ops.Blue], p.ports[ops.Green])
	case b.Slot != "" && b.Slot != portSlot:
		return "", 0, fmt.Errorf("%s: %w: %s says %s but upstream port %d is %s's; switch to a slot to make them agree",
			p.path, ErrDrift, slotHeader, b.Slot, b.Port, portSlot)
	}
	return portSlot, b.Port, nil
}

// ErrUnsaved: Caddy runs a configuration that is neither the Caddyfile nor
// the Caddyfile switched to a slot, so which slot it serves is unknown.
var ErrUnsaved = errors.New("caddy runs a configuration the Caddyfile does not hold")

// RunningSlot returns the slot, and its port, that Caddy's running
// configuration (GET /config/) serves: the Caddyfile's slot when Caddy runs
// the file, else the slot of the file switched to a slot that Caddy runs —
// a switch interrupted between loading and saving. Anything else is
// ErrUnsaved.
func (p *Proxy) RunningSlot(ctx context.Context) (ops.Slot, int, error) {
	r, err := p.running(ctx)
	if err != nil {
		return "", 0, err
	}
	return r.slot, r.port, nil
}

// SyncFile makes the Caddyfile hold what Caddy runs, since Caddy serves the
// traffic: after a switch interrupted between loading and saving it saves
// the running slot's configuration over the file, atomically. It returns
// what it repaired, "" when the file already held the running
// configuration.
func (p *Proxy) SyncFile(ctx context.Context) (repaired string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, err := p.running(ctx)
	if err != nil {
		return "", fmt.Errorf("sync caddyfile: %w", err)
	}
	if r.unsaved == nil {
		return "", nil
	}
	said := "otherwise"
	if slot, _, err := p.fileSlot(r.saved); err == nil {
		said = string(slot)
	}
	if err := host.WriteFileAtomic(p.files, p.path, r.unsaved, 0o644); err != nil {
		return "", fmt.Errorf("sync caddyfile: Caddy serves %s but saving its configuration over %s failed: %w", r.slot, p.path, err)
	}
	return fmt.Sprintf("Caddy served %s while the Caddyfile said %s (a switch interrupted between loading and saving, or a load by hand): %s now holds Caddy's configuration",
		r.slot, said, p.path), nil
}

// runningConfig is what running found Caddy runs.
type runningConfig struct {
	slot    ops.Slot
	port    int
	saved   []byte // the Caddyfile as read
	unsaved []byte // the file switched to slot, when Caddy runs that instead of saved
}

// running compares Caddy's running configuration with the Caddyfile, then
// with the Caddyfile switched to each slot, each adapted by Caddy (POST
// /adapt), and returns the one Caddy runs.
func (p *Proxy) running(ctx context.Context) (runningConfig, error) {
	cur, err := p.adminJSON(ctx, http.MethodGet, "/config/", nil)
	if err != nil {
		return runningConfig{}, fmt.Errorf("read caddy's running configuration: %w", err)
	}
	saved, err := p.files.ReadFile(p.path)
	if err != nil {
		return runningConfig{}, fmt.Errorf("read caddyfile: %w", err)
	}
	if same, err := p.runs(ctx, cur, saved); err != nil {
		return runningConfig{}, err
	} else if same {
		slot, port, err := p.fileSlot(saved)
		return runningConfig{slot: slot, port: port, saved: saved}, err
	}
	for _, slot := range ops.Slots {
		next, err := Rewrite(saved, slot, p.ports[slot])
		if err != nil || bytes.Equal(next, saved) {
			continue // not switchable (maintenance, markers), or the file itself
		}
		if same, err := p.runs(ctx, cur, next); err != nil {
			return runningConfig{}, err
		} else if same {
			return runningConfig{slot: slot, port: p.ports[slot], saved: saved, unsaved: next}, nil
		}
	}
	return runningConfig{}, fmt.Errorf("%w: it is neither %s nor that file switched to a slot; compare GET %s/config/ with the file",
		ErrUnsaved, p.path, p.admin)
}

// runs reports whether Caddy's running configuration cur is caddyfile as
// Caddy adapts it.
func (p *Proxy) runs(ctx context.Context, cur any, caddyfile []byte) (bool, error) {
	adapted, err := p.adminJSON(ctx, http.MethodPost, "/adapt", caddyfile)
	if err != nil {
		return false, fmt.Errorf("adapt caddyfile: %w", err)
	}
	result, _ := adapted.(map[string]any)
	return reflect.DeepEqual(cur, result["result"]), nil
}

// adminJSON sends a request to the admin API (a Caddyfile as body, when
// given) and decodes its JSON answer.
func (p *Proxy) adminJSON(ctx context.Context, method, path string, caddyfile []byte) (any, error) {
	var body io.Reader
	if caddyfile != nil {
		body = bytes.NewReader(caddyfile)
	}
	req, err := http.NewRequestWithContext(ctx, method, p.admin+path, body)
	if err != nil {
		return nil, err
	}
	if caddyfile != nil {
		req.Header.Set("Content-Type", "text/caddyfile")
	}
	var v any
	if err := p.doDecode(req, &v); err != nil {
		return nil, err
	}
	return v, nil
}

// Switch sends traffic to slot: it rewrites the slot block to the slot's
// port, has Caddy load the result and, only once Caddy has accepted it,
// saves it over the Caddyfile. It returns the Caddyfile as it was, for
// Restore. When Caddy rejects the configuration the error carries Caddy's
// message and the file is left untouched.
func (p *Proxy) Switch(ctx context.Context, slot ops.Slot) (previous []byte, err error) {
	port, ok := p.ports[slot]
	if !ok {
		return nil, fmt.Errorf("switch: no port configured for slot %q", slot)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	previous, err = p.files.ReadFile(p.path)
	if err != nil {
		return nil, fmt.Errorf("switch: read caddyfile: %w", err)
	}
	next, err := Rewrite(previous, slot, port)
	if err != nil {
		return nil, fmt.Errorf("switch to %s: %w", slot, err)
	}
	if err := p.Load(ctx, next); err != nil {
		return nil, fmt.Errorf("switch to %s: %w", slot, err)
	}
	if err := p.save(next); err != nil {
		// Caddy already serves the new slot: hand back the previous
		// configuration so the caller can restore what the file says.
		return previous, fmt.Errorf("switch to %s: %w", slot, err)
	}
	return previous, nil
}

// Restore has Caddy load previous (as returned by Switch) and, once it is
// accepted, saves it over the Caddyfile.
func (p *Proxy) Restore(ctx context.Context, previous []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.apply(ctx, previous); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	return nil
}

// apply loads caddyfile, then saves it.
func (p *Proxy) apply(ctx context.Context, caddyfile []byte) error {
	if err := p.Load(ctx, caddyfile); err != nil {
		return err
	}
	return p.save(caddyfile)
}

// save persists a configuration Caddy has accepted.
func (p *Proxy) save(caddyfile []byte) error {
	if err := host.WriteFileAtomic(p.files, p.path, caddyfile, 0o644); err != nil {
		return fmt.Errorf("caddy runs the new configuration but saving it failed, so the file still holds the old one: %w", err)
	}
	return nil
}

// Load replaces Caddy's running configuration with caddyfile (POST /load,
// adapted by Caddy). It returns once Caddy serves the new configuration.
func (p *Proxy) Load(ctx context.Context, caddyfile []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.admin+"/load", bytes.NewReader(caddyfile))
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	req.Header.Set("Content-Type", "text/caddyfile")
	if err := p.do(req); err != nil {
		return fmt.Errorf("load: %w", err)
	}
	return nil
}

// Ping checks that the admin API answers.
func (p *Proxy) Ping(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.admin+"/config/", nil)
	if err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	if err := p.do(req); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	return nil
}

// do sends req to the admin API and turns any status but 200 into an error
// carrying Caddy's message.
func (p *Proxy) do(req *http.Request) error { return p.doDecode(req, nil) }

// doDecode is do that also decodes the answer into v, unless v is nil.
func (p *Proxy) doDecode(req *http.Request, v any) error {
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("read admin response: %w", err)
	}
	if resp.StatusCode == http.StatusOK {
		if v == nil {
			return nil
		}
		if err := json.Unmarshal(body, v); err != nil {
			return fmt.Errorf("decode admin response of %s: %w", req.URL.Path, err)
		}
		return nil
	}
	msg := strings.TrimSpace(string(body))
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		msg = e.Error
	}
	return fmt.Errorf("caddy admin answered %s: %s", resp.Status, msg)
}
