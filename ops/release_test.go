package ops

import (
	"strings"
	"testing"
)

func TestDescribeContainer(t *testing.T) {
	tests := []struct {
		name    string
		c       ContainerInfo
		want    string
		givenUp bool
	}{
		{"missing", ContainerInfo{Name: "g"}, "g does not exist", true},
		{"running", ContainerInfo{Name: "g", Exists: true, Running: true, State: "running"}, "", false},
		{"exited, no restart policy", ContainerInfo{Name: "g", Exists: true, State: "exited", ExitCode: 1, RestartPolicy: "no"}, "g exited with code 1", true},
		{"exited, restarts coming", ContainerInfo{Name: "g", Exists: true, State: "restarting", ExitCode: 1, RestartCount: 1, RestartPolicy: "always"},
			"g is crash-looping: restarted 1 times, last exit code 1", false},
		{"crash loop", ContainerInfo{Name: "g", Exists: true, State: "restarting", ExitCode: 1, RestartCount: 9, RestartPolicy: "unless-stopped"},
			"g is crash-looping: restarted 9 times, last exit code 1", true},
		{"up again after crashes", ContainerInfo{Name: "g", Exists: true, Running: true, State: "running", ExitCode: 1, RestartCount: 3, RestartPolicy: "always"},
			"g runs but has restarted 3 times (last exit code 1)", true},
		{"out of memory", ContainerInfo{Name: "g", Exists: true, State: "exited", ExitCode: 137, OOMKilled: true},
			"g was killed for running out of memory (exit code 137, restarted 0 times)", true},
		{"engine error", ContainerInfo{Name: "g", Exists: true, State: "created", ExitCode: 127, Error: "exec: \"/app/server\": not found"},
			"g is created (exit code 127): exec: \"/app/server\": not found", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := describeContainer(tt.c); got != tt.want {
				t.Errorf("describeContainer = %q, want %q", got, tt.want)
			}
			if got := givenUp(tt.c); got != tt.givenUp {
				t.Errorf("givenUp = %v, want %v", got, tt.givenUp)
			}
		})
	}
}

func TestQuoteOutput(t *testing.T) {
	if quoteOutput(" \n") != "" {
		t.Error("empty output must show nothing")
	}
	var lines []string
	for i := range 100 {
		lines = append(lines, strings.Repeat("x", 10)+string(rune('a'+i%26)))
	}
	lines = append(lines, "DATABASE_URL=postgres://u:s3cret@db/x", "has ``` inside")
	got := quoteOutput(strings.Join(lines, "\n"))
	if !strings.HasPrefix(got, "\n  | … (72 earlier lines)\n  | xxxxxxxxxxu\n") || !strings.HasSuffix(got, "\n  | has ``` inside") {
		t.Errorf("quoteOutput = %q", got)
	}
	if strings.Contains(got, "s3cret") || strings.Count(got, "\n") > outputLines+1 {
		t.Errorf("quoteOutput kept too much or a secret: %q", got)
	}
	// Long lines: cut at whole lines, within the byte bound.
	long := strings.Repeat("y", 900)
	got = quoteOutput(strings.Join([]string{long + "1", long + "2", long + "3", long + "4"}, "\n"))
	if !strings.HasPrefix(got, "\n  | … (2 earlier lines)\n  | "+long+"3\n  | "+long+"4") || len(got) > outputBytes+100 {
		t.Errorf("quoteOutput of long lines = %q", got)
	}
}
