package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var binaries sync.Map // package path → *binary

type binary struct {
	once sync.Once
	path string
	err  error
	out  []byte
}

// Binary builds the command at pkg (e.g. "./cmd/togather-chatops", relative
// to the module root) once per test process, statically as `make build`
// does, and returns its path.
func Binary(t testing.TB, pkg string) string {
	t.Helper()
	v, _ := binaries.LoadOrStore(pkg, &binary{})
	b := v.(*binary)
	b.once.Do(func() {
		root, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			b.err = err
			return
		}
		dir, err := os.MkdirTemp("", "togather-bin-")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, filepath.Base(pkg))
		cmd := exec.Command("go", "build", "-trimpath", "-o", b.path, pkg)
		cmd.Dir = filepath.Dir(string(root[:len(root)-1]))
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		b.out, b.err = cmd.CombinedOutput()
	})
	if b.err != nil {
		t.Fatalf("build %s: %v\n%s", pkg, b.err, b.out)
	}
	return b.path
}
