package app

import (
	"os"
	"syscall"

	"github.com/togather-foundation/togather-chatops/ops"
)

// CrashEnv names a fault-injection hook for the crash-safety tests: set to
// "<step>:<phase>" (e.g. "switched:begin"), the process kills itself with
// SIGKILL right after that journal entry is written, as a power cut would.
// Unset, it does nothing.
const CrashEnv = "TOGATHER_CHATOPS_CRASH_AT"

// crashHook returns a journal hook that kills the process at the entry
// named by CrashEnv, or nil when it is not set.
func crashHook() func(ops.Operation, ops.JournalEntry) {
	at := os.Getenv(CrashEnv)
	if at == "" {
		return nil
	}
	return func(_ ops.Operation, e ops.JournalEntry) {
		if at == string(e.Step)+":"+string(e.Phase) {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way
		}
	}
}
