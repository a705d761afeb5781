package httpapi

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// TestOneAnswerPath keeps handlers from writing problems themselves: the
// only caller of writeError is answer, which every route's wrapper (auth,
// public) calls with the handler's error, and the problem media type is
// written only in problem.go. A handler that answers an error on its own
// fails this test.
func TestOneAnswerPath(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				switch x := n.(type) {
				case *ast.CallExpr:
					if sel, ok := x.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "writeError" && fn.Name.Name != "answer" {
						t.Errorf("%s: %s calls writeError; return the error and let answer write it", fset.Position(x.Pos()), fn.Name.Name)
					}
				case *ast.BasicLit:
					if strings.Contains(x.Value, "application/problem+json") && name != "problem.go" && !strings.HasPrefix(name, "client") {
						t.Errorf("%s: %s writes a problem document itself", fset.Position(x.Pos()), fn.Name.Name)
					}
				}
				return true
			})
		}
	}
}
