package ops_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/togather-foundation/togather-chatops/ops"
)

func TestLintMigration(t *testing.T) {
	type want struct {
		rule string
		msg  string // a substring of the message
	}
	tests := []struct {
		name string
		sql  string
		want []want
	}{
		// Each rule.
		{"drop table", "DROP TABLE IF EXISTS legacy_users CASCADE;", []want{{ops.RuleDropTable, "line 1: DROP TABLE legacy_users deletes"}}},
		{"drop tables, lower case", "drop table a, public.b;", []want{{ops.RuleDropTable, "DROP TABLE a, public.b"}}},
		{"drop column", "ALTER TABLE events DROP COLUMN legacy_id;", []want{{ops.RuleDropColumn, "DROP COLUMN events.legacy_id deletes"}}},
		{"drop column without the COLUMN keyword", `ALTER TABLE IF EXISTS ONLY "Events" DROP IF EXISTS old;`, []want{{ops.RuleDropColumn, "Events.old"}}},
		{"several actions", "ALTER TABLE t ADD COLUMN IF NOT EXISTS a numeric(10,2), DROP COLUMN b, DROP CONSTRAINT c, ALTER COLUMN d DROP NOT NULL;",
			[]want{{ops.RuleDropColumn, "t.b"}}},
		{"create table", "CREATE TABLE events (id bigint);", []want{{ops.RuleCreateTable, "CREATE TABLE events without IF NOT EXISTS"}}},
		{"create unlogged table", "CREATE UNLOGGED TABLE cache (k text);", []want{{ops.RuleCreateTable, "cache"}}},
		{"add column", "ALTER TABLE events ADD COLUMN venue text;", []want{{ops.RuleAddColumn, "events.venue without IF NOT EXISTS"}}},
		{"add column without the COLUMN keyword", "ALTER TABLE events ADD venue text;", []want{{ops.RuleAddColumn, "events.venue"}}},
		{"update without where", "UPDATE events SET venue = 'x';", []want{{ops.RuleUpdateAll, "UPDATE events without WHERE"}}},
		{"update with a where only in a subquery", "UPDATE events SET n = (SELECT count(*) FROM t WHERE t.e = events.id);", []want{{ops.RuleUpdateAll, "events"}}},
		{"delete without where", "DELETE FROM sessions;", []want{{ops.RuleDeleteAll, "DELETE FROM sessions without WHERE"}}},
		{"delete after a CTE", "WITH old AS (SELECT id FROM s WHERE stale) DELETE FROM sessions;", []want{{ops.RuleDeleteAll, "sessions"}}},
		{"truncate", "TRUNCATE TABLE ONLY audit, logs RESTART IDENTITY;", []want{{ops.RuleTruncate, "TRUNCATE audit, logs deletes every row"}}},
		{"create index", "CREATE UNIQUE INDEX idx ON ONLY events (slug);", []want{{ops.RuleIndexNotConcurrent, "blocks writes to events"}}},
		{"line numbers", "-- header\n\nCREATE TABLE IF NOT EXISTS a (id int);\n\nDROP TABLE b;", []want{{ops.RuleDropTable, "line 5:"}}},

		// What must not match.
		{"idempotent and concurrent forms", `CREATE TABLE IF NOT EXISTS a (id int);
			ALTER TABLE a ADD COLUMN IF NOT EXISTS b int, ADD CONSTRAINT a_pk PRIMARY KEY (id), ADD UNIQUE (b);
			CREATE INDEX CONCURRENTLY IF NOT EXISTS a_b ON a (b);
			CREATE TEMP TABLE scratch (x int);`, nil},
		{"index on a table created in the same migration", `CREATE TABLE IF NOT EXISTS public.tickets (id bigint, event_id bigint);
			CREATE INDEX tickets_event ON tickets (event_id);
			CREATE TABLE "Seats" (id int);
			CREATE UNIQUE INDEX seats_id ON public."Seats" (id);
			CREATE INDEX IF NOT EXISTS tickets_id ON ONLY "public"."tickets" (id);`,
			[]want{{ops.RuleCreateTable, "CREATE TABLE Seats without IF NOT EXISTS"}}},
		{"index on a table created earlier, or of another name or schema", `CREATE INDEX early ON tickets (id);
			CREATE TABLE IF NOT EXISTS tickets (id int);
			CREATE INDEX other ON "Tickets" (id);
			CREATE INDEX elsewhere ON archive.tickets (id);`,
			[]want{{ops.RuleIndexNotConcurrent, "line 1: CREATE INDEX without CONCURRENTLY blocks writes to tickets"},
				{ops.RuleIndexNotConcurrent, "blocks writes to Tickets"}, {ops.RuleIndexNotConcurrent, "blocks writes to archive.tickets"}}},
		{"DROP in comments", "-- DROP TABLE users;\n/* DROP TABLE users; /* nested */ DELETE FROM users; */ SELECT 1;", nil},
		{"DROP in strings", `INSERT INTO notes VALUES ('DROP TABLE users; DELETE FROM x', E'it\'s; DROP TABLE y', 'a''b; TRUNCATE z');`, nil},
		{"DROP in a quoted identifier", `INSERT INTO "DROP TABLE x; y" VALUES (1);`, nil},
		{"UPDATE … WHERE across lines", "UPDATE events\n   SET venue = 'x'\n WHERE\n   id = 1;", nil},
		{"DELETE … WHERE across lines", "DELETE\nFROM sessions\nWHERE expires_at < now();", nil},
		{"DELETE and UPDATE in foreign keys, triggers and grants", `CREATE TABLE IF NOT EXISTS a (b int REFERENCES c ON DELETE CASCADE ON UPDATE CASCADE);
			CREATE TRIGGER t BEFORE UPDATE OR DELETE ON a FOR EACH ROW EXECUTE FUNCTION f();
			GRANT UPDATE, DELETE, TRUNCATE ON a TO app;
			SELECT * FROM a FOR UPDATE;`, nil},
		{"DO block with semicolons and guards", `DO $$
			BEGIN
				IF NOT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = 'a' AND column_name = 'b') THEN
					ALTER TABLE a ADD COLUMN b int;
					CREATE TABLE c (id int);
				END IF;
				UPDATE a SET b = 0 WHERE b IS NULL;
			END $$;`, nil},
		{"function body runs later", `CREATE OR REPLACE FUNCTION purge() RETURNS void LANGUAGE plpgsql AS $fn$
			BEGIN DELETE FROM sessions; END $fn$;`, nil},
		{"dollar sign parameters are not quotes", "PREPARE p AS UPDATE a SET b = $1 WHERE id = $2;", nil},

		// Destructive changes inside a DO block run now.
		{"DO block that drops", `DO $body$
			DECLARE n int;
			BEGIN
				FOR n IN SELECT 1 LOOP
					DELETE FROM sessions;
				END LOOP;
				<<inner>> BEGIN
					ALTER TABLE a DROP COLUMN b;
				END;
			EXCEPTION WHEN others THEN TRUNCATE t;
			END $body$ LANGUAGE plpgsql;`,
			[]want{{ops.RuleDeleteAll, "line 5: DELETE FROM sessions"}, {ops.RuleDropColumn, "line 8: DROP COLUMN a.b"}, {ops.RuleTruncate, "TRUNCATE t"}}},
		{"DO block in another language", "DO LANGUAGE plpython3u $$ plpy.execute('x') $$;", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ops.LintMigration(ops.Migration{Version: 14, Name: "change", UpSQL: tt.sql, HasDown: true})
			if len(got) != len(tt.want) {
				t.Fatalf("got %d findings, want %d:\n%s", len(got), len(tt.want), describe(got))
			}
			for i, w := range tt.want {
				f := got[i]
				if f.Rule != w.rule || !strings.Contains(f.Message, w.msg) || f.Migration != "000014_change" {
					t.Errorf("finding %d = %+v, want rule %s with %q", i, f, w.rule, w.msg)
				}
				destructive := w.rule != ops.RuleCreateTable && w.rule != ops.RuleAddColumn && w.rule != ops.RuleIndexNotConcurrent
				wantSev := ops.CheckWarn
				if destructive {
					wantSev = ops.CheckFail
				}
				if f.Destructive != destructive || f.Severity != wantSev {
					t.Errorf("finding %d (%s): destructive %v severity %s, want %v %s", i, f.Rule, f.Destructive, f.Severity, destructive, wantSev)
				}
			}
		})
	}
}

func TestLintMigrationMissingDown(t *testing.T) {
	got := ops.LintMigration(ops.Migration{Version: 3, Name: "seed", UpSQL: "INSERT INTO a VALUES (1);"})
	if len(got) != 1 || got[0].Rule != ops.RuleMissingDown || got[0].Severity != ops.CheckWarn || got[0].Destructive {
		t.Fatalf("findings = %s, want one missing_down warning", describe(got))
	}
}

func describe(fs []ops.Finding) string {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "  %s %s %s\n", f.Rule, f.Severity, f.Message)
	}
	return b.String()
}
