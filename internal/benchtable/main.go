// Command benchtable reads `go test -bench` output on stdin and prints one
// table of SDK/raw ratios: every benchmark named .../sdk is paired with the
// one of the same name ending in .../raw (the GOMAXPROCS suffix is ignored),
// and each row shows the throughput ratio SDK/raw and the allocations the
// SDK makes beyond raw nats.go.
//
//	go test -run '^$' -bench 'BenchmarkProduce$|BenchmarkConsume$' -benchmem . | go run ./internal/benchtable
//
// With several runs of each benchmark, the ratios are the medians of the
// run-by-run ratios (the i-th SDK run against the i-th raw run) and the
// other figures are medians; ± is the widest deviation from the median. On a
// machine whose load varies, repeat `go test -count=1` in a loop rather than
// passing -count=N: -count runs all N SDK runs before the N raw ones, while
// each -count=1 run puts a pair's SDK and raw runs next to each other.
//
//	for i in 1 2 3 4 5; do go test -run '^$' -bench . -benchmem -count=1 .; done | go run ./internal/benchtable
//
// Throughput is the msgs/s metric when both sides report it, else derived
// from ns/op. When both sides report cpu-ns/op (the process's CPU time per
// message, broker included), the cpu column is raw's CPU per message
// divided by the SDK's: at 1 or more the SDK costs no more CPU than raw; it
// moves less than throughput when other work shares the machine.
// Benchmarks that report latency percentiles (p50-ms, p99-ms) instead of a
// rate get a table of their own, SDK next to raw. A row whose
// ratio is below -min-ratio or whose extra allocations exceed -max-allocs is
// marked with "!"; with -check the command then exits with status 1.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

func main() {
	minRatio := flag.Float64("min-ratio", 0.9, "mark rows whose SDK/raw throughput ratio is below this")
	maxAllocs := flag.Float64("max-allocs", 3, "mark rows where the SDK makes more than this many allocs/op beyond raw")
	check := flag.Bool("check", false, "exit with status 1 if any row is marked")
	echo := flag.Bool("echo", false, "copy the benchmark output to stdout before the table")
	flag.Parse()
	var in io.Reader = os.Stdin
	if *echo {
		in = io.TeeReader(os.Stdin, os.Stdout)
	}
	rows, err := parse(in)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(2)
	}
	if len(rows) == 0 {
		fmt.Fprintln(os.Stderr, "benchtable: no .../sdk and .../raw benchmark pairs in the input")
		os.Exit(2)
	}
	if *echo {
		fmt.Println()
	}
	if bad := render(os.Stdout, rows, *minRatio, *maxAllocs); bad > 0 && *check {
		fmt.Fprintf(os.Stderr, "benchtable: %d row(s) miss the targets (ratio ≥ %.2f, ≤ %g extra allocs/op)\n", bad, *minRatio, *maxAllocs)
		os.Exit(1)
	}
}

// sample is every run of one benchmark: unit → values.
type sample map[string][]float64

// pair is one row: the SDK and raw samples of one benchmark name.
type pair struct {
	name     string
	sdk, raw sample
}

var procsSuffix = regexp.MustCompile(`-\d+$`)

