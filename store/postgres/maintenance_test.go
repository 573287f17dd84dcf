package postgres_test

import (
	"errors"
	"testing"
	"time"

	"github.com/togather-foundation/togather-chatops/incidents"
	"github.com/togather-foundation/togather-chatops/ops"
	"github.com/togather-foundation/togather-chatops/store/postgres"
)

func TestMaintenanceWindows(t *testing.T) {
	s, dsn := newStore(t)
	ctx := t.Context()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	w, err := s.CreateWindow(ctx, ops.MaintenanceWindow{Env: "production", Description: "Postgres upgrade", Owner: "UALICE",
		Mode: ops.Mode503, Start: now.Add(48 * time.Hour), End: now.Add(50 * time.Hour), State: ops.MaintScheduled, CreatedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	if w.ID == 0 || w.Name() != "MW-1" {
		t.Fatalf("created window id %d, name %s", w.ID, w.Name())
	}
	if err := s.SetWindowChat(ctx, w.ID, "CANN", "111.222"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetWindowChat(ctx, w.ID, "CANN", "333.444"); err != nil { // a late second announcement
		t.Fatal(err)
	}
	if err := s.SetWindowChat(ctx, 99, "CANN", "1.2"); !errors.Is(err, ops.ErrNotFound) {
		t.Errorf("SetWindowChat(99) err = %v, want ops.ErrNotFound", err)
	}
	got, err := s.GetWindow(ctx, w.ID)
	if err != nil {
		t.Fatal(err)
	}
	w.Channel, w.TS, w.UpdatedAt = "CANN", "111.222", now
	if got != w {
		t.Errorf("GetWindow = %+v\nwant %+v", got, w)
	}
	if _, err := s.GetWindow(ctx, 99); !errors.Is(err, ops.ErrNotFound) {
		t.Errorf("GetWindow(99) err = %v, want ops.ErrNotFound", err)
	}
	if _, err := s.CreateWindow(ctx, ops.MaintenanceWindow{Env: "production", State: ops.MaintScheduled, Start: now, End: now, CreatedAt: now}); err == nil {
		t.Error("a window ending at its start was stored")
	}

	// Compare-and-set: of racing movers one wins.
	stores := []*postgres.Store{s, open(t, dsn)}
	moving := w
	moving.State = ops.MaintStarting
	wins := race(t, stores, 8, func(s *postgres.Store) (bool, error) {
		return s.MoveWindow(ctx, moving, []ops.MaintenanceState{ops.MaintScheduled}, now)
	})
	if wins != 1 {
		t.Fatalf("%d movers won, want 1", wins)
	}
	moving.State, moving.StartedAt, moving.Snapshot = ops.MaintActive, now, "togather_x_pre-maintenance.sql.gz"
	if ok, err := s.MoveWindow(ctx, moving, []ops.MaintenanceState{ops.MaintStarting}, now.Add(time.Minute)); err != nil || !ok {
		t.Fatalf("move to active: %v %v", ok, err)
	}
	got, _ = s.GetWindow(ctx, w.ID)
	if got.State != ops.MaintActive || !got.StartedAt.Equal(now) || got.Snapshot != moving.Snapshot || !got.UpdatedAt.Equal(now.Add(time.Minute)) {
		t.Errorf("after the move: %+v", got)
	}

	// Windows lists what is not over, and what ended since a time.
	proposed, _ := s.CreateWindow(ctx, ops.MaintenanceWindow{Env: "staging", Description: "x", Owner: "U", Start: now.Add(time.Hour), End: now.Add(2 * time.Hour), State: ops.MaintProposed, CreatedAt: now})
	ended := proposed
	ended.State, ended.EndedAt = ops.MaintEnded, now.Add(-time.Hour)
	if ok, err := s.MoveWindow(ctx, ended, []ops.MaintenanceState{ops.MaintProposed}, now); err != nil || !ok {
		t.Fatalf("move to ended: %v %v", ok, err)
	}
	list, err := s.Windows(ctx, now.Add(-2*time.Hour))
	if err != nil || len(list) != 2 {
		t.Fatalf("Windows(2h ago) = %+v, %v; want the active and the ended window", list, err)
	}
	if list, _ := s.Windows(ctx, now); len(list) != 1 || list[0].ID != w.ID {
		t.Errorf("Windows(now) = %+v, want only the active window", list)
	}

	// Each post is claimed once.
	wins = race(t, stores, 8, func(s *postgres.Store) (bool, error) { return s.ClaimWindowEvent(ctx, w.ID, "announce-7d", now) })
	if wins != 1 {
		t.Errorf("%d claims of one announcement won, want 1", wins)
	}
	if ok, _ := s.ClaimWindowEvent(ctx, w.ID, "start", now); !ok {
		t.Error("another event of the window could not be claimed")
	}
}

func TestWindowAlerts(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	w, err := s.CreateWindow(ctx, ops.MaintenanceWindow{Env: "production", Description: "x", Owner: "U", Start: now, End: now.Add(time.Hour), State: ops.MaintActive, CreatedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	disk := incidents.Alert{Key: "production/disk-low", Name: "disk-low", Severity: incidents.Warning, Firing: true, Summary: "disk 15 % free"}
	health := incidents.Alert{Key: "production/health-unhealthy", Name: "health-unhealthy", Severity: incidents.Critical, Firing: true, Summary: "unhealthy"}
	for i, a := range []incidents.Alert{disk, health, resolved(health), health, disk} {
		if err := s.RecordWindowAlert(ctx, w.ID, "window", a, now.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RecordWindowAlert(ctx, w.ID, "watch", disk, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	list, err := s.WindowAlerts(ctx, w.ID, "window")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "health-unhealthy" || list[1].Name != "disk-low" {
		t.Fatalf("window alerts = %+v, want the critical first, then the warning", list)
	}
	if list[0].Firings != 2 || !list[0].Firing || list[1].Firings != 1 {
		t.Errorf("firings: health %d (firing %v), disk %d; want 2 (true) and 1", list[0].Firings, list[0].Firing, list[1].Firings)
	}
	if !list[0].FirstAt.Equal(now.Add(time.Minute)) || !list[0].LastAt.Equal(now.Add(3*time.Minute)) {
		t.Errorf("health first %s last %s", list[0].FirstAt, list[0].LastAt)
	}
	if watch, _ := s.WindowAlerts(ctx, w.ID, "watch"); len(watch) != 1 {
		t.Errorf("watch alerts = %+v, want 1", watch)
	}
}

func resolved(a incidents.Alert) incidents.Alert {
	a.Firing = false
	return a
}
