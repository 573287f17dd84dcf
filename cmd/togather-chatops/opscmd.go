package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/user"
	"strings"
	"sync"
	"time"

	"github.com/togather-foundation/togather-chatops/bot"
	"github.com/togather-foundation/togather-chatops/internal/app"
	"github.com/togather-foundation/togather-chatops/internal/config"
	"github.com/togather-foundation/togather-chatops/ops"
	"github.com/togather-foundation/togather-chatops/store/postgres"
)

// opsSession is what a terminal operation needs: the store, the wired
// environment and who is asking.
type opsSession struct {
	cfg   *config.Config
	store *postgres.Store
	ops   *app.Ops
	env   *app.EnvOps
	actor string
}

func (s *opsSession) Close() {
	s.ops.Close()
	s.store.Close()
}

// openOps loads the configuration, opens (and migrates) the bot's store and
// wires the environment; each journal entry goes to out as it is written.
func openOps(ctx context.Context, path, env string, out io.Writer) (*opsSession, error) {
	cfg, err := loadConfig(path, config.EnvDatabaseURL)
	if err != nil {
		return nil, err
	}
	if err := postgres.MigrateUp(ctx, cfg.Secrets.DatabaseURL); err != nil {
		return nil, fmt.Errorf("the bot's store: %w", err)
	}
	store, err := postgres.Open(ctx, cfg.Secrets.DatabaseURL)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	notify := func(op ops.Operation, e ops.JournalEntry) {
		if e.Phase == ops.PhaseBegin {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(out, "%s  %-15s %-4s %s\n", e.At.Local().Format("15:04:05"), e.Step, e.Phase, e.Detail)
	}
	o, err := app.NewOps(cfg, app.OpsOptions{Store: store, Notify: notify})
	if err != nil {
		store.Close()
		return nil, err
	}
	eo, err := o.Env(env)
	if err != nil {
		o.Close()
		store.Close()
		return nil, usageError{fmt.Sprintf("unknown environment %q (configured: %s)", env, strings.Join(cfg.EnvironmentNames(), ", "))}
	}
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return &opsSession{cfg: cfg, store: store, ops: o, env: eo, actor: "cli:" + name}, nil
}

// audit records a terminal action; the terminal is trusted like a shell on
// the host, but what it does, or what refused it, is still on the record.
func (s *opsSession) audit(ctx context.Context, action string, d bot.Decision, detail string) {
	_ = s.store.Audit(ctx, bot.AuditEntry{At: time.Now(), Actor: s.actor, Action: action, Environment: s.env.Env.Name, Decision: d, Detail: detail})
}

func runPreflight(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, path := flagSet("preflight", "preflight <env> <version> [--json] [--allow-destructive REASON] [--override-window REASON]", stderr)
	asJSON := fs.Bool("json", false, "print the report as JSON")
	destructive := fs.String("allow-destructive", "", "accept destructive migrations, giving the reason")
	override := fs.String("override-window", "", "deploy outside the window, giving the reason")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return usageError{"want: preflight <env> <version>"}
	}
	version, err := bot.NormaliseVersion(fs.Arg(1))
	if err != nil {
		return usageError{err.Error()}
	}
	s, err := openOps(ctx, *path, fs.Arg(0), stderr)
	if err != nil {
		return err
	}
	defer s.Close()
	r, err := preflight(ctx, s, version, *destructive, *override)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(stdout, bot.RenderPreflight(r).PlainText())
	}
	if r.Verdict() == ops.CheckFail {
		return errors.New("pre-flight failed: fix the blocking checks above")
	}
	return nil
}

func preflight(ctx context.Context, s *opsSession, version, destructive, override string) (ops.Report, error) {
	return s.env.Preflight.Run(ctx, ops.PreflightRequest{Env: s.env.Env.Name, Version: version, AllowDestructive: destructive, OverrideWindow: override, Now: time.Now()})
}

