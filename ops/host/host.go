// Package host is how the bot reaches the machine an environment runs on:
// its network (TCP and Unix sockets as that machine sees them) and its
// files. Local is the bot's own machine; SSH is a remote one reached through
// one SSH connection (direct-tcpip, direct-streamlocal and SFTP), with a
// pinned host key. The adapters (Docker, Caddy, PostgreSQL, the state file)
// take a Host, so every path and loopback URL of an environment's
// configuration means that environment's machine.
package host

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"time"
)

// Host is one machine an environment runs on.
type Host interface {
	// Name is "local" or the host's ssh:// URL, for messages.
	Name() string
	// DialContext connects to addr on network "tcp" (host:port) or "unix"
	// (a socket path) as the host sees it.
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
	// Reach returns an address on the bot's machine whose TCP connections
	// arrive at addr as the host sees it: addr itself on the local host, a
	// loopback forward through the connection on a remote one. It serves
	// clients that cannot take a dialer (pg_dump, psql).
	Reach(addr string) (string, error)
	// Files is the host's file system.
	Files() Files
	// Close releases the connection and stops every forward.
	Close() error
}

// Files is a host's file system as the adapters use it. Paths are the
// host's absolute paths.
type Files interface {
	ReadFile(name string) ([]byte, error)
	Stat(name string) (fs.FileInfo, error)
	// ReadDir lists a directory sorted by name.
	ReadDir(name string) ([]fs.FileInfo, error)
	Open(name string) (io.ReadCloser, error)
	// Create makes a new file with perm, failing if it exists.
	Create(name string, perm fs.FileMode) (File, error)
	// Rename replaces newname with oldname atomically.
	Rename(oldname, newname string) error
	Remove(name string) error
	MkdirAll(name string, perm fs.FileMode) error
	// RealPath resolves symbolic links.
	RealPath(name string) (string, error)
	// Owner is the numeric owner of name.
	Owner(name string) (uid, gid int, err error)
	Chown(name string, uid, gid int) error
	// Disk reports the free and total bytes of the file system holding name.
	Disk(name string) (Disk, error)
	// SyncDir makes a rename in dir durable where the host allows it.
	SyncDir(dir string) error
}

// File is a file being written.
type File interface {
	io.Writer
	io.ReaderFrom
	Sync() error
	Close() error
}

// Disk is a file system's space.
type Disk struct {
	Free, Total uint64
}

// WriteFileAtomic replaces name (following symbolic links) with data: a
// temporary file beside it is written, synced and renamed over it, keeping
// the old file's mode and owner; a new file gets perm. Readers see the old
// content or the new, never a part.
func WriteFileAtomic(f Files, name string, data []byte, perm fs.FileMode) (err error) {
	target, err := f.RealPath(name)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		target = name
	}
	uid, gid := -1, -1
	if info, err := f.Stat(target); err == nil {
		perm = info.Mode().Perm()
		if uid, gid, err = f.Owner(target); err != nil {
			return err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	dir := path.Dir(target)
	tmp := path.Join(dir, "."+path.Base(target)+".tmp-"+rand.Text()[:12])
	w, err := f.Create(tmp, perm)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = w.Close()
			_ = f.Remove(tmp)
		}
	}()
	if _, err = w.Write(data); err != nil {
		return err
	}
	if err = w.Sync(); err != nil {
		return err
	}
	if err = w.Close(); err != nil {
		return err
	}
	if uid >= 0 {
		if u, g, oerr := f.Owner(tmp); oerr != nil || u != uid || g != gid {
			if err = f.Chown(tmp, uid, gid); err != nil {
				return fmt.Errorf("keep owner %d:%d of %s: %w", uid, gid, target, err)
			}
		}
	}
	if err = f.Rename(tmp, target); err != nil {
		return err
	}
	return f.SyncDir(dir)
}

// HTTPClient is an HTTP client whose connections are dialled on h, so
// http://localhost:2019 means the host's Caddy. Connections are not kept
// between requests longer than idle, so a host that went away is noticed.
func HTTPClient(h Host, timeout time.Duration) *http.Client {
	tr := &http.Transport{
		DialContext:         h.DialContext,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     30 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
		ForceAttemptHTTP2:   true,
	}
	return &http.Client{Transport: tr, Timeout: timeout}
}

// CopyDir copies the regular files at the top of dir on f into the local
// directory dst, as golang-migrate's file source reads them.
func CopyDir(f Files, dir, dst string) error {
	entries, err := f.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.Mode().IsRegular() {
			continue
		}
		if err := copyFile(f, path.Join(dir, e.Name()), filepath.Join(dst, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(f Files, src, dst string) error {
	r, err := f.Open(src)
	if err != nil {
		return err
	}
	defer r.Close()
	w, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, r); err != nil {
		w.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return w.Close()
}
