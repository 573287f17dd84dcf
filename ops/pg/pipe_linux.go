package pg

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// growPipe enlarges the pipe r reads from to 1 MiB (Linux's limit for
// unprivileged processes), so each read takes more of pg_dump's output and
// both sides switch less. It is only an optimisation: errors are ignored.
func growPipe(r io.Reader) {
	f, ok := r.(*os.File)
	if !ok {
		return
	}
	if rc, err := f.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) {
			unix.FcntlInt(fd, unix.F_SETPIPE_SZ, 1<<20)
		})
	}
}
