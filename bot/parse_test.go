package bot_test

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/togather-foundation/togather-chatops/bot"
)

var parseEnvs = []string{"development", "staging", "production"}

// Usage lines as users see them after an error.
const (
	helpUsage      = `help [command]`
	statusUsage    = `status <env>`
	historyUsage   = `history <env>`
	locksUsage     = `locks`
	lockUsage      = `lock <env> <reason…>`
	unlockUsage    = `unlock <env> [--force]`
	preflightUsage = `preflight <env> <version> [--allow-destructive "<reason>"] [--override-window "<reason>"]`
	deployUsage    = `deploy <env> <version> [--reason "<reason>"] [--dry-run] [--override-window "<reason>"] [--allow-destructive "<reason>"]`
	rollbackUsage  = `rollback <env> [--force] [--reason "<reason>"] [--restore-snapshot]`
	restoreUsage   = `snapshot restore <env> <name> [--confirm]`
	listSnapUsage  = `snapshot list <env>`
	declareUsage   = `incident declare <sev1|sev2|sev3> <title…> [--env <env>]`
	updateUsage    = `incident update [id]`
	sevUsage       = `incident sev <id> <sev1|sev2|sev3>`
	noteUsage      = `incident note <id> <text…>`
	reportUsage    = `incident report <id>`
	scheduleUsage  = `maintenance schedule <env> <start> <duration> <description…> [--mode <mode>] [--confirm]`
	cancelUsage    = `maintenance cancel <id>`
	rotatedUsage   = `secrets rotated <env> <NAME>`
	analyzeUsage   = `db <env> analyze`
)

var (
	snapshotUsage = []string{
		`snapshot create <env> [--reason "<reason>"]`,
		`snapshot list <env>`,
		`snapshot restore <env> <name> [--confirm]`,
		`snapshot prune <env> [--dry-run]`,
		`snapshot verify <env> <name>`,
	}
	incidentUsage = []string{
		`incident declare <sev1|sev2|sev3> <title…> [--env <env>]`,
		`incident update [id]`,
		`incident sev <id> <sev1|sev2|sev3>`,
		`incident note <id> <text…>`,
		`incident list`,
		`incident resolve [id]`,
		`incident report <id>`,
	}
	dbUsage = []string{
		`db <env> connections`,
		`db <env> slow`,
		`db <env> size`,
		`db <env> unused-indexes`,
		`db <env> analyze`,
		`db <env> vacuum [--full]`,
		`db <env> reindex`,
	}
)

// withUsage is the reply for msg followed by the given usage lines.
func withUsage(msg string, lines ...string) string {
	if len(lines) == 1 {
		return msg + "\nUsage: " + lines[0]
	}
	return msg + "\nUsage:\n  " + strings.Join(lines, "\n  ")
}

type parseCase struct {
	in     string
	want   *bot.Command
	reply  string
	ignore bool
}

