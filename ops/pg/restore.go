package pg

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/klauspost/compress/gzip"

	"github.com/togather-foundation/togather-chatops/ops"
)

// Restore replaces the database with snapshot name, all or nothing: the
// file is checked first (its SHA-256 against the metadata, or else the
// whole gzip stream), then, in one transaction, every schema is dropped
// (public is recreated with its owner and grants) and the dump is loaded
// by psql, which stops at the first error. Any failure, or a killed
// connection, rolls the transaction back and leaves the database as it
// was (ADR 0012). Nothing else may hold locks on the database meanwhile:
// the restore waits at most restoreLockTimeout for them. progress, if not
// nil, is called from another goroutine about every 500 ms with the
// compressed bytes read so far.
func (s *Snapshotter) Restore(ctx context.Context, name string, progress func(ops.Progress)) error {
	path, _, err := s.checked(ctx, name)
	if err != nil {
		return err
	}
	srv, err := parseServer(s.opts.DatabaseURL)
	if err != nil {
		return err
	}
	return s.load(ctx, srv, srv.database, path, progress)
}

// Verify checks snapshot name's integrity, copies the current schema of
// the database into a scratch database <db>_verify_<random> on the same
// server (dropped afterwards, also on failure), restores the snapshot over
// it as Restore would, and counts the rows of every table: a snapshot
// passes only if it can be restored over the schema the environment has
// now. The counts are
// compared with those recorded when the snapshot was taken, when its
// metadata has them (Togather's own snapshots do not).
func (s *Snapshotter) Verify(ctx context.Context, name string) (res ops.VerifyResult, err error) {
	path, m, err := s.checked(ctx, name)
	if err != nil {
		return ops.VerifyResult{}, err
	}
	srv, err := parseServer(s.opts.DatabaseURL)
	if err != nil {
		return ops.VerifyResult{}, err
	}
	scratch := scratchName(srv.database)
	if err := srv.exec(ctx, "CREATE DATABASE "+pgx.Identifier{scratch}.Sanitize()); err != nil {
		return ops.VerifyResult{}, fmt.Errorf("create scratch database (the role needs CREATEDB): %w", err)
	}
	defer func() {
		// A fresh connection: the restore may outlast an idle one.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if derr := srv.exec(dctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{scratch}.Sanitize()+" WITH (FORCE)"); derr != nil {
			err = errors.Join(err, fmt.Errorf("drop scratch database %s: %w", scratch, derr))
		}
	}()

	if err := s.copySchema(ctx, srv, scratch); err != nil {
		return ops.VerifyResult{}, fmt.Errorf("copy the current schema of %s into %s: %w", srv.database, scratch, err)
	}
	if err := s.load(ctx, srv, scratch, path, nil); err != nil {
		return ops.VerifyResult{}, fmt.Errorf("the snapshot cannot be restored over the current schema (tried in %s): %w", scratch, err)
	}
	conn, err := srv.connect(ctx, scratch)
	if err != nil {
		return ops.VerifyResult{}, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	counts, err := rowCounts(ctx, conn)
	if err != nil {
		return ops.VerifyResult{}, err
	}
	res = ops.VerifyResult{Snapshot: name, Tables: len(counts), RowCounts: counts}
	if m != nil && m.RowCounts != nil {
		res.Mismatch = compareCounts(m.RowCounts, counts)
	}
	return res, nil
}

// compareCounts describes every table whose restored row count differs
// from the recorded one, in table order.
func compareCounts(want, got map[string]int64) []string {
	var out []string
	for _, t := range slices.Sorted(maps.Keys(want)) {
		n, ok := got[t]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("%s: missing after restore (expected %d rows)", t, want[t]))
		case n != want[t]:
			out = append(out, fmt.Sprintf("%s: restored %d rows, expected %d", t, n, want[t]))
		}
	}
	for _, t := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[t]; !ok {
			out = append(out, fmt.Sprintf("%s: not in the snapshot's counts (restored %d rows)", t, got[t]))
		}
	}
	return out
}

// scratchName is a fresh database name <db>_verify_<random> of at most 63
// bytes, PostgreSQL's limit.
func scratchName(db string) string {
	suffix := "_verify_" + strings.ToLower(rand.Text()[:10])
	return db[:min(len(db), 63-len(suffix))] + suffix
}

// checked returns the path and metadata (nil if none) of snapshot name
// after checking the file: its SHA-256 when the metadata records one,
// otherwise the whole gzip stream (as gzip -t does).
func (s *Snapshotter) checked(ctx context.Context, name string) (string, *meta, error) {
	path, err := s.snapshotPath(name)
	if err != nil {
		return "", nil, err
	}
	m, err := s.readMeta(path)
	if err != nil {
		return "", nil, err
	}
	f, err := s.opts.Files.Open(path)
	if err != nil {
		return "", nil, fmt.Errorf("open snapshot: %w", err)
	}
	defer f.Close()
	r := io.Reader(readerCtx{ctx, f})
	if m != nil && m.SHA256 != "" {
		h := sha256.New()
		if _, err := io.Copy(h, r); err != nil {
			return "", nil, fmt.Errorf("checksum snapshot %s: %w", name, err)
		}
		if sum := hex.EncodeToString(h.Sum(nil)); sum != m.SHA256 {
			return "", nil, fmt.Errorf("snapshot %s is corrupt: sha256 %s, metadata says %s", name, sum, m.SHA256)
		}
		return path, m, nil
	}
	zr, err := gzip.NewReader(r)
	if err == nil {
		_, err = io.Copy(io.Discard, zr)
	}
	if err != nil {
		return "", nil, fmt.Errorf("snapshot %s is corrupt: %w", name, err)
	}
	return path, m, nil
}

