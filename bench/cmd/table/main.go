// Command table runs the bench module's BenchmarkCompare and prints the
// Markdown tables the README shows: the benchmark flag through every
// engine, then the cost as rules grow 1 → 10 → 100 and flags 10 → 10,000.
//
// Run it from the bench directory:
//
//	go run ./cmd/table                      # -benchtime=500ms -count=3
//	go run ./cmd/table -benchtime=2s -count=5
//	go test -run '^$' -bench Compare -benchmem . | go run ./cmd/table -in -
//
// Each figure is the median of the -count runs. When ../openfeature (the
// Flagwire OpenFeature provider) exists, the benchmarks are built with
// -tags flagwire_openfeature so the provider is measured too.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
)

func main() {
	benchtime := flag.String("benchtime", "500ms", "go test -benchtime")
	count := flag.Int("count", 3, "go test -count; the table shows medians")
	bench := flag.String("bench", "^BenchmarkCompare$", "go test -bench")
	in := flag.String("in", "", "read `go test -bench` output from this file (- for stdin) instead of running it")
	flag.Parse()

	var r io.Reader
	switch *in {
	case "":
		out, err := runBenchmarks(*bench, *benchtime, *count)
		if err != nil {
			fmt.Fprintln(os.Stderr, "table:", err)
			os.Exit(1)
		}
		r = strings.NewReader(out)
	case "-":
		r = os.Stdin
	default:
		f, err := os.Open(*in)
		if err != nil {
			fmt.Fprintln(os.Stderr, "table:", err)
			os.Exit(1)
		}
		defer f.Close()
		r = f
	}
	res, meta, err := parse(r)
	if err != nil {
		fmt.Fprintln(os.Stderr, "table:", err)
		os.Exit(1)
	}
	fmt.Print(render(res, meta))
}

// runBenchmarks runs go test in the current directory (the bench module),
// echoing its output to stderr, and returns the output.
func runBenchmarks(bench, benchtime string, count int) (string, error) {
	if _, err := os.Stat("go.mod"); err != nil {
		return "", fmt.Errorf("run me from the bench directory (go run ./cmd/table): %v", err)
	}
	args := []string{"test", "-run", "^$", "-bench", bench, "-benchmem", "-benchtime", benchtime, "-count", strconv.Itoa(count)}
	if st, err := os.Stat("../openfeature"); err == nil && st.IsDir() {
		// Measure the provider only if it builds: it may be work in progress.
		check := exec.Command("go", "build", "github.com/flagwire/flagwire/openfeature")
		if out, err := check.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "table: ../openfeature does not build; skipping the Flagwire OpenFeature provider:\n%s", out)
		} else {
			args = append(args, "-tags", "flagwire_openfeature")
		}
	}
	args = append(args, ".")
	fmt.Fprintln(os.Stderr, "$ go", strings.Join(args, " "))
	cmd := exec.Command("go", args...)
	var sb strings.Builder
	cmd.Stdout = io.MultiWriter(&sb, os.Stderr)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go test: %w", err)
	}
	return sb.String(), nil
}

