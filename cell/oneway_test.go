package cell_test

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// storeMethods are the methods of a cell store that reach subject data
// (rows, events with their text, blobs) or change it.
var storeMethods = map[string]bool{
	"Subject": true, "Record": true, "Records": true, "Object": true, "Objects": true,
	"SubjectEvents": true, "Events": true, "Commit": true, "Blobs": true,
	"Request": true, "Requests": true, "Receipt": true, "SubjectHoldings": true,
}

// storeTypes are the types whose storeMethods are guarded: the interface
// and the two stores behind it.
var storeTypes = []string{"domicile.CellStore", "domicile.SubjectLister", "*domicile/sqlite.Store", "*domicile/postgres.Store", "domicile/sqlite.Store", "domicile/postgres.Store"}

// storeInterfaces are the small interfaces CellStore is made of that
// declare storeMethods: a call of one of their methods is guarded through
// whatever type it is made, such as a consumer's own interface that
// embeds them.
var storeInterfaces = []string{"(domicile.CellStore).", "(domicile.Committer).", "(domicile.DataReader).", "(domicile.EventReader).", "(domicile.RequestStore)."}

// mayReachStores are the packages that implement or are the access path
// (and the conformance suites that test the stores), and the raw baseline
// of domicile bench, which is by definition the store without the access
// path, serving its own store of synthetic data.
var mayReachStores = map[string]bool{
	"domicile/cell": true, "domicile/sqlite": true, "domicile/postgres": true, "domicile/domiciletest": true,
	"domicile/bench/baseline": true,
}

// allowedUses are the uses outside those packages that are reviewed and
// deliberate, by "package file method": the growth fixture of domicile
// bench writes synthetic subjects offline, with nothing serving.
var allowedUses = map[string]bool{
	"domicile/cmd/domicile bench.go Commit": true,
}

// TestOneWayIn fails when code outside the access path reaches a cell
// store's subject data (invariant 8): a new route, report or command that
// reads rows or events from a store directly instead of through a cell's
// operations. It type-checks every non-test package of the module against
// the build's export data.
func TestOneWayIn(t *testing.T) {
	if testing.Short() {
		t.Skip("type-checks the whole module; skipped with -short")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "list", "-export", "-deps", "-json", "./...")
	cmd.Dir = root
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	type pkg struct {
		ImportPath, Dir, Export string
		GoFiles                 []string
		Module                  *struct{ Path string }
		ImportMap               map[string]string
	}
	exports := map[string]string{}
	var mine []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		exports[p.ImportPath] = p.Export
		if p.Module != nil && p.Module.Path == "domicile" {
			mine = append(mine, p)
		}
	}
	fset := token.NewFileSet()
	imp := importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		f, ok := exports[path]
		if !ok || f == "" {
			return nil, os.ErrNotExist
		}
		return os.Open(f)
	})
	checked := 0
	for _, p := range mine {
		if mayReachStores[p.ImportPath] || strings.HasPrefix(p.ImportPath, "domicile/internal/") {
			continue
		}
		var files []*ast.File
		for _, name := range p.GoFiles {
			f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, f)
		}
		info := &types.Info{Selections: map[*ast.SelectorExpr]*types.Selection{}}
		conf := types.Config{Importer: importerFunc(func(path string) (*types.Package, error) {
			if m, ok := p.ImportMap[path]; ok {
				path = m
			}
			return imp.Import(path)
		})}
		if _, err := conf.Check(p.ImportPath, fset, files, info); err != nil {
			t.Fatalf("type-check %s: %v", p.ImportPath, err)
		}
		checked++
		for sel, s := range info.Selections {
			if s.Kind() != types.MethodVal || !storeMethods[sel.Sel.Name] {
				continue
			}
			recv := types.TypeString(s.Recv(), nil)
			guarded := false
			for _, st := range storeTypes {
				if recv == st {
					guarded = true
				}
			}
			if f, ok := s.Obj().(*types.Func); ok {
				for _, si := range storeInterfaces {
					if strings.HasPrefix(f.FullName(), si) {
						guarded = true
					}
				}
			}
			if !guarded {
				continue
			}
			pos := fset.Position(sel.Pos())
			if allowedUses[p.ImportPath+" "+filepath.Base(pos.Filename)+" "+sel.Sel.Name] {
				continue
			}
			t.Errorf("%s: %s.%s reaches a cell store around the access path (cell.Access); go through a cell's operations", pos, recv, sel.Sel.Name)
		}
	}
	if checked < 10 {
		t.Fatalf("checked %d packages; the module's packages were not found", checked)
	}
}

type importerFunc func(path string) (*types.Package, error)

func (f importerFunc) Import(path string) (*types.Package, error) { return f(path) }
