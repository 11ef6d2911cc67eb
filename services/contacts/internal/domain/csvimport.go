package domain

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Import limits.
const (
	// MaxImportBytes bounds the CSV of one import request.
	MaxImportBytes = 3 << 20 // leaves room under gRPC's default 4 MiB message limit
	// MaxImportRows bounds the data rows of one import request.
	MaxImportRows = 50_000
)

// ImportRow is one good row of an import, with its validated fields.
type ImportRow struct {
	Line   int
	Fields Fields
}

// RowError reports one rejected row of an import.
type RowError struct {
	// Line is 1-based; the header is line 1.
	Line   int
	Reason string
}

// The columns an import understands; others are ignored.
var importColumns = map[string]bool{"phone": true, "first_name": true, "last_name": true, "email": true, "groups": true}

// ParseImport reads an import CSV: a header row naming the columns (phone required; first_name,
// last_name, email, groups optional, in any order, case-insensitive; other columns ignored) and
// one contact per row, groups separated by ";". Bad rows are reported with their line and reason
// and the good rows returned; a phone that appears twice in the file is a "duplicate phone" error
// on its later rows. An error is returned only when the file as a whole is unusable.
func ParseImport(data []byte, region string) ([]ImportRow, []RowError, error) {
	if len(data) == 0 {
		return nil, nil, Invalid("csv", "is empty (want a header row with at least a phone column)")
	}
	if len(data) > MaxImportBytes {
		return nil, nil, Invalid("csv", "is larger than %d bytes", MaxImportBytes)
	}
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	r.ReuseRecord = true

	header, err := r.Read()
	if err != nil {
		return nil, nil, Invalid("csv", "cannot read the header row: %v", err)
	}
	cols := make(map[string]int, len(header))
	for i, h := range header {
		name := strings.ToLower(strings.TrimSpace(h))
		if !importColumns[name] {
			continue
		}
		if _, dup := cols[name]; dup {
			return nil, nil, Invalid("csv", "header names column %q twice", name)
		}
		cols[name] = i
	}
	if _, ok := cols["phone"]; !ok {
		return nil, nil, Invalid("csv", "header has no phone column (want phone, first_name, last_name, email, groups)")
	}

	var rows []ImportRow
	var bad []RowError
	seen := make(map[string]int)
	for n := 0; ; n++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if n >= MaxImportRows {
			return nil, nil, Invalid("csv", "has more than %d rows", MaxImportRows)
		}
		if err != nil {
			var pe *csv.ParseError
			if !errors.As(err, &pe) {
				return nil, nil, Invalid("csv", "%v", err)
			}
			bad = append(bad, RowError{Line: pe.StartLine, Reason: "malformed CSV: " + pe.Err.Error()})
			continue
		}
		line, _ := r.FieldPos(0)
		get := func(col string) string {
			if i, ok := cols[col]; ok && i < len(rec) {
				return rec[i]
			}
			return ""
		}
		in := ContactInput{
			FirstName: get("first_name"),
			LastName:  get("last_name"),
			Phone:     get("phone"),
			Email:     get("email"),
		}
		if g := strings.TrimSpace(get("groups")); g != "" {
			for _, name := range strings.Split(g, ";") {
				if name = strings.TrimSpace(name); name != "" {
					in.Groups = append(in.Groups, name)
				}
			}
		}
		f, err := NewFields(in, region)
		if err != nil {
			bad = append(bad, RowError{Line: line, Reason: err.Error()})
			continue
		}
		if first, dup := seen[f.Phone]; dup {
			bad = append(bad, RowError{Line: line, Reason: fmt.Sprintf("duplicate phone (same as line %d)", first)})
			continue
		}
		seen[f.Phone] = line
		rows = append(rows, ImportRow{Line: line, Fields: f})
	}
	return rows, bad, nil
}
