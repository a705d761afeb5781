package deploy

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"domicile"
)

// storeDoc is a deployment whose one cell has the store section st, and
// whose file ends with extra.
func storeDoc(st, extra string) string {
	return "cells:\n  - id: cn-gz1\n    jurisdiction: CN\n    operator: Op\n    store: " + st + "\npolicy:\n  CN: [cn-gz1]\n" + extra
}

func TestParseStore(t *testing.T) {
	tests := []struct {
		name, doc     string
		store, contrl domicile.StoreConfig
	}{
		// A cell that names no store kind keeps "": the embedded default,
		// which the process that opens the store resolves against its
		// data directory. The control store's default is SQLite.
		{"default", "cells:\n  - id: cn-gz1\n    jurisdiction: CN\n    operator: Op\npolicy:\n  CN: [cn-gz1]\n",
			domicile.StoreConfig{}, domicile.StoreConfig{Kind: "sqlite"}},
		{"store without kind", storeDoc("{}", ""), domicile.StoreConfig{}, domicile.StoreConfig{Kind: "sqlite"}},
		{"sqlite named", storeDoc("{kind: sqlite}", ""), domicile.StoreConfig{Kind: "sqlite"}, domicile.StoreConfig{Kind: "sqlite"}},
		{"pebble named", storeDoc("{kind: pebble}", ""), domicile.StoreConfig{Kind: "pebble"}, domicile.StoreConfig{Kind: "sqlite"}},
		{"control without kind", storeDoc("{kind: sqlite}", "control: {}\n"), domicile.StoreConfig{Kind: "sqlite"}, domicile.StoreConfig{Kind: "sqlite"}},
		{"postgres with defaults", storeDoc("{kind: postgres, dsn_env: CN_DSN}", ""),
			domicile.StoreConfig{Kind: "postgres", DSNEnv: "CN_DSN", Schema: "cell_cn_gz1"}, domicile.StoreConfig{Kind: "sqlite"}},
		{"postgres tuned", storeDoc("{kind: postgres, dsn_env: CN_DSN, schema: gz, max_conns: 20, statement_timeout: 2s, connect_timeout: 500ms, serialization_retries: 5}", ""),
			domicile.StoreConfig{Kind: "postgres", DSNEnv: "CN_DSN", Schema: "gz", MaxConns: 20, StatementTimeout: 2 * time.Second, ConnectTimeout: 500 * time.Millisecond, Retries: 5},
			domicile.StoreConfig{Kind: "sqlite"}},
		{"no retries", storeDoc("{kind: postgres, dsn_env: CN_DSN, serialization_retries: 0}", ""),
			domicile.StoreConfig{Kind: "postgres", DSNEnv: "CN_DSN", Schema: "cell_cn_gz1", Retries: -1}, domicile.StoreConfig{Kind: "sqlite"}},
		{"postgres control", storeDoc("{kind: sqlite}", "control: {kind: postgres, dsn_env: CTL_DSN, max_conns: 4}\n"),
			domicile.StoreConfig{Kind: "sqlite"}, domicile.StoreConfig{Kind: "postgres", DSNEnv: "CTL_DSN", Schema: "domicile_control", MaxConns: 4}},
		{"pebble memory", storeDoc("{kind: pebble, memory_mib: 128}", ""), domicile.StoreConfig{Kind: "pebble", MemoryMiB: 128}, domicile.StoreConfig{Kind: "sqlite"}},
		{"memory without kind", storeDoc("{memory_mib: 16}", ""), domicile.StoreConfig{MemoryMiB: 16}, domicile.StoreConfig{Kind: "sqlite"}},
		{"same database, own schemas", storeDoc("{kind: postgres, dsn_env: DSN}", "control: {kind: postgres, dsn_env: DSN}\n"),
			domicile.StoreConfig{Kind: "postgres", DSNEnv: "DSN", Schema: "cell_cn_gz1"}, domicile.StoreConfig{Kind: "postgres", DSNEnv: "DSN", Schema: "domicile_control"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse([]byte(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.store, d.Cells[0].Store); diff != "" {
				t.Errorf("store (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.contrl, d.Control); diff != "" {
				t.Errorf("control (-want +got):\n%s", diff)
			}
		})
	}
}

// TestParseStoreRefused: each bad value is refused at its line, naming
// the field.
func TestParseStoreRefused(t *testing.T) {
	tests := []struct {
		name, doc string
		line      int
		want      string
	}{
		{"unknown kind", storeDoc("{kind: mongo}", ""), 5, "store.kind"},
		{"no dsn_env", storeDoc("{kind: postgres}", ""), 5, "store.dsn_env is required"},
		{"a DSN in dsn_env", storeDoc("{kind: postgres, dsn_env: 'postgres://u:pw@h/db'}", ""), 5, "store.dsn_env"},
		{"postgres key on sqlite", storeDoc("{kind: sqlite, max_conns: 4}", ""), 5, "store.max_conns is for kind postgres"},
		{"postgres key on pebble", storeDoc("{kind: pebble, schema: s}", ""), 5, "store.schema is for kind postgres, and this store is pebble"},
		{"postgres key without kind", storeDoc("{dsn_env: D}", ""), 5, "store.dsn_env is for kind postgres, and this store is embedded"},
		{"pebble control", storeDoc("{kind: sqlite}", "control: {kind: pebble}\n"), 8, "control.kind pebble: only a cell's store"},
		{"zero pool", storeDoc("{kind: postgres, dsn_env: D, max_conns: 0}", ""), 5, "store.max_conns \"0\""},
		{"huge pool", storeDoc("{kind: postgres, dsn_env: D, max_conns: 100000}", ""), 5, "store.max_conns"},
		{"pool not a number", storeDoc("{kind: postgres, dsn_env: D, max_conns: many}", ""), 5, "max_conns"},
		{"bad timeout", storeDoc("{kind: postgres, dsn_env: D, statement_timeout: soon}", ""), 5, "store.statement_timeout"},
		{"tiny timeout", storeDoc("{kind: postgres, dsn_env: D, statement_timeout: 1ms}", ""), 5, "store.statement_timeout"},
		{"long connect", storeDoc("{kind: postgres, dsn_env: D, connect_timeout: 1h}", ""), 5, "store.connect_timeout"},
		{"negative retries", storeDoc("{kind: postgres, dsn_env: D, serialization_retries: -1}", ""), 5, "store.serialization_retries"},
		{"bad schema", storeDoc("{kind: postgres, dsn_env: D, schema: Cell-1}", ""), 5, "store.schema"},
		{"unknown key", storeDoc("{kind: postgres, dsn_env: D, pool: 3}", ""), 5, "pool"},
		{"not a mapping", storeDoc("postgres", ""), 5, "store must be a mapping"},
		{"control kind", storeDoc("{kind: sqlite}", "control: {kind: etcd}\n"), 8, "control.kind"},
		{"control without dsn", storeDoc("{kind: sqlite}", "control: {kind: postgres}\n"), 8, "control.dsn_env is required"},
		{"memory on sqlite", storeDoc("{kind: sqlite, memory_mib: 64}", ""), 5, "store.memory_mib is for kind pebble (or no kind: the embedded default), and this store is sqlite"},
		{"memory on postgres", storeDoc("{kind: postgres, dsn_env: D, memory_mib: 64}", ""), 5, "store.memory_mib is for kind pebble"},
		{"memory on control", storeDoc("{kind: sqlite}", "control: {memory_mib: 64}\n"), 8, "control.memory_mib is for kind pebble"},
		{"tiny memory", storeDoc("{kind: pebble, memory_mib: 15}", ""), 5, "store.memory_mib \"15\": want a number of MiB from 16 to 65536"},
		{"huge memory", storeDoc("{kind: pebble, memory_mib: 65537}", ""), 5, "store.memory_mib \"65537\""},
		{"negative memory", storeDoc("{memory_mib: -64}", ""), 5, "store.memory_mib"},
		{"memory with a unit", storeDoc("{kind: pebble, memory_mib: 64MiB}", ""), 5, "store.memory_mib \"64MiB\": want a number"},
		{"shared schema", storeDoc("{kind: postgres, dsn_env: D, schema: s}", "control: {kind: postgres, dsn_env: D, schema: s}\n"), 1, "same database"},
		{"key store schema taken", storeDoc("{kind: postgres, dsn_env: D, schema: s}", "control: {kind: postgres, dsn_env: D, schema: s_keys}\n"), 1, "schema s_keys"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc))
			var le *LineError
			if !errors.As(err, &le) {
				t.Fatalf("Parse = %v, want a LineError", err)
			}
			if le.Line != tt.line || !strings.Contains(le.Msg, tt.want) {
				t.Errorf("Parse error %q at line %d, want %q at line %d", le.Msg, le.Line, tt.want, tt.line)
			}
		})
	}
}
