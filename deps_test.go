package memphis_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestCoreDependencies: the SDK package pulls in neither the broker its
// tests run (nats-server) nor OpenTelemetry, whose integration is a module
// of its own (otelmemphis), and the module's go.mod does not name
// OpenTelemetry: programs that do not use it do not download it.
func TestCoreDependencies(t *testing.T) {
	// go test puts its own GOROOT/bin first on PATH.
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(goBin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	pkgs := strings.Fields(string(out))
	if len(pkgs) < 10 {
		t.Fatalf("go list -deps listed %d packages: %q", len(pkgs), out)
	}
	for _, p := range pkgs {
		if strings.HasPrefix(p, "github.com/nats-io/nats-server/") || strings.HasPrefix(p, "go.opentelemetry.io/") {
			t.Errorf("the memphis package depends on %s", p)
		}
	}
	mod, err := os.ReadFile("go.mod")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mod), "go.opentelemetry.io") {
		t.Error("go.mod names OpenTelemetry; it belongs in otelmemphis/go.mod")
	}
}
