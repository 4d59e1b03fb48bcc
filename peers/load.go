package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"
)

// The side-by-side table: the same flags on every server, OFREP single
// (POST /ofrep/v1/evaluate/flags/theme) and bulk (POST
// /ofrep/v1/evaluate/flags), at each concurrency, for a fixed duration per
// cell. Cells are interleaved: every round runs every (mode, concurrency)
// on every server in turn, so machine noise hits all servers alike. The
// load generator stops by itself (duration, and maxPerCell requests).

const (
	loadSubjects = 1024    // distinct contexts, cycled
	maxPerCell   = 2000000 // request bound per cell
)

// cellKey names one cell of the table.
type cellKey struct {
	server string
	mode   string // single, bulk
	conc   int
}

// cellStats accumulates a cell over the rounds.
type cellStats struct {
	answers  int64 // 200 answers
	failures int64 // anything else (status or transport)
	elapsed  time.Duration
	ticks    int64 // server CPU (utime+stime) over the cell's runs
	lat      []time.Duration
	status   map[int]int64
}

// loadBodies are the request bodies: subject i is a user on the pro or
// free plan, so the targeting rule of theme matches half of them.
func loadBodies() [][]byte {
	bodies := make([][]byte, loadSubjects)
	for i := range bodies {
		plan := "free"
		if i%2 == 0 {
			plan = "pro"
		}
		bodies[i] = fmt.Appendf(nil, `{"context":{"targetingKey":"user-%d","userId":"user-%d","plan":%q}}`, i, i, plan)
	}
	return bodies
}

