// Package app is the composition root of togather-chatops: it turns one
// Config into running parts (store, adapters, bot, Slack connection, HTTP
// endpoint) and runs them. It is shaped so tests can drive a whole bot
// without OS signals: New, then Run until the context ends.
package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/togather-foundation/togather-chatops/bot"
	bslack "github.com/togather-foundation/togather-chatops/bot/slack"
	"github.com/togather-foundation/togather-chatops/incidents/alertmanager"
	"github.com/togather-foundation/togather-chatops/internal/config"
	"github.com/togather-foundation/togather-chatops/ops"
	"github.com/togather-foundation/togather-chatops/store/postgres"
)

// groupCacheTTL is how long user-group membership is trusted.
const groupCacheTTL = 5 * time.Minute

// Options configure an App beyond its Config.
type Options struct {
	Logger zerolog.Logger
	Now    func() time.Time
}

// App is a wired bot.
type App struct {
	cfg      *config.Config
	log      zerolog.Logger
	store    *postgres.Store
	adapter  *bslack.Adapter
	registry *prometheus.Registry
	ops      *Ops
	bot      *bot.Bot
	listener net.Listener
	leader   *leaderMetrics
	ready    atomic.Bool
	now      func() time.Time
}

// New migrates the store, opens it and wires every part. Close releases what
// New opened if Run is never called.
func New(ctx context.Context, cfg *config.Config, o Options) (a *App, err error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	a = &App{cfg: cfg, log: o.Logger, registry: prometheus.NewRegistry(), now: o.Now}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	if err := postgres.MigrateUp(ctx, cfg.Secrets.DatabaseURL); err != nil {
		return nil, fmt.Errorf("migrate the bot's store: %w", err)
	}
	if a.store, err = postgres.Open(ctx, cfg.Secrets.DatabaseURL); err != nil {
		return nil, err
	}
	var b *bot.Bot
	notify := func(op ops.Operation, e ops.JournalEntry) {
		if e.Phase != ops.PhaseBegin {
			o.Logger.Info().Str("op", op.ID).Str("env", op.Env).Str("step", string(e.Step)).Str("phase", string(e.Phase)).Msg(e.Detail)
		}
		if b != nil {
			b.Progress(op, e)
		}
	}
	if a.ops, err = NewOps(cfg, OpsOptions{Store: a.store, Now: o.Now, Notify: notify}); err != nil {
		return nil, err
	}
	a.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := bslack.NewMetrics(a.registry)
	a.leader = newLeaderMetrics(a.registry)

	groups := &lateGroups{}
	b = newBot(cfg, a.store, a.ops, roles(cfg), groups, o)
	a.bot = b
	a.adapter = bslack.New(bslack.Options{
		AppToken:       cfg.Secrets.SlackAppToken,
		BotToken:       cfg.Secrets.SlackBotToken,
		APIURL:         cfg.Slack.APIURL,
		PingInterval:   cfg.Slack.PingInterval,
		Workers:        cfg.Slack.Workers,
		CommandTimeout: cfg.Slack.CommandTimeout,
		EnvelopeTTL:    cfg.Store.EnvelopeTTL,
		Handler:        b,
		Deduper:        a.store,
		Metrics:        metrics,
		Logger:         o.Logger.With().Str("component", "slack").Logger(),
		Now:            o.Now,
	})
	groups.r = a.adapter
	b.SetPoster(a.adapter)
	if a.listener, err = net.Listen("tcp", cfg.HTTP.Listen); err != nil {
		return nil, fmt.Errorf("listen for /metrics on %s: %w", cfg.HTTP.Listen, err)
	}
	return a, nil
}

// roles are the configured roles.
func roles(cfg *config.Config) []bot.Role {
	var list []bot.Role
	for _, r := range cfg.Roles {
		list = append(list, bot.Role{Name: r.Name, Users: r.Users, Groups: r.Groups, Commands: r.Commands, Environments: r.Environments})
	}
	return list
}