var parseCases = []parseCase{
	// help, prefix, comments
	{in: "", want: &bot.Command{Name: bot.NameHelp}},
	{in: " \t\n ", want: &bot.Command{Name: bot.NameHelp}},
	{in: "help", want: &bot.Command{Name: bot.NameHelp}},
	{in: "HELP Deploy", want: &bot.Command{Name: bot.NameHelp, Args: []string{"deploy"}}},
	{in: "help delpoy", reply: withUsage(`unknown command "delpoy". Did you mean "deploy"?`, helpUsage)},
	{in: "help deploy now", reply: withUsage(`too many arguments for help: "now"`, helpUsage)},
	{in: "help --help", want: &bot.Command{Name: bot.NameHelp}},
	{in: "deploy --help", want: &bot.Command{Name: bot.NameHelp, Args: []string{"deploy"}}},
	{in: "snapshot restore --HELP", want: &bot.Command{Name: bot.NameHelp, Args: []string{"snapshot"}}},
	{in: "/togather", want: &bot.Command{Name: bot.NameHelp}},
	{in: "/TOGATHER status staging", want: &bot.Command{Name: bot.NameStatus, Env: "staging"}},
	{in: "# deploy production abc1234", ignore: true},
	{in: "   // not for the bot", ignore: true},
	{in: `#unbalanced "quote`, ignore: true},

	// unknown commands
	{in: "delpoy production abc1234", reply: withUsage(`unknown command "delpoy". Did you mean "deploy"?`, deployUsage)},
	{in: "stauts production", reply: withUsage(`unknown command "stauts". Did you mean "status"?`, statusUsage)},
	{in: "Rollbak production", reply: withUsage(`unknown command "Rollbak". Did you mean "rollback"?`, rollbackUsage)},
	{in: "xyzzy", reply: `unknown command "xyzzy". Try "help" for the list of commands.`},
	{in: "ls", reply: withUsage(`unknown command "ls". Did you mean "locks"?`, locksUsage)},
	{in: strings.Repeat("z", 60), reply: `unknown command "` + strings.Repeat("z", 40) + `…". Try "help" for the list of commands.`},

	// status, history, locks
	{in: "status staging", want: &bot.Command{Name: bot.NameStatus, Env: "staging"}},
	{in: "Status PRODUCTION", want: &bot.Command{Name: bot.NameStatus, Env: "production"}},
	{in: "status", reply: withUsage("status needs an environment: development, staging, production", statusUsage)},
	{in: "status prod", reply: withUsage(`unknown environment "prod". Did you mean "production"?`, statusUsage)},
	{in: "status prd", reply: withUsage(`unknown environment "prd". Did you mean "production"?`, statusUsage)},
	{in: "status stagign", reply: withUsage(`unknown environment "stagign". Did you mean "staging"?`, statusUsage)},
	{in: "status qa", reply: withUsage(`unknown environment "qa". Known environments: development, staging, production`, statusUsage)},
	{in: "status staging now", reply: withUsage(`too many arguments for status: "now"`, statusUsage)},
	{in: "history development", want: &bot.Command{Name: bot.NameHistory, Env: "development"}},
	{in: "history", reply: withUsage("history needs an environment: development, staging, production", historyUsage)},
	{in: "locks", want: &bot.Command{Name: bot.NameLocks}},
	{in: "locks production", reply: withUsage(`too many arguments for locks: "production"`, locksUsage)},
	{in: "locks --force", reply: withUsage("locks does not take --force", locksUsage)},

	// lock, unlock
	{in: "lock production db migration running", want: &bot.Command{Name: bot.NameLock, Env: "production", Args: []string{"db migration running"}}},
	{in: `lock production "two  spaces" kept`, want: &bot.Command{Name: bot.NameLock, Env: "production", Args: []string{"two  spaces kept"}}},
	{in: "lock production don't deploy", want: &bot.Command{Name: bot.NameLock, Env: "production", Args: []string{"don't deploy"}}},
	{in: "lock production don’t deploy", want: &bot.Command{Name: bot.NameLock, Env: "production", Args: []string{"don’t deploy"}}},
	{in: "lock production", reply: withUsage("lock needs a reason", lockUsage)},
	{in: `lock production ""`, reply: withUsage("lock needs a reason", lockUsage)},
	{in: "lock production --reason x", reply: withUsage("lock does not take --reason", lockUsage)},
	{in: "unlock staging", want: &bot.Command{Name: bot.NameUnlock, Env: "staging"}},
	{in: "unlock staging --force", want: &bot.Command{Name: bot.NameUnlock, Env: "staging", Flags: map[string]string{"force": "true"}}},
	{in: "unlock --force staging", want: &bot.Command{Name: bot.NameUnlock, Env: "staging", Flags: map[string]string{"force": "true"}}},
	{in: "unlock staging —force", want: &bot.Command{Name: bot.NameUnlock, Env: "staging", Flags: map[string]string{"force": "true"}}},
	{in: "unlock staging --force=true", reply: withUsage("flag --force takes no value", unlockUsage)},
	{in: "unlock staging --force --force", reply: withUsage("flag --force given twice", unlockUsage)},
	{in: "unlock staging --force yes", reply: withUsage(`too many arguments for unlock: "yes"`, unlockUsage)},

	// preflight
	{in: "preflight staging v1.2.3", want: &bot.Command{Name: bot.NamePreflight, Env: "staging", Args: []string{"v1.2.3"}}},
	{in: `preflight staging v1.2.3-rc.1 --allow-destructive "drops a column" --override-window 'hotfix'`, want: &bot.Command{
		Name: bot.NamePreflight, Env: "staging", Args: []string{"v1.2.3-rc.1"},
		Flags: map[string]string{"allow-destructive": "drops a column", "override-window": "hotfix"}}},
	{in: "preflight staging v1.2", reply: withUsage(`invalid version "v1.2": use a commit sha (7 to 40 hex characters), sha-<hex>, or a tag like v1.2.3 or v1.2.3-rc.1`, preflightUsage)},
	{in: "preflight staging abc1234 --allow-destructive drops a column", reply: withUsage(`too many arguments for preflight: "a column" (quote a value with spaces: --allow-destructive "two words")`, preflightUsage)},
	{in: "preflight staging abc1234 --dry-run", reply: withUsage("preflight does not take --dry-run", preflightUsage)},

	// deploy
	{in: "deploy production abc1234", want: &bot.Command{Name: bot.NameDeploy, Env: "production", Args: []string{"abc1234"}}},
	{in: "deploy production ABCDEF0123456789ABCDEF0123456789ABCDEF01", want: &bot.Command{Name: bot.NameDeploy, Env: "production", Args: []string{"abcdef0123456789abcdef0123456789abcdef01"}}},
	{in: "deploy production sha-ABC1234", want: &bot.Command{Name: bot.NameDeploy, Env: "production", Args: []string{"sha-abc1234"}}},
	{in: "Deploy Production v2.0.0", want: &bot.Command{Name: bot.NameDeploy, Env: "production", Args: []string{"v2.0.0"}}},
	{in: `deploy production abc1234 --reason "hot fix" --dry-run --override-window="CEO asked" --allow-destructive='drop old table'`, want: &bot.Command{
		Name: bot.NameDeploy, Env: "production", Args: []string{"abc1234"},
		Flags: map[string]string{"reason": "hot fix", "dry-run": "true", "override-window": "CEO asked", "allow-destructive": "drop old table"}}},
	{in: "deploy --dry-run production --reason=hotfix abc1234", want: &bot.Command{
		Name: bot.NameDeploy, Env: "production", Args: []string{"abc1234"}, Flags: map[string]string{"dry-run": "true", "reason": "hotfix"}}},
	{in: "deploy production abc1234 --reason “hot fix”", want: &bot.Command{
		Name: bot.NameDeploy, Env: "production", Args: []string{"abc1234"}, Flags: map[string]string{"reason": "hot fix"}}},
	{in: "deploy production abc1234 --reason ‘hot fix’", want: &bot.Command{
		Name: bot.NameDeploy, Env: "production", Args: []string{"abc1234"}, Flags: map[string]string{"reason": "hot fix"}}},
	{in: "deploy production abc1234 --reason=“it’s a hot fix”", want: &bot.Command{
		Name: bot.NameDeploy, Env: "production", Args: []string{"abc1234"}, Flags: map[string]string{"reason": "it’s a hot fix"}}},
	{in: "deploy production abc1234 --reason ”wrong-way quotes”", want: &bot.Command{
		Name: bot.NameDeploy, Env: "production", Args: []string{"abc1234"}, Flags: map[string]string{"reason": "wrong-way quotes"}}},
	{in: `deploy production abc1234 --reason "--dry-run"`, want: &bot.Command{
		Name: bot.NameDeploy, Env: "production", Args: []string{"abc1234"}, Flags: map[string]string{"reason": "--dry-run"}}},
	{in: "deploy production abc1234 --DRY-RUN", want: &bot.Command{
		Name: bot.NameDeploy, Env: "production", Args: []string{"abc1234"}, Flags: map[string]string{"dry-run": "true"}}},
	{in: "deploy\tproduction\n  abc1234", want: &bot.Command{Name: bot.NameDeploy, Env: "production", Args: []string{"abc1234"}}},
	{in: "deploy", reply: withUsage("deploy needs an environment: development, staging, production", deployUsage)},
	{in: "deploy production", reply: withUsage("deploy needs a version", deployUsage)},
	{in: "deploy production latest", reply: withUsage(`invalid version "latest": use a commit sha (7 to 40 hex characters), sha-<hex>, or a tag like v1.2.3 or v1.2.3-rc.1`, deployUsage)},
	{in: "deploy production abc123", reply: withUsage(`invalid version "abc123": use a commit sha (7 to 40 hex characters), sha-<hex>, or a tag like v1.2.3 or v1.2.3-rc.1`, deployUsage)},
	{in: "deploy production " + strings.Repeat("a", 41), reply: withUsage(`invalid version "`+strings.Repeat("a", 40)+`…": use a commit sha (7 to 40 hex characters), sha-<hex>, or a tag like v1.2.3 or v1.2.3-rc.1`, deployUsage)},
	{in: "deploy prod abc1234", reply: withUsage(`unknown environment "prod". Did you mean "production"?`, deployUsage)},
	{in: "deploy production abc1234 --reason", reply: withUsage("flag --reason needs a value", deployUsage)},
	{in: "deploy production abc1234 --reason --dry-run", reply: withUsage("flag --reason needs a value", deployUsage)},
	{in: "deploy production abc1234 --reason=", reply: withUsage("flag --reason needs a value", deployUsage)},
	{in: `deploy production abc1234 --reason ""`, reply: withUsage("flag --reason needs a value", deployUsage)},
	{in: "deploy production abc1234 --reason a --reason b", reply: withUsage("flag --reason given twice", deployUsage)},
	{in: "deploy production abc1234 --reason fix the thing", reply: withUsage(`too many arguments for deploy: "the thing" (quote a value with spaces: --reason "two words")`, deployUsage)},
	{in: "deploy production abc1234 -- --dry-run", reply: withUsage(`too many arguments for deploy: "--dry-run"`, deployUsage)},
	{in: `deploy production abc1234 "--dry-run"`, reply: withUsage(`too many arguments for deploy: "--dry-run"`, deployUsage)},
	{in: "deploy production abc1234 --confirm", reply: withUsage("deploy does not take --confirm", deployUsage)},
	{in: "deploy production abc1234 --dryrun", reply: withUsage("unknown flag --dryrun for deploy. Did you mean --dry-run?", deployUsage)},
	{in: "deploy production abc1234 --xyzzy", reply: withUsage("unknown flag --xyzzy for deploy", deployUsage)},
	{in: `deploy production abc1234 --reason "unclosed`, reply: `unbalanced quote: the " is never closed`},
	{in: "deploy production abc1234 --reason “unclosed", reply: `unbalanced quote: the “ is never closed`},

	// rollback
	{in: "rollback production", want: &bot.Command{Name: bot.NameRollback, Env: "production"}},
	{in: `rollback production --force --reason "bad deploy" --restore-snapshot`, want: &bot.Command{
		Name: bot.NameRollback, Env: "production", Flags: map[string]string{"force": "true", "reason": "bad deploy", "restore-snapshot": "true"}}},
	{in: "rollback production --forse", reply: withUsage("unknown flag --forse for rollback. Did you mean --force?", rollbackUsage)},
	{in: "rollback --force", reply: withUsage("rollback needs an environment: development, staging, production", rollbackUsage)},

	// snapshot
	{in: `snapshot create production --reason "before migration"`, want: &bot.Command{
		Name: bot.NameSnapshot, Sub: "create", Env: "production", Flags: map[string]string{"reason": "before migration"}}},
	{in: "snapshot --reason x create production", want: &bot.Command{
		Name: bot.NameSnapshot, Sub: "create", Env: "production", Flags: map[string]string{"reason": "x"}}},
	{in: "Snapshot LIST Staging", want: &bot.Command{Name: bot.NameSnapshot, Sub: "list", Env: "staging"}},
	{in: "snapshot restore production togather_app_20260101_120000_manual.sql.gz --confirm", want: &bot.Command{
		Name: bot.NameSnapshot, Sub: "restore", Env: "production", Args: []string{"togather_app_20260101_120000_manual.sql.gz"}, Flags: map[string]string{"confirm": "true"}}},
	{in: "snapshot prune production --dry-run", want: &bot.Command{Name: bot.NameSnapshot, Sub: "prune", Env: "production", Flags: map[string]string{"dry-run": "true"}}},
	{in: "snapshot verify staging snap1", want: &bot.Command{Name: bot.NameSnapshot, Sub: "verify", Env: "staging", Args: []string{"snap1"}}},
	{in: "snapshot", reply: withUsage("snapshot needs a subcommand: create, list, restore, prune, verify", snapshotUsage...)},
	{in: "snapshot restor production x", reply: withUsage(`unknown snapshot subcommand "restor". Did you mean "restore"?`, snapshotUsage...)},
	{in: "snapshot frobnicate", reply: withUsage(`unknown snapshot subcommand "frobnicate" (choose create, list, restore, prune, verify)`, snapshotUsage...)},
	{in: "snapshot restore production", reply: withUsage("snapshot restore needs a snapshot name", restoreUsage)},
	{in: "snapshot list production --confirm", reply: withUsage("snapshot list does not take --confirm", listSnapUsage)},
	{in: "snapshot restore production snap1 --confrim", reply: withUsage("unknown flag --confrim for snapshot restore. Did you mean --confirm?", restoreUsage)},

	// incident
	{in: "incident declare SEV1 API is down", want: &bot.Command{Name: bot.NameIncident, Sub: "declare", Args: []string{"sev1", "API is down"}}},
	{in: "incident declare sev2 “Search is slow” --env=Staging", want: &bot.Command{
		Name: bot.NameIncident, Sub: "declare", Env: "staging", Args: []string{"sev2", "Search is slow"}}},
	{in: "incident --env production declare sev3 typo", want: &bot.Command{
		Name: bot.NameIncident, Sub: "declare", Env: "production", Args: []string{"sev3", "typo"}}},
	{in: "incident declare sev1 down --env prod", reply: withUsage(`unknown environment "prod". Did you mean "production"?`, declareUsage)},
	{in: "incident declare sev1 down --env", reply: withUsage("flag --env needs a value", declareUsage)},
	{in: "incident declare sev1 down --env staging --env production", reply: withUsage("flag --env given twice", declareUsage)},
	{in: "incident declare sev4 down", reply: withUsage(`invalid severity "sev4": use sev1, sev2 or sev3`, declareUsage)},
	{in: "incident declare", reply: withUsage("incident declare needs a severity (sev1, sev2 or sev3)", declareUsage)},
	{in: "incident declare sev2", reply: withUsage("incident declare needs a title", declareUsage)},
	{in: "incident update", want: &bot.Command{Name: bot.NameIncident, Sub: "update"}},
	{in: "incident update 42", want: &bot.Command{Name: bot.NameIncident, Sub: "update", Args: []string{"INC-42"}}},
	{in: "incident update inc-042", want: &bot.Command{Name: bot.NameIncident, Sub: "update", Args: []string{"INC-42"}}},
	{in: "incident update foo", reply: withUsage(`invalid incident id "foo": use INC-42 or 42`, updateUsage)},
	{in: "incident sev INC-42 Sev2", want: &bot.Command{Name: bot.NameIncident, Sub: "sev", Args: []string{"INC-42", "sev2"}}},
	{in: "incident sev INC-42", reply: withUsage("incident sev needs a severity (sev1, sev2 or sev3)", sevUsage)},
	{in: "incident note 42 rolled back, errors dropping", want: &bot.Command{Name: bot.NameIncident, Sub: "note", Args: []string{"INC-42", "rolled back, errors dropping"}}},
	{in: "incident note 42 paged <@U123|alice> see <https://grafana.example/d/x|the dashboard>", want: &bot.Command{
		Name: bot.NameIncident, Sub: "note", Args: []string{"INC-42", "paged <@U123|alice> see <https://grafana.example/d/x|the dashboard>"}}},
	{in: "incident note 42", reply: withUsage("incident note needs the note text", noteUsage)},
	{in: "incident list", want: &bot.Command{Name: bot.NameIncident, Sub: "list"}},
	{in: "incident resolve", want: &bot.Command{Name: bot.NameIncident, Sub: "resolve"}},
	{in: "incident resolve INC-7", want: &bot.Command{Name: bot.NameIncident, Sub: "resolve", Args: []string{"INC-7"}}},
	{in: "incident report 0", reply: withUsage(`invalid incident id "0": use INC-42 or 42`, reportUsage)},
	{in: "incident report", reply: withUsage("incident report needs an incident id", reportUsage)},
	{in: "incident", reply: withUsage("incident needs a subcommand: declare, update, sev, note, list, resolve, report", incidentUsage...)},
	{in: "incident delcare sev1 x", reply: withUsage(`unknown incident subcommand "delcare". Did you mean "declare"?`, incidentUsage...)},

	// maintenance
	{in: "maintenance schedule production 2026-12-08T02:00 2h Postgres upgrade --mode 503", want: &bot.Command{
		Name: bot.NameMaintenance, Sub: "schedule", Env: "production", Args: []string{"2026-12-08T02:00", "2h", "Postgres upgrade"}, Flags: map[string]string{"mode": "503"}}},
	{in: "maintenance schedule staging 2026-12-08T02:00 90m 'disk swap'", want: &bot.Command{
		Name: bot.NameMaintenance, Sub: "schedule", Env: "staging", Args: []string{"2026-12-08T02:00", "90m", "disk swap"}}},
	{in: "maintenance schedule production 2026-12-08 02:00 2h x", reply: withUsage(`invalid start "2026-12-08": use YYYY-MM-DDTHH:MM, like 2026-12-08T02:00`, scheduleUsage)},
	{in: "maintenance schedule production 2026-13-08T02:00 2h x", reply: withUsage(`invalid start "2026-13-08T02:00": use YYYY-MM-DDTHH:MM, like 2026-12-08T02:00`, scheduleUsage)},
	{in: "maintenance schedule production 2026-12-08T02:00 2 hours", reply: withUsage(`invalid duration "2": use a duration like 2h or 90m`, scheduleUsage)},
	{in: "maintenance schedule production 2026-12-08T02:00 -1h x", reply: withUsage(`invalid duration "-1h": use a duration like 2h or 90m`, scheduleUsage)},
	{in: "maintenance schedule production 2026-12-08T02:00 2h", reply: withUsage("maintenance schedule needs a description", scheduleUsage)},
	{in: "maintenance schedule production 2026-12-08T02:00", reply: withUsage("maintenance schedule needs a duration like 2h or 90m", scheduleUsage)},
	{in: "maintenance schedule production 2026-12-08T02:00 2h x --mode", reply: withUsage("flag --mode needs a value", scheduleUsage)},
	{in: "maintenance list", want: &bot.Command{Name: bot.NameMaintenance, Sub: "list"}},
	{in: "maintenance cancel mw-3", want: &bot.Command{Name: bot.NameMaintenance, Sub: "cancel", Args: []string{"mw-3"}}},
	{in: "maintenance start 3", want: &bot.Command{Name: bot.NameMaintenance, Sub: "start", Args: []string{"3"}}},
	{in: "maintenance end 3", want: &bot.Command{Name: bot.NameMaintenance, Sub: "end", Args: []string{"3"}}},
	{in: "maintenance cancel", reply: withUsage("maintenance cancel needs a maintenance window id", cancelUsage)},

	// secrets: the user's words are never quoted back
	{in: "secrets rotated production DATABASE_URL", want: &bot.Command{Name: bot.NameSecrets, Sub: "rotated", Env: "production", Args: []string{"DATABASE_URL"}}},
	{in: "secrets rotated production database_url", reply: withUsage("the secret must be named by its upper-case variable NAME, like DATABASE_URL, never by its value", rotatedUsage)},
	{in: "secrets rotated production", reply: withUsage("secrets rotated needs the variable NAME, like DATABASE_URL", rotatedUsage)},
	{in: "secrets rotated production DATABASE_URL sk_live_123", reply: withUsage("too many arguments for secrets rotated: (not shown)", rotatedUsage)},
	{in: "secrets rotated sk_live_123 DATABASE_URL", reply: withUsage("unknown environment (not shown). Known environments: development, staging, production", rotatedUsage)},
	{in: "secrets rotate production X", reply: withUsage(`unknown secrets subcommand (not shown). Did you mean "rotated"?`, rotatedUsage)},

	// db
	{in: "db production connections", want: &bot.Command{Name: bot.NameDB, Sub: "connections", Env: "production"}},
	{in: "DB Staging UNUSED-INDEXES", want: &bot.Command{Name: bot.NameDB, Sub: "unused-indexes", Env: "staging"}},
	{in: "db production vacuum --full", want: &bot.Command{Name: bot.NameDB, Sub: "vacuum", Env: "production", Flags: map[string]string{"full": "true"}}},
	{in: "db --full production vacuum", want: &bot.Command{Name: bot.NameDB, Sub: "vacuum", Env: "production", Flags: map[string]string{"full": "true"}}},
	{in: "db production analyze --full", reply: withUsage("db analyze does not take --full", analyzeUsage)},
	{in: "db production", reply: withUsage("db needs an action: connections, slow, size, unused-indexes, analyze, vacuum, reindex", dbUsage...)},
	{in: "db production vacum", reply: withUsage(`unknown db action "vacum". Did you mean "vacuum"?`, dbUsage...)},
	{in: "db prod size", reply: withUsage(`unknown environment "prod". Did you mean "production"?`, dbUsage...)},
	{in: "db", reply: withUsage("db needs an environment: development, staging, production", dbUsage...)},
	{in: "db production size now", reply: withUsage(`too many arguments for db size: "now"`, "db <env> size")},

	// limits
	{in: strings.Repeat("a", 4001), reply: "command too long (4001 characters; the limit is 4000)"},
	{in: "lock production " + strings.Repeat("é", 3984), want: &bot.Command{Name: bot.NameLock, Env: "production", Args: []string{strings.Repeat("é", 3984)}}},
	{in: "lock production " + strings.Repeat("x ", 399), reply: "too many words (the limit is 400)"},
}

