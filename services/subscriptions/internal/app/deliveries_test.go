package app

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/customertext/webhooks/libs/delivery"
	"github.com/customertext/webhooks/services/subscriptions/internal/adapters/pgstore"
	"github.com/customertext/webhooks/services/subscriptions/internal/domain"
)

// fakeStore records WriteAttempts calls; other methods are not used by these tests.
type fakeStore struct {
	Store
	written  []domain.Attempt
	disabled []pgstore.Disabled
}

func (f *fakeStore) WriteAttempts(_ context.Context, batch []domain.Attempt, _ time.Duration) ([]pgstore.Disabled, error) {
	f.written = append(f.written, batch...)
	return f.disabled, nil
}

type fakeNotifier struct{ ids []string }

func (f *fakeNotifier) WebhookChanged(_ context.Context, id string) error {
	f.ids = append(f.ids, id)
	return nil
}

func TestRecordAttempts(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	store := &fakeStore{disabled: []pgstore.Disabled{{WebhookID: "wh_1", Kind: "gone"}}}
	notifier := &fakeNotifier{}
	metrics, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	svc := New(store, notifier, nil, nil, nil, Config{Retention: 720 * time.Hour}, metrics, slog.New(slog.NewTextHandler(io.Discard, nil)))
	svc.now = func() time.Time { return now }
	batch := []domain.Attempt{
		{ID: "expired", Time: now.Add(-721 * time.Hour)},
		{ID: "kept", Time: now.Add(-time.Hour), ResponseBody: "a\x00b\xffc" + strings.Repeat("x", delivery.MaxResponseExcerpt), Error: "e\x00"},
	}
	if err := svc.RecordAttempts(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	if len(store.written) != 1 || store.written[0].ID != "kept" {
		t.Fatalf("written: got %v, want only the record inside the retention", store.written)
	}
	body := store.written[0].ResponseBody
	if strings.ContainsRune(body, 0) || !strings.HasPrefix(body, "ab\uFFFDc") || len(body) > delivery.MaxResponseExcerpt || !utf8.ValidString(body) {
		t.Errorf("sanitised body: got %q… (%d bytes)", body[:8], len(body))
	}
	if store.written[0].Error != "e" {
		t.Errorf("sanitised error: got %q, want %q", store.written[0].Error, "e")
	}
	if diff := cmp.Diff([]string{"wh_1"}, notifier.ids); diff != "" {
		t.Errorf("notified (-want +got):\n%s", diff)
	}
	if got := testutil.ToFloat64(metrics.AutoDisabled.WithLabelValues("gone")); got != 1 {
		t.Errorf("auto-disabled{gone}: got %v, want 1", got)
	}
}

func FuzzSanitize(f *testing.F) {
	f.Add("ok")
	f.Add("a\x00\xff" + strings.Repeat("é", 3000))
	f.Fuzz(func(t *testing.T, s string) {
		got := Sanitize(s)
		if !utf8.ValidString(got) || strings.ContainsRune(got, 0) || len(got) > delivery.MaxResponseExcerpt {
			t.Fatalf("Sanitize(%q) = %q: want valid UTF-8 without NUL of at most %d bytes", s, got, delivery.MaxResponseExcerpt)
		}
	})
}
