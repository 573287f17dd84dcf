package host

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// HostKeyError is a host key the known_hosts file does not vouch for: one
// it has never seen, or one that differs from the key it has. The
// connection is refused.
type HostKeyError struct {
	Host        string // host:port as dialled
	Fingerprint string // SHA256:… of the key offered
	KeyType     string
	KnownHosts  string
	Changed     bool // the file has a different key for the host
	Line        int  // the line of that key, when Changed
}

func (e *HostKeyError) Error() string {
	host, port, _ := net.SplitHostPort(e.Host)
	entry := host
	if port != "22" {
		entry = "[" + host + "]:" + port
	}
	scan := fmt.Sprintf("ssh-keyscan -p %s -t %s %s >> %s", port, strings.TrimPrefix(e.KeyType, "ssh-"), host, e.KnownHosts)
	if e.Changed {
		return fmt.Sprintf("host key of %s CHANGED: it offered %s %s, but %s line %d pins another key. Refusing to connect: this is either a reinstalled host or someone in the middle. If the host was reinstalled, check the new key on its console (ssh-keygen -lf /etc/ssh/ssh_host_%s_key.pub), then replace the line: ssh-keygen -R '%s' -f %s && %s",
			e.Host, e.KeyType, e.Fingerprint, e.KnownHosts, e.Line, strings.TrimPrefix(e.KeyType, "ssh-"), entry, e.KnownHosts, scan)
	}
	return fmt.Sprintf("host key of %s is not trusted: %s has no key for it (the host offered %s %s). Check the fingerprint on the host's console (ssh-keygen -lf /etc/ssh/ssh_host_%s_key.pub), then trust it: %s",
		e.Host, e.KnownHosts, e.KeyType, e.Fingerprint, strings.TrimPrefix(e.KeyType, "ssh-"), scan)
}

// pinnedKeys checks host keys against one known_hosts file.
type pinnedKeys struct {
	path  string
	check ssh.HostKeyCallback
}

func newPinnedKeys(path string) (*pinnedKeys, error) {
	if path == "" {
		return nil, errors.New("no known_hosts file: set ssh.known_hosts (host keys are always checked)")
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("known_hosts: %w (create it with ssh-keyscan -p PORT HOST >> %s, after checking the fingerprint)", err, path)
	}
	cb, err := knownhosts.New(path)
	if err != nil {
		return nil, fmt.Errorf("known_hosts %s: %w", path, err)
	}
	return &pinnedKeys{path: path, check: cb}, nil
}

func (p *pinnedKeys) callback(hostname string, remote net.Addr, key ssh.PublicKey) error {
	err := p.check(hostname, remote, key)
	var ke *knownhosts.KeyError
	if !errors.As(err, &ke) {
		return err
	}
	e := &HostKeyError{Host: hostname, Fingerprint: ssh.FingerprintSHA256(key), KeyType: key.Type(), KnownHosts: p.path}
	if len(ke.Want) > 0 {
		e.Changed, e.Line = true, ke.Want[0].Line
	}
	return e
}

// algorithms lists the key algorithms the file pins for addr, so the server
// is asked for the key that is pinned rather than its first preference
// (which would look like a changed key). Nil means the client's defaults.
func (p *pinnedKeys) algorithms(addr string) []string {
	_, probe, _ := ed25519.GenerateKey(nil)
	signer, err := ssh.NewSignerFromKey(probe)
	if err != nil {
		return nil
	}
	// A key the file cannot know makes the callback list the keys it has.
	var ke *knownhosts.KeyError
	if !errors.As(p.check(addr, &net.TCPAddr{}, signer.PublicKey()), &ke) {
		return nil
	}
	var algos []string
	seen := map[string]bool{}
	for _, k := range ke.Want {
		for _, a := range algorithmsOf(k.Key.Type()) {
			if !seen[a] {
				seen[a] = true
				algos = append(algos, a)
			}
		}
	}
	return algos
}

func algorithmsOf(keyType string) []string {
	if keyType == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{keyType}
}
