package host

import (
	"context"
	"io"
	"net"
	"sync"
)

// Reach returns a loopback address of the bot's machine forwarding to addr
// on the host, opening the forward at first use; it lives until Close.
func (s *SSH) Reach(addr string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f, ok := s.fwds[addr]; ok {
		return f.ln.Addr().String(), nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", &Error{Host: s.target.String(), Step: "forward " + addr, Err: err}
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &forward{ln: ln, cancel: cancel}
	s.fwds[addr] = f
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f.serve(ctx, s, addr)
	}()
	return ln.Addr().String(), nil
}

// forward is a loopback listener whose connections are carried to an
// address on the host, one SSH channel each.
type forward struct {
	ln     net.Listener
	cancel context.CancelFunc
	conns  sync.WaitGroup
}

func (f *forward) serve(ctx context.Context, h Host, addr string) {
	defer f.conns.Wait()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.conns.Add(1)
		go func() {
			defer f.conns.Done()
			defer c.Close()
			r, err := h.DialContext(ctx, "tcp", addr)
			if err != nil {
				return // the client sees the connection close
			}
			defer r.Close()
			pipe(ctx, c, r)
		}()
	}
}

// pipe copies both ways until either side ends or ctx does.
func pipe(ctx context.Context, a, b net.Conn) {
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		done <- struct{}{}
	}
	go cp(a, b)
	go cp(b, a)
	for n := 0; n < 2; n++ {
		select {
		case <-done:
		case <-ctx.Done():
			a.Close()
			b.Close()
			<-done
			if n == 0 {
				<-done
			}
			return
		}
	}
}

func (f *forward) close() {
	f.cancel()
	f.ln.Close()
}
