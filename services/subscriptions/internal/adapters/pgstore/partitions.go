package pgstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/customertext/webhooks/services/subscriptions/internal/domain"
)

const partitionPrefix = "delivery_attempts_p"

func day(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

func partitionName(d time.Time) string { return partitionPrefix + d.Format("20060102") }

// EnsurePartitions creates the daily partitions of delivery_attempts covering [from, to].
func (s *Store) EnsurePartitions(ctx context.Context, from, to time.Time) error {
	for d := day(from); !d.After(day(to)); d = d.AddDate(0, 0, 1) {
		if err := s.ensurePartition(ctx, d); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) ensurePartitionsFor(ctx context.Context, batch []domain.Attempt) error {
	seen := map[time.Time]bool{}
	for _, a := range batch {
		d := day(a.Time)
		if seen[d] {
			continue
		}
		seen[d] = true
		if err := s.ensurePartition(ctx, d); err != nil {
			return err
		}
	}
	return nil
}

// ensurePartition checks for the partition before creating it, so the common case takes no lock
// on the parent table.
func (s *Store) ensurePartition(ctx context.Context, d time.Time) error {
	name := partitionName(d)
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, name).Scan(&exists); err != nil {
		return fmt.Errorf("check partition %s: %w", name, err)
	}
	if exists {
		return nil
	}
	ident := pgx.Identifier{name}.Sanitize()
	_, err := s.pool.Exec(ctx, fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s PARTITION OF delivery_attempts
		FOR VALUES FROM ('%s') TO ('%s')`, ident, d.Format(time.RFC3339), d.AddDate(0, 0, 1).Format(time.RFC3339)))
	if err != nil {
		// Another replica may have created it between the check and the create.
		if err2 := s.pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, name).Scan(&exists); err2 == nil && exists {
			return nil
		}
		return fmt.Errorf("create partition %s: %w", name, err)
	}
	return nil
}

// DropPartitionsBefore drops the daily partitions that end at or before cutoff's day and
// deliveries last attempted before cutoff. It returns the dropped partition names.
func (s *Store) DropPartitionsBefore(ctx context.Context, cutoff time.Time) ([]string, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT c.relname FROM pg_inherits i
		JOIN pg_class c ON c.oid = i.inhrelid
		JOIN pg_class p ON p.oid = i.inhparent
		JOIN pg_namespace n ON n.oid = p.relnamespace
		WHERE p.relname = 'delivery_attempts' AND n.nspname = current_schema()`)
	if err != nil {
		return nil, fmt.Errorf("list partitions: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list partitions: %w", err)
	}
	limit := partitionName(day(cutoff))
	var dropped []string
	for _, name := range names {
		if !strings.HasPrefix(name, partitionPrefix) || len(name) != len(limit) || name >= limit {
			continue
		}
		if _, err := s.pool.Exec(ctx, `DROP TABLE IF EXISTS `+pgx.Identifier{name}.Sanitize()); err != nil {
			return dropped, fmt.Errorf("drop partition %s: %w", name, err)
		}
		dropped = append(dropped, name)
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM deliveries WHERE last_attempt_at < $1`, cutoff); err != nil {
		return dropped, fmt.Errorf("delete expired deliveries: %w", err)
	}
	return dropped, nil
}
