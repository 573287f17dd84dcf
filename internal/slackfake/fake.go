// Package slackfake is an in-process fake Slack: the Web API methods and the
// Socket Mode link the bot uses, spoken exactly as slack-go v0.35 speaks
// them, so the production client connects to it unchanged. Tests inject
// slash commands, button clicks and modal submissions, inject faults
// (rate limits, API errors, disconnects, lost pings) and observe everything
// the bot posted; the console subcommand uses it as a local demo workspace.
package slackfake

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Option configures a Fake.
type Option func(*config)

type config struct {
	botToken, appToken string
	pingInterval       time.Duration
	users              map[string]User
	groups             map[string][]string
	channels           map[string]Channel
	realisticRate      bool
	logf               func(format string, args ...any)
}

// WithTokens sets the bot (xoxb-…) and app-level (xapp-…) tokens the fake accepts.
func WithTokens(botToken, appToken string) Option {
	return func(c *config) { c.botToken, c.appToken = botToken, appToken }
}

// WithPingInterval sets how often the fake pings each socket (default 200ms).
func WithPingInterval(d time.Duration) Option {
	return func(c *config) { c.pingInterval = d }
}

// WithUsers seeds the users served by users.info.
func WithUsers(users ...User) Option {
	return func(c *config) {
		for _, u := range users {
			c.users[u.ID] = u
		}
	}
}

// WithGroups seeds user groups (group ID → member user IDs) served by
// usergroups.users.list.
func WithGroups(groups map[string][]string) Option {
	return func(c *config) {
		for id, members := range groups {
			c.groups[id] = append([]string(nil), members...)
		}
	}
}

// WithChannels seeds the channels. Without it every channel ID is accepted;
// with it, posting to an unknown channel fails with channel_not_found.
func WithChannels(channels ...Channel) Option {
	return func(c *config) {
		for _, ch := range channels {
			c.channels[ch.ID] = ch
		}
	}
}

// WithRealisticRateLimit turns on Slack's chat.postMessage limit: a token
// bucket per channel of about one message a second with a small burst;
// beyond it the call fails with 429 and Retry-After: 1.
func WithRealisticRateLimit(on bool) Option {
	return func(c *config) { c.realisticRate = on }
}

// WithLogger receives reports of unknown methods, rejections and socket events.
func WithLogger(logf func(format string, args ...any)) Option {
	return func(c *config) { c.logf = logf }
}

// Fake is a running fake Slack. All methods are safe for concurrent use.
type Fake struct {
	cfg    config
	srv    *http.Server
	url    string
	tsBase int64
	seq    atomic.Int64
	noPing atomic.Bool
	wg     sync.WaitGroup

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every state change
	closed  bool

	// Socket Mode.
	links     map[int]*link
	cur       *link
	lastLink  int
	pending   [][]byte
	envelopes map[string]*envelope
	acks      []Ack

	// Web API.
	calls      []Call
	unknown    []Call
	rejections []Rejection
	faults     map[string][]fault
	buckets    map[string]*bucket

	// Workspace state.
	msgs      []*Message
	responses []ResponsePost
	respURLs  map[string]*responseURL
	triggers  map[string]trigger
	views     []*View
	uploads   []*Upload
	subs      map[*subscriber]struct{}
}

// New starts a fake Slack on a loopback port.
func New(opts ...Option) *Fake {
	cfg := config{
		botToken:     "xoxb-fake-bot-token",
		appToken:     "xapp-1-fake-app-token",
		pingInterval: 200 * time.Millisecond,
		users:        map[string]User{},
		groups:       map[string][]string{},
		channels:     map[string]Channel{},
		logf:         func(string, ...any) {},
	}
	for _, o := range opts {
		o(&cfg)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("slackfake: listen on loopback: %v", err))
	}
	f := &Fake{
		cfg:       cfg,
		url:       "http://" + ln.Addr().String(),
		tsBase:    time.Now().Unix(),
		changed:   make(chan struct{}),
		links:     map[int]*link{},
		envelopes: map[string]*envelope{},
		faults:    map[string][]fault{},
		buckets:   map[string]*bucket{},
		respURLs:  map[string]*responseURL{},
		triggers:  map[string]trigger{},
		subs:      map[*subscriber]struct{}{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/{method}", f.serveAPI)
	mux.HandleFunc("/link/", f.serveLink)
	mux.HandleFunc("POST /response/{id}", f.serveResponse)
	mux.HandleFunc("POST /upload/{id}", f.serveUpload)
	f.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	f.wg.Go(func() { _ = f.srv.Serve(ln) })
	return f
}

// Close stops the server, drops every socket and ends every subscription.
func (f *Fake) Close() {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	f.closed = true
	links := make([]*link, 0, len(f.links))
	for _, l := range f.links {
		links = append(links, l)
	}
	subs := make([]*subscriber, 0, len(f.subs))
	for s := range f.subs {
		subs = append(subs, s)
	}
	f.notify()
	f.mu.Unlock()
	_ = f.srv.Close()
	for _, l := range links {
		l.stop()
	}
	for _, s := range subs {
		s.cancel()
	}
	f.wg.Wait()
}

// URL is the server's base URL (http://127.0.0.1:PORT).
func (f *Fake) URL() string { return f.url }

// APIURL is the Web API base URL for slack.OptionAPIURL; it ends in "/api/".
func (f *Fake) APIURL() string { return f.url + "/api/" }

// BotToken is the bot token (xoxb-…) the fake accepts.
func (f *Fake) BotToken() string { return f.cfg.botToken }

// AppToken is the app-level token (xapp-…) the fake accepts.
func (f *Fake) AppToken() string { return f.cfg.appToken }

// notify wakes every waiter. Call with f.mu held.
func (f *Fake) notify() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// await blocks until check, run with f.mu held, reports true or ctx ends.
func (f *Fake) await(ctx context.Context, what string, check func() bool) error {
	for {
		f.mu.Lock()
		ok, ch, closed := check(), f.changed, f.closed
		f.mu.Unlock()
		if ok {
			return nil
		}
		if closed {
			return fmt.Errorf("wait for %s: fake closed", what)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w", what, context.Cause(ctx))
		case <-ch:
		}
	}
}

// nextTS returns a unique, increasing message timestamp.
func (f *Fake) nextTS() string {
	n := f.seq.Add(1)
	return fmt.Sprintf("%d.%06d", f.tsBase+n/1e6, n%1e6)
}

// nextID returns a unique identifier with the given prefix, e.g. V0000012.
func (f *Fake) nextID(prefix string) string {
	return fmt.Sprintf("%s%07d", prefix, f.seq.Add(1))
}

// randomID returns a UUID-shaped random string, as Slack uses for envelopes.
func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
