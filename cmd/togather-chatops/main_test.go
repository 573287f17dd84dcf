package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The --config flag belongs to the subcommand: `togather-chatops --config F
// <command>` is an unknown command, so neither the docs nor a usage line may
// show it.
var configBeforeCommand = regexp.MustCompile(`togather-chatops\s+\[?--config`)

func TestDocsPutConfigAfterTheCommand(t *testing.T) {
	files := []string{"../../README.md", "../../deploy/config.example.yaml"}
	docs, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range append(files, docs...) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(data), "\n") {
			if configBeforeCommand.MatchString(line) {
				t.Errorf("%s:%d puts --config before the command: %s", f, i+1, line)
			}
		}
	}
}

func TestChatTwinUsagePutsConfigAfterTheCommand(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"maintenance", "--help"}, &stdout, &stderr); code != 0 {
		t.Fatalf("maintenance --help exited %d: %s", code, stderr.String())
	}
	usage := stderr.String()
	if configBeforeCommand.MatchString(usage) {
		t.Errorf("usage puts --config before the command:\n%s", usage)
	}
	if !strings.Contains(usage, "togather-chatops maintenance list [--config FILE]") {
		t.Errorf("usage does not show `maintenance list [--config FILE]`:\n%s", usage)
	}
}
