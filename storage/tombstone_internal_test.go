package storage

import (
	"testing"

	"github.com/matryer/is"
)

// An install replaces a changed trigger without a moment with none: one
// CREATE OR REPLACE on MariaDB; on MySQL a second trigger created before
// the old one is dropped; on SQLite (in one transaction) drop and create.
// A current trigger is left alone.
func TestTriggerSteps(t *testing.T) {
	is := is.New(t)
	d := mysqlDialect{}
	def := triggerDef{names: [2]string{"gst_t_ad", "gst_t_ad2"}, create: [2]string{"TRIGGER A …", "TRIGGER B …"}, stored: [2]string{"body", "body"}}
	none := map[string]string{}
	cur0 := map[string]string{"gst_t_ad": "body"}
	cur1 := map[string]string{"gst_t_ad2": "body"}
	old0 := map[string]string{"gst_t_ad": "old"}
	old1 := map[string]string{"gst_t_ad2": "old"}
	both := map[string]string{"gst_t_ad": "old", "gst_t_ad2": "older"}

	is.Equal(triggerSteps(d, flavorMariaDB, def, cur0), []string(nil))
	is.Equal(triggerSteps(d, flavorMariaDB, def, none), []string{"CREATE OR REPLACE TRIGGER A …"})
	is.Equal(triggerSteps(d, flavorMariaDB, def, old0), []string{"CREATE OR REPLACE TRIGGER A …"})
	is.Equal(triggerSteps(d, flavorMariaDB, def, cur1), []string{"CREATE OR REPLACE TRIGGER A …", "DROP TRIGGER IF EXISTS `gst_t_ad2`"})

	is.Equal(triggerSteps(d, flavorMySQL, def, cur0), []string(nil))
	is.Equal(triggerSteps(d, flavorMySQL, def, cur1), []string(nil))
	is.Equal(triggerSteps(d, flavorMySQL, def, none), []string{"CREATE TRIGGER A …"})
	is.Equal(triggerSteps(d, flavorMySQL, def, old0), []string{"CREATE TRIGGER B …", "DROP TRIGGER IF EXISTS `gst_t_ad`"})
	is.Equal(triggerSteps(d, flavorMySQL, def, old1), []string{"CREATE TRIGGER A …", "DROP TRIGGER IF EXISTS `gst_t_ad2`"})
	is.Equal(triggerSteps(d, flavorMySQL, def, both), []string{"DROP TRIGGER IF EXISTS `gst_t_ad2`", "CREATE TRIGGER B …", "DROP TRIGGER IF EXISTS `gst_t_ad`"})
	is.Equal(triggerSteps(d, flavorMySQL, def, map[string]string{"gst_t_ad": "body", "gst_t_ad2": "old"}), []string{"DROP TRIGGER IF EXISTS `gst_t_ad2`"})

	s := sqliteDialect{}
	is.Equal(triggerSteps(s, flavorSQLite, def, cur0), []string(nil))
	is.Equal(triggerSteps(s, flavorSQLite, def, old0), []string{`DROP TRIGGER IF EXISTS "gst_t_ad"`, `DROP TRIGGER IF EXISTS "gst_t_ad2"`, "CREATE TRIGGER A …"})

	is.Equal(d.flavor("10.11.19-MariaDB-0+deb12u1"), flavorMariaDB)
	is.Equal(d.flavor("8.0.36"), flavorMySQL)
}
