package host

import (
	"bufio"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"

	"github.com/pkg/sftp"
)

// sftpFiles is a host's file system over its connection's SFTP session.
type sftpFiles struct{ s *SSH }

// do runs f on the SFTP session; an error that means the session is gone
// drops the connection so the next call reconnects.
func do[T any](s *SSH, f func(*sftp.Client) (T, error)) (T, error) {
	c, err := s.sftpClient()
	if err != nil {
		var zero T
		return zero, err
	}
	v, err := f(c)
	var se *sftp.StatusError
	switch {
	case err == nil:
		return v, nil
	case errors.Is(err, sftp.ErrSSHFxConnectionLost) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		s.Drop()
		return v, &Error{Host: s.target.String(), Step: "sftp", Err: err, Remedy: "the connection to the host was lost; the next call reconnects"}
	case !errors.As(err, &se) && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, fs.ErrPermission):
		return v, &Error{Host: s.target.String(), Step: "sftp", Err: err}
	}
	return v, pathError(err)
}

// pathError maps SFTP status codes to the fs errors callers test for.
func pathError(err error) error {
	var se *sftp.StatusError
	if !errors.As(err, &se) {
		return err
	}
	switch se.FxCode() {
	case sftp.ErrSSHFxNoSuchFile:
		return errors.Join(fs.ErrNotExist, err)
	case sftp.ErrSSHFxPermissionDenied:
		return errors.Join(fs.ErrPermission, err)
	}
	return err
}

func (f sftpFiles) ReadFile(name string) ([]byte, error) {
	return do(f.s, func(c *sftp.Client) ([]byte, error) {
		r, err := c.Open(name)
		if err != nil {
			return nil, err
		}
		defer r.Close()
		return io.ReadAll(r)
	})
}

func (f sftpFiles) Stat(name string) (fs.FileInfo, error) {
	return do(f.s, func(c *sftp.Client) (fs.FileInfo, error) { return c.Stat(name) })
}

func (f sftpFiles) ReadDir(name string) ([]fs.FileInfo, error) {
	return do(f.s, func(c *sftp.Client) ([]fs.FileInfo, error) {
		list, err := c.ReadDir(name)
		sort.Slice(list, func(i, j int) bool { return list[i].Name() < list[j].Name() })
		return list, err
	})
}

func (f sftpFiles) Open(name string) (io.ReadCloser, error) {
	return do(f.s, func(c *sftp.Client) (io.ReadCloser, error) {
		r, err := c.Open(name)
		if err != nil {
			return nil, err
		}
		// Reads of 1 MiB go out as many requests in flight; small reads
		// would wait one round trip per 32 KiB.
		return readCloser{Reader: bufio.NewReaderSize(r, 1<<20), Closer: r}, nil
	})
}

type readCloser struct {
	io.Reader
	io.Closer
}

func (f sftpFiles) Create(name string, perm fs.FileMode) (File, error) {
	return do(f.s, func(c *sftp.Client) (File, error) {
		w, err := c.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
		if err != nil {
			return nil, err
		}
		if err := w.Chmod(perm); err != nil {
			w.Close()
			_ = c.Remove(name)
			return nil, err
		}
		return newSFTPWriter(w), nil
	})
}

func (f sftpFiles) Rename(oldname, newname string) error {
	_, err := do(f.s, func(c *sftp.Client) (struct{}, error) { return struct{}{}, c.PosixRename(oldname, newname) })
	return err
}

func (f sftpFiles) Remove(name string) error {
	_, err := do(f.s, func(c *sftp.Client) (struct{}, error) { return struct{}{}, c.Remove(name) })
	return err
}

func (f sftpFiles) MkdirAll(name string, perm fs.FileMode) error {
	_, err := do(f.s, func(c *sftp.Client) (struct{}, error) {
		if info, err := c.Stat(name); err == nil && info.IsDir() {
			return struct{}{}, nil
		}
		// Create the missing parents, each with perm, as os.MkdirAll does.
		var missing []string
		for p := name; p != "/" && p != "."; p = path.Dir(p) {
			if _, err := c.Stat(p); err == nil {
				break
			}
			missing = append(missing, p)
		}
		for i := len(missing) - 1; i >= 0; i-- {
			if err := c.Mkdir(missing[i]); err != nil {
				return struct{}{}, err
			}
			if err := c.Chmod(missing[i], perm); err != nil {
				return struct{}{}, err
			}
		}
		return struct{}{}, nil
	})
	return err
}

func (f sftpFiles) RealPath(name string) (string, error) {
	return do(f.s, func(c *sftp.Client) (string, error) {
		if _, err := c.Stat(name); err != nil {
			return "", err
		}
		return c.RealPath(name)
	})
}

func (f sftpFiles) Owner(name string) (int, int, error) {
	st, err := do(f.s, func(c *sftp.Client) (*sftp.FileStat, error) {
		info, err := c.Stat(name)
		if err != nil {
			return nil, err
		}
		st, ok := info.Sys().(*sftp.FileStat)
		if !ok {
			return nil, errors.New("sftp: no owner in the file's attributes")
		}
		return st, nil
	})
	if err != nil {
		return 0, 0, err
	}
	return int(st.UID), int(st.GID), nil
}

func (f sftpFiles) Chown(name string, uid, gid int) error {
	_, err := do(f.s, func(c *sftp.Client) (struct{}, error) { return struct{}{}, c.Chown(name, uid, gid) })
	return err
}

func (f sftpFiles) Disk(name string) (Disk, error) {
	return do(f.s, func(c *sftp.Client) (Disk, error) {
		st, err := c.StatVFS(name)
		if err != nil {
			return Disk{}, err
		}
		return Disk{Free: st.FreeSpace(), Total: st.TotalSpace()}, nil
	})
}

// SyncDir is a no-op: SFTP has no directory fsync; the rename itself is
// atomic on the host.
func (sftpFiles) SyncDir(string) error { return nil }

// sftpWriter buffers small writes into large ones, which the SFTP client
// sends as many requests in flight.
type sftpWriter struct {
	f   *sftp.File
	buf *bufio.Writer
}

func newSFTPWriter(f *sftp.File) *sftpWriter {
	return &sftpWriter{f: f, buf: bufio.NewWriterSize(f, 1<<20)}
}

func (w *sftpWriter) Write(p []byte) (int, error) { return w.buf.Write(p) }

func (w *sftpWriter) ReadFrom(r io.Reader) (int64, error) {
	if err := w.buf.Flush(); err != nil {
		return 0, err
	}
	return w.f.ReadFrom(r)
}

func (w *sftpWriter) Sync() error {
	if err := w.buf.Flush(); err != nil {
		return err
	}
	err := w.f.Sync()
	var se *sftp.StatusError
	if errors.As(err, &se) && se.FxCode() == sftp.ErrSSHFxOpUnsupported {
		return nil // a server without fsync@openssh.com
	}
	return err
}

func (w *sftpWriter) Close() error {
	ferr := w.buf.Flush()
	return errors.Join(ferr, w.f.Close())
}
