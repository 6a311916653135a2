package otelmemphis_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeObservabilityCompiles compiles the Go snippets of the README's
// Observability section, which need this module (OpenTelemetry) to build:
// its declarations at file level, and its other snippets after the tour's
// (whose variables they use) as one function body returning error. The
// file is laid over a package directory that does not exist (go build
// -overlay), so nothing is written into the repository.
func TestReadmeObservabilityCompiles(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	tour := goBlocks(t, string(readme), "## A tour")
	var decls, body []string
	for _, b := range goBlocks(t, string(readme), "## Observability") {
		if declaration(b) {
			decls = append(decls, b)
		} else {
			body = append(body, b)
		}
	}
	if len(tour) < 10 || len(decls) == 0 || len(body) < 4 {
		t.Fatalf("found %d tour snippets, %d declarations and %d other observability snippets; has the README changed shape?",
			len(tour), len(decls), len(body))
	}
	src := `package readmecheck

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"go.opentelemetry.io/otel"

	"github.com/memphisdev/memphis.go"
	"github.com/memphisdev/memphis.go/otelmemphis"
)

var (
	_ = errors.Is
	_ = fmt.Println
	_ = slog.Info
	_ = os.Stderr
	_ = time.Second
	_ = otel.Tracer
	_ = otelmemphis.New
)

` + strings.Join(decls, "\n") + `

func readme(ctx context.Context) error {
` + strings.Join(tour, "\n") + strings.Join(body, "\n") + `
	return nil
}
`
	dir, err := filepath.Abs(filepath.Join("internal", "readmecheck"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Fatalf("%s exists; the overlay needs that package path free", dir)
	}
	tmp := t.TempDir()
	file := filepath.Join(tmp, "readme.go")
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	ov, err := json.Marshal(map[string]map[string]string{"Replace": {filepath.Join(dir, "readme.go"): file}})
	if err != nil {
		t.Fatal(err)
	}
	ovPath := filepath.Join(tmp, "overlay.json")
	if err := os.WriteFile(ovPath, ov, 0o600); err != nil {
		t.Fatal(err)
	}
	goBin, err := exec.LookPath("go") // go test puts its own first on PATH
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(goBin, "build", "-overlay", ovPath, "-o", os.DevNull, "./internal/readmecheck")
	if out, err := cmd.CombinedOutput(); err != nil {
		var numbered strings.Builder
		for i, line := range strings.Split(src, "\n") {
			numbered.WriteString(strings.Repeat(" ", 4-len(itoa(i+1))) + itoa(i+1) + "  " + line + "\n")
		}
		t.Fatalf("README snippets do not compile: %v\n%s\ngenerated:\n%s", err, out, numbered.String())
	}
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

// declaration reports whether a snippet declares types or functions, past
// its leading comments.
func declaration(block string) bool {
	for _, line := range strings.Split(block, "\n") {
		if strings.HasPrefix(line, "//") || strings.TrimSpace(line) == "" {
			continue
		}
		return strings.HasPrefix(line, "type ") || strings.HasPrefix(line, "func ")
	}
	return false
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
