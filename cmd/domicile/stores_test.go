package main

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"domicile"
	"domicile/deploy"
	"domicile/pebblestore"
)

// TestResolveCellStore: the store kind a cell uses under a data
// directory, from what its deployment file names and what the directory
// holds.
func TestResolveCellStore(t *testing.T) {
	const (
		none = iota
		lite
		peb
		both
	)
	tests := []struct {
		name  string
		named string // the deployment file's kind
		holds int    // what <data>/<cell>/ holds
		want  string // the kind, or "" for an error
		def   bool   // chosen by default
		err   []string
	}{
		{name: "fresh directory gets pebble", holds: none, want: kindPebble, def: true},
		{name: "cell.db present stays sqlite", holds: lite, want: kindSQLite, def: true},
		{name: "pebble present stays pebble", holds: peb, want: kindPebble, def: true},
		{name: "both present is refused", holds: both, err: []string{"names no store kind", "cn-gz1/cell.db", "cn-gz1/pebble"}},
		{name: "sqlite named on a fresh directory", named: kindSQLite, holds: none, want: kindSQLite},
		{name: "pebble named on a fresh directory", named: kindPebble, holds: none, want: kindPebble},
		{name: "sqlite named where it is", named: kindSQLite, holds: lite, want: kindSQLite},
		{name: "pebble named where it is", named: kindPebble, holds: peb, want: kindPebble},
		{name: "sqlite named where both are", named: kindSQLite, holds: both, want: kindSQLite},
		{name: "pebble named where both are", named: kindPebble, holds: both, want: kindPebble},
		{name: "pebble named where only cell.db is, refused", named: kindPebble, holds: lite, err: []string{"names store kind pebble", "cn-gz1/cell.db", "no pebble store"}},
		{name: "sqlite named where only pebble is, refused", named: kindSQLite, holds: peb, err: []string{"names store kind sqlite", "cn-gz1/pebble", "no sqlite store"}},
		{name: "postgres named on a fresh directory", named: kindPostgres, holds: none, want: kindPostgres},
		{name: "postgres named whatever the directory holds", named: kindPostgres, holds: both, want: kindPostgres},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cellDir := filepath.Join(dir, "cn-gz1")
			if err := os.MkdirAll(cellDir, 0o700); err != nil {
				t.Fatal(err)
			}
			if tt.holds == lite || tt.holds == both {
				if err := os.WriteFile(filepath.Join(cellDir, "cell.db"), nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if tt.holds == peb || tt.holds == both {
				if err := os.Mkdir(filepath.Join(cellDir, "pebble"), 0o700); err != nil {
					t.Fatal(err)
				}
			}
			cc := domicile.CellConfig{ID: "cn-gz1", Store: domicile.StoreConfig{Kind: tt.named}}
			got, err := resolveCellStore(dir, cc)
			if tt.err != nil {
				var se *storeChoiceError
				if !errors.As(err, &se) {
					t.Fatalf("resolveCellStore = %+v, %v; want a *storeChoiceError", got, err)
				}
				for _, w := range tt.err {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				if refusal(err) == refusal(errors.New("other")) {
					t.Errorf("refusal(%v) = %q, the sentence for any error", err, refusal(err))
				}
				return
			}
			if err != nil {
				t.Fatalf("resolveCellStore: %v", err)
			}
			if got.Kind != tt.want || got.Default != tt.def {
				t.Fatalf("resolveCellStore = %+v, want kind %s (default %v)", got, tt.want, tt.def)
			}
			wantPath := map[string]string{kindSQLite: filepath.Join(cellDir, "cell.db"), kindPebble: filepath.Join(cellDir, "pebble"), kindPostgres: ""}[tt.want]
			if got.Path != wantPath {
				t.Errorf("Path = %q, want %q", got.Path, wantPath)
			}
			if wantExists := got.Path != "" && (tt.holds == both || tt.holds == lite && got.Kind == kindSQLite || tt.holds == peb && got.Kind == kindPebble); got.Exists != wantExists {
				t.Errorf("Exists = %v, want %v", got.Exists, wantExists)
			}
		})
	}
}

// TestStoreKindReadOnce fails if code outside resolveCellStore reads a
// cell's configured store kind (X.Store.Kind), or names a cell store's
// file or directory itself: such a caller would take a cell that names no
// kind ("") for something other than what its data directory holds. The
// deploy package parses the kind, and the store packages own their
// files; every other package asks resolveCellStore.
func TestStoreKindReadOnce(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root: %v", err)
	}
	fset := token.NewFileSet()
	seen := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".") && path != root || d.Name() == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		pkg := filepath.ToSlash(filepath.Dir(rel))
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		seen++
		for _, decl := range f.Decls {
			fn, _ := decl.(*ast.FuncDecl)
			if fn != nil && fn.Name.Name == "resolveCellStore" && pkg == "cmd/domicile" {
				continue // the one place
			}
			ast.Inspect(decl, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.SelectorExpr:
					if inner, ok := n.X.(*ast.SelectorExpr); ok && n.Sel.Name == "Kind" && inner.Sel.Name == "Store" && pkg != "deploy" {
						t.Errorf("%s: reads a cell's configured store kind; ask resolveCellStore (cmd/domicile/stores.go) for the kind in use", fset.Position(n.Pos()))
					}
				case *ast.BasicLit:
					if n.Kind != token.STRING {
						break
					}
					s, _ := strconv.Unquote(n.Value)
					if s == "cell.db" && pkg != "sqlite" {
						t.Errorf("%s: names the SQLite cell store's file; use sqlite.CellFile through resolveCellStore", fset.Position(n.Pos()))
					}
				}
				return true
			})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen < 50 {
		t.Fatalf("scanned %d files: not the module", seen)
	}
}

// TestPebbleMemoryBounds: every memory_mib the deployment parser accepts
// is a bound the Pebble store accepts, and the parser refuses one past
// either end of the store's range, so a file that parses never fails at
// open for its memory bound.
func TestPebbleMemoryBounds(t *testing.T) {
	doc := func(mib int64) string {
		return "cells:\n  - id: cn-gz1\n    jurisdiction: CN\n    operator: Op\n    store: {kind: pebble, memory_mib: " +
			strconv.FormatInt(mib, 10) + "}\npolicy:\n  CN: [cn-gz1]\n"
	}
	lo, hi := int64(pebblestore.MinMemoryBytes>>20), int64(pebblestore.MaxMemoryBytes>>20)
	for _, mib := range []int64{lo, 64, hi} {
		dep, err := deploy.Parse([]byte(doc(mib)))
		if err != nil {
			t.Fatalf("memory_mib %d: %v", mib, err)
		}
		cfg := pebbleConfig(dep.Cells[0])
		if cache, _, err := cfg.Sizes(); err != nil || cache != mib<<20 {
			t.Errorf("memory_mib %d: the store's cache is %d bytes (%v), want %d", mib, cache, err, mib<<20)
		}
	}
	for _, mib := range []int64{lo - 1, hi + 1} {
		if _, err := deploy.Parse([]byte(doc(mib))); err == nil || !strings.Contains(err.Error(), "store.memory_mib") {
			t.Errorf("memory_mib %d: Parse = %v, want a store.memory_mib error", mib, err)
		}
	}
}
