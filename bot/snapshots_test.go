package bot_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/togather-foundation/togather-chatops/ops"
)

// admSnaps is a scripted ops.Snapshotter that records what it was asked.
type admSnaps struct {
	ops.Snapshotter
	created   ops.SnapshotInfo
	createErr error
	gotReason string
	list      []ops.SnapshotInfo
	pruned    []ops.SnapshotInfo
	gotDryRun bool
	verified  ops.VerifyResult
	verifyErr error
	gotName   string
}

func (s *admSnaps) Create(_ context.Context, reason string, _ func(ops.Progress)) (ops.SnapshotInfo, error) {
	s.gotReason = reason
	return s.created, s.createErr
}

func (s *admSnaps) List(context.Context) ([]ops.SnapshotInfo, error) { return s.list, nil }

func (s *admSnaps) Prune(_ context.Context, _ time.Time, dryRun bool) ([]ops.SnapshotInfo, error) {
	s.gotDryRun = dryRun
	return s.pruned, nil
}

func (s *admSnaps) Verify(_ context.Context, name string) (ops.VerifyResult, error) {
	s.gotName = name
	return s.verified, s.verifyErr
}

func TestSnapshotCreate(t *testing.T) {
	f := newAdmin(t)
	f.snaps.created = ops.SnapshotInfo{Name: "togather_app_20261127_100000_before-migration.sql.gz", Size: 12_345_678,
		SHA256: "0123456789abcdef0123", CreatedAt: admNow, ExpiresAt: admNow.Add(7 * 24 * time.Hour)}
	r, err := f.run(t, "UBOB", `snapshot create staging --reason before-migration`)
	if err != nil {
		t.Fatal(err)
	}
	if f.snaps.gotReason != "before-migration" {
		t.Errorf("reason = %q", f.snaps.gotReason)
	}
	if len(r) != 2 {
		t.Fatalf("got %d replies, want a start and a result: %+v", len(r), r)
	}
	wantAll(t, "first reply", r[0].PlainText(), "Taking a snapshot of staging…")
	wantAll(t, "result", r[1].PlainText(), "`togather_app_20261127_100000_before-migration.sql.gz`", "12.3 MB", "sha256 `0123456789ab`", "kept until 2026-12-04 10:00 UTC")

	if _, err := f.run(t, "UBOB", "snapshot create staging"); err != nil {
		t.Fatal(err)
	}
	if f.snaps.gotReason != "manual" {
		t.Errorf("default reason = %q, want manual", f.snaps.gotReason)
	}
}

func TestSnapshotCreateFails(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want []string
	}{
		{"pg_dump fails", errors.New("pg_dump: server version mismatch"), []string{"Could not take a snapshot of staging: pg_dump: server version mismatch", "pg_dump on the bot's host"}},
		{"time limit", fmt.Errorf("dump: %w", context.DeadlineExceeded), []string{"time limit", "togather-chatops snapshot create staging"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newAdmin(t)
			f.snaps.createErr = tc.err
			r, err := f.run(t, "UBOB", "snapshot create staging")
			if !errors.Is(err, tc.err) {
				t.Errorf("error = %v, want it to wrap %v", err, tc.err)
			}
			if len(r) != 2 {
				t.Fatalf("got %d replies, want a start and a failure: %+v", len(r), r)
			}
			wantAll(t, "failure", r[1].PlainText(), tc.want...)
		})
	}
}

func TestSnapshotList(t *testing.T) {
	f := newAdmin(t)
	r, err := f.run(t, "UBOB", "snapshot list staging")
	if err != nil {
		t.Fatal(err)
	}
	wantAll(t, "empty list", r.last(t), "No snapshot of staging yet", "/togather snapshot create staging")

	for i := range 23 {
		created := admNow.Add(-time.Duration(i) * 24 * time.Hour)
		f.snaps.list = append(f.snaps.list, ops.SnapshotInfo{Name: fmt.Sprintf("snap%02d.sql.gz", i), Size: 2_500_000, CreatedAt: created, ExpiresAt: created.Add(7 * 24 * time.Hour)})
	}
	f.snaps.list[1].ExpiresAt = time.Time{}
	r, err = f.run(t, "UBOB", "snapshot list staging")
	if err != nil {
		t.Fatal(err)
	}
	got := r.last(t)
	wantAll(t, "list", got,
		"23 snapshot(s) of staging, newest first",
		"`snap00.sql.gz` · 2.5 MB · 0s ago · kept until 2026-12-04 10:00 UTC",
		"`snap01.sql.gz` · 2.5 MB · 24h00m ago · no expiry",
		"`snap08.sql.gz` · 2.5 MB · 8d0h ago · past its retention; prune removes it",
		"`snap19.sql.gz`",
		"… and 3 more older snapshot(s)")
	if strings.Contains(got, "snap20") {
		t.Errorf("list shows more than 20 snapshots: %q", got)
	}
}

