package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Role is one zone main run as a process and restarted whenever it exits,
// killed or not, until the run ends.
type Role struct {
	Name string
	Bin  string
	Args []string
	Env  []string
	Log  string // file the process's output is appended to

	mu      sync.Mutex
	cmd     *exec.Cmd
	killed  bool // the current process was killed by the suite
	starts  int
	kills   int
	crashes []string // exits the suite did not cause
}

// Supervise runs the role until ctx ends, restarting it after every exit.
func (r *Role) Supervise(ctx context.Context, wg *sync.WaitGroup) {
	defer wg.Done()
	for ctx.Err() == nil {
		if err := r.runOnce(ctx); err != nil {
			r.mu.Lock()
			r.crashes = append(r.crashes, err.Error())
			r.mu.Unlock()
		}
		select {
		case <-ctx.Done():
		case <-time.After(300 * time.Millisecond):
		}
	}
}

func (r *Role) runOnce(ctx context.Context) error {
	log, err := os.OpenFile(r.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := exec.Command(r.Bin, r.Args...)
	tail := &lastLine{}
	out := io.MultiWriter(log, tail)
	cmd.Env, cmd.Stdout, cmd.Stderr = r.Env, out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	r.mu.Lock()
	r.starts++
	fmt.Fprintf(log, "=== %s start %d at %s\n", r.Name, r.starts, time.Now().UTC().Format(time.RFC3339Nano))
	if err := cmd.Start(); err != nil {
		r.mu.Unlock()
		return err
	}
	r.cmd, r.killed = cmd, false
	r.mu.Unlock()

	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var werr error
	select {
	case werr = <-done:
	case <-ctx.Done():
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case werr = <-done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			werr = <-done
			werr = fmt.Errorf("did not stop on SIGTERM: %v", werr)
			r.mu.Lock()
			r.cmd = nil
			r.mu.Unlock()
			return werr
		}
		r.mu.Lock()
		r.cmd = nil
		r.mu.Unlock()
		if werr != nil {
			return fmt.Errorf("exit after SIGTERM: %v", werr)
		}
		return nil
	}
	r.mu.Lock()
	killed := r.killed
	r.cmd = nil
	r.mu.Unlock()
	fmt.Fprintf(log, "=== %s exit: %v (killed by the suite: %v)\n", r.Name, werr, killed)
	if killed {
		return nil
	}
	if werr == nil {
		return fmt.Errorf("start %d exited 0 unasked: %s", r.starts, tail.String())
	}
	return fmt.Errorf("start %d: %v: %s", r.starts, werr, tail.String())
}

// lastLine keeps the last non-empty line written to it.
type lastLine struct {
	mu   sync.Mutex
	cur  []byte
	last string
}

func (l *lastLine) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range b {
		if c == '\n' {
			if len(l.cur) > 0 {
				l.last = string(l.cur)
			}
			l.cur = l.cur[:0]
			continue
		}
		if len(l.cur) < 400 {
			l.cur = append(l.cur, c)
		}
	}
	return len(b), nil
}

func (l *lastLine) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.cur) > 0 {
		return string(l.cur)
	}
	return l.last
}

// Kill sends SIGKILL to the running process, if any.
func (r *Role) Kill() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil || r.cmd.Process == nil {
		return false
	}
	r.killed = true
	r.kills++
	r.cmd.Process.Kill()
	return true
}

// Crashes returns the exits the suite did not cause.
func (r *Role) Crashes() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.crashes...)
}
