package evaluate

import (
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"testing"
)

// TestEvalNodeListsEveryNodeType: evalNode dispatches on concrete node
// types (so the environment stays on the stack) and answers false for a
// type it does not list, so every type with an eval method must be listed.
func TestEvalNodeListsEveryNodeType(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "nodes.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var nodes, listed []string
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok {
			continue
		}
		if fd.Recv != nil && fd.Name.Name == "eval" {
			if star, ok := fd.Recv.List[0].Type.(*ast.StarExpr); ok {
				nodes = append(nodes, star.X.(*ast.Ident).Name)
			}
		}
		if fd.Recv == nil && fd.Name.Name == "evalNode" {
			ast.Inspect(fd.Body, func(n ast.Node) bool {
				if cc, ok := n.(*ast.CaseClause); ok {
					for _, e := range cc.List {
						if star, ok := e.(*ast.StarExpr); ok {
							listed = append(listed, star.X.(*ast.Ident).Name)
						}
					}
				}
				return true
			})
		}
	}
	if len(nodes) < 10 {
		t.Fatalf("found only %d node types with an eval method: %v", len(nodes), nodes)
	}
	for _, n := range nodes {
		if !slices.Contains(listed, n) {
			t.Errorf("evalNode does not list *%s", n)
		}
	}
}
