package main

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	webhooksv1 "github.com/customertext/webhooks/libs/gen/customertext/webhooks/v1"
	"github.com/customertext/webhooks/libs/signing"
	"github.com/customertext/webhooks/libs/streams"
)

func byAttempt(recs []*webhooksv1.AttemptRecord) []*webhooksv1.AttemptRecord {
	out := slices.Clone(recs)
	slices.SortFunc(out, func(a, b *webhooksv1.AttemptRecord) int { return int(a.GetAttempt() - b.GetAttempt()) })
	return out
}

func outcomes(recs []*webhooksv1.AttemptRecord) []webhooksv1.Outcome {
	var out []webhooksv1.Outcome
	for _, r := range recs {
		out = append(out, r.GetOutcome())
	}
	return out
}

func TestRetries(t *testing.T) {
	t.Parallel()
	const (
		R = webhooksv1.Outcome_OUTCOME_RETRYING
		S = webhooksv1.Outcome_OUTCOME_SUCCEEDED
		D = webhooksv1.Outcome_OUTCOME_DEAD_LETTERED
	)
	tests := []struct {
		name     string
		schedule string
		respond  func(n int, w http.Header) int
		want     []webhooksv1.Outcome
		wantGone bool
		// minDelay and maxDelay bound next_retry_time - attempt_time of the first record.
		minDelay, maxDelay time.Duration
	}{
		{
			name:     "fails twice then succeeds",
			schedule: "0s,300ms,300ms,300ms",
			respond: func(n int, _ http.Header) int {
				if n <= 2 {
					return http.StatusInternalServerError
				}
				return http.StatusOK
			},
			want:     []webhooksv1.Outcome{R, R, S},
			minDelay: 200 * time.Millisecond, maxDelay: 10 * time.Second,
		},
		{
			name:     "dead-lettered after the last attempt",
			schedule: "0s,200ms,200ms,200ms",
			respond:  func(int, http.Header) int { return http.StatusBadRequest },
			want:     []webhooksv1.Outcome{R, R, R, D},
			minDelay: 100 * time.Millisecond, maxDelay: 10 * time.Second,
		},
		{
			name:     "410 Gone stops at once",
			schedule: "0s,200ms,200ms",
			respond:  func(int, http.Header) int { return http.StatusGone },
			want:     []webhooksv1.Outcome{D},
			wantGone: true,
		},
		{
			name:     "Retry-After on 429 replaces the schedule",
			schedule: "0s,1h",
			respond: func(n int, h http.Header) int {
				if n == 1 {
					h.Set("Retry-After", "1")
					return http.StatusTooManyRequests
				}
				return http.StatusOK
			},
			want:     []webhooksv1.Outcome{R, S},
			minDelay: time.Second, maxDelay: time.Minute,
		},
		{
			name:     "Retry-After 0 falls back to the schedule",
			schedule: "0s,1h",
			respond: func(n int, h http.Header) int {
				if n == 1 {
					h.Set("Retry-After", "0")
					return http.StatusServiceUnavailable
				}
				return http.StatusOK
			},
			// Retry-After 0 is "absent": the schedule applies (1h ±20 %), so only one attempt.
			want:     []webhooksv1.Outcome{R},
			minDelay: 48 * time.Minute, maxDelay: 72 * time.Minute,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, url := startNATS(t)
			_, js := connectJS(t, url)
			rcv := startReceiverH(t, tc.respond)
			cfg, sec := webhookConfig(t, "wh_1", "acc_1", rcv.srv.URL, "new_contact")
			cs := startConfigServer(t, cfg)
			attempts := newAttemptReader(t, js)
			startDispatcher(t, dispatcherEnv(url, cs.addr, "RETRY_SCHEDULE", tc.schedule))
			ev := publishEvent(t, js, "acc_1", newContact("c1"))
			body, _ := ev.Marshal()

			var recs []*webhooksv1.AttemptRecord
			eventually(t, 60*time.Second, "every attempt recorded", func() bool {
				recs = attempts.poll(t)
				return len(recs) >= len(tc.want)
			})
			recs = byAttempt(recs)
			if got := outcomes(recs); !slices.Equal(got, tc.want) {
				t.Fatalf("outcomes: got %v, want %v", got, tc.want)
			}
			for i, r := range recs {
				if r.GetAttempt() != int32(i+1) {
					t.Errorf("record %d: attempt got %d, want %d", i, r.GetAttempt(), i+1)
				}
				last := i == len(recs)-1
				wantPayload := i == 0 || r.GetOutcome() == webhooksv1.Outcome_OUTCOME_DEAD_LETTERED
				if got := len(r.GetPayload()) > 0; got != wantPayload {
					t.Errorf("record %d: payload present got %v, want %v", i, got, wantPayload)
				}
				if wantPayload && string(r.GetPayload()) != string(body) {
					t.Errorf("record %d: payload got %s, want %s", i, r.GetPayload(), body)
				}
				if got, want := r.GetNextRetryTime() != nil, r.GetOutcome() == webhooksv1.Outcome_OUTCOME_RETRYING; got != want {
					t.Errorf("record %d: next_retry_time set got %v, want %v", i, got, want)
				}
				if last && r.GetGone() != tc.wantGone {
					t.Errorf("record %d: gone got %v, want %v", i, r.GetGone(), tc.wantGone)
				}
			}
			if tc.maxDelay > 0 {
				d := recs[0].GetNextRetryTime().AsTime().Sub(recs[0].GetAttemptTime().AsTime())
				if d < tc.minDelay || d > tc.maxDelay {
					t.Errorf("first retry delay: got %s, want within [%s, %s]", d, tc.minDelay, tc.maxDelay)
				}
			}
			// The same webhook-id and a valid signature on every attempt.
			for i, r := range rcv.requests() {
				if got := r.Header.Get(signing.HeaderID); got != ev.EventID {
					t.Errorf("request %d: webhook-id got %s, want %s", i, got, ev.EventID)
				}
				if err := signing.Verify(sec, r.Header, r.Body, time.Now(), 5*time.Minute); err != nil {
					t.Errorf("request %d: %v", i, err)
				}
			}
			if got, want := rcv.count(), len(tc.want); got != want {
				t.Errorf("requests: got %d, want %d", got, want)
			}
			if tc.want[len(tc.want)-1] != webhooksv1.Outcome_OUTCOME_RETRYING {
				// Finished deliveries leave nothing behind: no job, no pending schedule.
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				s, err := js.Stream(ctx, streams.Deliveries)
				if err != nil {
					t.Fatal(err)
				}
				eventually(t, 30*time.Second, "DELIVERIES empty", func() bool {
					info, err := s.Info(ctx)
					return err == nil && info.State.Msgs == 0
				})
			}
		})
	}
}

// startReceiverH is startReceiver with access to the response headers.
func startReceiverH(t *testing.T, respond func(n int, h http.Header) int) *receiver {
	t.Helper()
	rc := startReceiver(t, nil)
	rc.mu.Lock()
	rc.respondW = respond
	rc.mu.Unlock()
	return rc
}
