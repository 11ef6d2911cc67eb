package chaos

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	"github.com/customertext/webhooks/libs/signing"
)

func post(t *testing.T, url string, secrets []signing.Secret, id string, body []byte) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	signing.Headers(req.Header, secrets, id, time.Now(), body)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestLedgerRecordsVerifiedDeliveries: only correctly signed requests answered 2xx count, and the
// tally's two kinds of duplicates are told apart by webhook-id.
func TestLedgerRecordsVerifiedDeliveries(t *testing.T) {
	l, err := StartLedger()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	e := l.Endpoint("a")
	secret, whsec, err := signing.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SetSecret(whsec); err != nil {
		t.Fatal(err)
	}
	other, _, _ := signing.NewSecret()
	body := []byte(`{"event":"new_contact","event_id":"ev1","data":{"contact_id":"c1"}}`)

	if got := post(t, e.URL, []signing.Secret{other}, "del_1", body); got != http.StatusUnauthorized {
		t.Errorf("wrong secret: got %d, want 401", got)
	}
	e.SetMode(ModeFail)
	if got := post(t, e.URL, []signing.Secret{secret}, "del_1", body); got != http.StatusInternalServerError {
		t.Errorf("failing endpoint: got %d, want 500", got)
	}
	if e.Delivered("new_contact/c1") {
		t.Fatal("a 500 answer counted as delivered")
	}
	e.SetMode(ModeOK)
	for _, id := range []string{"del_1", "del_1", "del_2"} {
		if got := post(t, e.URL, []signing.Secret{secret}, id, body); got != http.StatusNoContent {
			t.Errorf("ok endpoint: got %d, want 204", got)
		}
	}
	s := e.Snapshot()
	if s.BadSig != 1 || s.Requests != 5 {
		t.Errorf("got %d bad signatures of %d requests, want 1 of 5", s.BadSig, s.Requests)
	}
	ids := s.Receipts["new_contact/c1"]
	if len(ids) != 2 || ids["del_1"] != 2 || ids["del_2"] != 1 {
		t.Errorf("receipts: got %v, want del_1 twice and del_2 once", ids)
	}
}

func TestLedgerHugeAnswerCountsOnceTheStatusIsOut(t *testing.T) {
	l, err := StartLedger()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	e := l.Endpoint("huge")
	secret, whsec, _ := signing.NewSecret()
	if err := e.SetSecret(whsec); err != nil {
		t.Fatal(err)
	}
	e.SetMode(ModeHuge)
	body := []byte(`{"event":"new_contact","event_id":"ev1","data":{"contact_id":"c2"}}`)
	if got := post(t, e.URL, []signing.Secret{secret}, "del_h", body); got != http.StatusOK {
		t.Fatalf("got %d, want 200", got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !e.Delivered("new_contact/c2") {
		if time.Now().After(deadline) {
			t.Fatal("the huge answer was never recorded as delivered")
		}
		time.Sleep(10 * time.Millisecond) // polling a condition the handler sets after the client hung up
	}
}
