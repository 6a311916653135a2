package memphis_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// docs/protocol.md is cited by anchor from comments and documents; a
// citation that names no anchor would send a reader nowhere.

var (
	protocolAnchor   = regexp.MustCompile(`<a id="([^"]*)"></a>`)
	protocolSelfLink = regexp.MustCompile(`\]\(#([^)]*)\)`)
	protocolCitation = regexp.MustCompile(`docs/protocol\.md#([A-Za-z0-9_-]+)`)
	anchorName       = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
)

func protocolAnchors(t *testing.T) map[string]bool {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("docs", "protocol.md"))
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for _, m := range protocolAnchor.FindAllStringSubmatch(string(doc), -1) {
		a := m[1]
		if !anchorName.MatchString(a) {
			t.Errorf("anchor %q is not lower-case words joined by hyphens", a)
		}
		if anchors[a] {
			t.Errorf("anchor %q is defined twice", a)
		}
		anchors[a] = true
	}
	if len(anchors) == 0 {
		t.Fatal("docs/protocol.md defines no anchors")
	}
	for _, m := range protocolSelfLink.FindAllStringSubmatch(string(doc), -1) {
		if !anchors[m[1]] {
			t.Errorf("docs/protocol.md links to #%s, which it does not define", m[1])
		}
	}
	return anchors
}

func TestProtocolDocCitationsResolve(t *testing.T) {
	anchors := protocolAnchors(t)
	cited := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != "." && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, ".md") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range protocolCitation.FindAllStringSubmatch(string(data), -1) {
			cited++
			if !anchors[m[1]] {
				t.Errorf("%s cites docs/protocol.md#%s, which the document does not define", path, m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d anchors, %d citations", len(anchors), cited)
}
