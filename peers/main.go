// Command peers checks Flagwire against real OFREP peers over loopback:
// the SDK's OFREP mode against flagd and the GO Feature Flag relay proxy,
// the official Go and JavaScript OFREP providers against flagwire serve,
// and a side-by-side load table of the three servers. It starts and stops
// every server itself; run.sh builds them and runs it (see README.md).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	var (
		bin      = flag.String("bin", "", "directory holding the flagwire, flagd and relayproxy binaries (required)")
		flags    = flag.String("flags", "flags", "directory of the flag definitions (flagwire/, flagd.json, goff.yaml)")
		jsDir    = flag.String("js", "", "directory of check.mjs with its node_modules installed (empty: skip the JS provider)")
		parts    = flag.String("parts", "sdk,providers,table", "what to run: sdk, providers, table (comma-separated)")
		duration = flag.Duration("duration", 2*time.Second, "table: time per cell and round")
		rounds   = flag.Int("rounds", 3, "table: interleaved rounds")
		concs    = flag.String("conc", "1,16,64", "table: concurrencies")
		subjects = flag.Int("subjects", 1000, "split checks: subjects")
		tokens   = flag.Int("load-tokens", 32, "table: read tokens for flagwire serve when its reads are rate-limited by default")
		serve    = flag.String("serve-args", "", "extra arguments for flagwire serve (space-separated), e.g. rate-limit flags")
		pg       = flag.String("pg", "", "also run flagwire serve on this empty PostgreSQL database (postgres://…), as a column of its own whose CPU per answer includes every postgres process's")
		pgArgs   []string
	)
	flag.Func("pg-args", "with -pg: extra arguments for that flagwire serve (space-separated), e.g. --read-staleness 100ms; repeat it for one column (a replica on the same database) per value", func(v string) error {
		pgArgs = append(pgArgs, v)
		return nil
	})
	flag.Parse()
	if *bin == "" {
		fmt.Fprintln(os.Stderr, "peers: -bin is required (run.sh sets it)")
		os.Exit(2)
	}
	cs, err := parseConcs(*concs)
	if err != nil || *rounds < 1 || *duration <= 0 || *duration > time.Minute || *subjects < 100 {
		fmt.Fprintln(os.Stderr, "peers: -conc must be positive integers, -rounds ≥ 1, 0 < -duration ≤ 1m, -subjects ≥ 100")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	failed, err := run(ctx, runConfig{
		bin: *bin, flags: *flags, js: *jsDir, parts: strings.Split(*parts, ","),
		duration: *duration, rounds: *rounds, concs: cs, subjects: *subjects, tokens: *tokens, serveArgs: strings.Fields(*serve), pg: *pg, pgArgs: pgArgs,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "peers:", err)
		os.Exit(2)
	}
	if failed > 0 {
		fmt.Printf("\n%d check(s) FAILED\n", failed)
		os.Exit(1)
	}
}