func runDeploy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, path := flagSet("deploy", "deploy <env> <version> [--reason R] [--dry-run] [--no-wait] [--allow-destructive R] [--override-window R]", stderr)
	reason := fs.String("reason", "", "why (recorded in the journal and the audit log)")
	dryRun := fs.Bool("dry-run", false, "run the pre-flight checks only; never changes anything")
	noWait := fs.Bool("no-wait", false, "return after the switch instead of watching the new slot through the bake window")
	destructive := fs.String("allow-destructive", "", "accept destructive migrations, giving the reason")
	override := fs.String("override-window", "", "deploy outside the window, giving the reason")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return usageError{"want: deploy <env> <version>"}
	}
	version, err := bot.NormaliseVersion(fs.Arg(1))
	if err != nil {
		return usageError{err.Error()}
	}
	s, err := openOps(ctx, *path, fs.Arg(0), stdout)
	if err != nil {
		return err
	}
	defer s.Close()
	r, err := preflight(ctx, s, version, *destructive, *override)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, bot.RenderPreflight(r).PlainText())
	failed := r.Verdict() == ops.CheckFail
	if failed && !*dryRun {
		op := ops.RefusedDeploy(r, s.actor, *reason, nil, time.Now())
		if err := s.store.Create(ctx, op); err != nil {
			fmt.Fprintf(stderr, "the refused deploy is not in the history: %v\n", err)
		}
		s.audit(ctx, "deploy", bot.Denied, fmt.Sprintf("%s %s (%s)", version, op.Error, op.ID))
	}
	if failed {
		return errors.New("pre-flight failed: nothing was deployed; fix the blocking checks above")
	}
	if *dryRun {
		fmt.Fprintln(stdout, "dry run: nothing was changed")
		return nil
	}
	s.audit(ctx, "deploy", bot.Allowed, fmt.Sprintf("version %s, report %s, reason %q", version, r.Hash, *reason))
	op, err := s.env.Deployer.Deploy(ctx, ops.DeployRequest{Version: version, Requester: s.actor, Reason: *reason, ImageID: r.ImageID})
	fmt.Fprintln(stdout, bot.RenderOperationEnd(op).PlainText())
	if err != nil {
		return fmt.Errorf("deploy failed: %w", err)
	}
	if *noWait {
		fmt.Fprintf(stdout, "not watching: `togather-chatops serve` (or `bake %s %s`) stops %s after the bake window\n", s.env.Env.Name, op.ID, op.FromSlot)
	} else {
		fmt.Fprintf(stdout, "watching %s; %s stays warm until %s (Ctrl-C stops watching; serve resumes it)\n", op.ToSlot, op.FromSlot, op.BakeUntil.Local().Format(time.TimeOnly))
		if err := bake(ctx, s, op.ID); err != nil {
			return err
		}
	}
	if op.AfterSwitchErr != nil {
		return liveError{fmt.Sprintf("the deploy is live (%s serves %s), but %v: run it again by hand (docs/operations.md, Release commands, says how)", op.ToSlot, op.Version, op.AfterSwitchErr)}
	}
	return nil
}

func bake(ctx context.Context, s *opsSession, id string) error {
	err := s.env.Deployer.Bake(ctx, id)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

func runBake(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, path := flagSet("bake", "bake <env> <operation-id>", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return usageError{"want: bake <env> <operation-id>"}
	}
	s, err := openOps(ctx, *path, fs.Arg(0), stdout)
	if err != nil {
		return err
	}
	defer s.Close()
	return bake(ctx, s, fs.Arg(1))
}

func runRollback(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, path := flagSet("rollback", "rollback <env> --reason R [--force] [--restore-snapshot]", stderr)
	reason := fs.String("reason", "", "why (required)")
	force := fs.Bool("force", false, "skip the health gate of the previous slot")
	restore := fs.Bool("restore-snapshot", false, "restore the last deploy's pre-deploy snapshot with the previous slot, behind the 503 page")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"want: rollback <env> --reason R"}
	}
	if strings.TrimSpace(*reason) == "" {
		return usageError{"--reason is required: say why, it goes to the journal and the audit log"}
	}
	s, err := openOps(ctx, *path, fs.Arg(0), stdout)
	if err != nil {
		return err
	}
	defer s.Close()
	s.audit(ctx, "rollback", bot.Allowed, fmt.Sprintf("force=%v restore-snapshot=%v reason %q", *force, *restore, *reason))
	op, err := s.env.Deployer.Rollback(ctx, ops.RollbackRequest{Requester: s.actor, Reason: *reason, Force: *force, RestoreSnapshot: *restore})
	fmt.Fprintln(stdout, bot.RenderOperationEnd(op).PlainText())
	if err != nil {
		return fmt.Errorf("rollback failed: %w", err)
	}
	return nil
}

func runReconcile(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, path := flagSet("reconcile", "reconcile <env> [--wait]", stderr)
	wait := fs.Bool("wait", true, "wait for the lease of an interrupted operation to run out, then recover it")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"want: reconcile <env>"}
	}
	// Each recovered operation is printed whole below, with the journal it
	// had before the interruption, so the entries are not also streamed.
	s, err := openOps(ctx, *path, fs.Arg(0), io.Discard)
	if err != nil {
		return err
	}
	defer s.Close()
	waiting := waitNotice{out: stdout, every: 30 * time.Second}
	for {
		done, err := s.env.Deployer.Recover(ctx)
		for _, op := range done {
			fmt.Fprintln(stdout, bot.RenderOperation(op).PlainText())
		}
		if err == nil || !errors.Is(err, ops.ErrStillRunning) || !*wait {
			if err == nil && len(done) == 0 {
				fmt.Fprintln(stdout, "no unfinished operation")
			}
			if err != nil {
				return err
			}
			break
		}
		waiting.show(err.Error(), time.Now())
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	st, err := s.ops.Status(ctx, s.env.Env.Name)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, bot.RenderStatus(st).PlainText())
	return nil
}