// runCell loads one server for d with conc workers and returns the cell's
// figures for this run.
func runCell(ctx context.Context, s *server, mode string, conc int, d time.Duration, bodies [][]byte) (cellStats, error) {
	path := "/ofrep/v1/evaluate/flags"
	if mode == "single" {
		path += "/theme"
	}
	url := s.base + path
	tr := &http.Transport{MaxIdleConns: conc, MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc, DisableCompression: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}

	var sent atomic.Int64
	var next atomic.Uint64
	type worker struct {
		lat      []time.Duration
		answers  int64
		failures int64
		status   map[int]int64
	}
	ws := make([]worker, conc)
	for i := range ws {
		ws[i].lat = make([]time.Duration, 0, 4096)
		ws[i].status = map[int]int64{}
	}
	ticks0, err := s.cpuTicks()
	if err != nil {
		return cellStats{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range ws {
		wg.Go(func() {
			me := &ws[w]
			for ctx.Err() == nil && sent.Add(1) <= maxPerCell {
				n := next.Add(1)
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(bodies[n%loadSubjects]))
				if err != nil {
					me.failures++
					continue
				}
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Flagwire-Environment", "prod")
				if len(s.tokens) > 0 {
					req.Header.Set("Authorization", "Bearer "+s.tokens[n%uint64(len(s.tokens))])
				}
				t0 := time.Now()
				resp, err := hc.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						me.failures++
					}
					continue
				}
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				el := time.Since(t0)
				if ctx.Err() != nil && err != nil {
					continue // cut by the end of the cell
				}
				if err == nil && resp.StatusCode == http.StatusOK {
					me.answers++
					me.lat = append(me.lat, el)
				} else {
					me.failures++
					me.status[resp.StatusCode]++
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	ticks1, err := s.cpuTicks()
	if err != nil {
		return cellStats{}, err
	}
	st := cellStats{elapsed: elapsed, ticks: ticks1 - ticks0, status: map[int]int64{}}
	for _, w := range ws {
		st.answers += w.answers
		st.failures += w.failures
		st.lat = append(st.lat, w.lat...)
		for k, v := range w.status {
			st.status[k] += v
		}
	}
	return st, nil
}

// clockTicks is the kernel's USER_HZ: /proc/PID/stat counts CPU time in
// these. It is 100 on every Linux architecture Go supports.
const clockTicks = 100

// table runs the interleaved rounds and prints the table.
func table(ctx context.Context, w io.Writer, servers []*server, concs []int, d time.Duration, rounds int) error {
	bodies := loadBodies()
	bulkBytes := map[string]int{}
	for _, s := range servers {
		status, _, body, err := s.post(ctx, checkClient, "/ofrep/v1/evaluate/flags", string(bodies[0]), s.token())
		if err != nil || status != http.StatusOK {
			return fmt.Errorf("%s bulk: HTTP %d %v %s", s.name, status, err, body)
		}
		bulkBytes[s.name] = len(body)
	}
	modes := []string{"single", "bulk"}
	cells := map[cellKey]*cellStats{}
	for round := 1; round <= rounds; round++ {
		fmt.Fprintf(os.Stderr, "table: round %d/%d\n", round, rounds)
		for _, mode := range modes {
			for _, c := range concs {
				for _, s := range servers {
					st, err := runCell(ctx, s, mode, c, d, bodies)
					if err != nil {
						return fmt.Errorf("%s %s c=%d: %w", s.name, mode, c, err)
					}
					k := cellKey{s.name, mode, c}
					acc := cells[k]
					if acc == nil {
						acc = &cellStats{status: map[int]int64{}}
						cells[k] = acc
					}
					acc.answers += st.answers
					acc.failures += st.failures
					acc.elapsed += st.elapsed
					acc.ticks += st.ticks
					acc.lat = append(acc.lat, st.lat...)
					for code, n := range st.status {
						acc.status[code] += n
					}
				}
			}
		}
	}
	after := map[string]int64{}
	for _, s := range servers {
		rss, err := s.rssKiB()
		if err != nil {
			return err
		}
		after[s.name] = rss
	}

	fmt.Fprintf(w, "\n### Side-by-side: OFREP over loopback, %d round(s) of %s per cell, interleaved\n\n", rounds, d)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "server\tmode\tconc\tanswers/s\tp50 µs\tp99 µs\tCPU µs/answer\tnon-200\t")
	for _, mode := range modes {
		for _, c := range concs {
			for _, s := range servers {
				st := cells[cellKey{s.name, mode, c}]
				slices.Sort(st.lat)
				rate := float64(st.answers) / st.elapsed.Seconds()
				cpu := "-"
				if st.answers > 0 {
					cpu = fmt.Sprintf("%.1f", float64(st.ticks)*1e6/clockTicks/float64(st.answers))
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%.0f\t%s\t%s\t%s\t%s\t\n", s.label, mode, c, rate,
					pct(st.lat, 0.50), pct(st.lat, 0.99), cpu, nonOK(st))
			}
		}
	}
	tw.Flush()
	fmt.Fprintf(w, "\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "server\tRSS idle MiB\tRSS after load MiB\tbulk answer bytes\t")
	for _, s := range servers {
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%d\t\n", s.label, float64(s.idle)/1024, float64(after[s.name])/1024, bulkBytes[s.name])
	}
	tw.Flush()
	fmt.Fprintln(w, "\n(RSS idle: once the server first answered; bulk answer: the body for one context, every flag)")
	return nil
}

func pct(sorted []time.Duration, p float64) string {
	if len(sorted) == 0 {
		return "-"
	}
	i := int(p * float64(len(sorted)-1))
	return fmt.Sprintf("%.0f", float64(sorted[i].Nanoseconds())/1e3)
}

func nonOK(st *cellStats) string {
	if st.failures == 0 {
		return "0"
	}
	var parts []string
	codes := make([]int, 0, len(st.status))
	for c := range st.status {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	for _, c := range codes {
		parts = append(parts, fmt.Sprintf("%d×%d", st.status[c], c))
	}
	other := st.failures
	for _, n := range st.status {
		other -= n
	}
	if other > 0 {
		parts = append(parts, fmt.Sprintf("%d transport", other))
	}
	return strings.Join(parts, " ")
}
