package main

import (
	"os/exec"
	"runtime/debug"
	"strings"
	"testing"
)

// TestVersionOf checks the version line's documented form for a release
// build, a build from a clone with and without uncommitted changes, and a
// build without VCS information.
func TestVersionOf(t *testing.T) {
	vcs := func(kv ...string) []debug.BuildSetting {
		var s []debug.BuildSetting
		for i := 0; i < len(kv); i += 2 {
			s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	const rev = "a7c0cdd8e2f14b6f0c1d2e3f4a5b6c7d8e9f0a1b"
	tests := []struct {
		name string
		bi   debug.BuildInfo
		want string
	}{
		{"release", debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v1.2.3"}},
			"v1.2.3 go1.26.0"},
		{"clone", debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"},
			Settings: vcs("vcs", "git", "vcs.revision", rev, "vcs.time", "2026-12-07T19:40:00Z", "vcs.modified", "false")},
			"(devel) (revision a7c0cdd8e2f1, 2026-12-07T19:40:00Z) go1.26.0"},
		{"clone with changes", debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v0.0.0-20261207194000-a7c0cdd8e2f1+dirty"},
			Settings: vcs("vcs.revision", rev, "vcs.time", "2026-12-07T19:40:00Z", "vcs.modified", "true")},
			"v0.0.0-20261207194000-a7c0cdd8e2f1+dirty (revision a7c0cdd8e2f1, 2026-12-07T19:40:00Z, modified) go1.26.0"},
		{"no vcs information", debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}},
			"(devel) go1.26.0"},
		{"no version at all", debug.BuildInfo{}, "(devel)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := versionOf(&tt.bi); got != tt.want {
				t.Errorf("versionOf = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestVersionCommands checks that `flagwire version` and `flagwire
// --version` print the same line, in process.
func TestVersionCommands(t *testing.T) {
	a := mustRun(t, 0, "", "version")
	b := mustRun(t, 0, "", "--version")
	if !strings.HasPrefix(a.stdout, "flagwire ") || a.stdout != b.stdout {
		t.Errorf("version printed %q, --version %q: want one line starting with \"flagwire \"", a.stdout, b.stdout)
	}
	mustRun(t, 2, "", "version", "extra")
}

// TestBinaryVersion builds the binary, with VCS stamping on when the
// checkout allows it, and compares what `flagwire version` prints with
// the build info as the go command reads it from the binary (go version
// -m), a reader independent of the one under test.
func TestBinaryVersion(t *testing.T) {
	bin, goBin := buildBinary(t, "-buildvcs=auto")
	info, err := exec.Command(goBin, "version", "-m", bin).Output()
	if err != nil {
		t.Fatalf("go version -m: %v", err)
	}
	// go version -m prints "PATH: GOVERSION", then tab-separated lines:
	// "mod MODULE VERSION" for the main module and "build KEY=VALUE".
	var goVersion, modVersion string
	settings := map[string]string{}
	for i, line := range strings.Split(string(info), "\n") {
		f := strings.Split(strings.TrimSpace(line), "\t")
		switch {
		case i == 0:
			goVersion = line[strings.LastIndex(line, " ")+1:]
		case len(f) >= 3 && f[0] == "mod":
			modVersion = f[2]
		case len(f) == 2 && f[0] == "build":
			if k, v, ok := strings.Cut(f[1], "="); ok {
				settings[k] = v
			}
		}
	}
	if goVersion == "" || modVersion == "" {
		t.Fatalf("cannot read go version -m output:\n%s", info)
	}
	want := "flagwire " + modVersion
	if rev := settings["vcs.revision"]; rev != "" {
		want += " (revision " + rev[:12] + ", " + settings["vcs.time"]
		if settings["vcs.modified"] == "true" {
			want += ", modified"
		}
		want += ")"
	}
	want += " " + goVersion + "\n"
	for _, arg := range []string{"version", "--version"} {
		out, err := exec.Command(bin, arg).Output()
		if err != nil {
			t.Fatalf("flagwire %s: %v", arg, err)
		}
		if string(out) != want {
			t.Errorf("flagwire %s printed %q, want %q (from go version -m)", arg, out, want)
		}
	}
}
