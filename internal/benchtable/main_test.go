package main

import (
	"strings"
	"testing"
)

const input = `goos: linux
BenchmarkProduce/sync/128B/p1/sdk-2   	 1000	 50000 ns/op	 2.56 MB/s	 20000 msgs/s	 9000 cpu-ns/op	 3000 B/op	 40 allocs/op
BenchmarkProduce/sync/128B/p1/raw-2   	 1000	 40000 ns/op	 3.20 MB/s	 25000 msgs/s	 9900 cpu-ns/op	 2800 B/op	 36 allocs/op
BenchmarkProduce/sync/128B/p1/sdk-2   	 1000	 48000 ns/op	 2.66 MB/s	 21000 msgs/s	 3000 B/op	 40 allocs/op
BenchmarkProduce/sync/128B/p1/raw-2   	 1000	 41000 ns/op	 3.12 MB/s	 24000 msgs/s	 2800 B/op	 36 allocs/op
BenchmarkProduce/sync/128B/p1/sdk-2   	 1000	 49000 ns/op	 2.61 MB/s	 22000 msgs/s	 3000 B/op	 40 allocs/op
BenchmarkProduce/sync/128B/p1/raw-2   	 1000	 39000 ns/op	 3.28 MB/s	 26000 msgs/s	 2800 B/op	 36 allocs/op
BenchmarkConsume/fetch100/sdk-2   	 5000	 1000 ns/op	 100 B/op	 2 allocs/op
BenchmarkConsume/fetch100/raw-2   	 5000	 2000 ns/op	 100 B/op	 3 allocs/op
BenchmarkLatency/e2e/sdk-2   	 1	 3000000000 ns/op	 0.40 p50-ms	 2.5 p99-ms
BenchmarkLatency/e2e/raw-2   	 1	 3000000000 ns/op	 0.30 p50-ms	 2.0 p99-ms
BenchmarkConsume/lonely/sdk-2   	 5000	 1000 ns/op
BenchmarkOther-2   	 5000	 1000 ns/op
PASS
`

func TestTable(t *testing.T) {
	rows, err := parse(strings.NewReader(input))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 {
		t.Fatalf("%d rows, want 3 (unpaired and side-less benchmarks dropped)", len(rows))
	}
	var out strings.Builder
	bad := render(&out, rows, 0.9, 3)
	t.Log("\n" + out.String())
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 10 { // header, 2 rows, blank, latency header and row, blank, 3 legend lines
		t.Fatalf("%d lines", len(lines))
	}
	// Latency: percentiles side by side, not a throughput ratio.
	if f := strings.Fields(lines[5]); len(f) < 10 || f[0] != "BenchmarkLatency/e2e" || f[1] != "0.40" || f[3] != "0.30" || f[5] != "2.50" || f[7] != "2.00" {
		t.Errorf("latency row: %q", lines[5])
	}
	// Run-by-run ratios 0.80, 0.875, 0.846 → 0.85; 4 extra allocs → marked.
	if f := strings.Fields(lines[1]); f[0] != "BenchmarkProduce/sync/128B/p1" || !strings.Contains(lines[1], " 0.85 ±5% ") ||
		!strings.Contains(lines[1], "+4") || f[len(f)-1] != "!" {
		t.Errorf("produce row: %q", lines[1])
	}
	// cpu: raw's CPU per message over the SDK's (one run of each reports it).
	if f := strings.Fields(lines[1]); len(f) < 9 || f[5] != "0.85" || f[7] != "1.10" {
		t.Errorf("produce row has no cpu ratio: %q", lines[1])
	}
	// No msgs/s: throughput from ns/op, the SDK twice as fast.
	if !strings.Contains(lines[2], " 2.00 ") || !strings.Contains(lines[2], "-1") || strings.HasSuffix(strings.TrimSpace(lines[2]), "!") {
		t.Errorf("fetch row: %q", lines[2])
	}
	if bad != 1 {
		t.Errorf("%d rows marked, want 1", bad)
	}
}
