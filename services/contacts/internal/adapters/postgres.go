// Package adapters stores contacts, groups and memberships in PostgreSQL (schema "contacts") and
// writes events to the transactional outbox in the same transactions.
package adapters

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"

	"github.com/customertext/webhooks/libs/event"
	"github.com/customertext/webhooks/libs/outbox"
	"github.com/customertext/webhooks/libs/postgres"
	"github.com/customertext/webhooks/services/contacts/internal/app"
	"github.com/customertext/webhooks/services/contacts/internal/domain"
)

// Schema is the contacts service's PostgreSQL schema.
const Schema = "contacts"

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate applies the contacts migrations and the outbox's.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	if err := postgres.Migrate(ctx, pool, Schema, migrations, "migrations"); err != nil {
		return fmt.Errorf("migrate contacts: %w", err)
	}
	if err := outbox.Migrate(ctx, pool, Schema); err != nil {
		return fmt.Errorf("migrate outbox: %w", err)
	}
	return nil
}

// Store implements app.Store on a pool whose search_path is Schema.
type Store struct {
	pool *pgxpool.Pool
}

// NewStore returns a Store on pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

var _ app.Store = (*Store)(nil)

// querier is what both the pool and a transaction offer.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// maxAttempts bounds how often InTx runs a transaction that PostgreSQL aborted as a deadlock
// victim or serialization failure.
const maxAttempts = 3

// InTx implements app.Store. A transaction aborted by a deadlock (two transactions creating the
// same new groups in opposite orders) is retried from the start, so fn must be safe to re-run.
func (s *Store) InTx(ctx context.Context, fn func(tx app.Tx) error) error {
	var err error
	for range maxAttempts {
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			t := &Tx{tx: tx}
			if err := fn(t); err != nil {
				return err
			}
			// The transaction's events go to the outbox in one statement, just before commit.
			return outbox.AddMany(ctx, tx, Schema, t.events)
		})
		if !retryable(err) {
			return err
		}
	}
	return err
}

func retryable(err error) bool {
	var pgErr interface{ SQLState() string }
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.SQLState() {
	case "40P01", "40001": // deadlock_detected, serialization_failure
		return true
	}
	return false
}

// contactColumns selects a contact with its group names sorted case-insensitively.
const contactColumns = `c.id, c.account_id, c.first_name, c.last_name, c.phone, c.email, c.opted_out,
	c.create_time, c.update_time,
	COALESCE((SELECT array_agg(g.name ORDER BY lower(g.name), g.name) FROM memberships m
		JOIN groups g ON g.account_id = m.account_id AND g.id = m.group_id
		WHERE m.account_id = c.account_id AND m.contact_id = c.id), '{}')`

func scanContact(row pgx.CollectableRow) (domain.Contact, error) {
	var c domain.Contact
	err := row.Scan(&c.ID, &c.AccountID, &c.FirstName, &c.LastName, &c.Phone, &c.Email, &c.OptedOut,
		&c.CreateTime, &c.UpdateTime, &c.Groups)
	c.CreateTime, c.UpdateTime = c.CreateTime.UTC(), c.UpdateTime.UTC()
	return c, err
}

func queryOne(ctx context.Context, q querier, sql string, args ...any) (domain.Contact, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return domain.Contact{}, fmt.Errorf("query contact: %w", err)
	}
	c, err := pgx.CollectExactlyOneRow(rows, scanContact)
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.Contact{}, domain.ErrNotFound
	}
	if err != nil {
		return domain.Contact{}, fmt.Errorf("read contact: %w", err)
	}
	return c, nil
}

// Get implements app.Store.
func (s *Store) Get(ctx context.Context, accountID, id string) (domain.Contact, error) {
	return queryOne(ctx, s.pool, `SELECT `+contactColumns+` FROM contacts c WHERE c.account_id = $1 AND c.id = $2`, accountID, id)
}

// GetByPhone implements app.Store.
func (s *Store) GetByPhone(ctx context.Context, accountID, phone string) (domain.Contact, error) {
	return queryOne(ctx, s.pool, `SELECT `+contactColumns+` FROM contacts c WHERE c.account_id = $1 AND c.phone = $2`, accountID, phone)
}

// List implements app.Store.
func (s *Store) List(ctx context.Context, accountID, group, afterID string, limit int) ([]domain.Contact, error) {
	sql := `SELECT ` + contactColumns + ` FROM contacts c WHERE c.account_id = $1 AND c.id > $2`
	args := []any{accountID, afterID, limit}
	if group != "" {
		sql += ` AND EXISTS (SELECT 1 FROM memberships m JOIN groups g ON g.account_id = m.account_id AND g.id = m.group_id
			WHERE m.account_id = c.account_id AND m.contact_id = c.id AND lower(g.name) = lower($4))`
		args = append(args, group)
	}
	sql += ` ORDER BY c.id LIMIT $3`
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("list contacts: %w", err)
	}
	cs, err := pgx.CollectRows(rows, scanContact)
	if err != nil {
		return nil, fmt.Errorf("read contacts: %w", err)
	}
	return cs, nil
}

