package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"syscall"
)

// Local is the bot's own machine.
type Local struct{}

var _ Host = Local{}

// Name is "local".
func (Local) Name() string { return "local" }

// DialContext dials on the bot's machine.
func (Local) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// Reach returns addr: the bot's machine is the host.
func (Local) Reach(addr string) (string, error) { return addr, nil }

// Files is the local file system.
func (Local) Files() Files { return localFiles{} }

// Close does nothing.
func (Local) Close() error { return nil }

type localFiles struct{}

func (localFiles) ReadFile(name string) ([]byte, error)  { return os.ReadFile(name) }
func (localFiles) Stat(name string) (fs.FileInfo, error) { return os.Stat(name) }
func (localFiles) Open(name string) (io.ReadCloser, error) {
	return os.Open(name)
}
func (localFiles) Rename(oldname, newname string) error         { return os.Rename(oldname, newname) }
func (localFiles) Remove(name string) error                     { return os.Remove(name) }
func (localFiles) MkdirAll(name string, perm fs.FileMode) error { return os.MkdirAll(name, perm) }
func (localFiles) RealPath(name string) (string, error)         { return filepath.EvalSymlinks(name) }
func (localFiles) Chown(name string, uid, gid int) error        { return os.Chown(name, uid, gid) }

func (localFiles) ReadDir(name string) ([]fs.FileInfo, error) {
	entries, err := os.ReadDir(name)
	if err != nil {
		return nil, err
	}
	out := make([]fs.FileInfo, 0, len(entries))
	for _, e := range entries {
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed while listing
		}
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, nil
}

func (localFiles) Create(name string, perm fs.FileMode) (File, error) {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return nil, err
	}
	// The umask may have narrowed perm; the caller asked for exactly perm.
	if err := f.Chmod(perm); err != nil {
		f.Close()
		os.Remove(name)
		return nil, err
	}
	return f, nil
}

func (localFiles) Owner(name string) (int, int, error) {
	info, err := os.Stat(name)
	if err != nil {
		return 0, 0, err
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, fmt.Errorf("owner of %s: not available on this system", name)
	}
	return int(st.Uid), int(st.Gid), nil
}

func (localFiles) Disk(name string) (Disk, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(name, &st); err != nil {
		return Disk{}, &fs.PathError{Op: "statfs", Path: name, Err: err}
	}
	return Disk{Free: st.Bavail * uint64(st.Bsize), Total: st.Blocks * uint64(st.Bsize)}, nil
}

func (localFiles) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
