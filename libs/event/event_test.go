package event

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/customertext/webhooks/libs/gen/customertext/events/v1"
)

func TestNewAndParseRoundTrip(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 4, 25, 14, 30, 0, 0, time.UTC)
	payload := &eventsv1.NewContact{ContactId: "12345", FirstName: "Jane", Phone: "+15551234567", Groups: []string{"customers"}, Source: "manual"}
	env, err := New("acct_1", payload, at)
	if err != nil {
		t.Fatal(err)
	}
	b, err := env.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var generic map[string]any
	if err := json.Unmarshal(b, &generic); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"event", "event_id", "timestamp", "account_id", "data"} {
		if _, ok := generic[k]; !ok {
			t.Errorf("body lacks %q: %s", k, b)
		}
	}
	if _, ok := generic["test"]; ok {
		t.Errorf("a real event carries \"test\": %s", b)
	}
	data := generic["data"].(map[string]any)
	// Unpopulated fields are emitted so receivers see a stable schema.
	for _, k := range []string{"contact_id", "first_name", "last_name", "phone", "email", "groups", "source", "keyword"} {
		if _, ok := data[k]; !ok {
			t.Errorf("data lacks %q: %s", k, b)
		}
	}
	got, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(env.EventID, got.EventID); diff != "" || got.Event != NewContact || got.AccountID != "acct_1" || got.Timestamp != "2026-04-25T14:30:00Z" {
		t.Errorf("round trip: got %+v, want %+v", got, env)
	}
	back := &eventsv1.NewContact{}
	if err := protojson.Unmarshal(got.Data, back); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(back, payload) {
		t.Errorf("data: got %v, want %v", back, payload)
	}
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"not json":      `nope`,
		"unknown event": `{"event":"party","event_id":"e","timestamp":"2026-04-25T14:30:00Z","account_id":"a","data":{}}`,
		"no id":         `{"event":"new_contact","timestamp":"2026-04-25T14:30:00Z","account_id":"a","data":{}}`,
		"no account":    `{"event":"new_contact","event_id":"e","timestamp":"2026-04-25T14:30:00Z","data":{}}`,
		"bad time":      `{"event":"new_contact","event_id":"e","timestamp":"yesterday","account_id":"a","data":{}}`,
		"data not obj":  `{"event":"new_contact","event_id":"e","timestamp":"2026-04-25T14:30:00Z","account_id":"a","data":[1]}`,
		"too big":       `{"event":"new_contact","event_id":"` + strings.Repeat("e", MaxBodyBytes) + `"}`,
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse([]byte(in)); err == nil {
				t.Errorf("got nil error, want one")
			}
		})
	}
}

func TestCatalogCoversEveryType(t *testing.T) {
	t.Parallel()
	var names []string
	for _, s := range Catalog() {
		names = append(names, s.Name)
		typ, err := TypeOf(s.Sample)
		if err != nil || typ != s.Name {
			t.Errorf("sample of %s has type %q (%v)", s.Name, typ, err)
		}
		env, err := Sample(s.Name, "acct_1", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if !env.Test {
			t.Errorf("sample %s is not marked test", s.Name)
		}
		b, err := env.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Parse(b); err != nil {
			t.Errorf("sample %s does not parse: %v", s.Name, err)
		}
	}
	want := []string{NewContact, ContactUpdated, ContactOptOut, InboundMessage, KeywordOptIn, CampaignSent}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("catalog names (-want +got):\n%s", diff)
	}
	if _, err := Sample("party", "acct_1", time.Now()); err == nil {
		t.Error("Sample(unknown): got nil error")
	}
}

func FuzzParse(f *testing.F) {
	env, _ := Sample(NewContact, "acct", time.Now())
	b, _ := env.Marshal()
	f.Add(b)
	f.Add([]byte(`{"event":"new_contact"}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		e, err := Parse(in)
		if err != nil {
			return
		}
		if !Known(e.Event) || e.EventID == "" || e.AccountID == "" {
			t.Fatalf("accepted an invalid envelope: %+v", e)
		}
	})
}
