package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// SSHConfig is how one remote host is reached.
type SSHConfig struct {
	// URL is ssh://user@host[:port].
	URL string
	// IdentityFile is an unencrypted private key (OpenSSH or PEM format).
	IdentityFile string
	// AgentSocket is an SSH agent's socket (SSH_AUTH_SOCK); its keys are
	// offered after the identity file's.
	AgentSocket string
	// KnownHosts is the known_hosts file pinning the host's key.
	KnownHosts string
	// KeepAlive is the pace of keepalive requests; three unanswered ones
	// drop the connection. Default 10 s.
	KeepAlive time.Duration
	// Timeout bounds connecting (TCP and handshake). Default 10 s.
	Timeout time.Duration
	// MaxChannels bounds the channels (dials, SFTP) open at once. Default 64.
	MaxChannels int
	// Now is the clock of the reconnect backoff; time.Now if nil.
	Now func() time.Time
}

// Target is the parsed ssh:// URL.
type Target struct {
	User, Host string
	Port       int
}

// Addr is host:port.
func (t Target) Addr() string { return net.JoinHostPort(t.Host, strconv.Itoa(t.Port)) }

func (t Target) String() string {
	if t.Port == 22 {
		return "ssh://" + t.User + "@" + t.Host
	}
	return "ssh://" + t.User + "@" + t.Addr()
}

// ParseTarget reads ssh://user@host[:port].
func ParseTarget(raw string) (Target, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "ssh" || u.Host == "" || u.Opaque != "" {
		return Target{}, fmt.Errorf("host %q: want ssh://user@host[:port]", raw)
	}
	if u.User == nil || u.User.Username() == "" {
		return Target{}, fmt.Errorf("host %q: name the user (ssh://deploy@%s)", raw, u.Host)
	}
	if _, has := u.User.Password(); has {
		return Target{}, fmt.Errorf("host %q: no password in the URL; the bot logs in with a key", raw)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return Target{}, fmt.Errorf("host %q: want ssh://user@host[:port], nothing after it", raw)
	}
	t := Target{User: u.User.Username(), Host: u.Hostname(), Port: 22}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return Target{}, fmt.Errorf("host %q: port %q is not 1–65535", raw, p)
		}
		t.Port = n
	}
	return t, nil
}

// SSH is a remote host reached through one SSH connection, shared by every
// user of the host: it is opened at first use, kept alive, and opened again
// after a failure with a backoff of 1 s doubling to 30 s.
type SSH struct {
	cfg    SSHConfig
	target Target
	client *ssh.ClientConfig
	sem    chan struct{}

	mu      sync.Mutex
	conn    *ssh.Client
	sftp    *sftp.Client
	failed  int
	retryAt time.Time
	lastErr error
	closed  bool
	fwds    map[string]*forward

	wg    sync.WaitGroup // keepalive and forward goroutines
	dials atomic.Int64
}

var _ Host = (*SSH)(nil)

