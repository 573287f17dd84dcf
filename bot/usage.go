package bot

import (
	"slices"
	"strings"
)

// CommandInfo describes one command, or one subcommand, for help.
type CommandInfo struct {
	Name       string // command word, e.g. "snapshot"
	Sub        string // subcommand or db action; empty when the command has none
	Usage      string // usage line without the "/togather " prefix
	Summary    string // one line
	Permission string // as Command.Permission returns it
	TakesEnv   bool   // the command names an environment (positionally or with --env)
}

// argKind says how a positional is validated and normalised.
type argKind int

const (
	kindWord       argKind = iota // any word, kept as typed
	kindEnv                       // a configured environment, matched case-insensitively
	kindVersion                   // commit sha, sha-<hex> or vX.Y.Z tag
	kindIncident                  // INC-42 or 42, normalised to INC-42
	kindSeverity                  // sev1, sev2 or sev3, lower-cased
	kindStart                     // 2006-01-02T15:04
	kindDuration                  // Go duration, e.g. 2h or 90m
	kindSecretName                // upper-case environment variable name
	kindCommand                   // a command word (help's topic)
)

// arg is one positional of the grammar.
type arg struct {
	name     string // placeholder shown in usage
	noun     string // completes "<command> needs …"
	kind     argKind
	optional bool
	rest     bool // takes every remaining word, joined by single spaces
}

func (a arg) usage() string {
	switch {
	case a.optional:
		return "[" + a.name + "]"
	case a.rest:
		return "<" + a.name + "…>"
	}
	return "<" + a.name + ">"
}

var (
	envArg         = arg{name: "env", noun: "an environment", kind: kindEnv}
	versionArg     = arg{name: "version", noun: "a version", kind: kindVersion}
	snapshotArg    = arg{name: "name", noun: "a snapshot name"}
	incidentArg    = arg{name: "id", noun: "an incident id", kind: kindIncident}
	optIncidentArg = arg{name: "id", kind: kindIncident, optional: true}
	severityArg    = arg{name: "sev1|sev2|sev3", noun: "a severity (sev1, sev2 or sev3)", kind: kindSeverity}
	windowArg      = arg{name: "id", noun: "a maintenance window id"}
	startArg       = arg{name: "start", noun: "a start time like 2026-12-08T02:00", kind: kindStart}
	durationArg    = arg{name: "duration", noun: "a duration like 2h or 90m", kind: kindDuration}
	secretNameArg  = arg{name: "NAME", noun: "the variable NAME, like DATABASE_URL", kind: kindSecretName}
	optCommandArg  = arg{name: "command", kind: kindCommand, optional: true}
	reasonArg      = arg{name: "reason", noun: "a reason", rest: true}
	titleArg       = arg{name: "title", noun: "a title", rest: true}
	noteArg        = arg{name: "text", noun: "the note text", rest: true}
	descriptionArg = arg{name: "description", noun: "a description", rest: true}
)

// flagDefs is every flag of the grammar, with the placeholder of its value
// ("" for a boolean flag). A name means the same everywhere, so flags can be
// told from positionals before the subcommand is known.
var flagDefs = map[string]string{
	"reason":            `"<reason>"`,
	"override-window":   `"<reason>"`,
	"allow-destructive": `"<reason>"`,
	"env":               "<env>",
	"mode":              "<mode>",
	"dry-run":           "",
	"force":             "",
	"restore-snapshot":  "",
	"confirm":           "",
	"full":              "",
	"help":              "", // accepted on every command: shows its help
}

// subSpec is one form of a command: its subcommand (or none), positionals
// and flags.
type subSpec struct {
	sub     string
	args    []arg
	flags   []string
	summary string
}

// commandSpec is a command word and its forms.
type commandSpec struct {
	name      Name
	subNoun   string    // "subcommand" or "action"; empty when the command has none
	sensitive bool      // user words are never quoted back: a secret may be pasted by mistake
	lead      []arg     // positionals before the subcommand (db's environment)
	subs      []subSpec // one form with sub "" when the command has no subcommands
}