func TestParse(t *testing.T) {
	for _, tc := range parseCases {
		t.Run(clipName(tc.in), func(t *testing.T) {
			got := bot.Parse(tc.in, parseEnvs)
			want := bot.ParseResult{Command: tc.want, Reply: tc.reply, Ignore: tc.ignore}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Parse(%q)\n got: %s\nwant: %s", tc.in, describe(got), describe(want))
			}
		})
	}
}

func TestParseEnvironments(t *testing.T) {
	tests := []struct {
		in    string
		envs  []string
		want  *bot.Command
		reply string
	}{
		{in: "status production", envs: []string{"Production"}, want: &bot.Command{Name: bot.NameStatus, Env: "Production"}},
		{in: "status PRODUCTION", envs: []string{"production", "production-eu"}, want: &bot.Command{Name: bot.NameStatus, Env: "production"}},
		{in: "status production", envs: nil, reply: withUsage(`unknown environment "production": no environments are configured`, statusUsage)},
		{in: "status", envs: nil, reply: withUsage("status needs an environment", statusUsage)},
		// "pro" is a prefix of both, and too far from either: no guess.
		{in: "status pro", envs: []string{"production", "production-eu"}, reply: withUsage(`unknown environment "pro". Known environments: production, production-eu`, statusUsage)},
		{in: "status dev", envs: []string{"dev1", "dev2"}, reply: withUsage(`unknown environment "dev". Did you mean "dev1"?`, statusUsage)},
	}
	for _, tc := range tests {
		got := bot.Parse(tc.in, tc.envs)
		want := bot.ParseResult{Command: tc.want, Reply: tc.reply}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Parse(%q, %q)\n got: %s\nwant: %s", tc.in, tc.envs, describe(got), describe(want))
		}
	}
}

