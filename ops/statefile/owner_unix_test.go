//go:build unix

package statefile_test

import (
	"os"
	"syscall"
	"testing"

	"github.com/togather-foundation/togather-chatops/ops"
	"github.com/togather-foundation/togather-chatops/ops/statefile"
)

func TestWriteKeepsOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("giving the old file another owner needs root")
	}
	const nobody = 65534
	path := setup(t, "deploysh.json", "deployment-state.json")
	if err := os.Chown(path, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	if err := statefile.New(path, "production").Write(t.Context(), ops.DeploymentState{Current: botDeploy()}); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st, ok := info.Sys().(*syscall.Stat_t); !ok || st.Uid != nobody || st.Gid != nobody {
		t.Errorf("owner = %+v, want %d:%d as before", info.Sys(), nobody, nobody)
	}
}
