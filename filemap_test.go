package memphis_test

import (
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
