// Package schema checks SQL migrations against the expand/contract rule of docs/architecture.md:
// a migration that ships with a release must keep the previous release's code working.
package schema

import (
	"regexp"
	"strings"
)

// contract are the statements that break code of the previous release.
var contract = []struct {
	re     *regexp.Regexp
	reason string
}{
	{regexp.MustCompile(`(?is)\bDROP\s+(TABLE|COLUMN|SCHEMA|VIEW|TYPE)\b`), "drops what old code may use"},
	{regexp.MustCompile(`(?is)\bRENAME\b`), "renames what old code uses"},
	{regexp.MustCompile(`(?is)\bALTER\s+COLUMN\b[^;]*\bTYPE\b`), "changes a column's type"},
	{regexp.MustCompile(`(?is)\bSET\s+NOT\s+NULL\b`), "makes a column NOT NULL that old code may leave empty"},
	{regexp.MustCompile(`(?is)\bDROP\s+DEFAULT\b`), "removes a default old code relies on"},
}

// addColumn is one ADD COLUMN clause, up to the next comma or semicolon.
var (
	addColumn  = regexp.MustCompile(`(?is)\bADD\s+COLUMN\b[^,;]*`)
	notNull    = regexp.MustCompile(`(?is)\bNOT\s+NULL\b`)
	hasDefault = regexp.MustCompile(`(?is)\bDEFAULT\b`)
)

// comments strips -- line comments so that prose cannot trip the check.
var comments = regexp.MustCompile(`--[^\n]*`)

// Violations returns why the SQL of a migration breaks the previous release's code; none for an
// expand-only migration.
func Violations(sql string) []string {
	body := comments.ReplaceAllString(sql, "")
	var out []string
	for _, c := range contract {
		if m := c.re.FindString(body); m != "" {
			out = append(out, c.reason+": "+strings.Join(strings.Fields(m), " "))
		}
	}
	for _, clause := range addColumn.FindAllString(body, -1) {
		if notNull.MatchString(clause) && !hasDefault.MatchString(clause) {
			out = append(out, "adds a NOT NULL column without a default, old code's inserts fail: "+strings.Join(strings.Fields(clause), " "))
		}
	}
	return out
}
