package service

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/go-sql-driver/mysql"
	"go.yaml.in/yaml/v3"
)

// Load parses a main's settings in the order an operator expects: the
// command line first, then the environment (see Env) for what it left
// out, then a YAML config file for what both left out, then the flags'
// defaults. The file is named by -config (registered here) or
// PREFIX+CONFIG; it maps flag names to values, a list for a repeatable
// flag:
//
//	db: sync:pw@tcp(db:3306)/app
//	gateway: https://gw:8443
//	strip-prefix: /upload/
//	table:
//	  - orders:id:updated_at:both
//	  - docs:id:updated_at:both:path
//
// A key that names no flag is refused, so a misspelt setting fails at
// start instead of being ignored.
func Load(fs *flag.FlagSet, args []string, prefix string, repeatable ...string) error {
	path := fs.String("config", "", "YAML file of settings: flag names as keys (the command line and the environment win)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if err := Env(fs, prefix, repeatable...); err != nil {
		return err
	}
	if *path == "" {
		*path = os.Getenv(EnvName(prefix, "config"))
	}
	if *path == "" {
		return nil
	}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true }) // now with the environment's
	return applyFile(fs, *path, given, repeatable)
}

func applyFile(fs *flag.FlagSet, path string, given map[string]bool, repeatable []string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	var m map[string]any
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&m); err != nil && !errors.Is(err, io.EOF) { // io.EOF: an empty file
		return fmt.Errorf("config %s: %w", path, err)
	}
	rep := map[string]bool{}
	for _, r := range repeatable {
		rep[r] = true
	}
	var errs []error
	for k, v := range m {
		if fs.Lookup(k) == nil {
			errs = append(errs, fmt.Errorf("config %s: %q is not a setting of this command (see -help)", path, k))
			continue
		}
		if given[k] {
			continue
		}
		var items []string
		switch x := v.(type) {
		case []any:
			if !rep[k] {
				errs = append(errs, fmt.Errorf("config %s: %s takes one value, not a list", path, k))
				continue
			}
			for _, it := range x {
				items = append(items, scalar(it))
			}
		case map[string]any:
			errs = append(errs, fmt.Errorf("config %s: %s takes a value, not a mapping", path, k))
			continue
		default:
			items = []string{scalar(x)}
		}
		for _, it := range items {
			if err := fs.Set(k, it); err != nil {
				errs = append(errs, fmt.Errorf("config %s: %s: %w", path, k, err))
			}
		}
	}
	return errors.Join(errs...)
}

func scalar(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case int:
		return strconv.Itoa(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	default:
		return fmt.Sprint(x)
	}
}

// Secret returns the value of the environment variable name, or, when
// name+"_FILE" is set instead, the contents of that file without its
// trailing newline (a secret mounted as a file stays out of the process
// environment and of ps).
func Secret(name string) (string, error) {
	if f := os.Getenv(name + "_FILE"); f != "" {
		if os.Getenv(name) != "" {
			return "", fmt.Errorf("both %s and %s_FILE are set: keep one", name, name)
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("%s_FILE: %w", name, err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	return os.Getenv(name), nil
}

// WithPasswordFile puts the password in file (when file is not empty) into
// a MySQL DSN, so that the DSN in a flag or config file holds no secret.
func WithPasswordFile(dsn, file string) (string, error) {
	if file == "" {
		return dsn, nil
	}
	if strings.HasPrefix(dsn, "sqlite:") {
		return "", fmt.Errorf("a password file is for a MySQL DSN, not %q", dsn)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("password file: %w", err)
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return "", fmt.Errorf("DSN: %w", err)
	}
	cfg.Passwd = strings.TrimRight(string(b), "\r\n")
	return cfg.FormatDSN(), nil
}
