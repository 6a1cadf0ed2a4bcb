package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// FaultKind is what the proxy does to the traffic while a fault is armed.
type FaultKind int

const (
	// Pass forwards bytes unchanged.
	Pass FaultKind = iota
	// Reset closes every open connection with a TCP RST, and resets new
	// ones as soon as they are accepted, until the fault ends.
	Reset
	// Stall holds bytes in both directions until the fault ends.
	Stall
	// CutRequest forwards K more bytes from client to server on each
	// connection, then resets it.
	CutRequest
	// CutResponse forwards K more bytes from server to client on each
	// connection, then resets it.
	CutResponse
)

func (k FaultKind) String() string {
	switch k {
	case Reset:
		return "reset"
	case Stall:
		return "stall"
	case CutRequest:
		return "cut-request"
	case CutResponse:
		return "cut-response"
	}
	return "pass"
}

// Fault is one armed misbehaviour of a Proxy.
type Fault struct {
	Kind  FaultKind
	K     int64     // bytes let through before a cut
	Until time.Time // the fault ends then
}

// Proxy is a TCP proxy from a loopback listener to one target address
// that injects faults on command. It is safe for concurrent use.
type Proxy struct {
	Name   string
	target string
	ln     net.Listener

	mu    sync.Mutex
	fault Fault
	gen   int // bumped on every SetFault, so that cut counters restart
	conns map[*proxyConn]struct{}
	wg    sync.WaitGroup
}

type proxyConn struct {
	client, server *net.TCPConn
	once           sync.Once
	mu             sync.Mutex
	gen            int
	sent           [2]int64 // bytes forwarded per direction since gen
}

// NewProxy listens on a free loopback port and forwards to target.
func NewProxy(name, target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{Name: name, target: target, ln: ln, conns: map[*proxyConn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the address clients dial.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetFault arms f (Pass disarms). A Reset also resets every open connection.
func (p *Proxy) SetFault(f Fault) {
	p.mu.Lock()
	p.fault, p.gen = f, p.gen+1
	var open []*proxyConn
	if f.Kind == Reset {
		for c := range p.conns {
			open = append(open, c)
		}
	}
	p.mu.Unlock()
	for _, c := range open {
		c.reset()
	}
}

func (p *Proxy) current() (Fault, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fault.Kind != Pass && time.Now().After(p.fault.Until) {
		p.fault = Fault{}
	}
	return p.fault, p.gen
}

// Close stops listening and resets every connection.
func (p *Proxy) Close() error {
	err := p.ln.Close()
	p.mu.Lock()
	var open []*proxyConn
	for c := range p.conns {
		open = append(open, c)
	}
	p.mu.Unlock()
	for _, c := range open {
		c.reset()
	}
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		nc, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.serve(nc.(*net.TCPConn))
	}
}

func (p *Proxy) serve(client *net.TCPConn) {
	defer p.wg.Done()
	if f, _ := p.current(); f.Kind == Reset {
		client.SetLinger(0)
		client.Close()
		return
	}
	sc, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		client.SetLinger(0)
		client.Close()
		return
	}
	c := &proxyConn{client: client, server: sc.(*net.TCPConn)}
	p.mu.Lock()
	p.conns[c] = struct{}{}
	p.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pump(c, 0, c.server, c.client) }()
	go func() { defer wg.Done(); p.pump(c, 1, c.client, c.server) }()
	wg.Wait()
	c.reset()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// pump copies src to dst; dir 0 is the request (client → server), 1 the
// response.
func (p *Proxy) pump(c *proxyConn, dir int, dst, src *net.TCPConn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.forward(c, dir, dst, buf[:n]) {
				return
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				dst.CloseWrite()
				return
			}
			c.reset()
			return
		}
	}
}

// forward writes b to dst under the armed fault; false means the
// connection was cut.
func (p *Proxy) forward(c *proxyConn, dir int, dst *net.TCPConn, b []byte) bool {
	for {
		f, gen := p.current()
		switch f.Kind {
		case Stall:
			time.Sleep(10 * time.Millisecond)
			continue
		case Reset:
			c.reset()
			return false
		case CutRequest, CutResponse:
			if (f.Kind == CutRequest) != (dir == 0) {
				break
			}
			c.mu.Lock()
			if c.gen != gen {
				c.gen, c.sent = gen, [2]int64{}
			}
			left := f.K - c.sent[dir]
			if left < int64(len(b)) {
				if left > 0 {
					dst.Write(b[:left])
					c.sent[dir] += left
				}
				c.mu.Unlock()
				// Let the k bytes reach the peer before the RST, which
				// would discard them unread.
				time.Sleep(50 * time.Millisecond)
				c.reset()
				return false
			}
			c.sent[dir] += int64(len(b))
			c.mu.Unlock()
		}
		_, err := dst.Write(b)
		return err == nil
	}
}

func (c *proxyConn) reset() {
	c.once.Do(func() {
		c.client.SetLinger(0)
		c.server.SetLinger(0)
		c.client.Close()
		c.server.Close()
	})
}

func (f Fault) String() string {
	if f.Kind == CutRequest || f.Kind == CutResponse {
		return fmt.Sprintf("%s@%d", f.Kind, f.K)
	}
	return f.Kind.String()
}