func TestCommandAccessors(t *testing.T) {
	c := bot.Parse(`rollback production --force --reason "bad deploy"`, parseEnvs).Command
	if c == nil {
		t.Fatal("no command")
	}
	if got, want := c.Permission(), "rollback"; got != want {
		t.Errorf("Permission() = %q, want %q", got, want)
	}
	if v, ok := c.Flag("reason"); !ok || v != "bad deploy" {
		t.Errorf(`Flag("reason") = %q, %v; want "bad deploy", true`, v, ok)
	}
	if _, ok := c.Flag("restore-snapshot"); ok {
		t.Error(`Flag("restore-snapshot") reported a flag that was not given`)
	}
	if !c.Bool("force") || c.Bool("restore-snapshot") {
		t.Errorf("Bool(force) = %v, Bool(restore-snapshot) = %v; want true, false", c.Bool("force"), c.Bool("restore-snapshot"))
	}
	if got, want := (bot.Command{Name: bot.NameSnapshot, Sub: "restore"}).Permission(), "snapshot.restore"; got != want {
		t.Errorf("Permission() = %q, want %q", got, want)
	}
	if got, want := (bot.Command{Name: bot.NameDB, Sub: "vacuum"}).Permission(), "db.vacuum"; got != want {
		t.Errorf("Permission() = %q, want %q", got, want)
	}
	if got, want := bot.Name(99).String(), "Name(99)"; got != want {
		t.Errorf("Name(99).String() = %q, want %q", got, want)
	}
}