// NewSSH checks cfg (URL, key, known_hosts) and returns the host; it
// connects at first use.
func NewSSH(cfg SSHConfig) (*SSH, error) {
	t, err := ParseTarget(cfg.URL)
	if err != nil {
		return nil, err
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = 10 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.MaxChannels <= 0 {
		cfg.MaxChannels = 64
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	auth, err := authMethods(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t, err)
	}
	if _, err := newPinnedKeys(cfg.KnownHosts); err != nil {
		return nil, fmt.Errorf("%s: %w", t, err)
	}
	cc := &ssh.ClientConfig{User: t.User, Auth: auth, Timeout: cfg.Timeout, ClientVersion: "SSH-2.0-togather-chatops"}
	return &SSH{cfg: cfg, target: t, client: cc, sem: make(chan struct{}, cfg.MaxChannels), fwds: map[string]*forward{}}, nil
}

func authMethods(cfg SSHConfig) ([]ssh.AuthMethod, error) {
	var signers []ssh.Signer
	if cfg.IdentityFile != "" {
		pem, err := os.ReadFile(cfg.IdentityFile)
		if err != nil {
			return nil, fmt.Errorf("identity file: %w", err)
		}
		s, err := ssh.ParsePrivateKey(pem)
		var missing *ssh.PassphraseMissingError
		if errors.As(err, &missing) {
			return nil, fmt.Errorf("identity file %s is protected by a passphrase: load it into an SSH agent and set SSH_AUTH_SOCK instead", cfg.IdentityFile)
		}
		if err != nil {
			return nil, fmt.Errorf("identity file %s: %w", cfg.IdentityFile, err)
		}
		signers = append(signers, s)
	}
	var methods []ssh.AuthMethod
	if len(signers) > 0 {
		methods = append(methods, ssh.PublicKeys(signers...))
	}
	if cfg.AgentSocket != "" {
		methods = append(methods, ssh.PublicKeysCallback(func() ([]ssh.Signer, error) {
			return agentSigners(cfg.AgentSocket)
		}))
	}
	if len(methods) == 0 {
		return nil, errors.New("no key: set ssh.identity_file or run an SSH agent (SSH_AUTH_SOCK)")
	}
	return methods, nil
}

// agentSigners are the agent's keys. Each signs over its own short
// connection to the agent, so nothing stays open between handshakes.
func agentSigners(sock string) ([]ssh.Signer, error) {
	c, err := net.Dial("unix", sock)
	if err != nil {
		return nil, fmt.Errorf("ssh agent %s: %w", sock, err)
	}
	defer c.Close()
	keys, err := agent.NewClient(c).List()
	if err != nil {
		return nil, fmt.Errorf("ssh agent %s: %w", sock, err)
	}
	out := make([]ssh.Signer, 0, len(keys))
	for _, k := range keys {
		out = append(out, agentSigner{sock: sock, key: k})
	}
	return out, nil
}

type agentSigner struct {
	sock string
	key  *agent.Key
}

func (a agentSigner) PublicKey() ssh.PublicKey { return a.key }

func (a agentSigner) Sign(_ io.Reader, data []byte) (*ssh.Signature, error) {
	return a.SignWithAlgorithm(nil, data, "")
}

func (a agentSigner) SignWithAlgorithm(_ io.Reader, data []byte, algorithm string) (*ssh.Signature, error) {
	c, err := net.Dial("unix", a.sock)
	if err != nil {
		return nil, fmt.Errorf("ssh agent %s: %w", a.sock, err)
	}
	defer c.Close()
	var flags agent.SignatureFlags
	switch algorithm {
	case ssh.KeyAlgoRSASHA256:
		flags = agent.SignatureFlagRsaSha256
	case ssh.KeyAlgoRSASHA512:
		flags = agent.SignatureFlagRsaSha512
	}
	return agent.NewClient(c).(agent.ExtendedAgent).SignWithFlags(a.key, data, flags)
}

// Name is the host's ssh:// URL.
func (s *SSH) Name() string { return s.target.String() }

// User is the account the connection logs in as.
func (s *SSH) User() string { return s.target.User }

// Connections counts the SSH connections opened so far.
func (s *SSH) Connections() int64 { return s.dials.Load() }

// Connected reports whether the connection is open now.
func (s *SSH) Connected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conn != nil
}

// connect returns the open connection, opening it if none is and the
// backoff allows.
func (s *SSH) connect(ctx context.Context) (*ssh.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("%s: host closed", s.target)
	}
	if s.conn != nil {
		return s.conn, nil
	}
	if now := s.cfg.Now(); now.Before(s.retryAt) {
		return nil, fmt.Errorf("%w (next attempt in %s)", s.lastErr, s.retryAt.Sub(now).Round(time.Second))
	}
	c, err := s.dial(ctx)
	if err != nil {
		s.failed++
		s.retryAt = s.cfg.Now().Add(backoff(s.failed))
		s.lastErr = err
		return nil, err
	}
	s.failed, s.lastErr = 0, nil
	s.conn = c
	s.dials.Add(1)
	s.wg.Add(1)
	go s.keepAlive(c)
	return c, nil
}

func backoff(failures int) time.Duration {
	d := time.Second << min(failures-1, 5)
	return min(d, 30*time.Second)
}