// restoreLockTimeout bounds how long the restore waits for another session's
// lock on an object it drops; the dump resets lock_timeout for its own
// statements.
const restoreLockTimeout = "60s"

// restorePreamble runs, in the restore's transaction, before the dump: it
// drops every schema (the extensions in them go too; the dump creates them
// again) so that no object the dump does not know, like a foreign key a
// later migration added, can make the dump's DROPs fail. pg_dump does not
// create public, so it is recreated with its owner and grants.
const restorePreamble = `SET lock_timeout = '` + restoreLockTimeout + `';
SET client_min_messages = warning;
DO $togather_restore$
DECLARE
	owner text;
	acl aclitem[];
	s record;
	g record;
BEGIN
	SELECT nspowner::regrole::text, nspacl INTO owner, acl FROM pg_namespace WHERE nspname = 'public';
	FOR s IN SELECT nspname FROM pg_namespace WHERE nspname !~ '^pg_' AND nspname <> 'information_schema' LOOP
		EXECUTE format('DROP SCHEMA %I CASCADE', s.nspname);
	END LOOP;
	CREATE SCHEMA public;
	IF owner IS NOT NULL THEN
		EXECUTE format('ALTER SCHEMA public OWNER TO %s', owner);
		FOR g IN SELECT grantee, privilege_type FROM aclexplode(acl) LOOP
			EXECUTE format('GRANT %s ON SCHEMA public TO %s', g.privilege_type,
				CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE g.grantee::regrole::text END);
		END LOOP;
	END IF;
END
$togather_restore$;
`

// load replaces database db with the snapshot at path, in one transaction.
func (s *Snapshotter) load(ctx context.Context, srv server, db, path string, progress func(ops.Progress)) error {
	start := time.Now()
	f, err := s.opts.Files.Open(path)
	if err != nil {
		return fmt.Errorf("open snapshot: %w", err)
	}
	defer f.Close()
	var read atomic.Int64
	zr, err := gzip.NewReader(io.TeeReader(f, countWriter{&read}))
	if err != nil {
		return fmt.Errorf("read snapshot: %w", err)
	}
	stop := reportProgress(progress, &read, start)
	defer stop()
	if err := s.psql(ctx, srv, db, io.MultiReader(strings.NewReader(restorePreamble), zr)); err != nil {
		return fmt.Errorf("%w; the transaction was rolled back, the database is as it was", err)
	}
	return nil
}

// copySchema loads the schema (no data) of the server's database into the
// empty database db: pg_dump --schema-only piped into psql.
func (s *Snapshotter) copySchema(parent context.Context, srv server, db string) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	pr, pw := io.Pipe()
	var dumpErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		dumpErr = s.run(ctx, srv, srv.database, "pg_dump", []string{"--schema-only", "--no-owner", "--no-acl"}, nil, pw)
		if dumpErr != nil {
			pw.CloseWithError(dumpErr) // psql must not commit a cut schema
		} else {
			pw.Close()
		}
	})
	loadErr := s.psql(ctx, srv, db, pr)
	if loadErr != nil {
		cancel()
		pr.CloseWithError(loadErr) // pg_dump would block on a pipe nobody reads
	}
	wg.Wait()
	switch {
	case parent.Err() != nil:
		return fmt.Errorf("pg_dump: %w", context.Cause(parent))
	case dumpErr != nil && !errors.Is(dumpErr, loadErr):
		return fmt.Errorf("pg_dump --schema-only: %w", dumpErr)
	}
	return loadErr
}

// psqlArgs run a script with psql, stopping at its first error.
var psqlArgs = []string{"-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", "-"}

// psql runs the SQL script src in database db as one transaction: psql
// stops at the first error, and the COMMIT is sent only once src was read
// to its end, so a script that fails, is cut short or cannot be read
// leaves the database as it was.
func (s *Snapshotter) psql(ctx context.Context, srv server, db string, src io.Reader) error {
	script := io.MultiReader(strings.NewReader("BEGIN;\n"), &commitAtEnd{r: src})
	return s.run(ctx, srv, db, "psql", psqlArgs, script, nil)
}

// commitAtEnd reads r and then a COMMIT, only if r ended cleanly: a script
// cut short ends without it, and the server rolls its transaction back
// when psql disconnects.
type commitAtEnd struct {
	r    io.Reader
	tail io.Reader
}

func (c *commitAtEnd) Read(p []byte) (int, error) {
	if c.tail == nil {
		n, err := c.r.Read(p)
		if err != io.EOF {
			return n, err
		}
		c.tail = strings.NewReader("\nCOMMIT;\n")
		if n > 0 {
			return n, nil
		}
	}
	return c.tail.Read(p)
}

// errReader remembers the error (other than EOF) its reader returned.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}

// readerCtx is a Reader that stops once its context is done.
type readerCtx struct {
	ctx context.Context
	r   io.Reader
}

func (r readerCtx) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