func FuzzParse(f *testing.F) {
	for _, tc := range parseCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got := bot.Parse(in, parseEnvs)
		set := 0
		if got.Command != nil {
			set++
			if got.Command.Env != "" && !slices.Contains(parseEnvs, got.Command.Env) {
				t.Errorf("Parse(%q).Command.Env = %q, not a configured environment", in, got.Command.Env)
			}
		}
		if got.Reply != "" {
			set++
		}
		if got.Ignore {
			set++
		}
		if set != 1 {
			t.Fatalf("Parse(%q) set %d of Command/Reply/Ignore, want exactly 1: %s", in, set, describe(got))
		}
		if again := bot.Parse(in, parseEnvs); !reflect.DeepEqual(got, again) {
			t.Errorf("Parse(%q) is not deterministic:\n%s\n%s", in, describe(got), describe(again))
		}
	})
}

func describe(r bot.ParseResult) string {
	switch {
	case r.Command != nil:
		c := r.Command
		return fmt.Sprintf("command %v sub=%q env=%q args=%q flags=%v", c.Name, c.Sub, c.Env, c.Args, c.Flags)
	case r.Ignore:
		return "ignore"
	}
	return fmt.Sprintf("reply %q", r.Reply)
}

func clipName(s string) string {
	if len(s) > 60 {
		return s[:60]
	}
	return s
}

func TestNormaliseVersion(t *testing.T) {
	for word, want := range map[string]string{"ABCDEF1": "abcdef1", "sha-0123abc": "sha-0123abc", "v1.2.3": "v1.2.3", "v1.2.3-rc.1": "v1.2.3-rc.1"} {
		if got, err := bot.NormaliseVersion(word); err != nil || got != want {
			t.Errorf("NormaliseVersion(%q) = %q, %v; want %q", word, got, err, want)
		}
	}
	for _, word := range []string{"v2", "latest", "", "v1.2", "abc"} {
		if got, err := bot.NormaliseVersion(word); err == nil {
			t.Errorf("NormaliseVersion(%q) = %q, want an error", word, got)
		}
	}
}
