package deploy

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"domicile"
)

// Bounds of a PostgreSQL store's settings: a pool of 1 to 1000
// connections, statements bounded at 100 ms to 1 h, connection attempts
// at 100 ms to 5 min, and 0 to 100 serialization-failure retries.
const (
	maxStoreConns    = 1000
	maxStoreRetries  = 100
	minStoreTimeout  = 100 * time.Millisecond
	maxStmtTimeout   = time.Hour
	maxDialTimeout   = 5 * time.Minute
	defaultCtlSchema = "domicile_control"
)

// Bounds of a Pebble store's memory_mib: pebblestore.MinMemoryBytes to
// pebblestore.MaxMemoryBytes, in MiB (a test holds them equal).
const (
	minStoreMemoryMiB = 16
	maxStoreMemoryMiB = 64 << 10
)

var (
	envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
	// A store schema leaves room for a cell's key store, Schema+"_keys",
	// within PostgreSQL's 63 bytes.
	schemaRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,57}$`)
)

// DefaultSchema is the schema of cell id's PostgreSQL store when its
// `store:` names none: "cell_" and the id with '-' as '_'. Its key store
// is DefaultSchema(id) + "_keys".
func DefaultSchema(id string) string { return "cell_" + strings.ReplaceAll(id, "-", "_") }

// SharedSchema is the schema of the deployment-wide stores (the transfer
// ledger, change notices, authority requests) beside a PostgreSQL control
// store in schema control: control + "_wide", in the same database.
func SharedSchema(control string) string { return control + "_wide" }

// parseStore reads a `store:` or `control:` section; the caller sets
// the default schema. Its errors name the field.
func parseStore(v *yaml.Node, section string) (domicile.StoreConfig, error) {
	var raw struct {
		Kind             string `yaml:"kind"`
		DSNEnv           string `yaml:"dsn_env"`
		Schema           string `yaml:"schema"`
		MaxConns         string `yaml:"max_conns"`
		StatementTimeout string `yaml:"statement_timeout"`
		ConnectTimeout   string `yaml:"connect_timeout"`
		Retries          string `yaml:"serialization_retries"`
		MemoryMiB        string `yaml:"memory_mib"`
	}
	var c domicile.StoreConfig
	if v.Kind != yaml.MappingNode {
		return c, errAt(v, "%s must be a mapping, such as {kind: postgres, dsn_env: DOMICILE_DSN}", section)
	}
	if err := strictDecode(v, &raw); err != nil {
		return c, errAt(v, "%s: %s", section, cleanYAML(err))
	}
	at := func(key string) *yaml.Node {
		for i := 0; i+1 < len(v.Content); i += 2 {
			if v.Content[i].Value == key {
				return v.Content[i+1]
			}
		}
		return v
	}
	c.Kind, c.DSNEnv, c.Schema = raw.Kind, raw.DSNEnv, raw.Schema
	if c.Kind == "" && section != "store" {
		c.Kind = "sqlite"
	}
	if raw.MemoryMiB != "" {
		if c.Kind != "pebble" && c.Kind != "" {
			return c, errAt(at("memory_mib"), "%s.memory_mib is for kind pebble (or no kind: the embedded default), and this %s is %s", section, section, trunc(c.Kind, 32))
		}
		n, err := strconv.Atoi(raw.MemoryMiB)
		if err != nil || n < minStoreMemoryMiB || n > maxStoreMemoryMiB {
			return c, errAt(at("memory_mib"), "%s.memory_mib %q: want a number of MiB from %d to %d (the Pebble store's block cache and memtables together)", section, trunc(raw.MemoryMiB, 32), minStoreMemoryMiB, maxStoreMemoryMiB)
		}
		c.MemoryMiB = n
	}
	switch c.Kind {
	case "pebble":
		if section != "store" {
			return c, errAt(at("kind"), "%s.kind pebble: only a cell's store can be pebble (want sqlite or postgres)", section)
		}
		fallthrough
	case "sqlite", "":
		// A cell's store that names no kind stays "": the embedded
		// default, which follows what the data directory holds (see
		// domicile.StoreConfig.Kind).
		is := c.Kind
		if is == "" {
			is = "embedded (no kind: the default)"
		}
		for _, k := range []string{"dsn_env", "schema", "max_conns", "statement_timeout", "connect_timeout", "serialization_retries"} {
			if n := at(k); n != v {
				return c, errAt(n, "%s.%s is for kind postgres, and this %s is %s", section, k, section, is)
			}
		}
		return c, nil
	case "postgres":
	default:
		want := "sqlite or postgres"
		if section == "store" {
			want = "sqlite, pebble or postgres"
		}
		return c, errAt(at("kind"), "%s.kind %q (want %s)", section, trunc(c.Kind, 32), want)
	}
	switch {
	case c.DSNEnv == "":
		return c, errAt(v, "%s.dsn_env is required for kind postgres: the name of the environment variable that holds the connection string", section)
	case !envName.MatchString(c.DSNEnv):
		return c, errAt(at("dsn_env"), "%s.dsn_env %q must be an environment variable's name (letters, digits and _), not the connection string itself", section, trunc(c.DSNEnv, 32))
	}
	if c.Schema != "" && !schemaRE.MatchString(c.Schema) {
		return c, errAt(at("schema"), "%s.schema %q: want lower-case letters, digits and _, starting with a letter or _, at most 58 bytes", section, trunc(c.Schema, 64))
	}
	if raw.MaxConns != "" {
		n, err := strconv.Atoi(raw.MaxConns)
		if err != nil || n < 1 || n > maxStoreConns {
			return c, errAt(at("max_conns"), "%s.max_conns %q: want a number from 1 to %d (and fewer than the server's max_connections)", section, trunc(raw.MaxConns, 32), maxStoreConns)
		}
		c.MaxConns = n
	}
	dur := func(key, s string, max time.Duration) (time.Duration, error) {
		if s == "" {
			return 0, nil
		}
		d, err := time.ParseDuration(s)
		if err != nil || d < minStoreTimeout || d > max {
			return 0, errAt(at(key), "%s.%s %q: want a duration from %v to %v, such as 10s", section, key, trunc(s, 32), minStoreTimeout, max)
		}
		return d, nil
	}
	var err error
	if c.StatementTimeout, err = dur("statement_timeout", raw.StatementTimeout, maxStmtTimeout); err != nil {
		return c, err
	}
	if c.ConnectTimeout, err = dur("connect_timeout", raw.ConnectTimeout, maxDialTimeout); err != nil {
		return c, err
	}
	if raw.Retries != "" {
		n, err := strconv.Atoi(raw.Retries)
		if err != nil || n < 0 || n > maxStoreRetries {
			return c, errAt(at("serialization_retries"), "%s.serialization_retries %q: want a number from 0 to %d", section, trunc(raw.Retries, 32), maxStoreRetries)
		}
		c.Retries = n
		if n == 0 {
			c.Retries = -1 // never; zero would mean the default
		}
	}
	return c, nil
}

// checkSchemas refuses two PostgreSQL stores of the deployment in one
// schema of one database (the same dsn_env): two cells' logs in one
// table would be one log.
func checkSchemas(d *domicile.Deployment, doc *yaml.Node) error {
	seen := map[string]string{}
	use := func(owner string, c domicile.StoreConfig, schemas ...string) error {
		if c.Kind != "postgres" {
			return nil
		}
		for _, s := range schemas {
			k := c.DSNEnv + "\x00" + s
			if o, ok := seen[k]; ok {
				return errAt(doc, "%s and %s use schema %s of the same database ($%s): give each its own schema or database", o, owner, s, c.DSNEnv)
			}
			seen[k] = owner
		}
		return nil
	}
	if err := use("control", d.Control, d.Control.Schema, SharedSchema(d.Control.Schema)); err != nil {
		return err
	}
	for _, c := range d.Cells {
		if err := use(fmt.Sprintf("cell %s", c.ID), c.Store, c.Store.Schema, c.Store.Schema+"_keys"); err != nil {
			return err
		}
	}
	return nil
}
