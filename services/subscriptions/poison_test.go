package main

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	webhooksv1 "github.com/customertext/webhooks/libs/gen/customertext/webhooks/v1"
)

// TestAttemptLogTerminatesPoison: records whose ids break the identity rule (a delivery id is
// copied into a subject by a redelivery from the log) and messages that do not decode are
// dropped, counted by reason and never retried, while the good records of the same batch land.
func TestAttemptLogTerminatesPoison(t *testing.T) {
	e := newEnv(t)
	accountID, ctx := e.admin("Acme")
	id := e.createWebhook(ctx, validCreate()).GetWebhook().GetId()
	now := time.Now().UTC()
	good := record(accountID, id, "del_good", 1, webhooksv1.Outcome_OUTCOME_SUCCEEDED, now)
	dotted := record(accountID, id, "del_a.b", 1, webhooksv1.Outcome_OUTCOME_DEAD_LETTERED, now)
	long := record(accountID, id, "del_"+strings.Repeat("x", 5000), 1, webhooksv1.Outcome_OUTCOME_DEAD_LETTERED, now)
	e.publishBatch(t, good, dotted, long)
	if _, err := e.js.Publish(context.Background(), "attempts.x", []byte("\xff\xff not a record")); err != nil {
		t.Fatal(err)
	}
	metric := func(line string) float64 {
		resp, err := http.Get("http://" + e.addrs.Admin + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, line+" ") {
				v, _ := strconv.ParseFloat(strings.TrimPrefix(l, line+" "), 64)
				return v
			}
		}
		return -1
	}
	eventually(t, "poison counted", func() error {
		if metric(`subscriptions_attempt_records_invalid_total{reason="bad_id"}`) != 2 ||
			metric(`subscriptions_attempt_records_invalid_total{reason="undecodable"}`) != 1 {
			return errNotYet
		}
		return nil
	})
	if v := metric(`subscriptions_attempt_records_invalid_total{reason="missing_field"}`); v != 0 {
		t.Errorf("missing_field series: got %v, want 0 (present from the start)", v)
	}
	var ids []string
	rows, err := e.db().Query(context.Background(), "SELECT delivery_id FROM subscriptions.delivery_attempts")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, d)
	}
	if len(ids) != 1 || ids[0] != "del_good" {
		t.Errorf("rows written: got %v, want only del_good", ids)
	}
	// Nothing waits for a retry.
	cons, err := e.js.Consumer(context.Background(), "ATTEMPTS", "attempt-log")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "attempt-log consumer settled", func() error {
		ci, err := cons.Info(context.Background())
		if err != nil {
			return err
		}
		if ci.NumAckPending != 0 || ci.NumPending != 0 || ci.NumRedelivered != 0 {
			return errNotYet
		}
		return nil
	})
	if ci, _ := cons.Info(context.Background()); ci.Config.MaxDeliver <= 0 {
		t.Errorf("attempt-log MaxDeliver: got %d, want a bound", ci.Config.MaxDeliver)
	}
}