// newBot wires the chat core to the store and the environments.
func newBot(cfg *config.Config, store *postgres.Store, o *Ops, roles []bot.Role, groups bot.GroupResolver, opts Options) *bot.Bot {
	return bot.New(bot.Options{
		Environments: cfg.EnvironmentNames(),
		Authorizer:   bot.NewAuthorizer(roles, groups, groupCacheTTL, opts.Now),
		Auditor:      store,
		Status:       o,
		Envs:         chatEnvironments{o},
		Ops:          chatOperations{store},
		Outbox:       store,
		Locks:        store.Locks(),
		Channels: bot.Channels{Deploys: cfg.Channels.Deploys, AlertsWarning: cfg.Channels.AlertsWarning, AlertsCritical: cfg.Channels.AlertsCritical,
			Incidents: cfg.Channels.Incidents, Announcements: cfg.Channels.Announcements, OncallGroup: cfg.Slack.OncallGroup},
		Approvals:        bot.Approvals{TTL: cfg.Policy.ApprovalTTL},
		Alerts:           store,
		Incidents:        store,
		Incident:         incidentPolicy(cfg),
		Secrets:          store,
		SecretPolicy:     cfg.SecretRotation,
		DefaultSecrets:   defaultSecrets(cfg),
		EnvFiles:         chatEnvironments{o},
		Maintenance:      store,
		Sizes:            store,
		MaintenanceRules: maintenanceRules(cfg),
		Pager:            newAlertPager(cfg, store, opts.Now),
		Logger:           opts.Logger,
		Now:              opts.Now,
	})
}

// defaultSecrets are the names of the rotation policy that are the
// default's.
func defaultSecrets(cfg *config.Config) map[string]bool {
	out := map[string]bool{}
	for name := range cfg.SecretRotation {
		if cfg.DefaultSecretRotation(name) {
			out[name] = true
		}
	}
	return out
}

// lateGroups breaks the wiring cycle between the authorizer, which needs a
// group resolver, and the Slack adapter, which provides one and needs the bot.
type lateGroups struct{ r bot.GroupResolver }

func (l *lateGroups) GroupMembers(ctx context.Context, id string) ([]string, error) {
	return l.r.GroupMembers(ctx, id)
}

// Addr is the address of the HTTP endpoint (/metrics, /healthz).
func (a *App) Addr() string { return a.listener.Addr().String() }

// Run serves until ctx ends, then drains in-flight requests and closes
// everything.
func (a *App) Run(ctx context.Context) error {
	defer a.Close()
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", a.healthz)
	mux.Handle("/alertmanager", alertmanager.NewHandler(alertmanager.Options{
		Token: a.cfg.Secrets.AlertmanagerToken,
		Sink:  a.bot.HandleAlert,
		Logf:  func(format string, args ...any) { a.log.Warn().Msgf(format, args...) },
	}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(a.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error().Err(err).Msg("http endpoint stopped")
		}
	}()
	go a.pruneEnvelopes(ctx)
	keeperDone := make(chan struct{})
	go func() { defer close(keeperDone); a.keep(ctx) }()
	a.ready.Store(true)
	a.log.Info().Str("http", a.Addr()).Strs("environments", a.cfg.EnvironmentNames()).Msg("togather-chatops serving")
	err := a.adapter.Run(ctx)
	a.ready.Store(false)
	<-keeperDone
	// The drained operations' last edits are throttled: send them now.
	flushCtx, cancelFlush := context.WithTimeout(context.Background(), flushTimeout)
	defer cancelFlush()
	if ferr := a.bot.FlushProgress(flushCtx); ferr != nil {
		a.log.Warn().Err(ferr).Msg("shutting down with progress edits unsent; the next leader settles them")
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutCtx)
	return err
}

// flushTimeout bounds how long shutdown waits for the last progress and
// outcome edits.
const flushTimeout = 10 * time.Second

func (a *App) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	status := map[string]any{"serving": a.ready.Load(), "slack_connections": a.adapter.Opens()}
	code := http.StatusOK
	if err := a.store.Pool().Ping(ctx); err != nil {
		status["store"] = "unreachable"
		code = http.StatusServiceUnavailable
	} else {
		status["store"] = "ok"
	}
	if !a.ready.Load() {
		code = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(status)
}

// pruneEnvelopes forgets expired envelope ids every hour.
func (a *App) pruneEnvelopes(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if n, err := a.store.PruneEnvelopes(ctx, now); err != nil {
				a.log.Warn().Err(err).Msg("pruning processed envelopes failed")
			} else if n > 0 {
				a.log.Debug().Int64("pruned", n).Msg("pruned processed envelopes")
			}
		}
	}
}

// Close releases the store, the Docker clients and the listener. It is safe
// to call more than once.
func (a *App) Close() {
	if a.listener != nil {
		_ = a.listener.Close()
	}
	if a.ops != nil {
		a.ops.Close()
	}
	if a.store != nil {
		a.store.Close()
		a.store = nil
	}
}
