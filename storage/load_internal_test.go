package storage

import (
	"context"
	"testing"

	"github.com/matryer/is"
)

func TestRunningSQL(t *testing.T) {
	is := is.New(t)
	is.Equal(mysqlDialect{}.running(), "SHOW GLOBAL STATUS LIKE 'Threads_running'")
	is.Equal(pgDialect{}.running(), "SELECT 'active_backends', COUNT(*) FROM pg_stat_activity "+
		"WHERE state = 'active' AND backend_type = 'client backend'")
	is.Equal(sqliteDialect{}.running(), "")
}

func TestLoadOnEveryEngine(t *testing.T) {
	EachEngine(t, nil, func(t *testing.T, db *DB) {
		is := is.New(t)
		l, err := db.Load(context.Background())
		is.NoErr(err)
		is.True(l.Latency > 0)
		if db.d.Name() == "sqlite" {
			is.Equal(l.Running, int64(-1))
		} else {
			is.True(l.Running >= 1) // the reading itself runs
		}
	})
}
