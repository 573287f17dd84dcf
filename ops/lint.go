package ops

import (
	"fmt"
	"slices"
	"strings"
)

// Finding is one problem the linter sees in a pending migration.
type Finding struct {
	Migration   string      `json:"migration"` // e.g. 000014_drop_legacy
	Rule        string      `json:"rule"`      // stable, e.g. drop_column
	Severity    CheckStatus `json:"severity"`  // warn or fail
	Message     string      `json:"message"`
	Destructive bool        `json:"destructive"` // loses data; needs an explicit allowance
}

// Lint rules.
const (
	RuleMissingDown        = "missing_down"
	RuleDropTable          = "drop_table"
	RuleDropColumn         = "drop_column"
	RuleCreateTable        = "create_table_not_idempotent"
	RuleAddColumn          = "add_column_not_idempotent"
	RuleUpdateAll          = "update_without_where"
	RuleDeleteAll          = "delete_without_where"
	RuleTruncate           = "truncate"
	RuleIndexNotConcurrent = "create_index_not_concurrent"
)

// LintMigration checks the up migration of m for changes that are hard to
// undo or unsafe to re-run: no .down.sql, dropped tables and columns,
// UPDATE and DELETE without WHERE, TRUNCATE, and CREATE TABLE, ADD COLUMN or
// CREATE INDEX that would fail or lock when re-run. Keywords are matched
// case-insensitively on tokens, so comments, string literals and quoted
// identifiers never match. The body of a DO block runs during the
// migration, so the destructive rules apply inside it; the idempotency
// rules do not, since such blocks carry their own guards. Function bodies
// run later and are not checked. An index on a table the migration created
// before it blocks no one: the table is new.
func LintMigration(m Migration) []Finding {
	name := fmt.Sprintf("%06d_%s", m.Version, m.Name)
	var out []Finding
	if !m.HasDown {
		out = append(out, Finding{Rule: RuleMissingDown, Severity: CheckWarn,
			Message: "no .down.sql: the migration cannot be reverted, only restored from a snapshot"})
	}
	created := map[string]bool{}
	for _, st := range splitStatements(scanSQL(m.UpSQL, 1)) {
		out = append(out, lintStatement(st, false, created)...)
	}
	for i := range out {
		out[i].Migration = name
	}
	return out
}

// lintStatement checks one statement; inDo means it is part of a DO block.
// created holds the tables (tableKey) created by earlier statements; a
// CREATE TABLE adds to it.
func lintStatement(st []sqlToken, inDo bool, created map[string]bool) []Finding {
	if inDo {
		st = skipPLControl(st)
	}
	st = skipWith(st)
	if len(st) == 0 {
		return nil
	}
	line := st[0].line
	finding := func(rule string, sev CheckStatus, format string, args ...any) Finding {
		return Finding{Rule: rule, Severity: sev, Destructive: sev == CheckFail,
			Message: fmt.Sprintf("line %d: ", line) + fmt.Sprintf(format, args...)}
	}
	var out []Finding
	switch keyword(st, 0) {
	case "DROP":
		if keyword(st, 1) == "TABLE" {
			i := skipIfExists(st, 2)
			out = append(out, finding(RuleDropTable, CheckFail, "DROP TABLE %s deletes the table and its data", nameList(st[i:])))
		}
	case "ALTER":
		if keyword(st, 1) == "TABLE" {
			out = append(out, lintAlterTable(st, inDo, finding)...)
		}
	case "CREATE":
		if inDo {
			break
		}
		i := 1
		for isKeyword(st, i, "GLOBAL", "LOCAL", "UNLOGGED", "UNIQUE") {
			i++
		}
		switch keyword(st, i) {
		case "TABLE":
			j := i + 1
			if hasKeywords(st, j, "IF", "NOT", "EXISTS") {
				j += 3
			} else {
				name, _ := qualifiedName(st, j)
				out = append(out, finding(RuleCreateTable, CheckWarn, "CREATE TABLE %s without IF NOT EXISTS fails when the migration is re-run", name))
			}
			created[tableKey(st, j)] = true
		case "INDEX":
			j := indexTable(st)
			if keyword(st, i+1) != "CONCURRENTLY" && !created[tableKey(st, j)] {
				name, _ := qualifiedName(st, j)
				out = append(out, finding(RuleIndexNotConcurrent, CheckWarn,
					"CREATE INDEX without CONCURRENTLY blocks writes to %s while it builds (use CONCURRENTLY, in a migration of its own)", name))
			}
		}
	case "UPDATE":
		if !hasTopLevelKeyword(st, "WHERE") {
			i := 1
			if keyword(st, i) == "ONLY" {
				i++
			}
			name, _ := qualifiedName(st, i)
			out = append(out, finding(RuleUpdateAll, CheckFail, "UPDATE %s without WHERE rewrites every row", name))
		}
	case "DELETE":
		if keyword(st, 1) == "FROM" && !hasTopLevelKeyword(st, "WHERE") {
			i := 2
			if keyword(st, i) == "ONLY" {
				i++
			}
			name, _ := qualifiedName(st, i)
			out = append(out, finding(RuleDeleteAll, CheckFail, "DELETE FROM %s without WHERE deletes every row", name))
		}
	case "TRUNCATE":
		i := 1
		for isKeyword(st, i, "TABLE", "ONLY") {
			i++
		}
		out = append(out, finding(RuleTruncate, CheckFail, "TRUNCATE %s deletes every row", nameList(st[i:])))
	case "DO":
		if !inDo {
			out = append(out, lintDo(st)...)
		}
	}
	return out
}