func TestSnapshotPrune(t *testing.T) {
	for _, dry := range []bool{false, true} {
		t.Run(fmt.Sprintf("dry-run=%v", dry), func(t *testing.T) {
			f := newAdmin(t)
			f.snaps.pruned = []ops.SnapshotInfo{{Name: "old1.sql.gz"}, {Name: "old2.sql.gz"}}
			text, want := "snapshot prune staging", "Pruned 2 snapshot(s) of staging:\n• old1.sql.gz\n• old2.sql.gz"
			if dry {
				text, want = text+" --dry-run", "Dry run: would prune 2 snapshot(s) of staging"
			}
			r, err := f.run(t, "UBOB", text)
			if err != nil {
				t.Fatal(err)
			}
			if f.snaps.gotDryRun != dry {
				t.Errorf("Prune dryRun = %v, want %v", f.snaps.gotDryRun, dry)
			}
			wantAll(t, "prune", r.last(t), want)
			if r[0].InChannel == dry {
				t.Errorf("InChannel = %v; a real prune is shown to the channel, a dry run is not", r[0].InChannel)
			}
		})
	}
	f := newAdmin(t)
	r, err := f.run(t, "UBOB", "snapshot prune staging")
	if err != nil {
		t.Fatal(err)
	}
	wantAll(t, "nothing to prune", r.last(t), "Nothing to prune on staging")
}

func TestSnapshotVerify(t *testing.T) {
	tests := []struct {
		name   string
		result ops.VerifyResult
		err    error
		want   []string
	}{
		{"counts match", ops.VerifyResult{Snapshot: "s1.sql.gz", Tables: 2, RowCounts: map[string]int64{"events": 120, "places": 30}},
			nil, []string{"`s1.sql.gz` of staging verifies: 2 table(s), 150 row(s) restored", "no row count differs", "events", "120"}},
		{"mismatch", ops.VerifyResult{Snapshot: "s1.sql.gz", Tables: 1, RowCounts: map[string]int64{"events": 119}, Mismatch: []string{"events: restored 119 rows, expected 120"}},
			nil, []string{"but 1 table(s) differ", "• events: restored 119 rows, expected 120"}},
		{"unknown snapshot", ops.VerifyResult{}, fmt.Errorf("snapshot s1.sql.gz: %w", ops.ErrNotFound),
			[]string{"Could not verify s1.sql.gz", "/togather snapshot list staging"}},
		{"corrupt", ops.VerifyResult{}, errors.New("gzip: invalid checksum"),
			[]string{"Could not verify s1.sql.gz: gzip: invalid checksum", "Do not rely on this snapshot"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newAdmin(t)
			f.snaps.verified, f.snaps.verifyErr = tc.result, tc.err
			r, err := f.run(t, "UBOB", "snapshot verify staging s1.sql.gz")
			if !errors.Is(err, tc.err) {
				t.Errorf("error = %v, want %v", err, tc.err)
			}
			if f.snaps.gotName != "s1.sql.gz" {
				t.Errorf("verified %q", f.snaps.gotName)
			}
			if len(r) != 2 {
				t.Fatalf("got %d replies, want a start and a result: %+v", len(r), r)
			}
			wantAll(t, "start", r[0].PlainText(), "Verifying `s1.sql.gz` of staging")
			wantAll(t, "result", r[1].PlainText(), tc.want...)
		})
	}
}

func TestSnapshotsNotConfigured(t *testing.T) {
	f := newAdmin(t)
	r, err := f.run(t, "UBOB", "snapshot list production")
	if err != nil {
		t.Fatal(err)
	}
	wantAll(t, "reply", r.last(t), "Snapshots are not set up for production")
}