// ListGroups implements app.Store.
func (s *Store) ListGroups(ctx context.Context, accountID string) ([]domain.Group, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, name FROM groups WHERE account_id = $1 ORDER BY lower(name), name`, accountID)
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	gs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Group, error) {
		var g domain.Group
		return g, r.Scan(&g.ID, &g.Name)
	})
	if err != nil {
		return nil, fmt.Errorf("read groups: %w", err)
	}
	return gs, nil
}

// Tx implements app.Tx on a pgx transaction.
type Tx struct {
	tx pgx.Tx
	// groups caches groups by account and lower-case name for this transaction.
	groups map[string]domain.Group
	// groupsLocked records the accounts whose group-creation lock this transaction holds.
	groupsLocked map[string]bool
	// events wait here until the transaction is about to commit (AddEvent).
	events []outbox.Event
}

var _ app.Tx = (*Tx)(nil)

// Insert implements app.Tx. Groups are resolved first so that the contact and its memberships
// are written in one statement (one round trip per imported row).
func (t *Tx) Insert(ctx context.Context, c domain.Contact) (domain.Contact, error) {
	gs, err := t.ensureGroups(ctx, c.AccountID, c.Groups)
	if err != nil {
		return domain.Contact{}, err
	}
	var inserted int
	err = t.tx.QueryRow(ctx, `WITH c AS (
			INSERT INTO contacts (account_id, id, first_name, last_name, phone, email, opted_out, create_time, update_time)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (account_id, phone) DO NOTHING RETURNING id),
		m AS (
			INSERT INTO memberships (account_id, contact_id, group_id) SELECT $1, c.id, g FROM c, unnest($10::text[]) g)
		SELECT count(*) FROM c`,
		c.AccountID, c.ID, c.FirstName, c.LastName, c.Phone, c.Email, c.OptedOut, c.CreateTime, c.UpdateTime,
		groupIDs(gs)).Scan(&inserted)
	if err != nil {
		return domain.Contact{}, fmt.Errorf("insert contact: %w", err)
	}
	if inserted == 0 {
		return domain.Contact{}, domain.ErrDuplicatePhone
	}
	c.Groups = groupNames(gs)
	return c, nil
}

// ExistingPhones implements app.Tx.
func (t *Tx) ExistingPhones(ctx context.Context, accountID string, phones []string) (map[string]bool, error) {
	rows, err := t.tx.Query(ctx, `SELECT phone FROM contacts WHERE account_id = $1 AND phone = ANY($2)`, accountID, phones)
	if err != nil {
		return nil, fmt.Errorf("find existing phones: %w", err)
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("find existing phones: %w", err)
	}
	m := make(map[string]bool, len(found))
	for _, p := range found {
		m[p] = true
	}
	return m, nil
}

// GetForUpdate implements app.Tx.
func (t *Tx) GetForUpdate(ctx context.Context, accountID, id string) (domain.Contact, error) {
	return queryOne(ctx, t.tx, `SELECT `+contactColumns+` FROM contacts c WHERE c.account_id = $1 AND c.id = $2 FOR UPDATE`, accountID, id)
}

// Update implements app.Tx.
func (t *Tx) Update(ctx context.Context, c domain.Contact) (domain.Contact, error) {
	tag, err := t.tx.Exec(ctx, `UPDATE contacts SET first_name = $3, last_name = $4, phone = $5, email = $6,
		opted_out = $7, update_time = $8 WHERE account_id = $1 AND id = $2`,
		c.AccountID, c.ID, c.FirstName, c.LastName, c.Phone, c.Email, c.OptedOut, c.UpdateTime)
	if postgres.IsUniqueViolation(err) {
		return domain.Contact{}, domain.ErrDuplicatePhone
	}
	if err != nil {
		return domain.Contact{}, fmt.Errorf("update contact: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return domain.Contact{}, domain.ErrNotFound
	}
	gs, err := t.ensureGroups(ctx, c.AccountID, c.Groups)
	if err != nil {
		return domain.Contact{}, err
	}
	ids := groupIDs(gs)
	if _, err := t.tx.Exec(ctx, `DELETE FROM memberships WHERE account_id = $1 AND contact_id = $2 AND NOT group_id = ANY($3)`,
		c.AccountID, c.ID, ids); err != nil {
		return domain.Contact{}, fmt.Errorf("remove memberships: %w", err)
	}
	if _, err := t.tx.Exec(ctx, `INSERT INTO memberships (account_id, contact_id, group_id)
		SELECT $1, $2, unnest($3::text[]) ON CONFLICT DO NOTHING`, c.AccountID, c.ID, ids); err != nil {
		return domain.Contact{}, fmt.Errorf("add memberships: %w", err)
	}
	c.Groups = groupNames(gs)
	return c, nil
}

// ensureGroups returns the named groups with their stored spelling, creating the missing ones;
// they are cached for the rest of the transaction (an import names the same groups on many rows).
//
// Existing groups are only read, never locked. Creating a group first takes a per-account
// transaction-scoped advisory lock, so at most one transaction per account holds uncommitted new
// groups: two transactions creating the same new groups in opposite orders would otherwise wait
// for each other's uncommitted rows and deadlock.
func (t *Tx) ensureGroups(ctx context.Context, accountID string, names []string) ([]domain.Group, error) {
	gs := make([]domain.Group, 0, len(names))
	for _, name := range names {
		key := accountID + "\x00" + strings.ToLower(name)
		if g, ok := t.groups[key]; ok {
			gs = append(gs, g)
			continue
		}
		g, err := t.group(ctx, accountID, name)
		if errors.Is(err, pgx.ErrNoRows) {
			g, err = t.createGroup(ctx, accountID, name)
		}
		if err != nil {
			return nil, fmt.Errorf("ensure group: %w", err)
		}
		if t.groups == nil {
			t.groups = make(map[string]domain.Group)
		}
		t.groups[key] = g
		gs = append(gs, g)
	}
	return gs, nil
}

func (t *Tx) group(ctx context.Context, accountID, name string) (domain.Group, error) {
	var g domain.Group
	err := t.tx.QueryRow(ctx, `SELECT id, name FROM groups WHERE account_id = $1 AND lower(name) = lower($2)`,
		accountID, name).Scan(&g.ID, &g.Name)
	return g, err
}

func (t *Tx) createGroup(ctx context.Context, accountID, name string) (domain.Group, error) {
	if !t.groupsLocked[accountID] {
		if _, err := t.tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('contacts.groups:' || $1))`, accountID); err != nil {
			return domain.Group{}, fmt.Errorf("lock groups: %w", err)
		}
		if t.groupsLocked == nil {
			t.groupsLocked = make(map[string]bool)
		}
		t.groupsLocked[accountID] = true
	}
	gid, err := newGroupID()
	if err != nil {
		return domain.Group{}, err
	}
	tag, err := t.tx.Exec(ctx, `INSERT INTO groups (account_id, id, name) VALUES ($1, $2, $3)
		ON CONFLICT (account_id, lower(name)) DO NOTHING`, accountID, gid, name)
	if err != nil {
		return domain.Group{}, err
	}
	if tag.RowsAffected() == 0 {
		// Committed by another transaction since we looked (CreateGroup takes no lock); this new
		// statement sees it.
		return t.group(ctx, accountID, name)
	}
	return domain.Group{ID: gid, Name: name}, nil
}