// lintAlterTable checks the ADD and DROP actions of an ALTER TABLE.
func lintAlterTable(st []sqlToken, inDo bool, finding func(string, CheckStatus, string, ...any) Finding) []Finding {
	i := skipIfExists(st, 2)
	if keyword(st, i) == "ONLY" {
		i++
	}
	table, i := qualifiedName(st, i)
	if i < len(st) && st[i].text == "*" {
		i++
	}
	var out []Finding
	for _, action := range splitTopLevel(st[i:], ",") {
		switch keyword(action, 0) {
		case "ADD":
			if isKeyword(action, 1, "CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN", "EXCLUDE") || inDo {
				continue
			}
			j := 1
			if keyword(action, j) == "COLUMN" {
				j++
			}
			if !hasKeywords(action, j, "IF", "NOT", "EXISTS") {
				col, _ := qualifiedName(action, j)
				out = append(out, finding(RuleAddColumn, CheckWarn, "ADD COLUMN %s.%s without IF NOT EXISTS fails when the migration is re-run", table, col))
			}
		case "DROP":
			if isKeyword(action, 1, "CONSTRAINT") {
				continue
			}
			j := 1
			if keyword(action, j) == "COLUMN" {
				j++
			}
			col, _ := qualifiedName(action, skipIfExists(action, j))
			out = append(out, finding(RuleDropColumn, CheckFail, "DROP COLUMN %s.%s deletes the column and its data", table, col))
		}
	}
	return out
}

// lintDo checks the body of a DO block written in PL/pgSQL or SQL.
func lintDo(st []sqlToken) []Finding {
	var body *sqlToken
	for i := range st {
		switch {
		case st[i].kind == tokDollar:
			body = &st[i]
		case keyword(st, i) == "LANGUAGE" && !isKeyword(st, i+1, "PLPGSQL", "SQL"):
			return nil
		}
	}
	if body == nil {
		return nil
	}
	var out []Finding
	for _, inner := range splitStatements(scanSQL(body.text, body.line)) {
		out = append(out, lintStatement(inner, true, nil)...)
	}
	return out
}

// skipPLControl drops the PL/pgSQL block and control words in front of a
// statement inside a DO block (BEGIN, IF … THEN, FOR … LOOP, …), so what
// remains starts with the SQL verb. A piece that only ends a block is
// dropped whole.
func skipPLControl(st []sqlToken) []sqlToken {
	for len(st) > 0 {
		var ok bool
		switch keyword(st, 0) {
		case "BEGIN", "DECLARE", "ELSE", "LOOP", "EXCEPTION":
			st, ok = st[1:], true
		case "END":
			return nil
		case "IF", "ELSIF", "ELSEIF", "WHEN", "CASE":
			st, ok = afterTopLevel(st, "THEN")
		case "FOR", "FOREACH", "WHILE":
			st, ok = afterTopLevel(st, "LOOP")
		default:
			if len(st) < 2 || st[0].text != "<" || st[1].text != "<" {
				return st
			}
			st, ok = afterTopLevel(st, ">>") // <<label>>
		}
		if !ok {
			return nil
		}
	}
	return st
}

