package main

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Server is the MySQL-compatible server the suite runs against: a private
// mariadbd it starts (and may kill and restart on the same data
// directory), or a server the user points it at (never killed).
type Server struct {
	Addr    string // host:port
	base    *mysql.Config
	private bool
	dir     string

	mu  sync.Mutex
	cmd *exec.Cmd
}

// DSN returns a go-sql-driver DSN for database name on the server.
func (s *Server) DSN(name string) string { return s.DSNVia(s.Addr, name) }

// AppDSN is DSN for the writers: statements go as text with their
// arguments in them (one round trip each), as most applications send them
// (PHP's PDO and many ORMs by default), rather than prepared first.
func (s *Server) AppDSN(name string) string {
	cfg := s.base.Clone()
	cfg.Net, cfg.Addr, cfg.DBName, cfg.InterpolateParams = "tcp", s.Addr, name, true
	return cfg.FormatDSN()
}

// DSNVia is DSN with the connection going to addr (a fault proxy) instead.
func (s *Server) DSNVia(addr, name string) string {
	cfg := s.base.Clone()
	cfg.Net, cfg.Addr, cfg.DBName = "tcp", addr, name
	return cfg.FormatDSN()
}

// Private reports whether the suite owns the server and may kill it.
func (s *Server) Private() bool { return s.private }

// StartPrivate initialises a data directory under dir and starts mariadbd
// on port, bound to loopback, with its own socket and no grant tables.
func StartPrivate(ctx context.Context, dir string, port int) (*Server, error) {
	data := filepath.Join(dir, "data")
	install := exec.CommandContext(ctx, "mariadb-install-db", "--no-defaults", "--datadir="+data, "--user="+userName(),
		"--auth-root-authentication-method=normal", "--skip-test-db")
	if out, err := install.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("mariadb-install-db: %v\n%s", err, out)
	}
	s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), private: true, dir: dir}
	s.base = mysql.NewConfig()
	s.base.User = "root"
	return s, s.start(ctx)
}

// External uses an existing server, given as a DSN whose user may create
// and drop databases (for example "user:pw@tcp(db:3306)/"). It is never
// killed.
func External(ctx context.Context, dsn string) (*Server, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	if cfg.Net != "tcp" {
		return nil, fmt.Errorf("server %q: the fault proxy needs a tcp address", dsn)
	}
	cfg.DBName = ""
	s := &Server{Addr: cfg.Addr, base: cfg}
	return s, s.waitUp(ctx, 10*time.Second)
}

func userName() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "root"
}

func (s *Server) start(ctx context.Context) error {
	bin := "mariadbd"
	if _, err := exec.LookPath(bin); err != nil {
		bin = "/usr/sbin/mariadbd"
	}
	_, port, _ := net.SplitHostPort(s.Addr)
	log, err := os.OpenFile(filepath.Join(s.dir, "mariadbd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, "--no-defaults", "--datadir="+filepath.Join(s.dir, "data"), "--port="+port,
		"--bind-address=127.0.0.1", "--socket="+filepath.Join(s.dir, "mysqld.sock"), "--pid-file="+filepath.Join(s.dir, "mysqld.pid"),
		"--user="+userName(), "--skip-grant-tables", "--character-set-server=utf8mb4", "--collation-server=utf8mb4_bin",
		"--innodb-buffer-pool-size=128M", "--max-connections=500", "--max-allowed-packet=64M", "--skip-log-bin",
		"--log-error="+filepath.Join(s.dir, "mariadbd.err"))
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		log.Close()
		return err
	}
	go func() { cmd.Wait(); log.Close() }()
	s.mu.Lock()
	s.cmd = cmd
	s.mu.Unlock()
	return s.waitUp(ctx, 2*time.Minute)
}

func (s *Server) waitUp(ctx context.Context, limit time.Duration) error {
	db, err := sql.Open("mysql", s.DSN(""))
	if err != nil {
		return err
	}
	defer db.Close()
	deadline := time.Now().Add(limit)
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err = db.PingContext(pctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("mariadb at %s did not come up: %w", s.Addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Kill sends SIGKILL to the private mariadbd and waits for it to go.
func (s *Server) Kill() {
	s.mu.Lock()
	cmd := s.cmd
	s.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	cmd.Process.Kill()
	for i := 0; i < 200; i++ {
		if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// Restart starts mariadbd again on the same data directory.
func (s *Server) Restart(ctx context.Context) error { return s.start(ctx) }

// Stop shuts the private server down (SIGTERM, then SIGKILL).
func (s *Server) Stop() {
	s.mu.Lock()
	cmd := s.cmd
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	for i := 0; i < 400; i++ {
		if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	cmd.Process.Kill()
}