func (s *SSH) dial(ctx context.Context) (*ssh.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", s.target.Addr())
	if err != nil {
		return nil, &Error{Host: s.target.String(), Step: "connect", Err: err,
			Remedy: "check that the host is up and its sshd listens on port " + strconv.Itoa(s.target.Port)}
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	// known_hosts is read at each connection, so a key trusted (or
	// removed) by the operator counts without a restart.
	pin, err := newPinnedKeys(s.cfg.KnownHosts)
	if err != nil {
		nc.Close()
		return nil, &Error{Host: s.target.String(), Step: "host key", Err: err}
	}
	cc := *s.client
	cc.HostKeyCallback = pin.callback
	cc.HostKeyAlgorithms = pin.algorithms(s.target.Addr())
	conn, chans, reqs, err := ssh.NewClientConn(nc, s.target.Addr(), &cc)
	if err != nil {
		nc.Close()
		var hk *HostKeyError
		if errors.As(err, &hk) {
			return nil, hk
		}
		remedy := "check the SSH server's log on the host"
		if strings.Contains(err.Error(), "unable to authenticate") {
			remedy = "add the bot's public key to ~" + s.target.User + "/.ssh/authorized_keys on the host"
		}
		return nil, &Error{Host: s.target.String(), Step: "ssh handshake", Err: err, Remedy: remedy}
	}
	_ = nc.SetDeadline(time.Time{})
	return ssh.NewClient(conn, chans, reqs), nil
}

// keepAlive asks the server for an answer every KeepAlive; three missed in
// a row close the connection, so its users fail fast and the next use
// reconnects. It ends when the connection does.
func (s *SSH) keepAlive(c *ssh.Client) {
	defer s.wg.Done()
	done := make(chan struct{})
	go func() {
		_ = c.Wait()
		close(done)
	}()
	defer s.forget(c)
	t := time.NewTicker(s.cfg.KeepAlive)
	defer t.Stop()
	missed := 0
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		answer := make(chan error, 1)
		go func() {
			_, _, err := c.SendRequest("keepalive@openssh.com", true, nil)
			answer <- err
		}()
		select {
		case err := <-answer:
			if err != nil {
				c.Close()
				<-done
				return
			}
			missed = 0
		case <-time.After(s.cfg.KeepAlive):
			if missed++; missed >= 3 {
				c.Close()
				<-done
				return
			}
		case <-done:
			return
		}
	}
}

// forget drops a connection that ended, and its SFTP session.
func (s *SSH) forget(c *ssh.Client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == c {
		s.conn = nil
		if s.sftp != nil {
			s.sftp.Close()
			s.sftp = nil
		}
		s.lastErr = &Error{Host: s.target.String(), Step: "connection", Err: errors.New("connection lost"), Remedy: "the bot reconnects by itself"}
	}
}

// Drop closes the connection (for tests and after an error that leaves it
// unusable); the next use reconnects.
func (s *SSH) Drop() {
	s.mu.Lock()
	c := s.conn
	s.mu.Unlock()
	if c != nil {
		c.Close()
	}
}

// DialContext opens a channel to addr ("tcp" host:port or "unix" path) on
// the host.
func (s *SSH) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("%s: waiting for a free channel: %w", s.target, ctx.Err())
	}
	c, err := s.connect(ctx)
	if err != nil {
		<-s.sem
		return nil, err
	}
	nc, err := c.DialContext(ctx, network, addr)
	if err != nil {
		<-s.sem
		var oce *ssh.OpenChannelError
		if errors.As(err, &oce) {
			return nil, &Error{Host: s.target.String(), Step: "open " + network + " " + addr, Err: err,
				Remedy: "the host refused it: is the service running there, and does sshd allow forwarding (AllowTcpForwarding, AllowStreamLocalForwarding)?"}
		}
		return nil, &Error{Host: s.target.String(), Step: "open " + network + " " + addr, Err: err}
	}
	return &channelConn{Conn: nc, release: func() { <-s.sem }}, nil
}

// channelConn gives its channel slot back when closed.
type channelConn struct {
	net.Conn
	once    sync.Once
	release func()
}

// CloseWrite ends the sending side, for half-closed protocols.
func (c *channelConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *channelConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// sftpClient returns the connection's SFTP session, opening it when needed.
func (s *SSH) sftpClient() (*sftp.Client, error) {
	c, err := s.connect(context.Background())
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sftp != nil && s.conn == c {
		return s.sftp, nil
	}
	sc, err := sftp.NewClient(c, sftp.UseConcurrentWrites(true), sftp.MaxConcurrentRequestsPerFile(64))
	if err != nil {
		return nil, &Error{Host: s.target.String(), Step: "sftp", Err: err, Remedy: "enable the sftp subsystem in the host's sshd_config (Subsystem sftp internal-sftp)"}
	}
	s.sftp = sc
	return sc, nil
}

// Files is the host's file system over SFTP.
func (s *SSH) Files() Files { return sftpFiles{s} }

// Close ends the connection and every forward, and waits for their
// goroutines.
func (s *SSH) Close() error {
	s.mu.Lock()
	s.closed = true
	c := s.conn
	fwds := s.fwds
	s.fwds = nil
	s.mu.Unlock()
	for _, f := range fwds {
		f.close()
	}
	if c != nil {
		c.Close()
	}
	s.wg.Wait()
	return nil
}

// Error is a failure to reach something on a host, with what to do.
type Error struct {
	Host   string
	Step   string // connect, ssh handshake, sftp, open tcp …
	Err    error
	Remedy string
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("%s: %s: %v", e.Host, e.Step, e.Err)
	if e.Remedy != "" {
		msg += " (" + e.Remedy + ")"
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }
