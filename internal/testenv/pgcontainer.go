package testenv

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"
	"github.com/jackc/pgx/v5"

	"github.com/togather-foundation/togather-chatops/internal/localenv"
)

// DBContainer is a database server running in a container.
type DBContainer struct {
	Name      string // the container's
	DSN       string // the database's URL through the port published on 127.0.0.1
	BridgeDSN string // its URL from another container on Docker's default bridge
}

// pgRoot is where Debian installs the PostgreSQL server this machine has.
const pgRoot = "/usr/lib/postgresql"

// pgImage serialises building the server image within a process.
var pgImage sync.Mutex

// PostgresContainer runs a PostgreSQL server in a container of its own, as
// Togather runs togather-db: an image assembled FROM scratch out of this
// machine's Debian server (no registry is reachable), with password
// authentication on its socket and on TCP, port 5432 published on
// 127.0.0.1. The database "togather" is owned by the role "togather"
// (CREATEDB, not a superuser). The container is removed when t ends; a
// machine without the Debian server fails t through Missing.
func PostgresContainer(t testing.TB, cli *client.Client) DBContainer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ref, err := postgresImage(ctx, cli)
	if err != nil {
		Missing(t, "a PostgreSQL server to put in a container", err)
	}
	name := fmt.Sprintf("togather-test-db-%d-%d", os.Getpid(), runSeq.Add(1))
	port, hostPort := nat.Port("5432/tcp"), FreePort(t)
	const password = "container-secret"
	created, err := cli.ContainerCreate(ctx,
		&container.Config{Image: ref, Env: []string{"POSTGRES_PASSWORD=" + password}, Labels: ContainerLabels(t, cli), ExposedPorts: nat.PortSet{port: {}}},
		&container.HostConfig{PortBindings: nat.PortMap{port: {{HostIP: "127.0.0.1", HostPort: strconv.Itoa(hostPort)}}}},
		nil, nil, name)
	if err != nil {
		t.Fatalf("create container %s: %v", name, err)
	}
	if err := cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		t.Fatalf("start container %s: %v", name, err)
	}
	super := fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/postgres?sslmode=disable", password, hostPort)
	var conn *pgx.Conn
	for conn == nil {
		if conn, err = pgx.Connect(ctx, super); err != nil {
			if ctx.Err() != nil {
				logs, _ := cli.ContainerLogs(context.Background(), created.ID, container.LogsOptions{ShowStdout: true, ShowStderr: true})
				var out bytes.Buffer
				if logs != nil {
					out.ReadFrom(logs)
					logs.Close()
				}
				t.Fatalf("the PostgreSQL container never accepted a connection: %v\n%s", err, out.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	defer conn.Close(context.Background())
	for _, sql := range []string{`CREATE ROLE togather LOGIN CREATEDB PASSWORD 'app-secret'`, `CREATE DATABASE togather OWNER togather`} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	c, err := cli.ContainerInspect(ctx, created.ID)
	if err != nil || c.NetworkSettings == nil || c.NetworkSettings.IPAddress == "" {
		t.Fatalf("the bridge address of container %s: %v", name, err)
	}
	const app = "postgres://togather:app-secret@%s/togather?sslmode=disable"
	return DBContainer{Name: name, DSN: fmt.Sprintf(app, "127.0.0.1:"+strconv.Itoa(hostPort)),
		BridgeDSN: fmt.Sprintf(app, c.NetworkSettings.IPAddress+":5432")}
}

// postgresImage returns the server image, building it when no image has
// this machine's server in it.
func postgresImage(ctx context.Context, cli *client.Client) (string, error) {
	pgImage.Lock()
	defer pgImage.Unlock()
	bin, err := serverBin()
	if err != nil {
		return "", err
	}
	files, err := serverFiles(bin)
	if err != nil {
		return "", err
	}
	sum := sha256.New()
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(sum, "%s %d %d\n", f, fi.Size(), fi.ModTime().UnixNano())
	}
	ref := "togather-test-postgres:" + hex.EncodeToString(sum.Sum(nil))[:12]
	switch _, err := cli.ImageInspect(ctx, ref); {
	case err == nil:
		return ref, nil
	case !cerrdefs.IsNotFound(err):
		return "", fmt.Errorf("inspect image %s: %w", ref, err)
	}
	rootfs, err := serverRootfs(files)
	if err != nil {
		return "", err
	}
	data := "/var/lib/postgresql/data"
	start := `set -e
if [ ! -s ` + data + `/PG_VERSION ]; then
  echo "$POSTGRES_PASSWORD" > /tmp/pwfile
  initdb -D ` + data + ` -U postgres --pwfile=/tmp/pwfile -E UTF8 --no-locale --auth-local=scram-sha-256 --auth-host=scram-sha-256 >/dev/null
  echo "host all all all scram-sha-256" >> ` + data + `/pg_hba.conf
fi
exec postgres -D ` + data + ` -c listen_addresses=* -c fsync=off`
	resp, err := cli.ImageImport(ctx, image.ImportSource{Source: bytes.NewReader(rootfs), SourceName: "-"}, ref, image.ImportOptions{Changes: []string{
		"ENV PATH=" + bin + ":/bin",
		"ENV TZ=UTC",
		"USER postgres",
		`CMD ["/bin/sh", "-c", ` + strconv.Quote(start) + `]`,
		"LABEL " + localenv.TestLabel + "=true",
	}})
	if err != nil {
		return "", fmt.Errorf("import image %s: %w", ref, err)
	}
	defer resp.Close()
	var out bytes.Buffer
	out.ReadFrom(resp)
	if strings.Contains(out.String(), `"error"`) {
		return "", fmt.Errorf("import image %s: %s", ref, out.String())
	}
	return ref, nil
}

// serverBin is the bin directory of the newest Debian PostgreSQL server.
func serverBin() (string, error) {
	entries, err := os.ReadDir(pgRoot)
	if err != nil {
		return "", err
	}
	var versions []int
	for _, e := range entries {
		if v, err := strconv.Atoi(e.Name()); err == nil {
			if _, err := os.Stat(filepath.Join(pgRoot, e.Name(), "bin", "postgres")); err == nil {
				versions = append(versions, v)
			}
		}
	}
	if len(versions) == 0 {
		return "", fmt.Errorf("no PostgreSQL server under %s (apt-get install postgresql)", pgRoot)
	}
	return filepath.Join(pgRoot, strconv.Itoa(slices.Max(versions)), "bin"), nil
}

// lddPath matches a resolved library in ldd's output.
var lddPath = regexp.MustCompile(`(?m)(?:=> )?(/\S+) \(0x`)

// serverFiles lists what the image holds: the server, initdb and the
// clients, the server's modules (but the JIT's, which pulls in LLVM) and
// share directory, /bin/sh (initdb runs the server through it), UTC's zone
// file, and every library ldd names for any of them.
func serverFiles(bin string) ([]string, error) {
	version := filepath.Base(filepath.Dir(bin))
	var elf []string
	for _, p := range []string{"postgres", "initdb", "pg_dump", "psql"} {
		elf = append(elf, filepath.Join(bin, p))
	}
	mods, _ := filepath.Glob(filepath.Join(pgRoot, version, "lib", "*.so"))
	for _, m := range mods {
		if !strings.HasPrefix(filepath.Base(m), "llvmjit") {
			elf = append(elf, m)
		}
	}
	sh, err := filepath.EvalSymlinks("/bin/sh")
	if err != nil {
		return nil, err
	}
	elf = append(elf, sh)
	set := map[string]bool{}
	for _, f := range elf {
		set[f] = true
		out, err := exec.Command("ldd", f).Output()
		if err != nil {
			return nil, fmt.Errorf("ldd %s: %w", f, err)
		}
		for _, m := range lddPath.FindAllStringSubmatch(string(out), -1) {
			set[m[1]] = true
		}
	}
	share := filepath.Join("/usr/share/postgresql", version)
	err = filepath.WalkDir(share, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			set[p] = true
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	set["/usr/share/zoneinfo/UTC"] = true
	return slices.Sorted(func(yield func(string) bool) {
		for f := range set {
			if !yield(f) {
				return
			}
		}
	}), nil
}

// serverRootfs is the image's file system as a tar stream: files at their
// paths (symbolic links followed; /bin/sh the shell itself), the postgres
// user (uid 999) and the directories it owns.
func serverRootfs(files []string) ([]byte, error) {
	const uid = 999
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	dir := func(p string, mode int64, owner int) error {
		var chain []string
		for d := p; d != "/" && !dirs[d]; d = filepath.Dir(d) {
			chain = append(chain, d)
		}
		for i := len(chain) - 1; i >= 0; i-- {
			dirs[chain[i]] = true
			h := &tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(chain[i], "/") + "/", Mode: 0o755}
			if i == 0 {
				h.Mode, h.Uid, h.Gid = mode, owner, owner
			}
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
		}
		return nil
	}
	file := func(p string, mode int64, data []byte) error {
		if err := dir(filepath.Dir(p), 0o755, 0); err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(p, "/"), Mode: mode, Size: int64(len(data))}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	sh, _ := filepath.EvalSymlinks("/bin/sh")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		fi, err := os.Stat(f)
		if err != nil {
			return nil, err
		}
		dest := f
		if f == sh {
			dest = "/bin/sh"
		}
		if err := file(dest, int64(fi.Mode().Perm()), data); err != nil {
			return nil, err
		}
	}
	for p, data := range map[string]string{
		"/etc/passwd": "root:x:0:0:root:/root:/bin/sh\npostgres:x:999:999:PostgreSQL:/var/lib/postgresql:/bin/sh\n",
		"/etc/group":  "root:x:0:\npostgres:x:999:\n",
	} {
		if err := file(p, 0o644, []byte(data)); err != nil {
			return nil, err
		}
	}
	for _, d := range []struct {
		path  string
		mode  int64
		owner int
	}{{"/var/lib/postgresql", 0o755, uid}, {"/var/run/postgresql", 0o2775, uid}, {"/tmp", 0o1777, 0}} {
		if err := dir(d.path, d.mode, d.owner); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
