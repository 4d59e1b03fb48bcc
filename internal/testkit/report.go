package testkit

import (
	"slices"
	"sync"
	"testing"
)

// Main is a *testing.M whose Run also calls a function after the tests, as
// goleak.VerifyTestMain(testkit.RunThen(m, printReport)) wants it: the
// report is printed (shown by go test -v, or when the package fails)
// before the leak check.
type Main struct {
	m     *testing.M
	after func()
}

// RunThen returns m with after to be called once its tests have run.
func RunThen(m *testing.M, after func()) Main { return Main{m, after} }

// Run runs the tests, then the after function, and returns the tests'
// exit code.
func (r Main) Run() int {
	code := r.m.Run()
	r.after()
	return code
}

// Rows collects a package's report rows from its tests, which may run in
// parallel, for the report printed after them. The zero value is empty
// and ready; safe for concurrent use.
type Rows[T any] struct {
	mu   sync.Mutex
	rows []T
}

// Add appends a row.
func (r *Rows[T]) Add(row T) {
	r.mu.Lock()
	r.rows = append(r.rows, row)
	r.mu.Unlock()
}

// All returns a copy of the rows, in the order they were added.
func (r *Rows[T]) All() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.rows)
}
