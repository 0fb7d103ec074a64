package bev_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/bevgo/bev"

// layers is docs/design.md's "Imports point one way": for each library
// package, the packages of this module its non-test files may import.
// internal/... is open to all of them; examples/... and the root tests may
// import anything; nothing imports examples (they are package main).
var layers = map[string][]string{
	"clock":              {},
	"limiter":            {"clock"},
	"limiter/redisgroup": {"clock", "limiter"},
	"actor":              {"clock", "limiter"},
	"pipeline":           {"clock", "limiter", "actor"},
	"pipeline/toxic":     {"clock", "limiter", "actor", "pipeline"},
	"conn":               {"clock", "limiter", "actor"},
	"conn/tlsconn":       {"clock", "limiter", "actor", "conn"},
}

// TestImportsPointOneWay keeps the package graph docs/design.md draws:
// clock ← limiter ← actor ← pipeline, conn ← examples (limiter ←
// limiter/redisgroup, conn ← conn/tlsconn, pipeline ← pipeline/toxic).
// A cycle would not compile, but pipeline importing conn, actor importing
// pipeline's helpers through a new package, or a library package
// importing an example would; it fails naming each such import, and each
// library package this map does not know of.
func TestImportsPointOneWay(t *testing.T) {
	imports := moduleImports(t, ".")
	for _, pkg := range slices.Sorted(maps.Keys(imports)) {
		deps := imports[pkg]
		if pkg == "" || strings.HasPrefix(pkg, "examples/") || strings.HasPrefix(pkg, "internal/") || strings.HasPrefix(pkg, "bench/") {
			for _, d := range deps {
				if strings.HasPrefix(d, "examples/") {
					t.Errorf("%q imports %q: nothing imports examples", pkg, d)
				}
			}
			continue
		}
		allowed, ok := layers[pkg]
		if !ok {
			t.Errorf("package %q is not in the layers of docs/design.md (add it here and there)", pkg)
			continue
		}
		for _, d := range deps {
			if !strings.HasPrefix(d, "internal/") && !slices.Contains(allowed, d) {
				t.Errorf("%q imports %q; it may import only %v (and internal/...)", pkg, d, allowed)
			}
		}
	}
	for pkg := range layers {
		if _, ok := imports[pkg]; !ok {
			t.Errorf("layer %q has no package (renamed?)", pkg)
		}
	}
}

// moduleImports returns, for each package directory under root (relative,
// "" for the root), the packages of this module that its non-test files
// import, relative to the module path.
func moduleImports(t *testing.T, root string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); p != root && (strings.HasPrefix(name, ".") || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		dir := filepath.ToSlash(filepath.Dir(p))
		if dir == "." {
			dir = ""
		}
		deps := out[dir]
		for _, im := range f.Imports {
			ip, err := strconv.Unquote(im.Path.Value)
			if err != nil {
				return err
			}
			if rel, ok := strings.CutPrefix(ip, module+"/"); ok && !slices.Contains(deps, rel) {
				deps = append(deps, rel)
			}
		}
		out[dir] = deps
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path.Join(root, "go.mod")); err != nil {
		t.Fatalf("run from the module's root: %v", err)
	}
	return out
}