// skipWith drops a leading WITH clause, so a data-modifying statement
// after common table expressions starts with its verb.
func skipWith(st []sqlToken) []sqlToken {
	if keyword(st, 0) != "WITH" {
		return st
	}
	depth := 0
	for i, t := range st {
		depth += nesting(t)
		if depth == 0 && isKeyword(st, i, "SELECT", "INSERT", "UPDATE", "DELETE", "MERGE") {
			return st[i:]
		}
	}
	return nil
}

// indexTable is where the name of the table a CREATE INDEX statement is on
// starts; len(st) when there is none.
func indexTable(st []sqlToken) int {
	for i := range st {
		if keyword(st, i) == "ON" {
			if keyword(st, i+1) == "ONLY" {
				return i + 2
			}
			return i + 1
		}
	}
	return len(st)
}

// tableKey is the name at st[i] as PostgreSQL resolves it: unquoted parts
// folded to lower case, and in schema public when it names none (the
// default search_path).
func tableKey(st []sqlToken, i int) string {
	var parts []string
	for i < len(st) && (st[i].kind == tokWord || st[i].kind == tokIdent) {
		p := st[i].text
		if st[i].kind == tokWord {
			p = strings.ToLower(p)
		}
		parts = append(parts, p)
		if i+2 >= len(st) || st[i+1].text != "." {
			break
		}
		i += 2
	}
	if len(parts) == 1 {
		parts = append([]string{"public"}, parts...)
	}
	return strings.Join(parts, ".")
}

// nameList is the comma-separated names at the start of st, up to CASCADE
// or RESTRICT.
func nameList(st []sqlToken) string {
	var names []string
	for i := 0; i < len(st); {
		if isKeyword(st, i, "CASCADE", "RESTRICT", "CONTINUE", "RESTART") {
			break
		}
		name, next := qualifiedName(st, i)
		if next == i {
			break
		}
		names = append(names, name)
		i = next
		if i < len(st) && st[i].text == "," {
			i++
		}
	}
	if len(names) == 0 {
		return "?"
	}
	return strings.Join(names, ", ")
}

// qualifiedName reads a possibly schema-qualified name at st[i] and returns
// it with the index after it.
func qualifiedName(st []sqlToken, i int) (string, int) {
	var parts []string
	for i < len(st) && (st[i].kind == tokWord || st[i].kind == tokIdent) {
		parts = append(parts, st[i].text)
		i++
		if i+1 < len(st) && st[i].text == "." {
			i++
			continue
		}
		break
	}
	if len(parts) == 0 {
		return "?", i
	}
	return strings.Join(parts, "."), i
}

func skipIfExists(st []sqlToken, i int) int {
	if hasKeywords(st, i, "IF", "EXISTS") {
		return i + 2
	}
	return i
}

// keyword is st[i] upper-cased when it is a bare word, "" otherwise.
func keyword(st []sqlToken, i int) string {
	if i < 0 || i >= len(st) || st[i].kind != tokWord {
		return ""
	}
	return strings.ToUpper(st[i].text)
}

func isKeyword(st []sqlToken, i int, words ...string) bool {
	k := keyword(st, i)
	return k != "" && slices.Contains(words, k)
}

// hasKeywords reports whether the words follow each other from st[i].
func hasKeywords(st []sqlToken, i int, words ...string) bool {
	for j, w := range words {
		if keyword(st, i+j) != w {
			return false
		}
	}
	return true
}

func hasTopLevelKeyword(st []sqlToken, word string) bool {
	_, ok := afterTopLevel(st, word)
	return ok
}

// afterTopLevel returns what follows the first keyword word (or the
// punctuation ">>") outside parentheses; ok is false when there is none.
func afterTopLevel(st []sqlToken, word string) (rest []sqlToken, ok bool) {
	depth := 0
	for i, t := range st {
		depth += nesting(t)
		if depth != 0 {
			continue
		}
		if keyword(st, i) == word || word == ">>" && t.text == ">" && i > 0 && st[i-1].text == ">" {
			return st[i+1:], true
		}
	}
	return nil, false
}

// splitTopLevel splits st at the punctuation sep outside parentheses.
func splitTopLevel(st []sqlToken, sep string) [][]sqlToken {
	var out [][]sqlToken
	depth, start := 0, 0
	for i, t := range st {
		depth += nesting(t)
		if depth == 0 && t.kind == tokPunct && t.text == sep {
			out = append(out, st[start:i])
			start = i + 1
		}
	}
	return append(out, st[start:])
}

