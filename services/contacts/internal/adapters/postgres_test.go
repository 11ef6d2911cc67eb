package adapters

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/customertext/webhooks/libs/pgtest"
	"github.com/customertext/webhooks/libs/postgres"
	"github.com/customertext/webhooks/services/contacts/internal/app"
	"github.com/customertext/webhooks/services/contacts/internal/domain"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pool, err := postgres.Open(ctx, pgtest.NewDatabase(t), Schema, 8)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(pool.Close)
	if err := Migrate(ctx, pool); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	if err := Migrate(ctx, pool); err != nil {
		t.Fatalf("migrate twice: %v", err)
	}
	return NewStore(pool)
}

func contact(id, phone string, groups ...string) domain.Contact {
	now := time.Now().UTC().Truncate(time.Microsecond)
	return domain.Contact{ID: id, AccountID: "acct_1", Phone: phone, Groups: groups, CreateTime: now, UpdateTime: now}
}

// TestConcurrentGroupsInOppositeOrder runs transactions that create contacts naming the same
// groups in opposite orders at the same time; none may fail and each group exists once.
func TestConcurrentGroupsInOppositeOrder(t *testing.T) {
	s := newStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	names := []string{"alpha", "beta", "gamma", "delta"}
	const workers = 4
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			order := slices.Clone(names)
			if w%2 == 1 {
				slices.Reverse(order)
			}
			errs <- s.InTx(ctx, func(tx app.Tx) error {
				for i, g := range order {
					// One group per contact, so each transaction visits the groups in its order.
					if _, err := tx.Insert(ctx, contact(fmt.Sprintf("ct_%d_%d", w, i), fmt.Sprintf("+1555123%02d%02d", w, i), g)); err != nil {
						return err
					}
				}
				return nil
			})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("transaction failed: %v", err)
		}
	}
	gs, err := s.ListGroups(ctx, "acct_1")
	if err != nil {
		t.Fatalf("ListGroups: %v", err)
	}
	var got []string
	for _, g := range gs {
		got = append(got, g.Name)
	}
	if diff := cmp.Diff([]string{"alpha", "beta", "delta", "gamma"}, got); diff != "" {
		t.Errorf("groups mismatch (-want +got):\n%s", diff)
	}
	all, err := s.List(ctx, "acct_1", "", "", 100)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(all) != workers*len(names) {
		t.Errorf("%d contacts, want %d", len(all), workers*len(names))
	}
}

func TestStoreMemberships(t *testing.T) {
	s := newStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := contact("ct_1", "+15551234567", "Customers", "vip")
	if err := s.InTx(ctx, func(tx app.Tx) error { _, err := tx.Insert(ctx, c); return err }); err != nil {
		t.Fatalf("insert: %v", err)
	}
	t.Run("groups come back as stored", func(t *testing.T) {
		var got domain.Contact
		err := s.InTx(ctx, func(tx app.Tx) error {
			var err error
			got, err = tx.Insert(ctx, contact("ct_9", "+15559999999", "CUSTOMERS", "New"))
			return err
		})
		if err != nil {
			t.Fatalf("insert: %v", err)
		}
		if diff := cmp.Diff([]string{"Customers", "New"}, got.Groups); diff != "" {
			t.Errorf("groups mismatch (-want +got):\n%s", diff)
		}
	})
	tests := []struct {
		name   string
		groups []string
		want   []string
	}{
		{"replace with an overlap, other spellings keep the stored ones", []string{"CUSTOMERS", "new"}, []string{"Customers", "New"}},
		{"remove all", []string{}, []string{}},
		{"add back", []string{"vip"}, []string{"vip"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.InTx(ctx, func(tx app.Tx) error {
				cur, err := tx.GetForUpdate(ctx, "acct_1", "ct_1")
				if err != nil {
					return err
				}
				cur.Groups = tt.groups
				updated, err := tx.Update(ctx, cur)
				if err == nil && !cmp.Equal(updated.Groups, tt.want) {
					return fmt.Errorf("Update returned groups %v, want %v", updated.Groups, tt.want)
				}
				return err
			})
			if err != nil {
				t.Fatalf("update: %v", err)
			}
			got, err := s.Get(ctx, "acct_1", "ct_1")
			if err != nil {
				t.Fatalf("get: %v", err)
			}
			if diff := cmp.Diff(tt.want, got.Groups); diff != "" {
				t.Errorf("groups mismatch (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("duplicate phone leaves the transaction usable", func(t *testing.T) {
		err := s.InTx(ctx, func(tx app.Tx) error {
			if _, err := tx.Insert(ctx, contact("ct_2", "+15551234567")); err != domain.ErrDuplicatePhone {
				return fmt.Errorf("insert duplicate: got %v, want ErrDuplicatePhone", err)
			}
			_, err := tx.Insert(ctx, contact("ct_3", "+15551234568"))
			return err
		})
		if err != nil {
			t.Fatalf("InTx: %v", err)
		}
		if _, err := s.Get(ctx, "acct_1", "ct_3"); err != nil {
			t.Errorf("get ct_3: %v", err)
		}
	})
	t.Run("delete cascades memberships", func(t *testing.T) {
		if err := s.InTx(ctx, func(tx app.Tx) error { return tx.Delete(ctx, "acct_1", "ct_1") }); err != nil {
			t.Fatalf("delete: %v", err)
		}
		members, err := s.List(ctx, "acct_1", "vip", "", 10)
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		if len(members) != 0 {
			t.Errorf("vip has %d members after delete, want 0", len(members))
		}
	})
}
