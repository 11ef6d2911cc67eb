package pgstore

import (
	"context"
	"testing"
	"time"

	"github.com/customertext/webhooks/services/subscriptions/internal/domain"
)

// TestDeferralMovesTheAnnouncedRetry: a deferral record moves the retrying attempt's
// next_retry_at forward (never back), adds no attempt and leaves other rows alone.
func TestDeferralMovesTheAnnouncedRetry(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	at := time.Now().UTC().Truncate(time.Microsecond).Add(123 * time.Nanosecond)
	retrying := attempt("a_retry", at)
	retrying.Outcome, retrying.NextRetryTime = domain.OutcomeRetrying, at.Add(5*time.Second)
	dead := attempt("a_dead", at)
	if _, err := s.WriteAttempts(ctx, []domain.Attempt{retrying, dead}, 0); err != nil {
		t.Fatal(err)
	}
	defer1 := domain.Attempt{ID: retrying.ID, DeliveryID: retrying.DeliveryID, Time: at, Deferral: true,
		Outcome: domain.OutcomeRetrying, NextRetryTime: at.Add(40 * time.Second)}
	earlier := defer1
	earlier.NextRetryTime = at.Add(20 * time.Second)
	onDead := defer1
	onDead.ID, onDead.DeliveryID = dead.ID, dead.DeliveryID
	for _, batch := range [][]domain.Attempt{{defer1}, {earlier, onDead}} {
		if _, err := s.WriteAttempts(ctx, batch, 0); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.ListAttempts(ctx, domain.AttemptFilter{AccountID: "acc_1"}, time.Time{}, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d attempts, want 2 (a deferral is not an attempt)", len(got))
	}
	for _, a := range got {
		switch a.ID {
		case retrying.ID:
			if want := at.Add(40 * time.Second); !a.NextRetryTime.Equal(want.Truncate(time.Microsecond)) {
				t.Errorf("retrying attempt's next retry: got %s, want %s (the latest deferral, never moved back)", a.NextRetryTime, want)
			}
		case dead.ID:
			if !a.NextRetryTime.IsZero() {
				t.Errorf("dead-lettered attempt's next retry: got %s, want none", a.NextRetryTime)
			}
		}
	}
	d, err := s.GetDelivery(ctx, "acc_1", retrying.DeliveryID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Attempts != 1 {
		t.Errorf("delivery attempts: got %d, want 1", d.Attempts)
	}
}
