package testkit

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Process is a `flagwire serve` child process (see StartServe).
type Process struct {
	Cmd  *exec.Cmd
	URL  string // from its "listening on URL" line
	done chan error
}

// StartServe starts cmd, a `flagwire serve` command whose standard output
// is not set, and waits up to patience for the "listening on URL" line it
// prints; the test fails if the process exits or stays silent first. At
// cleanup the process gets stop, and is killed if it has not exited
// within patience.
func StartServe(t testing.TB, cmd *exec.Cmd, stop os.Signal, patience time.Duration) *Process {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &Process{Cmd: cmd, done: make(chan error, 1)}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
				urls <- u
			}
		}
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(stop)
		select {
		case <-p.done:
		case <-time.After(patience):
			cmd.Process.Kill()
			<-p.done
		}
	})
	select {
	case p.URL = <-urls:
	case err := <-p.done:
		p.done <- err
		t.Fatalf("%s exited: %v", strings.Join(cmd.Args, " "), err)
	case <-time.After(patience):
		t.Fatalf("%s did not start within %v", strings.Join(cmd.Args, " "), patience)
	}
	return p
}
