// Package examples_test keeps the examples from rotting: each one is built
// and run, against the in-process broker or the one at MEMPHIS_HOST, and
// must exit successfully. The README's Go snippets are compiled too.
package examples_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestExamplesRun(t *testing.T) {
	dirs, err := filepath.Glob("*/main.go")
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) < 7 {
		t.Fatalf("found %d examples, want at least 7: %v", len(dirs), dirs)
	}
	// go test puts its own GOROOT/bin first on PATH, so "go" is the go
	// command running this test.
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	// One build for all, so the runs below don't each link again.
	build := exec.Command(goBin, "build", "-o", bin+string(os.PathSeparator), "./...")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./examples/...: %v\n%s", err, out)
	}
	for _, d := range dirs {
		name := filepath.Dir(d)
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			out, err := exec.CommandContext(ctx, filepath.Join(bin, name)).CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v\n%s", name, err, out)
			}
			if !strings.Contains(string(out), "using ") {
				t.Errorf("%s did not say which broker it used:\n%s", name, out)
			}
			t.Logf("%s\n%s", name, out)
		})
	}
}

// TestReadmeSnippetsCompile compiles the README's Go snippets as the README
// says they compile: the tour's snippets in order as one function body
// returning error, and the testing section's test function with its
// other snippets (Intercept, faults, TLS) in one function that has t, srv
// and conn in scope. The generated files are laid over a package directory
// that does not exist on disk (go build -overlay), so nothing is written
// into the repository.
func TestReadmeSnippetsCompile(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	tour := goBlocks(t, string(readme), "## A tour")
	testSection := goBlocks(t, string(readme), "## Testing your own service")
	var testFn, rest []string
	for _, b := range testSection {
		if strings.HasPrefix(b, "func ") {
			testFn = append(testFn, b)
		} else {
			rest = append(rest, b)
		}
	}
	if len(tour) < 10 || len(testFn) != 1 || len(rest) == 0 {
		t.Fatalf("found %d tour snippets, %d test functions and %d other testing snippets; has the README changed shape?",
			len(tour), len(testFn), len(rest))
	}
	files := map[string]string{
		"tour.go": `package readmecheck

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/memphisdev/memphis.go"
)

var (
	_ = errors.Is
	_ = fmt.Println
	_ = slog.Info
	_ = os.Stderr
	_ = time.Second
	_ = memphis.Version
)

func tour(ctx context.Context) error {
` + strings.Join(tour, "\n") + `
	return nil
}
`,
		"testing_test.go": `package readmecheck

import (
	"testing"
	"time"

	"github.com/memphisdev/memphis.go"
	"github.com/memphisdev/memphis.go/memphistest"
)

var _ = time.Second

` + testFn[0] + `

func intercept(t *testing.T, srv *memphistest.Server, conn *memphis.Conn) (err error) {
` + strings.Join(rest, "\n") + `
	return err
}
`,
	}
	if out, err := buildOverlay(t, files, os.DevNull); err != nil {
		t.Fatalf("README snippets do not compile: %v\n%s\ngenerated:\n%s\n%s", err, out, numbered(files["tour.go"]), numbered(files["testing_test.go"]))
	}
}

// buildOverlay compiles files as the test package internal/readmecheck,
// which exists only in a go build overlay, into the test binary out.
func buildOverlay(t *testing.T, files map[string]string, out string) ([]byte, error) {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("internal", "readmecheck"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Fatalf("%s exists; the overlay needs that package path free", dir)
	}
	tmp := t.TempDir()
	overlay := map[string]map[string]string{"Replace": {}}
	for name, src := range files {
		path := filepath.Join(tmp, name)
		if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		overlay["Replace"][filepath.Join(dir, name)] = path
	}
	ov, err := json.Marshal(overlay)
	if err != nil {
		t.Fatal(err)
	}
	ovPath := filepath.Join(tmp, "overlay.json")
	if err := os.WriteFile(ovPath, ov, 0o600); err != nil {
		t.Fatal(err)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	// go test -c compiles the test file with the package; vet would chdir
	// into the directory, which exists only in the overlay.
	return exec.Command(goBin, "test", "-vet=off", "-overlay", ovPath, "-c", "-o", out, "./internal/readmecheck").CombinedOutput()
}

// TestReadmeTourRuns runs the tour's snippets, in order, against an
// in-process broker (the tour's Connect calls are pointed at it) with the
// person.json schema file it reads: the tour as written must end, without
// an error, within two minutes. (It takes about half a minute: three of
// its calls wait out a 5-second window.)
func TestReadmeTourRuns(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	tour := strings.Join(goBlocks(t, string(readme), "## A tour"), "\n")
	const connect = `memphis.Connect("localhost", "root", memphis.Password("memphis")`
	if n := strings.Count(tour, connect); n != 2 {
		t.Fatalf("the tour connects %d times as %s; this test expects 2", n, connect)
	}
	tour = strings.ReplaceAll(tour, connect, `memphis.Connect(tourHost, "root", memphis.Password("memphis"), memphis.Port(tourPort)`)
	files := map[string]string{
		"tour.go": `package readmecheck

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/memphisdev/memphis.go"
)

var (
	_ = errors.Is
	_ = fmt.Println
	_ = slog.Info
	_ = os.Stderr
	_ = time.Second

	tourHost string
	tourPort int
)

func tour(ctx context.Context) error {
` + tour + `
	return nil
}
`,
		"tour_test.go": `package readmecheck

import (
	"context"
	"testing"
	"time"

	"github.com/memphisdev/memphis.go/memphistest"
)

func TestTour(t *testing.T) {
	srv := memphistest.NewServer(t)
	tourHost, tourPort = srv.Host(), srv.Port()
	done := make(chan error, 1)
	go func() { done <- tour(context.Background()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("the tour did not end within two minutes")
	}
}
`,
	}
	bin := filepath.Join(t.TempDir(), "tour.test")
	if out, err := buildOverlay(t, files, bin); err != nil {
		t.Fatalf("building the tour: %v\n%s\n%s", err, out, numbered(files["tour.go"]))
	}
	work := t.TempDir()
	schema, err := os.ReadFile(filepath.Join("..", "testdata", "schemas", "person.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "person.json"), schema, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	run := exec.CommandContext(ctx, bin, "-test.v", "-test.timeout=150s")
	run.Dir = work
	start := time.Now()
	out, err := run.CombinedOutput()
	if err != nil {
		t.Fatalf("the tour failed after %v: %v\n%s", time.Since(start).Round(time.Second), err, out)
	}
	t.Logf("the tour ran in %v", time.Since(start).Round(time.Second))
}

var goBlock = regexp.MustCompile("(?s)```go\n(.*?)```")

// goBlocks returns the Go code blocks of the README section that starts
// with heading and ends at the next heading of the same level.
func goBlocks(t *testing.T, readme, heading string) []string {
	t.Helper()
	start := strings.Index(readme, "\n"+heading+"\n")
	if start < 0 {
		t.Fatalf("README has no %q section", heading)
	}
	section := readme[start+1:]
	if end := strings.Index(section[len(heading):], "\n## "); end >= 0 {
		section = section[:len(heading)+end]
	}
	var blocks []string
	for _, m := range goBlock.FindAllStringSubmatch(section, -1) {
		blocks = append(blocks, m[1])
	}
	return blocks
}

func numbered(src string) string {
	var b strings.Builder
	for i, line := range strings.Split(src, "\n") {
		fmt.Fprintf(&b, "%4d  %s\n", i+1, line)
	}
	return b.String()
}
