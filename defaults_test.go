package memphis_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// noConstant are the defaults the README says have no constant.
var noConstant = []string{"logging", "dead-letter copy station", "consumer group"}

var backticked = regexp.MustCompile("`([A-Za-z]+)`")

// TestReadmeDefaultsDocumented: the README's Defaults section, "every
// default that is a value is an exported constant in memphis.go, and the
// doc comment of each option names its constant": each row's constant is
// one, every Default constant has a row, and each option's doc comment
// names its row's constant; the three defaults without a constant are the
// ones the README names, and their options' doc comments say what the
// default is. (TestReadmeDefaultsTable checks the values.)
func TestReadmeDefaultsDocumented(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(readme)
	section = section[strings.Index(section, "\n## Defaults\n"):]
	section = section[:strings.Index(section[1:], "\n## ")+1]

	docs := optionDocs(t)
	consts := defaultConsts(t)
	seen := map[string]bool{}
	var withoutConstant []string
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) != 6 || strings.HasPrefix(strings.TrimSpace(cells[1]), "---") || strings.TrimSpace(cells[1]) == "setting" {
			continue
		}
		setting, options, constant := strings.TrimSpace(cells[1]), cells[2], strings.TrimSpace(cells[4])
		var opts []string
		for _, m := range backticked.FindAllStringSubmatch(options, -1) {
			opts = append(opts, m[1])
		}
		if len(opts) == 0 {
			t.Errorf("%s: no option named", setting)
		}
		if constant == "—" {
			withoutConstant = append(withoutConstant, setting)
			for _, o := range opts {
				if !strings.Contains(docs[o], "Default") {
					t.Errorf("%s: the doc comment of %s does not say what the default is", setting, o)
				}
			}
			continue
		}
		name := backticked.FindStringSubmatch(constant)
		if name == nil {
			t.Errorf("%s: constant cell %q names no constant", setting, constant)
			continue
		}
		seen[name[1]] = true
		if !consts[name[1]] {
			t.Errorf("%s: %s is not an exported constant of memphis.go", setting, name[1])
		}
		for _, o := range opts {
			if o == "SyncProduce" {
				continue // the option that restores the default
			}
			if !strings.Contains(docs[o], name[1]) {
				t.Errorf("%s: the doc comment of %s does not name %s", setting, o, name[1])
			}
		}
	}
	if !slices.Equal(withoutConstant, noConstant) {
		t.Errorf("defaults without a constant: %q, the README's text names %q", withoutConstant, noConstant)
	}
	for c := range consts {
		if !seen[c] {
			t.Errorf("memphis.go has %s, which the README's table does not name", c)
		}
	}
}

// optionDocs maps each function of options.go to its doc comment.
func optionDocs(t *testing.T) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "options.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]string{}
	for _, d := range f.Decls {
		if fn, ok := d.(*ast.FuncDecl); ok && fn.Recv == nil && fn.Doc != nil {
			docs[fn.Name.Name] = fn.Doc.Text()
		}
	}
	return docs
}

// defaultConsts lists the exported Default constants of memphis.go.
func defaultConsts(t *testing.T) map[string]bool {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "memphis.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	consts := map[string]bool{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			for _, n := range s.(*ast.ValueSpec).Names {
				if strings.HasPrefix(n.Name, "Default") {
					consts[n.Name] = true
				}
			}
		}
	}
	return consts
}