// parse collects the .../sdk and .../raw benchmark lines of r, in the order
// their names first appear; names with only one side are dropped.
func parse(r io.Reader) ([]*pair, error) {
	byName := map[string]*pair{}
	var order []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.ParseInt(f[1], 10, 64); err != nil {
			continue // not a result line (e.g. a log line starting with the name)
		}
		name := procsSuffix.ReplaceAllString(f[0], "")
		base, side, ok := cutSide(name)
		if !ok {
			continue
		}
		p := byName[base]
		if p == nil {
			p = &pair{name: base, sdk: sample{}, raw: sample{}}
			byName[base] = p
			order = append(order, base)
		}
		s := p.sdk
		if side == "raw" {
			s = p.raw
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			s[f[i+1]] = append(s[f[i+1]], v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	var rows []*pair
	for _, n := range order {
		if p := byName[n]; len(p.sdk) > 0 && len(p.raw) > 0 {
			rows = append(rows, p)
		}
	}
	return rows, nil
}

func cutSide(name string) (base, side string, ok bool) {
	i := strings.LastIndexByte(name, '/')
	if i < 0 {
		return "", "", false
	}
	switch side = name[i+1:]; side {
	case "sdk", "raw":
		return name[:i], side, true
	}
	return "", "", false
}

// stat is the median of a sample's values and their largest deviation from
// it, as a fraction.
type stat struct {
	med, dev float64
	ok       bool
}

func (s sample) stat(unit string) stat {
	vs := slices.Clone(s[unit])
	if len(vs) == 0 {
		return stat{}
	}
	slices.Sort(vs)
	n := len(vs)
	med := vs[n/2]
	if n%2 == 0 {
		med = (vs[n/2-1] + vs[n/2]) / 2
	}
	var dev float64
	if med != 0 {
		dev = math.Max(med-vs[0], vs[n-1]-med) / med
	}
	return stat{med: med, dev: dev, ok: true}
}

// throughput is msgs/s if reported, else operations per second from ns/op.
func (s sample) throughput() stat {
	if st := s.stat("msgs/s"); st.ok {
		return st
	}
	st := s.stat("ns/op")
	if !st.ok || st.med == 0 {
		return stat{}
	}
	return stat{med: 1e9 / st.med, dev: st.dev, ok: true}
}

// ratio is the median, over the runs, of num's i-th value divided by den's
// i-th. Each SDK run is thus set against the raw run made nearest to it in
// time, which cancels much of the drift of a shared machine's load, most of
// all when the runs come from a loop of `go test -count=1` (see the package
// comment). Unequal run counts fall back to the ratio of the medians.
func ratio(num, den []float64) stat {
	if len(num) == 0 || len(den) == 0 {
		return stat{}
	}
	if len(num) != len(den) {
		n, d := sample{"v": num}.stat("v"), sample{"v": den}.stat("v")
		if d.med == 0 {
			return stat{}
		}
		return stat{med: n.med / d.med, ok: true}
	}
	rs := make([]float64, 0, len(num))
	for i := range num {
		if den[i] != 0 {
			rs = append(rs, num[i]/den[i])
		}
	}
	return sample{"r": rs}.stat("r")
}

// speedup is the SDK's throughput over raw's, run by run.
func (p *pair) speedup() stat {
	if len(p.sdk["msgs/s"]) > 0 && len(p.raw["msgs/s"]) > 0 {
		return ratio(p.sdk["msgs/s"], p.raw["msgs/s"])
	}
	return ratio(p.raw["ns/op"], p.sdk["ns/op"])
}

// render prints the table and returns how many rows miss a target.
func render(w io.Writer, rows []*pair, minRatio, maxAllocs float64) int {
	width := len("benchmark")
	for _, p := range rows {
		width = max(width, len(p.name))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-*s\t", width, "benchmark")
	fmt.Fprintln(tw, " sdk msgs/s\t raw msgs/s\t sdk/raw\t cpu\t sdk allocs/op\t raw allocs/op\t extra allocs\t sdk B/op\t raw B/op\t runs\t\t")
	bad := 0
	var latency []*pair
	for _, p := range rows {
		if len(p.sdk["p50-ms"]) > 0 {
			latency = append(latency, p)
			continue
		}
		st, rt := p.sdk.throughput(), p.raw.throughput()
		sa, ra := p.sdk.stat("allocs/op"), p.raw.stat("allocs/op")
		sb, rb := p.sdk.stat("B/op"), p.raw.stat("B/op")
		speed, extra, cpu := "-", "-", "-"
		mark := ""
		if r := p.speedup(); r.ok {
			speed = fmt.Sprintf("%.2f ±%.0f%%", r.med, r.dev*100)
			if r.med < minRatio {
				mark = "!"
			}
		}
		if r := ratio(p.raw["cpu-ns/op"], p.sdk["cpu-ns/op"]); r.ok {
			cpu = fmt.Sprintf("%.2f", r.med)
		}
		if sa.ok && ra.ok {
			d := sa.med - ra.med
			extra = fmt.Sprintf("%+g", d)
			if d > maxAllocs {
				mark = "!"
			}
		}
		if mark != "" {
			bad++
		}
		fmt.Fprintf(tw, "%-*s\t %s\t %s\t %s\t %s\t %s\t %s\t %s\t %s\t %s\t %d\t %s\t\n",
			width, p.name, rate(st), rate(rt), speed, cpu, num(sa), num(ra), extra, num(sb), num(rb),
			len(p.sdk["ns/op"]), mark)
	}
	tw.Flush()
	if len(latency) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "%-*s\t", width, "latency (ms)")
		fmt.Fprintln(tw, " sdk p50\t raw p50\t sdk p99\t raw p99\t runs\t")
		for _, p := range latency {
			fmt.Fprintf(tw, "%-*s\t %s\t %s\t %s\t %s\t %d\t\n", width, p.name,
				ms(p.sdk.stat("p50-ms")), ms(p.raw.stat("p50-ms")), ms(p.sdk.stat("p99-ms")), ms(p.raw.stat("p99-ms")),
				len(p.sdk["p50-ms"]))
		}
		tw.Flush()
	}
	fmt.Fprintf(w, "\nsdk/raw: SDK throughput ÷ raw's, the median of run-by-run ratios (target ≥ %.2f).\n"+
		"cpu: raw's CPU time per message ÷ the SDK's, likewise (≥ 1: the SDK costs no more CPU).\n"+
		"extra allocs: SDK allocs/op − raw's (target ≤ %g). Other figures are medians; ± is the widest deviation from it.\n",
		minRatio, maxAllocs)
	return bad
}

func rate(s stat) string {
	if !s.ok {
		return "-"
	}
	v := fmt.Sprintf("%.0f", s.med)
	switch {
	case s.med >= 1e6:
		v = fmt.Sprintf("%.2fM", s.med/1e6)
	case s.med >= 1e4:
		v = fmt.Sprintf("%.1fk", s.med/1e3)
	}
	return fmt.Sprintf("%s ±%.0f%%", v, s.dev*100)
}

func ms(s stat) string {
	if !s.ok {
		return "-"
	}
	return fmt.Sprintf("%.2f ±%.0f%%", s.med, s.dev*100)
}

func num(s stat) string {
	if !s.ok {
		return "-"
	}
	return strconv.FormatFloat(s.med, 'f', -1, 64)
}