// label names a form in messages: "deploy", "snapshot restore".
func (c *commandSpec) label(s *subSpec) string {
	if s.sub == "" {
		return c.name.String()
	}
	return c.name.String() + " " + s.sub
}

func (c *commandSpec) usage(s *subSpec) string {
	parts := []string{c.name.String()}
	for _, a := range c.lead {
		parts = append(parts, a.usage())
	}
	if s.sub != "" {
		parts = append(parts, s.sub)
	}
	for _, a := range s.args {
		parts = append(parts, a.usage())
	}
	for _, f := range s.flags {
		if v := flagDefs[f]; v != "" {
			parts = append(parts, "[--"+f+" "+v+"]")
		} else {
			parts = append(parts, "[--"+f+"]")
		}
	}
	return strings.Join(parts, " ")
}

// usageAll is the usage of every form of the command, one per line.
func (c *commandSpec) usageAll() string {
	lines := make([]string, len(c.subs))
	for i := range c.subs {
		lines[i] = c.usage(&c.subs[i])
	}
	return strings.Join(lines, "\n")
}

func (c *commandSpec) takesEnv(s *subSpec) bool {
	for _, a := range slices.Concat(c.lead, s.args) {
		if a.kind == kindEnv {
			return true
		}
	}
	return slices.Contains(s.flags, "env")
}

func (c *commandSpec) findSub(word string) *subSpec {
	for i := range c.subs {
		if c.subs[i].sub == word {
			return &c.subs[i]
		}
	}
	return nil
}

func (c *commandSpec) subWords() []string {
	words := make([]string, len(c.subs))
	for i, s := range c.subs {
		words[i] = s.sub
	}
	return words
}

