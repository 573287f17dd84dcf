package bot

import "fmt"

// Name identifies a chat command.
type Name int

// The commands, in the order help lists them.
const (
	NameHelp Name = iota
	NameStatus
	NamePreflight
	NameDeploy
	NameRollback
	NameSnapshot
	NameHistory
	NameLock
	NameUnlock
	NameLocks
	NameIncident
	NameMaintenance
	NameSecrets
	NameDB
)

var names = [...]string{
	NameHelp:        "help",
	NameStatus:      "status",
	NamePreflight:   "preflight",
	NameDeploy:      "deploy",
	NameRollback:    "rollback",
	NameSnapshot:    "snapshot",
	NameHistory:     "history",
	NameLock:        "lock",
	NameUnlock:      "unlock",
	NameLocks:       "locks",
	NameIncident:    "incident",
	NameMaintenance: "maintenance",
	NameSecrets:     "secrets",
	NameDB:          "db",
}

// String returns the word a user types for the command.
func (n Name) String() string {
	if n < 0 || int(n) >= len(names) {
		return fmt.Sprintf("Name(%d)", int(n))
	}
	return names[n]
}

// Command is a parsed, validated chat command.
type Command struct {
	Name Name
	// Sub is the subcommand of snapshot, incident, maintenance and secrets,
	// or the action of db; empty for other commands.
	Sub string
	// Env is the environment, spelled as configured; set for commands that
	// take one (positionally, or with --env for incident declare).
	Env string
	// Args are the remaining positionals in grammar order, normalised:
	// a version, a snapshot name, an incident id (INC-42), a severity (sev1),
	// or a free-text tail (reason, title, note, description) joined by
	// single spaces. Optional positionals that were left out are absent.
	Args []string
	// Flags holds the flags given, without the leading "--": value flags map
	// to their value, boolean flags to "true". --env is not kept here but in
	// Env. Nil when no flag was given.
	Flags map[string]string
}

// Permission is the name authorization checks for the command: the command
// word, plus "." and the subcommand when there is one ("deploy",
// "snapshot.restore", "db.vacuum").
func (c Command) Permission() string {
	if c.Sub == "" {
		return c.Name.String()
	}
	return c.Name.String() + "." + c.Sub
}

// Flag returns the value of a flag and whether it was given.
func (c Command) Flag(name string) (string, bool) {
	v, ok := c.Flags[name]
	return v, ok
}

// Bool reports whether a boolean flag was given.
func (c Command) Bool(name string) bool {
	return c.Flags[name] == "true"
}

// ParseResult is the outcome of Parse. Exactly one field is set: Command to
// run it, Reply to answer the user (an error followed by usage), or Ignore
// to do nothing.
type ParseResult struct {
	Command *Command
	Reply   string
	Ignore  bool
}
