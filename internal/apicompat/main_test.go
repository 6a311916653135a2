package main

import (
	"os"
	"slices"
	"strings"
	"testing"
)

func TestParseAccepted(t *testing.T) {
	got, err := parseAccepted(`# comment

- A: removed
  because
  of this.
- B: old is comparable, new is not
	tab-indented reason
`)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["A: removed"] != "because of this." || got["B: old is comparable, new is not"] != "tab-indented reason" {
		t.Errorf("parsed %q", got)
	}
	for name, text := range map[string]string{
		"no reason":         "- A: removed\n- B: removed\n  why\n",
		"listed twice":      "- A: removed\n  why\n- A: removed\n  again\n",
		"reason first":      "  why\n- A: removed\n",
		"unindented reason": "- A: removed\nwhy\n",
	} {
		if _, err := parseAccepted(text); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestParseReportAndCompare(t *testing.T) {
	changes := parseReport("- B: removed\n- A: changed from int to string\nnot a change\n\n")
	if !slices.Equal(changes, []string{"B: removed", "A: changed from int to string"}) {
		t.Fatalf("changes = %q", changes)
	}
	unaccepted, stale := compare(changes, map[string]string{"B: removed": "why", "C: removed": "why"})
	if !slices.Equal(unaccepted, []string{"A: changed from int to string"}) || !slices.Equal(stale, []string{"C: removed"}) {
		t.Errorf("unaccepted %q, stale %q", unaccepted, stale)
	}
	if u, s := compare(nil, nil); len(u)+len(s) != 0 {
		t.Errorf("nothing to compare gave %q, %q", u, s)
	}
}

// The repository's own accepted file parses, and every entry has a reason
// of a few words at least.
func TestAcceptedFile(t *testing.T) {
	b, err := os.ReadFile("accepted.txt")
	if err != nil {
		t.Fatal(err)
	}
	accepted, err := parseAccepted(string(b))
	if err != nil {
		t.Fatal(err)
	}
	for c, why := range accepted {
		if len(strings.Fields(why)) < 8 {
			t.Errorf("%q: reason %q is too short to explain anything", c, why)
		}
	}
}

func TestCheckModule(t *testing.T) {
	dir := t.TempDir()
	if err := checkModule(dir); err == nil {
		t.Error("a directory without go.mod passed")
	}
	if err := os.WriteFile(dir+"/go.mod", []byte("module example.com/other\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := checkModule(dir); err == nil {
		t.Error("another module passed")
	}
	if err := checkModule("../.."); err != nil {
		t.Errorf("this repository: %v", err)
	}
}