func groupIDs(gs []domain.Group) []string {
	ids := make([]string, len(gs))
	for i, g := range gs {
		ids[i] = g.ID
	}
	return ids
}

func groupNames(gs []domain.Group) []string {
	names := make([]string, len(gs))
	for i, g := range gs {
		names[i] = g.Name
	}
	return domain.SortGroups(names)
}

// AddGroups implements app.Tx.
func (t *Tx) AddGroups(ctx context.Context, accountID, contactID string, names []string) ([]string, error) {
	gs, err := t.ensureGroups(ctx, accountID, names)
	if err != nil {
		return nil, err
	}
	rows, err := t.tx.Query(ctx, `INSERT INTO memberships (account_id, contact_id, group_id)
		SELECT $1, $2, unnest($3::text[]) ON CONFLICT DO NOTHING RETURNING group_id`, accountID, contactID, groupIDs(gs))
	if err != nil {
		return nil, fmt.Errorf("add memberships: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("add memberships: %w", err)
	}
	var added []domain.Group
	for _, g := range gs {
		if slices.Contains(ids, g.ID) {
			added = append(added, g)
		}
	}
	if len(added) == 0 {
		return nil, nil
	}
	return groupNames(added), nil
}

// Delete implements app.Tx.
func (t *Tx) Delete(ctx context.Context, accountID, id string) error {
	tag, err := t.tx.Exec(ctx, `DELETE FROM contacts WHERE account_id = $1 AND id = $2`, accountID, id)
	if err != nil {
		return fmt.Errorf("delete contact: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return domain.ErrNotFound
	}
	return nil
}

// CreateGroup implements app.Tx.
func (t *Tx) CreateGroup(ctx context.Context, accountID string, g domain.Group) error {
	tag, err := t.tx.Exec(ctx, `INSERT INTO groups (account_id, id, name) VALUES ($1, $2, $3)
		ON CONFLICT (account_id, lower(name)) DO NOTHING`, accountID, g.ID, g.Name)
	if err != nil {
		return fmt.Errorf("create group: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return domain.ErrGroupExists
	}
	return nil
}

// AddEvent implements app.Tx. The event is written with the transaction's others when it is
// about to commit (an import's thousands of events in one statement, not a round trip each).
func (t *Tx) AddEvent(_ context.Context, env event.Envelope, headers nats.Header) error {
	t.events = append(t.events, outbox.Event{Envelope: env, Headers: headers})
	return nil
}
