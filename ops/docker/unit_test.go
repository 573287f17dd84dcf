package docker

import (
	"archive/tar"
	"bytes"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"

	"github.com/togather-foundation/togather-chatops/ops/host"
)

func TestParseEnv(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []string
		wantErr string
	}{
		{
			name: "pairs, comments, blanks, quotes",
			in: "# header CHANGE_ME comment\n\nA=1\n  B = two words  \nexport C=3\nD=\"quoted # not a comment\"\n" +
				"E='single'\nF=\"unbalanced'\nG=\nH=a=b\n",
			want: []string{"A=1", "B=two words", "C=3", "D=quoted # not a comment", "E=single", "F=\"unbalanced'", "G=", "H=a=b"},
		},
		{name: "empty", in: "", want: nil},
		{name: "no equals", in: "A=1\nSECRET_LINE\n", wantErr: "line 2: want KEY=VALUE"},
		{name: "no key", in: "=value\n", wantErr: "line 1: want KEY=VALUE"},
		{name: "space in key", in: "MY KEY=1\n", wantErr: "line 1: want KEY=VALUE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseEnv(strings.NewReader(tt.in))
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("parseEnv = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestReadEnvFileErrorHidesContent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "env")
	os.WriteFile(path, []byte("hunter2\n"), 0o600)
	_, err := readEnvFile(host.Local{}.Files(), path)
	if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), path) {
		t.Errorf("error = %v, want one naming the file but not the content", err)
	}
	if _, err := readEnvFile(host.Local{}.Files(), filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing file: no error")
	}
}

func TestMergeEnv(t *testing.T) {
	got := mergeEnv([]string{"A=1", "B=2", "A=3"}, []string{"B=override", "C=4"}, nil)
	want := []string{"A=3", "B=override", "C=4"}
	if !slices.Equal(got, want) {
		t.Errorf("mergeEnv = %q, want %q", got, want)
	}
}

func TestStatsOf(t *testing.T) {
	sample := func(cpu, prevCPU, sys, prevSys, usage, limit uint64, stats map[string]uint64) container.StatsResponse {
		var s container.StatsResponse
		s.CPUStats.CPUUsage.TotalUsage, s.CPUStats.SystemUsage = cpu, sys
		s.PreCPUStats.CPUUsage.TotalUsage, s.PreCPUStats.SystemUsage = prevCPU, prevSys
		s.CPUStats.OnlineCPUs = 2
		s.MemoryStats.Usage, s.MemoryStats.Limit, s.MemoryStats.Stats = usage, limit, stats
		return s
	}
	tests := []struct {
		name                string
		in                  container.StatsResponse
		wantCPU, wantMemPct float64
		wantMem             uint64
	}{
		{"cgroup v1 excludes total_inactive_file", sample(150, 100, 2000, 1000, 1000, 4000,
			map[string]uint64{"total_inactive_file": 200, "inactive_file": 300}), 5, 20, 800},
		{"cgroup v2 excludes inactive_file", sample(600, 100, 2000, 1000, 1000, 4000,
			map[string]uint64{"inactive_file": 500}), 50, 12.5, 500},
		{"cache larger than usage is ignored", sample(100, 100, 2000, 1000, 1000, 4000,
			map[string]uint64{"inactive_file": 5000}), 0, 25, 1000},
		{"no system delta", sample(200, 100, 1000, 1000, 0, 0, nil), 0, 0, 0},
	}
	for _, tt := range tests {
		got := statsOf(tt.in)
		if math.Abs(got.CPUPercent-tt.wantCPU) > 1e-9 || math.Abs(got.MemPercent-tt.wantMemPct) > 1e-9 || got.MemUsage != tt.wantMem {
			t.Errorf("%s: statsOf = %+v, want cpu %v mem %v (%v%%)", tt.name, got, tt.wantCPU, tt.wantMem, tt.wantMemPct)
		}
	}
}

type entry struct {
	name     string
	typeflag byte
	body     string
	link     string
}

func archive(t *testing.T, entries ...entry) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typeflag, Mode: 0o644, Size: int64(len(e.body)), Linkname: e.link}
		if e.typeflag == tar.TypeDir {
			hdr.Mode = 0o755
		}
		if e.typeflag != tar.TypeReg {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.body))
	}
	tw.Close()
	return &buf
}

func TestExtractTar(t *testing.T) {
	dest := filepath.Join(t.TempDir(), "out")
	err := extractTar(archive(t,
		entry{name: "migrations/", typeflag: tar.TypeDir},
		entry{name: "migrations/1.up.sql", typeflag: tar.TypeReg, body: "up"},
		entry{name: "migrations/sub/", typeflag: tar.TypeDir},
		entry{name: "migrations/sub/2.sql", typeflag: tar.TypeReg, body: "two"},
	), true, dest)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"1.up.sql": "up", "sub/2.sql": "two"} {
		if got, err := os.ReadFile(filepath.Join(dest, name)); err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", name, got, err, want)
		}
	}

	file := t.TempDir()
	if err := extractTar(archive(t, entry{name: "one.sql", typeflag: tar.TypeReg, body: "x"}), false, file); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(file, "one.sql")); string(got) != "x" {
		t.Errorf("single file = %q, want x", got)
	}
}

func TestExtractTarRefusesUnsafeEntries(t *testing.T) {
	tests := []struct {
		name  string
		isDir bool
		e     entry
	}{
		{"parent traversal", true, entry{name: "m/../../evil", typeflag: tar.TypeReg, body: "x"}},
		{"parent traversal of a file", false, entry{name: "../evil", typeflag: tar.TypeReg, body: "x"}},
		{"absolute", false, entry{name: "/evil", typeflag: tar.TypeReg, body: "x"}},
		{"symlink", true, entry{name: "m/link", typeflag: tar.TypeSymlink, link: "/etc/passwd"}},
		{"hard link", true, entry{name: "m/hard", typeflag: tar.TypeLink, link: "/etc/passwd"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := t.TempDir()
			dest := filepath.Join(parent, "dest")
			if err := extractTar(archive(t, tt.e), tt.isDir, dest); err == nil {
				t.Fatal("no error")
			}
			for _, p := range []string{filepath.Join(parent, "evil"), filepath.Join(dest, "link"), filepath.Join(dest, "hard")} {
				if _, err := os.Lstat(p); err == nil {
					t.Errorf("%s was written", p)
				}
			}
		})
	}
}