// splitStatements splits tokens at semicolons; empty statements are dropped.
func splitStatements(toks []sqlToken) [][]sqlToken {
	var out [][]sqlToken
	start := 0
	for i, t := range toks {
		if t.kind == tokPunct && t.text == ";" {
			if i > start {
				out = append(out, toks[start:i])
			}
			start = i + 1
		}
	}
	if start < len(toks) {
		out = append(out, toks[start:])
	}
	return out
}

func nesting(t sqlToken) int {
	if t.kind != tokPunct {
		return 0
	}
	switch t.text {
	case "(":
		return 1
	case ")":
		return -1
	}
	return 0
}

type tokKind int

const (
	tokWord   tokKind = iota // keyword, unquoted identifier or number
	tokIdent                 // "quoted identifier", text without the quotes
	tokString                // string literal, text dropped
	tokDollar                // dollar-quoted string, text is its body
	tokPunct                 // one character of punctuation
)

type sqlToken struct {
	kind tokKind
	text string
	line int
}

// scanSQL splits PostgreSQL text into tokens, dropping comments (nested
// block comments included) and the content of string literals. line is
// the line number of the text's first line.
func scanSQL(s string, line int) []sqlToken {
	var toks []sqlToken
	emit := func(kind tokKind, text string) { toks = append(toks, sqlToken{kind, text, line}) }
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
			i++
		case strings.HasPrefix(s[i:], "--"):
			if j := strings.IndexByte(s[i:], '\n'); j >= 0 {
				i += j
			} else {
				i = len(s)
			}
		case strings.HasPrefix(s[i:], "/*"):
			end := blockCommentEnd(s, i)
			line += strings.Count(s[i:end], "\n")
			i = end
		case c == '\'':
			end := quotedEnd(s, i, '\'', false)
			emit(tokString, "")
			line += strings.Count(s[i:end], "\n")
			i = end
		case c == '"':
			end := quotedEnd(s, i, '"', false)
			emit(tokIdent, strings.ReplaceAll(strings.Trim(s[i:end], `"`), `""`, `"`))
			line += strings.Count(s[i:end], "\n")
			i = end
		case c == '$':
			tag, ok := dollarTag(s[i:])
			if !ok {
				emit(tokPunct, "$")
				i++
				break
			}
			bodyStart := i + len(tag)
			bodyEnd := len(s)
			end := len(s)
			if j := strings.Index(s[bodyStart:], tag); j >= 0 {
				bodyEnd, end = bodyStart+j, bodyStart+j+len(tag)
			}
			emit(tokDollar, s[bodyStart:bodyEnd])
			line += strings.Count(s[i:end], "\n")
			i = end
		case isWordByte(c):
			j := i
			for j < len(s) && (isWordByte(s[j]) || s[j] == '$') {
				j++
			}
			word := s[i:j]
			if (word == "E" || word == "e") && j < len(s) && s[j] == '\'' { // E'…' allows backslash escapes
				end := quotedEnd(s, j, '\'', true)
				emit(tokString, "")
				line += strings.Count(s[j:end], "\n")
				i = end
				break
			}
			emit(tokWord, word)
			i = j
		default:
			emit(tokPunct, string(c))
			i++
		}
	}
	return toks
}

func isWordByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}

// quotedEnd returns the index after the quoted text starting at s[i]; a
// doubled quote is an escaped one, and with backslash so is \q.
func quotedEnd(s string, i int, q byte, backslash bool) int {
	for j := i + 1; j < len(s); j++ {
		switch {
		case backslash && s[j] == '\\':
			j++
		case s[j] == q && j+1 < len(s) && s[j+1] == q:
			j++
		case s[j] == q:
			return j + 1
		}
	}
	return len(s)
}

// blockCommentEnd returns the index after the block comment starting at
// s[i]; PostgreSQL block comments nest.
func blockCommentEnd(s string, i int) int {
	depth := 0
	for j := i; j+1 < len(s); j++ {
		switch s[j : j+2] {
		case "/*":
			depth++
			j++
		case "*/":
			depth--
			j++
			if depth == 0 {
				return j + 1
			}
		}
	}
	return len(s)
}

// dollarTag returns the opening $tag$ at the start of s: $$ or $name$
// with a name that does not start with a digit ($1 is a parameter).
func dollarTag(s string) (string, bool) {
	for j := 1; j < len(s); j++ {
		c := s[j]
		switch {
		case c == '$':
			return s[:j+1], true
		case c >= '0' && c <= '9' && j == 1, !isWordByte(c):
			return "", false
		}
	}
	return "", false
}
