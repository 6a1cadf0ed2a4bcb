package service_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync/metrics"
	"github.com/gapsync/gapsync/service"
)

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(b)
}

func TestHealth(t *testing.T) {
	is := is.New(t)
	h := &service.Health{Timeout: 50 * time.Millisecond}
	code, _ := get(t, h, "/readyz")
	is.Equal(code, 200) // no checks: ready
	dbDown := errors.New("dial tcp 127.0.0.1:3306: connection refused")
	var down bool
	h.Check("database", func(context.Context) error {
		if down {
			return dbDown
		}
		return nil
	})
	h.Check("slow", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
	code, body := get(t, h, "/readyz")
	is.Equal(code, 503)
	is.True(strings.Contains(body, "ok database") && strings.Contains(body, "fail slow: context deadline exceeded"))
	h.Check("slow", func(context.Context) error { return nil })
	code, _ = get(t, h, "/readyz")
	is.Equal(code, 200)
	down = true
	code, body = get(t, h, "/readyz")
	is.Equal(code, 503)
	is.True(strings.Contains(body, "fail database: dial tcp"))
	code, body = get(t, h, "/healthz") // alive whatever the checks say
	is.Equal(code, 200)
	is.Equal(body, "ok\n")
	code, _ = get(t, h, "/other")
	is.Equal(code, 404)
}

func TestCycleClock(t *testing.T) {
	is := is.New(t)
	m := metrics.New()
	c := service.NewCycleClock(m)
	fresh := c.Fresh(30 * time.Millisecond)
	is.NoErr(fresh(context.Background())) // just started
	time.Sleep(40 * time.Millisecond)
	err := fresh(context.Background())
	is.True(err != nil && strings.Contains(err.Error(), "no cycle has succeeded"))
	c.Cycle("coordinator", time.Second, errors.New("gateway down"))
	is.True(fresh(context.Background()) != nil) // a failed cycle is no progress
	c.Cycle("coordinator", time.Second, nil)
	is.NoErr(fresh(context.Background()))
	time.Sleep(40 * time.Millisecond)
	err = fresh(context.Background())
	is.True(err != nil && strings.Contains(err.Error(), "the last good cycle ended"))
	// It passes everything on: the wrapped metrics counted both cycles.
	code, body := get(t, m.Handler(), "/metrics")
	is.Equal(code, 200)
	is.True(strings.Contains(body, `gapsync_cycles_total{result="error",role="coordinator"} 1`))
	is.True(strings.Contains(body, `gapsync_cycles_total{result="ok",role="coordinator"} 1`))
}

// The clock the mains wrap their metrics in passes per-table health on.
func TestCycleClockKeepsTableHealth(t *testing.T) {
	is := is.New(t)
	m := metrics.New()
	c := service.NewCycleClock(m)
	c.TableSynced("items", "push")
	c.TableParked("poisoned", "push", true)
	_, body := get(t, m.Handler(), "/metrics")
	is.True(strings.Contains(body, `gapsync_table_parked{direction="push",table="poisoned"} 1`))
	is.True(strings.Contains(body, `gapsync_table_last_success_timestamp_seconds{direction="push",table="items"}`))
}

func TestHealthTerseHidesErrors(t *testing.T) {
	is := is.New(t)
	h := &service.Health{Terse: true}
	h.Check("database", func(context.Context) error { return errors.New("dial tcp 10.1.2.3:3306: connection refused") })
	code, body := get(t, h, "/readyz")
	is.Equal(code, 503)
	is.Equal(body, "fail database\n") // nothing about hosts or addresses
}
