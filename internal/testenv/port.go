package testenv

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Reserved ports lie below Linux's default ephemeral range (32768–60999), so
// no listener on port 0 and no outgoing connection of any process can take
// one between FreePort and the moment a container or sshd binds it; a lock
// file held until the test ends keeps two test processes from both handing
// out the same one.
const (
	reservedLow  = 20000
	reservedHigh = 32000
)

// FreePort returns a TCP port free on 127.0.0.1 and reserved for t until it
// ends: the caller (a container's port mapping, an sshd) binds it later.
func FreePort(t testing.TB) int {
	t.Helper()
	dir := filepath.Join(os.TempDir(), "togather-chatops-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		t.Fatalf("free port: %v", err)
	}
	for range 200 {
		port := reservedLow + rand.IntN(reservedHigh-reservedLow)
		f, err := os.OpenFile(filepath.Join(dir, fmt.Sprint(port)), os.O_CREATE|os.O_RDWR, 0o666)
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
			f.Close() // another test process holds it
			continue
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			f.Close() // in use by something that does not take the lock
			continue
		}
		ln.Close()
		t.Cleanup(func() { f.Close() })
		return port
	}
	t.Fatalf("free port: no free port in %d–%d after 200 tries", reservedLow, reservedHigh)
	return 0
}
