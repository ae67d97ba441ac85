package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestLogKeysCamelCase: every log attribute key in the module is
// camelCase, like the access log's requestId and durationMs (and the JSON
// API's fields), so that a log query never has to guess between
// retry_after and retryAfter. It reads the source: slog calls
// (Info, Warn, Error, Debug, their Context forms, Log, With) and attribute
// constructors (slog.String, slog.Int, ...).
func TestLogKeysCamelCase(t *testing.T) {
	t.Parallel()
	logFuncs := map[string]int{ // method -> index of its first key-value argument
		"Info": 1, "Warn": 1, "Error": 1, "Debug": 1, "InfoContext": 2, "WarnContext": 2, "ErrorContext": 2,
		"DebugContext": 2, "Log": 3, "LogAttrs": 3, "With": 0,
	}
	attrFuncs := map[string]bool{"String": true, "Int": true, "Int64": true, "Uint64": true, "Float64": true,
		"Bool": true, "Time": true, "Duration": true, "Any": true, "Group": true}
	ident := regexp.MustCompile(`^[a-z][A-Za-z0-9_]*$`)
	fset := token.NewFileSet()
	checked := 0
	err := filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", ".tools", "testdata", "generated", "node_modules":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || strings.HasSuffix(path, ".gen.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			var keys []ast.Expr
			if x, ok := sel.X.(*ast.Ident); ok && x.Name == "slog" && attrFuncs[sel.Sel.Name] && len(call.Args) > 0 {
				keys = call.Args[:1]
			} else if first, ok := logFuncs[sel.Sel.Name]; ok && len(call.Args) > first {
				keys = call.Args[first:]
			}
			for _, a := range keys {
				lit, ok := a.(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					continue
				}
				s, err := strconv.Unquote(lit.Value)
				if err != nil || !ident.MatchString(s) {
					continue
				}
				checked++
				if strings.Contains(s, "_") {
					t.Errorf("%s: log key %q is not camelCase", fset.Position(lit.Pos()), s)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 50 {
		t.Errorf("checked only %d log keys: is the scan still finding the log calls?", checked)
	}
}
