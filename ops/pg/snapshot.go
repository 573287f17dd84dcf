package pg

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/togather-foundation/togather-chatops/ops"
	"github.com/togather-foundation/togather-chatops/ops/host"
)

// SnapshotOptions configures a Snapshotter.
type SnapshotOptions struct {
	DatabaseURL string // postgres:// URL of the application database
	Dir         string // where snapshots are kept
	// RetentionDays is how long a new snapshot is kept, and how long
	// snapshots whose metadata names no retention are. Zero means the
	// default of Env (DefaultRetentionDays); callers let the RETENTION_DAYS
	// environment variable override it by passing its value here.
	RetentionDays int
	Env           string           // environment name, for the retention default
	Now           func() time.Time // clock of names and metadata; time.Now if nil
	PgDump, Psql  string           // client binaries; found in PATH if empty
	// Container, when set, is the database's container: pg_dump and psql
	// run in it through Exec (snapshots.dump: container:<name>), so they
	// are the server's own version, and PgDump and Psql are not used.
	Container string
	Exec      Execer
	// Files is the file system Dir is on (the environment's host); the
	// bot's own if nil.
	Files host.Files
	// Redactor hides secrets in what pg_dump and psql print on stderr,
	// which errors carry to chat.
	Redactor ops.Redactor
}

// Snapshotter takes and restores plain-SQL pg_dump snapshots of one
// database, compressed as gzip in process on several cores. Each snapshot
// is a file togather_<db>_<YYYYMMDD_HHMMSS>_<reason>.sql.gz with a
// togather_<db>_<YYYYMMDD_HHMMSS>_<reason>.meta.json beside it.
type Snapshotter struct {
	opts   SnapshotOptions
	client client
}

var _ ops.Snapshotter = (*Snapshotter)(nil)

// NewSnapshotter returns a Snapshotter; the URL is checked on first use.
func NewSnapshotter(o SnapshotOptions) *Snapshotter {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.PgDump == "" {
		o.PgDump = "pg_dump"
	}
	if o.Psql == "" {
		o.Psql = "psql"
	}
	if o.RetentionDays <= 0 {
		o.RetentionDays = DefaultRetentionDays(o.Env)
	}
	if o.Files == nil {
		o.Files = host.Local{}.Files()
	}
	var c client = localClient{pgDump: o.PgDump, psql: o.Psql}
	if o.Container != "" {
		c = containerClient{exec: o.Exec, name: o.Container}
	}
	return &Snapshotter{opts: o, client: c}
}

// DefaultRetentionDays is how many days snapshots of env are kept unless
// configured: 1 for development, 30 for production, 7 otherwise (staging).
func DefaultRetentionDays(env string) int {
	switch env {
	case "development":
		return 1
	case "production":
		return 30
	}
	return 7
}

// dumpArgs are Togather's pg_dump flags: a plain script that drops and
// recreates every object, without ownership or grants.
var dumpArgs = []string{"--format=plain", "--no-owner", "--no-acl", "--clean", "--if-exists"}

const (
	snapshotExt   = ".sql.gz"
	metaExt       = ".meta.json"
	partialExt    = ".partial"
	stampLayout   = "20060102_150405"
	progressEvery = 500 * time.Millisecond
)

// snapshotName matches togather_<db>_<YYYYMMDD_HHMMSS>_<reason>.sql.gz.
var snapshotName = regexp.MustCompile(`^togather_(.+?)_(\d{8}_\d{6})_(.+)\.sql\.gz$`)

// meta is the .meta.json of a snapshot: Togather's fields (read by its
// `server snapshot` commands) plus the checksum, exact size and row counts.
type meta struct {
	SnapshotName  string           `json:"snapshot_name"`
	Database      string           `json:"database"`
	Host          string           `json:"host"`
	Port          string           `json:"port"`
	Timestamp     time.Time        `json:"timestamp"`
	Reason        string           `json:"reason"`
	RetentionDays int              `json:"retention_days"`
	ExpiresAt     time.Time        `json:"expires_at"`
	SizeMB        int64            `json:"size_mb"`
	DurationSecs  int64            `json:"duration_seconds"`
	SHA256        string           `json:"sha256,omitempty"`
	SizeBytes     int64            `json:"size_bytes,omitempty"`
	RowCounts     map[string]int64 `json:"row_counts,omitempty"`
}

// maxSameSecond bounds the snapshots with one reason in one second.
const maxSameSecond = 9

