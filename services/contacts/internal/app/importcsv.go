package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/customertext/webhooks/services/contacts/internal/domain"
)

// ImportResult reports an import: how many contacts were created and each rejected row.
type ImportResult struct {
	Imported int
	Errors   []domain.RowError
}

// ImportContacts creates a contact for each good row of a CSV (see domain.ParseImport), each
// emitting new_contact with source "import". Bad rows, and rows whose phone the account already
// has ("duplicate phone"), are reported by line and skipped; the good rows are kept. The import
// commits as one transaction, so a failure of the database imports nothing.
func (s *Service) ImportContacts(ctx context.Context, accountID string, csv []byte, region string) (ImportResult, error) {
	accountID, err := domain.NewAccountID(accountID)
	if err != nil {
		return ImportResult{}, err
	}
	if region, err = domain.NewRegion(region); err != nil {
		return ImportResult{}, err
	}
	rows, bad, err := domain.ParseImport(csv, region)
	if err != nil {
		return ImportResult{}, err
	}
	var res ImportResult
	err = s.store.InTx(ctx, func(tx Tx) error {
		res = ImportResult{}
		dups := []domain.RowError(nil)
		phones := make([]string, len(rows))
		for i, row := range rows {
			phones[i] = row.Fields.Phone
		}
		// Known duplicates are skipped before anything is written for them (such as their
		// groups); Insert still detects one that a concurrent transaction just added.
		existing, err := tx.ExistingPhones(ctx, accountID, phones)
		if err != nil {
			return err
		}
		for _, row := range rows {
			if existing[row.Fields.Phone] {
				dups = append(dups, domain.RowError{Line: row.Line, Reason: "duplicate phone"})
				continue
			}
			c, err := s.newContact(accountID, row.Fields, false)
			if err != nil {
				return err
			}
			_, err = s.insert(ctx, tx, c, domain.SourceImport, "")
			if errors.Is(err, domain.ErrDuplicatePhone) {
				dups = append(dups, domain.RowError{Line: row.Line, Reason: "duplicate phone"})
				continue
			}
			if err != nil {
				return fmt.Errorf("line %d: %w", row.Line, err)
			}
			res.Imported++
		}
		res.Errors = mergeByLine(bad, dups)
		return nil
	})
	if err != nil {
		return ImportResult{}, fmt.Errorf("import contacts: %w", err)
	}
	s.metrics.imported.Add(float64(res.Imported))
	s.metrics.created.WithLabelValues(string(domain.SourceImport)).Add(float64(res.Imported))
	s.metrics.importRowErrs.Add(float64(len(res.Errors)))
	s.logger.InfoContext(ctx, "contacts imported", "account_id", accountID, "imported", res.Imported, "rejected", len(res.Errors))
	return res, nil
}

// mergeByLine merges two lists of row errors, each sorted by line, into one sorted list.
func mergeByLine(a, b []domain.RowError) []domain.RowError {
	out := make([]domain.RowError, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if a[0].Line <= b[0].Line {
			out, a = append(out, a[0]), a[1:]
		} else {
			out, b = append(out, b[0]), b[1:]
		}
	}
	return append(append(out, a...), b...)
}
