package service_test

import (
	"flag"
	"fmt"
	"os"

	"github.com/gapsync/gapsync/service"
)

// Every flag can also come from the environment, one variable per flag;
// the command line wins. Sizes read and print in binary units.
func ExampleEnv() {
	fs := flag.NewFlagSet("internet", flag.ContinueOnError)
	interval := fs.Duration("interval", 0, "pause between cycles")
	maxReq := service.Bytes(16 << 20)
	fs.Var(&maxReq, "max-request", "largest sealed request")
	os.Setenv("GAPSYNC_INTERVAL", "30s")
	os.Setenv("GAPSYNC_MAX_REQUEST", "8MiB")
	defer os.Unsetenv("GAPSYNC_INTERVAL")
	defer os.Unsetenv("GAPSYNC_MAX_REQUEST")

	fs.Parse([]string{"-interval", "2m"}) // given: the environment does not override it
	if err := service.Env(fs, "GAPSYNC_"); err != nil {
		panic(err)
	}
	fmt.Println(*interval, maxReq.String(), int64(maxReq))
	// Output: 2m0s 8MiB 8388608
}

// A database setting is checked before anything connects, with one line
// that names the setting and the form it wants.
func ExampleCheckDSN() {
	fmt.Println(service.CheckDSN("-db", "mysql://app:secret@db:3306/app"))
	fmt.Println(service.CheckDSN("-db", "app:secret@tcp(db:3306)/"))
	fmt.Println(service.CheckDSN("-db", "app:secret@tcp(db:3306)/app?parseTime=true"))
	// Output:
	// -db is a URL (mysql://…), which the MySQL driver does not take: write it as user:password@tcp(host:3306)/database
	// -db names no database: put its name after the slash, user:password@tcp(db:3306)/database
	// <nil>
}