// waitNotice prints why a command waits: when the wait starts, when the
// reason changes, and otherwise at most once per every, not at every poll.
type waitNotice struct {
	out    io.Writer
	every  time.Duration
	reason string
	at     time.Time
}

func (w *waitNotice) show(reason string, now time.Time) {
	if reason == w.reason && now.Sub(w.at) < w.every {
		return
	}
	w.reason, w.at = reason, now
	fmt.Fprintf(w.out, "%s; waiting\n", reason)
}

func runHistory(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, path := flagSet("history", "history <env> [--limit 10]", stderr)
	limit := fs.Int("limit", 10, "how many operations")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"want: history <env>"}
	}
	s, err := openOps(ctx, *path, fs.Arg(0), stdout)
	if err != nil {
		return err
	}
	defer s.Close()
	hist, err := s.store.History(ctx, s.env.Env.Name, *limit)
	if err != nil {
		return err
	}
	if len(hist) == 0 {
		fmt.Fprintln(stdout, "no operations yet")
	}
	for _, op := range hist {
		fmt.Fprintf(stdout, "%s  %-8s %-12s %-15s %-20s %-6s %s\n", op.CreatedAt.Local().Format("2006-01-02 15:04"), op.Kind, op.Version, op.State, op.Requester, op.UpdatedAt.Sub(op.CreatedAt).Round(time.Second), op.ID)
	}
	return nil
}

func runSnapshot(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, path := flagSet("snapshot", "snapshot create <env> [--reason R] | list <env> [--json] | restore <env> <name> --confirm | prune <env> [--dry-run] | verify <env> <name>", stderr)
	reason := fs.String("reason", "manual", "create: why, goes into the file name")
	asJSON := fs.Bool("json", false, "list: print JSON")
	confirm := fs.Bool("confirm", false, "restore: really overwrite the database")
	dryRun := fs.Bool("dry-run", false, "prune: only say what would be deleted")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	want := map[string]int{"create": 2, "list": 2, "restore": 3, "prune": 2, "verify": 3}
	if fs.NArg() == 0 || want[fs.Arg(0)] != fs.NArg() {
		fs.Usage()
		return usageError{"want one of: create <env>, list <env>, restore <env> <name>, prune <env>, verify <env> <name>"}
	}
	action := fs.Arg(0)
	if action == "restore" && !*confirm {
		return usageError{"restore overwrites the database of " + fs.Arg(1) + ": add --confirm to go ahead"}
	}
	s, err := openOps(ctx, *path, fs.Arg(1), stdout)
	if err != nil {
		return err
	}
	defer s.Close()
	progress := func(p ops.Progress) {
		rate := float64(p.Bytes) / max(p.Elapsed.Seconds(), 0.001) / (1 << 20)
		fmt.Fprintf(stderr, "\r%8.1f MB  %6.1f MB/s  %s", float64(p.Bytes)/(1<<20), rate, p.Elapsed.Round(time.Second))
	}
	snaps := s.env.Snapshots
	switch action {
	case "create":
		s.audit(ctx, "snapshot.create", bot.Allowed, *reason)
		info, err := snaps.Create(ctx, *reason, progress)
		fmt.Fprintln(stderr)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s  %.1f MB  sha256 %s\n", info.Path, float64(info.Size)/(1<<20), info.SHA256)
	case "list":
		list, err := snaps.List(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(stdout).Encode(list)
		}
		for _, i := range list {
			fmt.Fprintf(stdout, "%-60s %8.1f MB  %s  expires %s\n", i.Name, float64(i.Size)/(1<<20), time.Since(i.CreatedAt).Round(time.Minute), i.ExpiresAt.Local().Format(time.DateOnly))
		}
	case "restore":
		s.audit(ctx, "snapshot.restore", bot.Allowed, fs.Arg(2))
		op, err := s.env.Deployer.Restore(ctx, ops.RestoreRequest{Snapshot: fs.Arg(2), Requester: s.actor})
		fmt.Fprintln(stdout, bot.RenderOperationEnd(op).PlainText())
		if err != nil {
			return fmt.Errorf("restore failed: %w", err)
		}
	case "prune":
		s.audit(ctx, "snapshot.prune", bot.Allowed, fmt.Sprintf("dry-run=%v", *dryRun))
		gone, err := snaps.Prune(ctx, time.Now(), *dryRun)
		if err != nil {
			return err
		}
		verb := "deleted"
		if *dryRun {
			verb = "would delete"
		}
		for _, i := range gone {
			fmt.Fprintf(stdout, "%s %s\n", verb, i.Name)
		}
		fmt.Fprintf(stdout, "%d snapshot(s) %s\n", len(gone), verb)
	case "verify":
		res, err := snaps.Verify(ctx, fs.Arg(2))
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: %d tables restored into a scratch database\n", res.Snapshot, res.Tables)
		if len(res.Mismatch) > 0 {
			return fmt.Errorf("row counts differ from the dump for: %s", strings.Join(res.Mismatch, ", "))
		}
		fmt.Fprintln(stdout, "row counts match the dump")
	}
	return nil
}
