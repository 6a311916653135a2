package memphis_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPackageCommentMapsEveryFile: the package comment's "Where things are"
// names every file of the package, and only files that exist, so a
// newcomer finds each concept's room from it.
func TestPackageCommentMapsEveryFile(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "memphis.go", nil, parser.ParseComments|parser.PackageClauseOnly)
	if err != nil {
		t.Fatal(err)
	}
	doc := f.Doc.Text()
	i := strings.Index(doc, "Where things are")
	if i < 0 {
		t.Fatal(`the package comment has no "Where things are" section`)
	}
	mapped := map[string]bool{}
	for _, line := range strings.Split(doc[i:], "\n") {
		for _, word := range strings.Fields(line) {
			if strings.HasSuffix(word, ".go") {
				mapped[word] = true
			}
		}
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		if !mapped[name] {
			t.Errorf("%s is not in the package comment's map", name)
		}
		delete(mapped, name)
	}
	for name := range mapped {
		if _, err := os.Stat(name); err != nil {
			t.Errorf("the package comment maps %s, which does not exist", name)
		}
	}
}

// TestEveryTestPackageChecksForLeaks: "the test suites check for leaked
// goroutines with goleak": every package of the repository with tests has
// a TestMain that calls goleak.VerifyTestMain, but for those exempted
// with their reason.
func TestEveryTestPackageChecksForLeaks(t *testing.T) {
	// The test packages that need not check, with the reason.
	leakCheckExempt := map[string]string{
		"internal/apicompat": "a build tool's parsing and reporting; it runs no SDK code",
		"interop/golang":     "a module of its own that drives the official 1.x SDK, not this one",
	}
	dirs := map[string][]string{} // directory → its test files
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, "_test.go") {
			dirs[filepath.ToSlash(filepath.Dir(path))] = append(dirs[filepath.ToSlash(filepath.Dir(path))], path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) < 5 {
		t.Fatalf("found tests in %d directories: %v", len(dirs), dirs)
	}
	for dir, files := range dirs {
		checks := false
		for _, f := range files {
			checks = checks || testMainVerifiesLeaks(t, f)
		}
		_, exempt := leakCheckExempt[dir]
		switch {
		case !checks && !exempt:
			t.Errorf("%s has tests but no TestMain calling goleak.VerifyTestMain", dir)
		case checks && exempt:
			t.Errorf("%s checks for leaks; drop it from leakCheckExempt", dir)
		}
	}
	for dir := range leakCheckExempt {
		if dirs[dir] == nil {
			t.Errorf("leakCheckExempt lists %s, which has no tests", dir)
		}
	}
}

// testMainVerifiesLeaks reports whether a test file's TestMain calls
// goleak.VerifyTestMain.
func testMainVerifiesLeaks(t *testing.T, file string) bool {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Recv != nil || fn.Name.Name != "TestMain" || fn.Body == nil {
			continue
		}
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			if call, ok := n.(*ast.CallExpr); ok {
				if sel, ok := call.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "VerifyTestMain" {
					if pkg, ok := sel.X.(*ast.Ident); ok && pkg.Name == "goleak" {
						found = true
					}
				}
			}
			return !found
		})
	}
	return found
}
