package service

import (
	"flag"
	"fmt"
	"strings"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/storage"
)

// DeviceFlags describe the isolation device between the external zone
// and the intranet database (storage.DeviceProfile): -device names a
// preset, -device-packet and -device-statements change it. The external
// main opens the intranet database with the profile; the internet and
// intranet mains take the same flags only to size file chunks to it
// (FileFlags.FitDevice), their own databases being on their side of it.
// Like every flag they may come from the environment (GAPSYNC_DEVICE…)
// or a -config file (device: text-only).
type DeviceFlags struct {
	Preset     string
	Packet     Bytes
	Statements string
}

// Register adds the device flags to fs.
func (f *DeviceFlags) Register(fs *flag.FlagSet) {
	if f.Preset == "" {
		f.Preset = storage.DevicePrepared
	}
	fs.StringVar(&f.Preset, "device", f.Preset, "what the isolation device to the intranet database passes: "+
		"prepared (server-side prepared statements: everything), text-only (plain statements, values written in), "+
		"dml-only (plain SELECT, INSERT, UPDATE, DELETE only: create the metadata tables by hand with -print-ddl of the external main)")
	fs.Var(&f.Packet, "device-packet", "largest statement (and returned row) the isolation device passes, e.g. 1MiB (0: no limit of its own); upserts, pages and file chunks are sized to fit")
	fs.StringVar(&f.Statements, "device-statements", f.Statements, "comma-separated statement kinds the isolation device passes, e.g. SELECT,INSERT,UPDATE,DELETE (empty: those of -device)")
}

// Profile returns the profile the flags describe, or why it cannot work.
func (f *DeviceFlags) Profile() (storage.DeviceProfile, error) {
	p, err := storage.DevicePreset(f.Preset)
	if err != nil {
		return p, fmt.Errorf("-device: %w", err)
	}
	p.MaxPacket = int(f.Packet)
	if kinds := gapsync.SplitList(f.Statements); len(kinds) > 0 {
		p.Statements = nil
		for _, k := range kinds {
			p.Statements = append(p.Statements, strings.ToUpper(k))
		}
	}
	if err := p.Validate(); err != nil {
		return p, fmt.Errorf("-device-packet, -device-statements: %w", err)
	}
	return p, nil
}

// FitDevice sizes -chunk-size to the device: a chunk size the flags (or
// the environment, or the config file) set past the device's largest
// chunk is refused, naming both; the default is lowered to it. Call it
// after Load.
func (f *FileFlags) FitDevice(fs *flag.FlagSet, d *DeviceFlags) error {
	p, err := d.Profile()
	if err != nil {
		return err
	}
	limit := p.MaxChunk()
	if limit == 0 || int64(f.ChunkSize) <= limit {
		return nil
	}
	set := false
	fs.Visit(func(fl *flag.Flag) { set = set || fl.Name == "chunk-size" })
	if set {
		return fmt.Errorf("-chunk-size %s is over the %s that the isolation device passes in one statement (-device %s, -device-packet %s): set -chunk-size to at most %s, or leave it out",
			FormatBytes(int64(f.ChunkSize)), FormatBytes(limit), p.Name, FormatBytes(int64(p.MaxPacket)), FormatBytes(limit))
	}
	f.ChunkSize = Bytes(limit)
	return nil
}