// Create dumps the database into a new snapshot. The dump runs in a
// repeatable-read snapshot exported by this process, and the row counts
// stored in the metadata are taken in that same snapshot, so they match the
// dump exactly. progress, if not nil, is called from another goroutine about
// every 500 ms with the compressed bytes written so far. On any failure
// nothing is left in the directory.
func (s *Snapshotter) Create(ctx context.Context, reason string, progress func(ops.Progress)) (ops.SnapshotInfo, error) {
	reason, err := sanitizeReason(reason)
	if err != nil {
		return ops.SnapshotInfo{}, err
	}
	srv, err := parseServer(s.opts.DatabaseURL)
	if err != nil {
		return ops.SnapshotInfo{}, err
	}
	if err := s.opts.Files.MkdirAll(s.opts.Dir, 0o700); err != nil {
		return ops.SnapshotInfo{}, fmt.Errorf("snapshot directory: %w", err)
	}
	started, clock := s.opts.Now().UTC(), time.Now()
	// Names have second resolution: a second snapshot with the same reason
	// in the same second (two quick deploys) gets a numbered reason.
	var name, path string
	for n := 1; ; n++ {
		r := reason
		if n > 1 {
			r = fmt.Sprintf("%s-%d", reason, n)
		}
		name = fmt.Sprintf("togather_%s_%s_%s%s", fileSafe(srv.database), started.Format(stampLayout), r, snapshotExt)
		path = filepath.Join(s.opts.Dir, name)
		if _, err := s.opts.Files.Stat(path); err != nil {
			break
		}
		if n == maxSameSecond {
			return ops.SnapshotInfo{}, fmt.Errorf("snapshot %s already exists, and %d more in the same second", name, maxSameSecond-1)
		}
	}

	conn, err := srv.connect(ctx, srv.database)
	if err != nil {
		return ops.SnapshotInfo{}, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return ops.SnapshotInfo{}, fmt.Errorf("begin snapshot transaction: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var exported string
	if err := tx.QueryRow(ctx, "SELECT pg_export_snapshot()").Scan(&exported); err != nil {
		return ops.SnapshotInfo{}, fmt.Errorf("export snapshot: %w", err)
	}

	size, sum, err := s.dump(ctx, srv, exported, path+partialExt, clock, progress)
	if err != nil {
		return ops.SnapshotInfo{}, err
	}
	counts, err := rowCounts(ctx, tx)
	if err != nil {
		s.opts.Files.Remove(path + partialExt)
		return ops.SnapshotInfo{}, err
	}
	m := meta{
		SnapshotName:  name,
		Database:      srv.database,
		Host:          srv.host,
		Port:          srv.portOrDefault(),
		Timestamp:     started,
		Reason:        reason,
		RetentionDays: s.opts.RetentionDays,
		ExpiresAt:     started.AddDate(0, 0, s.opts.RetentionDays),
		SizeMB:        size >> 20,
		DurationSecs:  int64(time.Since(clock).Seconds()),
		SHA256:        sum,
		SizeBytes:     size,
		RowCounts:     counts,
	}
	if err := s.commit(path, m); err != nil {
		return ops.SnapshotInfo{}, err
	}
	return s.info(name, &m, size, time.Time{}), nil
}

// dump runs pg_dump in the exported snapshot and writes its output,
// compressed, to partial; it returns the file's size and SHA-256. On failure
// partial is removed.
func (s *Snapshotter) dump(ctx context.Context, srv server, exported, partial string, start time.Time, progress func(ops.Progress)) (size int64, sum string, err error) {
	f, err := s.opts.Files.Create(partial, 0o600)
	if err != nil {
		return 0, "", fmt.Errorf("create snapshot file: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			s.opts.Files.Remove(partial)
		}
	}()
	var written atomic.Int64
	h := sha256.New()
	zw, err := newGzipWriter(io.MultiWriter(f, h, countWriter{&written}), snapshotLevel)
	if err != nil {
		return 0, "", err
	}
	stop := reportProgress(progress, &written, start)
	defer stop()
	runErr := s.run(ctx, srv, srv.database, "pg_dump", append(dumpArgs, "--snapshot="+exported), nil, zw)
	closeErr := zw.Close()
	if runErr != nil {
		return 0, "", runErr
	}
	if err := errors.Join(closeErr, f.Sync(), f.Close()); err != nil {
		return 0, "", fmt.Errorf("write snapshot: %w", err)
	}
	return written.Load(), hex.EncodeToString(h.Sum(nil)), nil
}

// commit renames the finished dump into place and writes its metadata; on
// failure neither is left.
func (s *Snapshotter) commit(path string, m meta) error {
	files := s.opts.Files
	if err := files.Rename(path+partialExt, path); err != nil {
		files.Remove(path + partialExt)
		return fmt.Errorf("rename snapshot: %w", err)
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err == nil {
		err = host.WriteFileAtomic(files, metaPath(path), append(data, '\n'), 0o600)
	}
	if err == nil {
		err = files.SyncDir(s.opts.Dir)
	}
	if err != nil {
		files.Remove(path)
		files.Remove(metaPath(path))
		return fmt.Errorf("write snapshot metadata: %w", err)
	}
	return nil
}

// List returns the snapshots in the directory, newest first. A snapshot
// whose metadata is missing or unreadable is described from its name and
// file.
func (s *Snapshotter) List(ctx context.Context) ([]ops.SnapshotInfo, error) {
	entries, err := s.opts.Files.ReadDir(s.opts.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	var list []ops.SnapshotInfo
	for _, e := range entries {
		if !e.Mode().IsRegular() || !strings.HasSuffix(e.Name(), snapshotExt) {
			continue
		}
		fi := e
		m, err := s.readMeta(filepath.Join(s.opts.Dir, e.Name()))
		if err != nil {
			m = nil // described from its name, as without metadata
		}
		list = append(list, s.info(e.Name(), m, fi.Size(), fi.ModTime()))
	}
	sort.SliceStable(list, func(i, j int) bool {
		if !list[i].CreatedAt.Equal(list[j].CreatedAt) {
			return list[i].CreatedAt.After(list[j].CreatedAt)
		}
		return list[i].Name > list[j].Name
	})
	return list, nil
}

// Prune removes the snapshots (and their metadata) older than their
// retention: the metadata's retention_days, else the Snapshotter's. The
// newest snapshot is never removed. It returns what was removed, or with
// dryRun what would be.
func (s *Snapshotter) Prune(ctx context.Context, now time.Time, dryRun bool) ([]ops.SnapshotInfo, error) {
	list, err := s.List(ctx)
	if err != nil {
		return nil, err
	}
	var removed []ops.SnapshotInfo
	for i, info := range list {
		if i == 0 || !now.After(info.ExpiresAt) {
			continue
		}
		if !dryRun {
			if err := s.opts.Files.Remove(info.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return removed, fmt.Errorf("remove snapshot: %w", err)
			}
			if err := s.opts.Files.Remove(metaPath(info.Path)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return removed, fmt.Errorf("remove snapshot metadata: %w", err)
			}
		}
		removed = append(removed, info)
	}
	return removed, nil
}

// info describes snapshot name from its metadata (nil if it has none), its
// size and its file's modification time.
func (s *Snapshotter) info(name string, m *meta, size int64, modTime time.Time) ops.SnapshotInfo {
	info := ops.SnapshotInfo{Name: name, Path: filepath.Join(s.opts.Dir, name), Size: size, CreatedAt: modTime.UTC()}
	retention := s.opts.RetentionDays
	if parts := snapshotName.FindStringSubmatch(name); parts != nil {
		info.Database, info.Reason = parts[1], parts[3]
		if t, err := time.Parse(stampLayout, parts[2]); err == nil {
			info.CreatedAt = t
		}
	}
	if m != nil {
		if m.Database != "" {
			info.Database = m.Database
		}
		if m.Reason != "" {
			info.Reason = m.Reason
		}
		if !m.Timestamp.IsZero() {
			info.CreatedAt = m.Timestamp.UTC()
		}
		if m.RetentionDays > 0 {
			retention = m.RetentionDays
		}
		info.SHA256 = m.SHA256
	}
	info.ExpiresAt = info.CreatedAt.AddDate(0, 0, retention)
	return info
}

// sanitizeReason lower-cases reason and turns every run of characters
// outside [a-z0-9-] into one hyphen, so it fits in a file name.
func sanitizeReason(reason string) (string, error) {
	var b strings.Builder
	for _, r := range strings.ToLower(reason) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else if b.Len() > 0 && !strings.HasSuffix(b.String(), "-") {
			b.WriteByte('-')
		}
	}
	out := strings.TrimRight(b.String(), "-")
	if len(out) > 64 {
		out = strings.TrimRight(out[:64], "-")
	}
	if out == "" {
		return "", fmt.Errorf("snapshot reason %q has no letters or digits", reason)
	}
	return out, nil
}

// fileSafe replaces the characters of a database name that do not belong
// in a file name.
func fileSafe(name string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r < ' ' {
			return '-'
		}
		return r
	}, name)
}

// snapshotPath checks that name is a snapshot file name (no directories)
// and returns its path in the directory.
func (s *Snapshotter) snapshotPath(name string) (string, error) {
	if name == "" || strings.ContainsAny(name, `/\`) || name != filepath.Base(name) || !strings.HasSuffix(name, snapshotExt) {
		return "", fmt.Errorf("invalid snapshot name %q", name)
	}
	path := filepath.Join(s.opts.Dir, name)
	fi, err := s.opts.Files.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("snapshot %s: %w", name, ops.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("snapshot %s: %w", name, err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("snapshot %s is not a regular file", name)
	}
	return path, nil
}

// metaPath is the metadata file of the snapshot at path.
func metaPath(path string) string {
	return strings.TrimSuffix(path, snapshotExt) + metaExt
}

// readMeta reads the metadata of the snapshot at path; nil if it has none.
func (s *Snapshotter) readMeta(path string) (*meta, error) {
	data, err := s.opts.Files.ReadFile(metaPath(path))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read snapshot metadata: %w", err)
	}
	var m meta
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("read snapshot metadata %s: %w", filepath.Base(metaPath(path)), err)
	}
	return &m, nil
}

// countWriter adds the length of every write to n.
type countWriter struct{ n *atomic.Int64 }

func (c countWriter) Write(p []byte) (int, error) {
	c.n.Add(int64(len(p)))
	return len(p), nil
}

// reportProgress calls progress (if not nil) every progressEvery with the
// count so far, from its own goroutine, until stop is called.
func reportProgress(progress func(ops.Progress), n *atomic.Int64, start time.Time) (stop func()) {
	if progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				progress(ops.Progress{Bytes: n.Load(), Elapsed: time.Since(start)})
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}