func parseConcs(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 1024 {
			return nil, fmt.Errorf("bad concurrency %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

type runConfig struct {
	bin, flags, js string
	parts          []string
	duration       time.Duration
	rounds         int
	concs          []int
	subjects       int
	tokens         int
	serveArgs      []string
	pg             string   // a PostgreSQL DSN: flagwire serve on it too
	pgArgs         []string // one such server per value: its extra arguments
}

func (c runConfig) has(part string) bool {
	for _, p := range c.parts {
		if strings.TrimSpace(p) == part {
			return true
		}
	}
	return false
}

// run starts the servers the parts need, runs the parts and stops the
// servers. A peer that cannot start is reported and its checks skipped;
// the rest run. It returns the number of failed checks.
func run(ctx context.Context, c runConfig) (int, error) {
	flagsDir, err := filepath.Abs(c.flags)
	if err != nil {
		return 0, err
	}
	work, err := os.MkdirTemp("", "flagwire-peers-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(work)
	fmt.Printf("# Flagwire against OFREP peers (%s, %s/%s, %d CPUs)\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
	for _, b := range []string{"flagd", "relayproxy"} {
		rev, err := os.ReadFile(filepath.Join(c.bin, b+".rev"))
		if err != nil {
			rev = []byte("unknown (no " + b + ".rev beside the binary)")
		}
		fmt.Printf("%s built from %s\n", b, strings.TrimSpace(string(rev)))
	}

	var servers []*server
	defer func() {
		for _, s := range servers {
			s.stop()
		}
	}()
	var problems []string
	fw, note, err := startFlagwire(ctx, filepath.Join(c.bin, "flagwire"), filepath.Join(flagsDir, "flagwire"), work, "", "flagwire", "flagwire serve", c.tokens, c.serveArgs)
	if err != nil {
		return 0, fmt.Errorf("flagwire serve: %w", err)
	}
	servers = append(servers, fw)
	fmt.Println("\n" + note)
	if c.pg != "" {
		variants := c.pgArgs
		if len(variants) == 0 {
			variants = []string{""}
		}
		for i, v := range variants {
			name, label := "flagwire-pg", "flagwire serve (PostgreSQL)"
			if i > 0 {
				name = fmt.Sprintf("flagwire-pg%d", i+1)
			}
			if v != "" {
				label = "flagwire serve (PostgreSQL, " + v + ")"
			}
			args := append(slices.Clone(c.serveArgs), strings.Fields(v)...)
			fp, note, err := startFlagwire(ctx, filepath.Join(c.bin, "flagwire"), filepath.Join(flagsDir, "flagwire"), work, c.pg, name, label, c.tokens, args)
			if err != nil {
				return 0, fmt.Errorf("flagwire serve --store %s: %w", v, err)
			}
			fp.withDB = true
			servers = append(servers, fp)
			fmt.Println(note + " (CPU per answer: its own and every postgres process's)")
		}
	}
	fd, err := startFlagd(ctx, filepath.Join(c.bin, "flagd"), filepath.Join(flagsDir, "flagd.json"), work)
	if err != nil {
		problems = append(problems, "flagd: "+err.Error())
	} else {
		servers = append(servers, fd)
	}
	rl, err := startRelay(ctx, filepath.Join(c.bin, "relayproxy"), filepath.Join(flagsDir, "goff.yaml"), work)
	if err != nil {
		problems = append(problems, "GO Feature Flag relay proxy: "+err.Error())
	} else {
		servers = append(servers, rl)
	}
	for _, p := range problems {
		fmt.Println("NOT RUN:", p)
	}

	failed := 0
	show := func(r *results, err error) {
		if err != nil {
			fmt.Println("\nERROR:", err)
			failed++
			return
		}
		r.print(os.Stdout)
		failed += r.failed
	}
	if c.has("sdk") {
		if fd != nil {
			show(checkPeer(ctx, fd, flagdCases(), c.subjects))
		}
		if rl != nil {
			show(checkPeer(ctx, rl, relayCases(), c.subjects))
		}
	}
	if c.has("providers") {
		cases := providerCases(c.subjects / 5)
		show(checkGoProvider(ctx, fw, cases))
		if c.js != "" {
			show(checkJSProvider(ctx, fw, cases, c.js, work))
		} else {
			fmt.Println("\nJS provider: not run (-js not set)")
		}
		// A disabled flag through both providers on the other servers: the
		// same OFREP code default.
		for _, p := range []*server{fd, rl} {
			if p == nil {
				continue
			}
			show(checkGoProvider(ctx, p, disabledCases(p.name)))
			if c.js != "" {
				show(checkJSProvider(ctx, p, disabledCases(p.name), c.js, work))
			}
		}
	}
	if c.has("table") {
		if err := table(ctx, os.Stdout, servers, c.concs, c.duration, c.rounds); err != nil {
			if errors.Is(err, context.Canceled) {
				return failed, err
			}
			fmt.Println("\nERROR: table:", err)
			failed++
		}
	}
	return failed, nil
}