// sample is one benchmark's runs.
type sample struct {
	ns, bytes, allocs []float64
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return -1
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

var lineRE = regexp.MustCompile(`^(BenchmarkCompare/\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)

// parse reads go test -bench output: results keyed by name without the
// "BenchmarkCompare/" prefix and the -GOMAXPROCS suffix, and the header
// lines (goos, goarch, cpu).
func parse(r io.Reader) (map[string]*sample, map[string]string, error) {
	res := map[string]*sample{}
	meta := map[string]string{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		for _, k := range []string{"goos", "goarch", "cpu"} {
			if v, ok := strings.CutPrefix(line, k+": "); ok {
				meta[k] = strings.TrimSpace(v)
			}
		}
		m := lineRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		name := strings.TrimPrefix(m[1], "BenchmarkCompare/")
		s := res[name]
		if s == nil {
			s = &sample{}
			res[name] = s
		}
		f := strings.Fields(m[2])
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				s.ns = append(s.ns, v)
			case "B/op":
				s.bytes = append(s.bytes, v)
			case "allocs/op":
				s.allocs = append(s.allocs, v)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, nil, err
	}
	if len(res) == 0 {
		return nil, nil, fmt.Errorf("no BenchmarkCompare results in the input")
	}
	return res, meta, nil
}

// engines in table order, with their descriptions.
var engines = []struct{ name, desc string }{
	{"flagwire-evaluate", "Flagwire rules engine, subject as a map (`evaluate.Snapshot.Evaluate`)"},
	{"flagwire-evaluate-attrs", "Flagwire rules engine, subject as Attrs (`evaluate.Snapshot.EvaluateAttrs`)"},
	{"flagwire-local", "Flagwire client, local mode, `WithAttributes` (`client.Bool`)"},
	{"flagwire-local-subject", "Flagwire client, local mode, `WithSubject` (`client.Bool`)"},
	{"flagwire-remote-cache-hit", "Flagwire client, remote mode, cache hit (`client.Bool`)"},
	{"openfeature-flagwire", "OpenFeature go-sdk + Flagwire provider"},
	{"launchdarkly-v7", "LaunchDarkly Go server SDK v7 (test data source, events off)"},
	{"openfeature-memprovider", "OpenFeature go-sdk v1.20, in-memory provider (rules as a Go func)"},
}

func formatNs(ns float64) string {
	switch {
	case ns < 0:
		return "—"
	case ns < 10:
		return fmt.Sprintf("%.1f", ns)
	default:
		return strconv.FormatFloat(ns, 'f', 0, 64)
	}
}

func render(res map[string]*sample, meta map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Benchmark flag: 3 rules (one a 1,000-id segment) + 25%% rollout, subject {userId: 8a7f4c91, plan: pro, region: US, appVersion: 2.3.1}. %s/%s, %s, %s; medians.\n\n",
		orDefault(meta["goos"], runtime.GOOS), orDefault(meta["goarch"], runtime.GOARCH), orDefault(meta["cpu"], "unknown CPU"), runtime.Version())
	b.WriteString("| engine | ns/op | allocs/op | B/op | vs LaunchDarkly |\n|---|--:|--:|--:|--:|\n")
	ldNs := -1.0
	if s := res["benchflag/launchdarkly-v7"]; s != nil {
		ldNs = median(s.ns)
	}
	for _, e := range engines {
		s := res["benchflag/"+e.name]
		if s == nil || len(s.ns) == 0 {
			continue
		}
		ns := median(s.ns)
		rel := "—"
		if ldNs > 0 {
			rel = fmt.Sprintf("%.2f×", ns/ldNs)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", e.desc, formatNs(ns), formatInt(median(s.allocs)), formatInt(median(s.bytes)), rel)
	}
	for _, dim := range []struct{ key, title string }{
		{"rules", "Cost as rules grow (none matches; ns/op, allocs/op in parentheses)"},
		{"flags", "Cost as flags grow (one benchmark flag among N; ns/op, allocs/op in parentheses)"},
	} {
		var ns []int
		cols := map[string]bool{}
		for name := range res {
			group, eng, ok := strings.Cut(name, "/")
			v, found := strings.CutPrefix(group, dim.key+"=")
			if !ok || !found {
				continue
			}
			n, err := strconv.Atoi(v)
			if err != nil {
				continue
			}
			if !slices.Contains(ns, n) {
				ns = append(ns, n)
			}
			cols[eng] = true
		}
		if len(ns) == 0 {
			continue
		}
		slices.Sort(ns)
		var order []string
		for _, e := range engines {
			if cols[e.name] {
				order = append(order, e.name)
			}
		}
		fmt.Fprintf(&b, "\n%s:\n\n| %s |", dim.title, dim.key)
		for _, e := range order {
			fmt.Fprintf(&b, " %s |", e)
		}
		b.WriteString("\n|--:|" + strings.Repeat("--:|", len(order)) + "\n")
		for _, n := range ns {
			fmt.Fprintf(&b, "| %s |", humanInt(n))
			for _, e := range order {
				s := res[fmt.Sprintf("%s=%d/%s", dim.key, n, e)]
				if s == nil || len(s.ns) == 0 {
					b.WriteString(" — |")
					continue
				}
				fmt.Fprintf(&b, " %s (%s) |", formatNs(median(s.ns)), formatInt(median(s.allocs)))
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

func formatInt(x float64) string {
	if x < 0 {
		return "—"
	}
	return strconv.FormatFloat(x, 'f', 0, 64)
}

func humanInt(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