// grammar is every command, in Name order.
var grammar = []commandSpec{
	{name: NameHelp, subs: []subSpec{{args: []arg{optCommandArg},
		summary: "List the commands you may run, or show how to use one"}}},
	{name: NameStatus, subs: []subSpec{{args: []arg{envArg},
		summary: "Show the live slot, version, health and lock of an environment"}}},
	{name: NamePreflight, subs: []subSpec{{args: []arg{envArg, versionArg},
		flags:   []string{"allow-destructive", "override-window"},
		summary: "Run the pre-flight checks for a version without deploying"}}},
	{name: NameDeploy, subs: []subSpec{{args: []arg{envArg, versionArg},
		flags:   []string{"reason", "dry-run", "override-window", "allow-destructive"},
		summary: "Run the pre-flight checks, ask for approval, then deploy blue/green"}}},
	{name: NameRollback, subs: []subSpec{{args: []arg{envArg},
		flags:   []string{"force", "reason", "restore-snapshot"},
		summary: "Switch traffic back to the previous slot (asks to confirm unless --force)"}}},
	{name: NameSnapshot, subNoun: "subcommand", subs: []subSpec{
		{sub: "create", args: []arg{envArg}, flags: []string{"reason"},
			summary: "Take a database snapshot"},
		{sub: "list", args: []arg{envArg},
			summary: "List the database snapshots"},
		{sub: "restore", args: []arg{envArg, snapshotArg}, flags: []string{"confirm"},
			summary: "Restore the database from a snapshot"},
		{sub: "prune", args: []arg{envArg}, flags: []string{"dry-run"},
			summary: "Delete the snapshots the retention policy no longer keeps"},
		{sub: "verify", args: []arg{envArg, snapshotArg},
			summary: "Check that a snapshot is complete and readable"},
	}},
	{name: NameHistory, subs: []subSpec{{args: []arg{envArg},
		summary: "Show the recent deploys and rollbacks of an environment"}}},
	{name: NameLock, subs: []subSpec{{args: []arg{envArg, reasonArg},
		summary: "Lock an environment against deploys"}}},
	{name: NameUnlock, subs: []subSpec{{args: []arg{envArg}, flags: []string{"force"},
		summary: "Release your lock on an environment (--force for someone else's, audited)"}}},
	{name: NameLocks, subs: []subSpec{{
		summary: "List the environment locks"}}},
	{name: NameIncident, subNoun: "subcommand", subs: []subSpec{
		{sub: "declare", args: []arg{severityArg, titleArg}, flags: []string{"env"},
			summary: "Declare an incident; it gets its own thread"},
		{sub: "update", args: []arg{optIncidentArg},
			summary: "Post a status update to an incident (this thread's when no id)"},
		{sub: "sev", args: []arg{incidentArg, severityArg},
			summary: "Change the severity of an incident"},
		{sub: "note", args: []arg{incidentArg, noteArg},
			summary: "Add a note to an incident's timeline"},
		{sub: "list",
			summary: "List the open incidents"},
		{sub: "resolve", args: []arg{optIncidentArg},
			summary: "Resolve an incident (this thread's when no id)"},
		{sub: "report", args: []arg{incidentArg},
			summary: "Show the report of an incident"},
	}},
	{name: NameMaintenance, subNoun: "subcommand", subs: []subSpec{
		{sub: "schedule", args: []arg{envArg, startArg, durationArg, descriptionArg}, flags: []string{"mode", "confirm"},
			summary: "Schedule a maintenance window"},
		{sub: "list",
			summary: "List the maintenance windows"},
		{sub: "cancel", args: []arg{windowArg},
			summary: "Cancel a scheduled maintenance window"},
		{sub: "start", args: []arg{windowArg},
			summary: "Start a maintenance window now"},
		{sub: "end", args: []arg{windowArg},
			summary: "End a maintenance window"},
	}},
	{name: NameSecrets, subNoun: "subcommand", sensitive: true, subs: []subSpec{
		{sub: "rotated", args: []arg{envArg, secretNameArg},
			summary: "Record that a secret was rotated (its name, never its value)"},
	}},
	{name: NameDB, subNoun: "action", lead: []arg{envArg}, subs: []subSpec{
		{sub: "connections", summary: "Show the database connections by state"},
		{sub: "slow", summary: "Show the slowest queries"},
		{sub: "size", summary: "Show the database and table sizes"},
		{sub: "unused-indexes", summary: "List the indexes that are never used"},
		{sub: "analyze", summary: "Run ANALYZE to refresh the planner statistics"},
		{sub: "vacuum", flags: []string{"full"}, summary: "Run VACUUM (--full for VACUUM FULL, which locks tables: only in a maintenance window)"},
		{sub: "reindex", summary: "Rebuild every index (blocks writes: only in a maintenance window)"},
	}},
}

// specFor returns the grammar of a command, or nil for an unknown Name.
func specFor(n Name) *commandSpec {
	if n < 0 || int(n) >= len(grammar) {
		return nil
	}
	return &grammar[n]
}

// Usage returns the usage of a command, one line per subcommand, without the
// "/togather " prefix; "" for an unknown Name.
func Usage(n Name) string {
	c := specFor(n)
	if c == nil {
		return ""
	}
	return c.usageAll()
}

// Commands lists every command and subcommand in help order.
func Commands() []CommandInfo {
	var out []CommandInfo
	for i := range grammar {
		c := &grammar[i]
		for j := range c.subs {
			s := &c.subs[j]
			out = append(out, CommandInfo{
				Name:       c.name.String(),
				Sub:        s.sub,
				Usage:      c.usage(s),
				Summary:    s.summary,
				Permission: Command{Name: c.name, Sub: s.sub}.Permission(),
				TakesEnv:   c.takesEnv(s),
			})
		}
	}
	return out
}

// ButtonPermissions are permissions checked on buttons and flags rather
// than on a command of their own: approving a request, and forcing an
// unlock.
var ButtonPermissions = []string{"approve", "unlock.force"}
