package testenv

import (
	"context"
	"crypto/rand"
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// Netns is a network namespace of its own, joined to the test's namespace
// only by a veth pair: a process run in it reaches HostAddr (where a test
// server can listen) and nothing else of this machine's network, loopback
// services included.
type Netns struct {
	Name     string
	HostAddr string // this side of the pair
	NSAddr   string // the namespace's side
}

// NewNetns creates the namespace and its veth pair, removed when the test
// ends. Without the rights to (root, ip from iproute2) it is Missing.
func NewNetns(t testing.TB) *Netns {
	t.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		Missing(t, "ip (iproute2) for network namespaces", err)
	}
	var b [2]byte
	_, _ = rand.Read(b[:])
	n := uint16(b[0])<<8 | uint16(b[1])
	id := fmt.Sprintf("%04x", n)
	net3 := 16 + int(n)%200 // 10.213.<net3>.0/30
	ns := &Netns{Name: "tgc-" + id, HostAddr: fmt.Sprintf("10.213.%d.1", net3), NSAddr: fmt.Sprintf("10.213.%d.2", net3)}
	hostIf, nsIf := "tgh"+id, "tgn"+id
	if err := ip("netns", "add", ns.Name); err != nil {
		Missing(t, "network namespaces (ip netns add)", err)
	}
	t.Cleanup(func() {
		_ = ip("link", "del", hostIf)
		_ = ip("netns", "del", ns.Name)
	})
	for _, args := range [][]string{
		{"link", "add", hostIf, "type", "veth", "peer", "name", nsIf},
		{"link", "set", nsIf, "netns", ns.Name},
		{"addr", "add", ns.HostAddr + "/30", "dev", hostIf},
		{"link", "set", hostIf, "up"},
		{"netns", "exec", ns.Name, "ip", "addr", "add", ns.NSAddr + "/30", "dev", nsIf},
		{"netns", "exec", ns.Name, "ip", "link", "set", nsIf, "up"},
		{"netns", "exec", ns.Name, "ip", "link", "set", "lo", "up"},
	} {
		if err := ip(args...); err != nil {
			t.Fatalf("network namespace %s: %v", ns.Name, err)
		}
	}
	return ns
}

// Command runs argv in the namespace as the unprivileged user uid:gid with
// no supplementary groups, so neither the machine's network nor files
// readable only by root or the docker group are within its reach.
func (n *Netns) Command(ctx context.Context, uid, gid int, argv ...string) *exec.Cmd {
	args := append([]string{"netns", "exec", n.Name, "setpriv", fmt.Sprintf("--reuid=%d", uid), fmt.Sprintf("--regid=%d", gid), "--clear-groups", "--"}, argv...)
	return exec.CommandContext(ctx, "ip", args...)
}

func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
