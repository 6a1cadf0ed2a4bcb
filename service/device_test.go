package service_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync/service"
	"github.com/gapsync/gapsync/storage"
)

func deviceFlags(t *testing.T, args []string, config string) (*service.DeviceFlags, *service.FileFlags, *flag.FlagSet, error) {
	t.Helper()
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	var d service.DeviceFlags
	d.Register(fs)
	var f service.FileFlags
	f.Register(fs, "store")
	if config != "" {
		file := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(file, []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "-config", file)
	}
	return &d, &f, fs, service.Load(fs, args, "GAPSYNC_")
}

// TestDeviceFlags: the profile comes from flags, the environment or the
// config file; a chunk size set past the device's largest chunk is
// refused, the default one lowered to it.
func TestDeviceFlags(t *testing.T) {
	is := is.New(t)
	d, f, fs, err := deviceFlags(t, nil, "")
	is.NoErr(err)
	p, err := d.Profile()
	is.NoErr(err)
	is.Equal(p, storage.DeviceProfile{Name: "prepared"}) // the default: today's
	is.NoErr(f.FitDevice(fs, d))
	is.Equal(int64(f.ChunkSize), int64(4<<20))

	d, f, fs, err = deviceFlags(t, nil, "device: text-only\ndevice-packet: 1MiB\n")
	is.NoErr(err)
	p, err = d.Profile()
	is.NoErr(err)
	is.True(p.TextOnly)
	is.Equal(p.MaxPacket, 1<<20)
	is.NoErr(f.FitDevice(fs, d))
	is.Equal(int64(f.ChunkSize), p.MaxChunk()) // the default follows the packet limit

	t.Setenv("GAPSYNC_DEVICE", "dml-only")
	d, f, fs, err = deviceFlags(t, []string{"-device-packet", "1MiB", "-chunk-size", "1MiB"}, "")
	is.NoErr(err)
	p, err = d.Profile()
	is.NoErr(err)
	is.True(!p.Allows("CREATE"))
	err = f.FitDevice(fs, d)
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), "-chunk-size 1MiB is over the 504KiB")) // names both
	t.Setenv("GAPSYNC_DEVICE", "")

	_, _, _, err = deviceFlags(t, []string{"-device", "diode"}, "")
	is.NoErr(err)
	d, _, _, _ = deviceFlags(t, []string{"-device", "diode"}, "")
	_, err = d.Profile()
	is.True(err != nil && strings.Contains(err.Error(), "-device"))
	d, _, _, _ = deviceFlags(t, []string{"-device-statements", "select,insert"}, "")
	_, err = d.Profile()
	is.True(err != nil && strings.Contains(err.Error(), "UPDATE"))
	d, _, _, _ = deviceFlags(t, []string{"-device-statements", "select,insert,update,delete,replace"}, "")
	p, err = d.Profile()
	is.NoErr(err)
	is.True(p.Allows("REPLACE") && !p.TextOnly)
}
