package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"google.golang.org/grpc/codes"

	webhooksv1 "github.com/customertext/webhooks/libs/gen/customertext/webhooks/v1"
)

// restClient calls the HTTP API and remembers which method and path each call used, so a test
// can prove it exercised every operation of the OpenAPI document.
type restClient struct {
	t    *testing.T
	base string
	mu   sync.Mutex
	seen []string
}

func (e *env) rest(t *testing.T) *restClient {
	return &restClient{t: t, base: "http://" + e.addrs.HTTP}
}

// do sends body (a string is sent as is, anything else as JSON) and returns the status and the
// response body.
func (c *restClient) do(method, path, key string, body any) (int, []byte) {
	c.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, c.base+path, r)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	c.mu.Lock()
	c.seen = append(c.seen, method+" "+strings.SplitN(path, "?", 2)[0])
	c.mu.Unlock()
	return resp.StatusCode, out
}

// call expects status want and decodes the JSON response into out (when not nil).
func (c *restClient) call(method, path, key string, body any, want int, out any) {
	c.t.Helper()
	got, b := c.do(method, path, key, body)
	if got != want {
		c.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, got, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
}

type restError struct {
	Error struct {
		Code            int    `json:"code"`
		Status          string `json:"status"`
		Message         string `json:"message"`
		FieldViolations []struct {
			Field       string `json:"field"`
			Description string `json:"description"`
		} `json:"field_violations"`
	} `json:"error"`
}

// wantError expects an error response of the documented shape.
func (c *restClient) wantError(method, path, key string, body any, wantHTTP int, wantStatus string) restError {
	c.t.Helper()
	got, b := c.do(method, path, key, body)
	var e restError
	if err := json.Unmarshal(b, &e); err != nil {
		c.t.Fatalf("%s %s: error body %q is not the documented JSON shape: %v", method, path, b, err)
	}
	if got != wantHTTP || e.Error.Code != wantHTTP || e.Error.Status != wantStatus || e.Error.Message == "" {
		c.t.Fatalf("%s %s: got %d %s, want %d %s with a message; body %s", method, path, got, e.Error.Status, wantHTTP, wantStatus, b)
	}
	return e
}

type restWebhook struct {
	ID         string   `json:"id"`
	URL        string   `json:"url"`
	EventTypes []string `json:"event_types"`
	Enabled    bool     `json:"enabled"`
	Desc       string   `json:"description"`
	SecretHint string   `json:"secret_hint"`
}

// okReceiver is a loopback endpoint that answers 204.
func okReceiver(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	t.Cleanup(srv.Close)
	return srv
}

// TestHTTPEveryOperation walks every operation of the OpenAPI document over HTTP, checks each
// answer, and then checks that no operation of the document was left out. The document is
// validated with kin-openapi.
func TestHTTPEveryOperation(t *testing.T) {
	e := newEnv(t)
	_, keys := e.account("Acme")
	admin := keys[webhooksv1.Role_ROLE_ADMIN]
	c := e.rest(t)
	rcv := okReceiver(t)

	var created struct {
		Webhook       restWebhook `json:"webhook"`
		SigningSecret string      `json:"signing_secret"`
	}
	c.call("POST", "/v1/webhooks", admin, map[string]any{"url": rcv.URL, "event_types": []string{"new_contact"}}, 201, &created)
	wh := created.Webhook
	if !strings.HasPrefix(created.SigningSecret, "whsec_") || !wh.Enabled || wh.ID == "" || wh.SecretHint == "" {
		t.Fatalf("create: got %+v, want an enabled webhook with an id and a whsec_ secret", created)
	}
	c.call("POST", "/v1/webhooks", admin, map[string]any{"url": rcv.URL + "/2", "event_types": []string{"inbound_message"}, "enabled": false}, 201, nil)

	var list struct {
		Webhooks      []restWebhook `json:"webhooks"`
		NextPageToken string        `json:"next_page_token"`
	}
	c.call("GET", "/v1/webhooks?page_size=1", admin, nil, 200, &list)
	if len(list.Webhooks) != 1 || list.NextPageToken == "" {
		t.Fatalf("list page 1: got %+v, want one webhook and a next page token", list)
	}
	c.call("GET", "/v1/webhooks?page_size=1&page_token="+list.NextPageToken, admin, nil, 200, &list)
	if len(list.Webhooks) != 1 || list.Webhooks[0].EventTypes[0] != "inbound_message" || list.NextPageToken != "" {
		t.Fatalf("list page 2: got %+v, want the second webhook and no token", list)
	}
	c.call("GET", "/v1/webhooks?enabled=true&event_type=new_contact", admin, nil, 200, &list)
	if len(list.Webhooks) != 1 || list.Webhooks[0].ID != wh.ID {
		t.Fatalf("filtered list: got %+v, want only %s", list.Webhooks, wh.ID)
	}

	var got struct {
		Webhook restWebhook `json:"webhook"`
	}
	c.call("GET", "/v1/webhooks/"+wh.ID, admin, nil, 200, &got)
	if got.Webhook.URL != rcv.URL {
		t.Fatalf("get: url %q, want %q", got.Webhook.URL, rcv.URL)
	}
	c.call("PATCH", "/v1/webhooks/"+wh.ID+"?update_mask=description", admin, map[string]any{"description": "Zapier"}, 200, &got)
	if got.Webhook.Desc != "Zapier" || got.Webhook.URL != rcv.URL {
		t.Fatalf("patch: got %+v, want description Zapier and the url unchanged", got.Webhook)
	}
	// The mask's paths in the proto's field names, as the docs and webhook bodies spell them.
	var timed struct {
		Webhook struct {
			TimeoutSeconds int `json:"timeout_seconds"`
		} `json:"webhook"`
	}
	c.call("PATCH", "/v1/webhooks/"+wh.ID+"?update_mask=timeout_seconds", admin, map[string]any{"timeout_seconds": 7}, 200, &timed)
	if timed.Webhook.TimeoutSeconds != 7 {
		t.Fatalf("patch with update_mask=timeout_seconds: got timeout %d, want 7", timed.Webhook.TimeoutSeconds)
	}
	c.call("POST", "/v1/webhooks/"+wh.ID+":disable", admin, map[string]any{}, 200, &got)
	if got.Webhook.Enabled {
		t.Fatal("disable: webhook still enabled")
	}
	c.wantError("POST", "/v1/webhooks/"+wh.ID+":recover", admin,
		map[string]any{"start_time": time.Now().Add(-time.Hour).Format(time.RFC3339)}, 412, "FAILED_PRECONDITION")
	c.call("POST", "/v1/webhooks/"+wh.ID+":enable", admin, map[string]any{}, 200, &got)
	if !got.Webhook.Enabled {
		t.Fatal("enable: webhook still disabled")
	}

	var tested struct {
		Attempt struct {
			Outcome        string `json:"outcome"`
			ResponseStatus int    `json:"response_status"`
			Test           bool   `json:"test"`
		} `json:"attempt"`
	}
	c.call("POST", "/v1/webhooks/"+wh.ID+":test", admin, map[string]any{"event_type": "new_contact"}, 200, &tested)
	if tested.Attempt.Outcome != "OUTCOME_SUCCEEDED" || tested.Attempt.ResponseStatus != 204 || !tested.Attempt.Test {
		t.Fatalf("test event: got %+v, want a succeeded test attempt answered 204", tested.Attempt)
	}
	var attempts struct {
		Attempts []struct {
			WebhookID string `json:"webhook_id"`
			Test      bool   `json:"test"`
		} `json:"attempts"`
	}
	c.call("GET", "/v1/webhooks/"+wh.ID+"/attempts?page_size=10", admin, nil, 200, &attempts)
	if len(attempts.Attempts) != 1 || attempts.Attempts[0].WebhookID != wh.ID || !attempts.Attempts[0].Test {
		t.Fatalf("attempts: got %+v, want the one test attempt", attempts.Attempts)
	}
	c.call("GET", "/v1/attempts?outcome=OUTCOME_SUCCEEDED&event_type=new_contact", admin, nil, 200, &attempts)
	if len(attempts.Attempts) != 1 || attempts.Attempts[0].WebhookID != wh.ID {
		t.Fatalf("attempts of the account: got %+v, want the one test attempt", attempts.Attempts)
	}
	c.call("GET", "/v1/attempts?outcome=OUTCOME_DEAD_LETTERED", admin, nil, 200, &attempts)
	if len(attempts.Attempts) != 0 {
		t.Fatalf("dead-lettered attempts: got %+v, want none", attempts.Attempts)
	}
	// Test attempts are not deliveries: redelivering one is a 404, like any unknown delivery.
	c.wantError("POST", "/v1/deliveries/del_unknown:redeliver", admin, map[string]any{}, 404, "NOT_FOUND")
	var redelivered struct {
		Redelivered int `json:"redelivered"`
	}
	c.call("POST", "/v1/webhooks/"+wh.ID+":redeliverFailed", admin, map[string]any{}, 200, &redelivered)
	if redelivered.Redelivered != 0 {
		t.Fatalf("redeliverFailed: %d, want 0", redelivered.Redelivered)
	}
	var recovered struct {
		EventsScanned    string `json:"events_scanned"`
		DeliveriesQueued string `json:"deliveries_queued"`
	}
	c.call("POST", "/v1/webhooks/"+wh.ID+":recover", admin,
		map[string]any{"start_time": time.Now().Add(-time.Hour).Format(time.RFC3339)}, 200, &recovered)
	if recovered.EventsScanned != "0" || recovered.DeliveriesQueued != "0" {
		t.Fatalf("recover with no events: got %+v, want 0 and 0", recovered)
	}
	var rotated struct {
		SigningSecret string `json:"signing_secret"`
	}
	c.call("POST", "/v1/webhooks/"+wh.ID+":rotateSecret", admin, map[string]any{"overlap_seconds": 60}, 200, &rotated)
	if !strings.HasPrefix(rotated.SigningSecret, "whsec_") || rotated.SigningSecret == created.SigningSecret {
		t.Fatalf("rotate: got %q, want a new whsec_ secret", rotated.SigningSecret)
	}

	var types struct {
		EventTypes []struct {
			Name string `json:"name"`
		} `json:"event_types"`
	}
	c.call("GET", "/v1/event-types", admin, nil, 200, &types)
	if len(types.EventTypes) != 6 {
		t.Fatalf("event types: got %d, want 6", len(types.EventTypes))
	}
	var samples []map[string]any
	c.call("GET", "/v1/event-types/new_contact/samples", admin, nil, 200, &samples)
	if len(samples) != 1 || samples[0]["event"] != "new_contact" || samples[0]["test"] != true {
		t.Fatalf("samples with no events: got %v, want the one catalog sample", samples)
	}

	var issued struct {
		APIKey struct {
			ID   string `json:"id"`
			Name string `json:"name"`
			Role string `json:"role"`
			Hint string `json:"hint"`
		} `json:"api_key"`
		Key string `json:"key"`
	}
	c.call("POST", "/v1/api-keys", admin, map[string]any{"name": "Zapier", "role": "user"}, 201, &issued)
	if !strings.HasPrefix(issued.Key, "ctk_") || issued.APIKey.Role != "user" || !strings.HasSuffix(issued.Key, issued.APIKey.Hint) {
		t.Fatalf("issue key: got %+v", issued)
	}
	var keyList struct {
		APIKeys []map[string]any `json:"api_keys"`
	}
	c.call("GET", "/v1/api-keys", admin, nil, 200, &keyList)
	if len(keyList.APIKeys) != 4 {
		t.Fatalf("api keys: got %d, want 4 (three roles + Zapier)", len(keyList.APIKeys))
	}
	for _, k := range keyList.APIKeys {
		if _, ok := k["key"]; ok {
			t.Fatalf("list leaks a key: %v", k)
		}
	}
	status, body := c.do("DELETE", "/v1/api-keys/"+issued.APIKey.ID, admin, nil)
	if status != 204 || len(body) != 0 {
		t.Fatalf("revoke: got %d %q, want 204 and no body", status, body)
	}

	status, body = c.do("DELETE", "/v1/webhooks/"+wh.ID, admin, nil)
	if status != 204 || len(body) != 0 {
		t.Fatalf("delete: got %d %q, want 204 and no body", status, body)
	}
	c.wantError("GET", "/v1/webhooks/"+wh.ID, admin, nil, 404, "NOT_FOUND")

	status, doc := c.do("GET", "/v1/openapi.json", "", nil)
	if status != 200 {
		t.Fatalf("openapi.json: status %d", status)
	}
	spec := loadOpenAPI(t, doc)
	for _, op := range operations(spec) {
		re := regexp.MustCompile("^" + op.method + " " + regexp.MustCompile(`\\\{[^}]+\\\}`).ReplaceAllString(regexp.QuoteMeta(op.path), `[^/]+`) + "$")
		hit := false
		for _, s := range c.seen {
			hit = hit || re.MatchString(s)
		}
		if !hit {
			t.Errorf("operation %s %s of the OpenAPI document was not exercised", op.method, op.path)
		}
	}
}

type operation struct{ method, path string }

func loadOpenAPI(t *testing.T, doc []byte) *openapi3.T {
	t.Helper()
	spec, err := openapi3.NewLoader().LoadFromData(doc)
	if err != nil {
		t.Fatalf("load OpenAPI document: %v", err)
	}
	if err := spec.Validate(context.Background()); err != nil {
		t.Fatalf("OpenAPI document is invalid: %v", err)
	}
	if !strings.HasPrefix(spec.OpenAPI, "3.") {
		t.Fatalf("openapi version %q, want 3.x", spec.OpenAPI)
	}
	return spec
}

func operations(spec *openapi3.T) []operation {
	var out []operation
	for path, item := range spec.Paths.Map() {
		for method := range item.Operations() {
			out = append(out, operation{method, path})
		}
	}
	return out
}

// TestHTTPErrors checks the error shape and status of each kind of failure.
func TestHTTPErrors(t *testing.T) {
	e := newEnv(t)
	_, keys := e.account("Acme")
	admin := keys[webhooksv1.Role_ROLE_ADMIN]
	c := e.rest(t)
	rcv := okReceiver(t)
	var created struct {
		Webhook restWebhook `json:"webhook"`
	}
	c.call("POST", "/v1/webhooks", admin, map[string]any{"url": rcv.URL, "event_types": []string{"new_contact"}}, 201, &created)
	id := created.Webhook.ID

	t.Run("no key", func(t *testing.T) {
		c := e.rest(t)
		c.wantError("GET", "/v1/webhooks", "", nil, 401, "UNAUTHENTICATED")
	})
	t.Run("unknown key", func(t *testing.T) {
		c := e.rest(t)
		c.wantError("GET", "/v1/webhooks", "ctk_nope", nil, 401, "UNAUTHENTICATED")
	})
	t.Run("manager", func(t *testing.T) {
		c := e.rest(t)
		got := c.wantError("GET", "/v1/webhooks", keys[webhooksv1.Role_ROLE_MANAGER], nil, 403, "PERMISSION_DENIED")
		if !strings.Contains(got.Error.Message, "only account admins") || !strings.Contains(got.Error.Message, "manager") {
			t.Errorf("message %q, want it to name the rule and the key's role", got.Error.Message)
		}
	})
	t.Run("validation", func(t *testing.T) {
		c := e.rest(t)
		got := c.wantError("POST", "/v1/webhooks", admin, map[string]any{"url": "ftp://x", "event_types": []string{"new_contact"}}, 400, "INVALID_ARGUMENT")
		if len(got.Error.FieldViolations) != 1 || got.Error.FieldViolations[0].Field != "url" || got.Error.FieldViolations[0].Description == "" {
			t.Errorf("field violations %+v, want one naming url", got.Error.FieldViolations)
		}
	})
	t.Run("unknown JSON field", func(t *testing.T) {
		c := e.rest(t)
		got := c.wantError("POST", "/v1/webhooks", admin, `{"url":"https://e.com","event_types":["new_contact"],"colour":"red"}`, 400, "INVALID_ARGUMENT")
		if !strings.Contains(got.Error.Message, "colour") {
			t.Errorf("message %q, want it to name the unknown field", got.Error.Message)
		}
	})
	t.Run("unknown query parameter", func(t *testing.T) {
		c := e.rest(t)
		c.wantError("GET", "/v1/webhooks?colour=red", admin, nil, 400, "INVALID_ARGUMENT")
	})
	t.Run("malformed JSON", func(t *testing.T) {
		c := e.rest(t)
		c.wantError("POST", "/v1/webhooks", admin, `{"url":`, 400, "INVALID_ARGUMENT")
	})
	t.Run("body too large", func(t *testing.T) {
		c := e.rest(t)
		big := fmt.Sprintf(`{"url":"https://e.com","event_types":["new_contact"],"description":%q}`, strings.Repeat("x", 70<<10))
		c.wantError("POST", "/v1/webhooks", admin, big, 413, "RESOURCE_EXHAUSTED")
	})
	t.Run("not found", func(t *testing.T) {
		c := e.rest(t)
		c.wantError("GET", "/v1/webhooks/wh_nope", admin, nil, 404, "NOT_FOUND")
	})
	t.Run("unknown route", func(t *testing.T) {
		c := e.rest(t)
		c.wantError("GET", "/v1/nothing", admin, nil, 404, "NOT_FOUND")
	})
	t.Run("connect protocol is not served", func(t *testing.T) {
		c := e.rest(t)
		c.wantError("POST", "/customertext.webhooks.v1.WebhookService/ListWebhooks", admin, map[string]any{}, 404, "NOT_FOUND")
	})
	t.Run("recovery beyond retention", func(t *testing.T) {
		c := e.rest(t)
		got := c.wantError("POST", "/v1/webhooks/"+id+":recover", admin,
			map[string]any{"start_time": time.Now().Add(-8 * 24 * time.Hour).Format(time.RFC3339)}, 400, "INVALID_ARGUMENT")
		if len(got.Error.FieldViolations) != 1 || got.Error.FieldViolations[0].Field != "start_time" || !strings.Contains(got.Error.Message, "kept") {
			t.Errorf("got %+v, want start_time named and the retention explained", got.Error)
		}
	})
	t.Run("last admin key", func(t *testing.T) {
		c := e.rest(t)
		var list struct {
			APIKeys []struct {
				ID   string `json:"id"`
				Role string `json:"role"`
			} `json:"api_keys"`
		}
		c.call("GET", "/v1/api-keys", admin, nil, 200, &list)
		for _, k := range list.APIKeys {
			if k.Role == "admin" {
				c.wantError("DELETE", "/v1/api-keys/"+k.ID, admin, nil, 412, "FAILED_PRECONDITION")
			}
		}
		// The refused revocation left the key working.
		c.call("GET", "/v1/webhooks/"+id, admin, nil, 200, nil)
	})
}

// TestHTTPPermissionMatrixAndIsolation calls every operation of the OpenAPI document with each
// role's key, with no key, and with another account's admin key on this account's resources.
func TestHTTPPermissionMatrixAndIsolation(t *testing.T) {
	e := newEnv(t)
	_, keysA := e.account("A")
	_, keysB := e.account("B")
	c := e.rest(t)
	var created struct {
		Webhook restWebhook `json:"webhook"`
	}
	c.call("POST", "/v1/webhooks", keysA[webhooksv1.Role_ROLE_ADMIN],
		map[string]any{"url": "https://hooks.example.com/a", "event_types": []string{"new_contact"}, "description": "A's"}, 201, &created)
	var keys struct {
		APIKeys []struct {
			ID string `json:"id"`
		} `json:"api_keys"`
	}
	c.call("GET", "/v1/api-keys", keysA[webhooksv1.Role_ROLE_ADMIN], nil, 200, &keys)

	_, doc := c.do("GET", "/v1/openapi.json", "", nil)
	spec := loadOpenAPI(t, doc)
	ids := map[string]string{"id": created.Webhook.ID, "webhook_id": created.Webhook.ID, "delivery_id": "del_x", "event_type": "new_contact"}
	pathOf := func(op operation) string {
		p := op.path
		if strings.HasPrefix(p, "/v1/api-keys/") {
			return "/v1/api-keys/" + keys.APIKeys[0].ID
		}
		for name, v := range ids {
			p = strings.ReplaceAll(p, "{"+name+"}", v)
		}
		return p
	}
	bodyOf := func(op operation) any {
		switch {
		case op.method == "GET" || op.method == "DELETE":
			return nil
		case strings.HasSuffix(op.path, ":recover"):
			return map[string]any{"start_time": time.Now().Add(-time.Hour).Format(time.RFC3339)}
		case op.method == "PATCH":
			return map[string]any{"description": "changed"}
		}
		return map[string]any{}
	}
	for _, op := range operations(spec) {
		if op.path == "/v1/openapi.json" {
			continue
		}
		path := pathOf(op)
		if op.method == "PATCH" {
			path += "?update_mask=description"
		}
		name := op.method + " " + op.path
		t.Run(name+"/manager", func(t *testing.T) {
			e.rest(t).wantError(op.method, path, keysA[webhooksv1.Role_ROLE_MANAGER], bodyOf(op), 403, "PERMISSION_DENIED")
		})
		t.Run(name+"/user", func(t *testing.T) {
			e.rest(t).wantError(op.method, path, keysA[webhooksv1.Role_ROLE_USER], bodyOf(op), 403, "PERMISSION_DENIED")
		})
		t.Run(name+"/no key", func(t *testing.T) {
			e.rest(t).wantError(op.method, path, "", bodyOf(op), 401, "UNAUTHENTICATED")
		})
		if strings.HasSuffix(op.path, "/attempts") {
			// The delivery log is a filtered list: another account's webhook id matches nothing.
			t.Run(name+"/other account", func(t *testing.T) {
				var got struct {
					Attempts []any `json:"attempts"`
				}
				e.rest(t).call(op.method, path, keysB[webhooksv1.Role_ROLE_ADMIN], nil, 200, &got)
				if len(got.Attempts) != 0 {
					t.Errorf("B sees %d of A's attempts", len(got.Attempts))
				}
			})
		} else if strings.Contains(op.path, "{id}") || strings.Contains(op.path, "{webhook_id}") {
			t.Run(name+"/other account", func(t *testing.T) {
				e.rest(t).wantError(op.method, path, keysB[webhooksv1.Role_ROLE_ADMIN], bodyOf(op), 404, "NOT_FOUND")
			})
		}
	}
	t.Run("lists are per account", func(t *testing.T) {
		c := e.rest(t)
		var list struct {
			Webhooks []restWebhook `json:"webhooks"`
		}
		c.call("GET", "/v1/webhooks", keysB[webhooksv1.Role_ROLE_ADMIN], nil, 200, &list)
		if len(list.Webhooks) != 0 {
			t.Errorf("B sees %d webhooks, want 0", len(list.Webhooks))
		}
		var keyList struct {
			APIKeys []map[string]any `json:"api_keys"`
		}
		c.call("GET", "/v1/api-keys", keysB[webhooksv1.Role_ROLE_ADMIN], nil, 200, &keyList)
		if len(keyList.APIKeys) != 3 {
			t.Errorf("B sees %d api keys, want its own 3", len(keyList.APIKeys))
		}
	})
	// A's webhook is untouched by all of the above.
	var got struct {
		Webhook restWebhook `json:"webhook"`
	}
	c.call("GET", "/v1/webhooks/"+created.Webhook.ID, keysA[webhooksv1.Role_ROLE_ADMIN], nil, 200, &got)
	if got.Webhook.Desc != "A's" || !got.Webhook.Enabled {
		t.Errorf("A's webhook changed: %+v", got.Webhook)
	}
}

// TestHTTPAPIKeys: an issued key works with its own role, a revoked key fails at once on every
// replica (keys are looked up in PostgreSQL on every call, no cache), the last admin key stays,
// and the last use is recorded.
func TestHTTPAPIKeys(t *testing.T) {
	e := newEnv(t)
	_, keys := e.account("Acme")
	first := keys[webhooksv1.Role_ROLE_ADMIN]
	c := e.rest(t)
	other := &restClient{t: t, base: "http://" + e.replica().HTTP}

	type issued struct {
		APIKey struct {
			ID string `json:"id"`
		} `json:"api_key"`
		Key string `json:"key"`
	}
	var user, admin2 issued
	c.call("POST", "/v1/api-keys", first, map[string]any{"name": "reporting", "role": "user"}, 201, &user)
	c.call("POST", "/v1/api-keys", first, map[string]any{"name": "Zapier", "role": "admin"}, 201, &admin2)
	c.wantError("POST", "/v1/api-keys", first, map[string]any{"name": "x", "role": "owner"}, 400, "INVALID_ARGUMENT")
	c.wantError("POST", "/v1/api-keys", first, map[string]any{"role": "admin"}, 400, "INVALID_ARGUMENT")
	other.wantError("GET", "/v1/webhooks", user.Key, nil, 403, "PERMISSION_DENIED")
	other.call("GET", "/v1/webhooks", admin2.Key, nil, 200, nil)

	var list struct {
		APIKeys []struct {
			ID           string `json:"id"`
			Name         string `json:"name"`
			LastUsedTime string `json:"last_used_time"`
		} `json:"api_keys"`
	}
	c.call("GET", "/v1/api-keys", admin2.Key, nil, 200, &list)
	used := map[string]bool{}
	for _, k := range list.APIKeys {
		used[k.Name] = k.LastUsedTime != ""
	}
	if !used["Zapier"] || !used["reporting"] {
		t.Errorf("last used recorded: %v, want both used keys marked", used)
	}

	// Revoked on one replica, refused on the other with its very next call.
	other.call("GET", "/v1/webhooks", admin2.Key, nil, 200, nil)
	status, _ := c.do("DELETE", "/v1/api-keys/"+admin2.APIKey.ID, first, nil)
	if status != 204 {
		t.Fatalf("revoke: status %d, want 204", status)
	}
	other.wantError("GET", "/v1/webhooks", admin2.Key, nil, 401, "UNAUTHENTICATED")
	c.wantError("GET", "/v1/webhooks", admin2.Key, nil, 401, "UNAUTHENTICATED")
	c.wantError("DELETE", "/v1/api-keys/"+admin2.APIKey.ID, first, nil, 404, "NOT_FOUND")

	// Over gRPC too: the last admin key cannot be revoked.
	var firstID string
	c.call("GET", "/v1/api-keys", first, nil, 200, &list)
	for _, k := range list.APIKeys {
		if k.Name == "admin@example.com" {
			firstID = k.ID
		}
	}
	_, err := e.webhooks.RevokeApiKey(as(first), &webhooksv1.RevokeApiKeyRequest{Id: firstID})
	wantCode(t, err, codes.FailedPrecondition)
	c.call("GET", "/v1/webhooks", first, nil, 200, nil)
}

// TestHTTPCORSAndChunkedBodyLimit: CORS headers only for allow-listed origins (none by default),
// and a body without a Content-Length is cut at the limit too.
func TestHTTPCORSAndChunkedBodyLimit(t *testing.T) {
	const allowed = "https://app.example.com"
	preflight := func(t *testing.T, base, origin string) *http.Response {
		t.Helper()
		req, err := http.NewRequest("OPTIONS", base+"/v1/webhooks", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	t.Run("off by default", func(t *testing.T) {
		e := newEnv(t)
		if got := preflight(t, "http://"+e.addrs.HTTP, allowed).Header.Get("Access-Control-Allow-Origin"); got != "" {
			t.Errorf("Access-Control-Allow-Origin %q with no allow-list, want none", got)
		}
	})
	t.Run("allow-list", func(t *testing.T) {
		e := newEnv(t, "-cors-origins", allowed)
		base := "http://" + e.addrs.HTTP
		resp := preflight(t, base, allowed)
		if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != allowed ||
			!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
			t.Errorf("preflight from %s: %d %v, want 204 allowing it with Authorization", allowed, resp.StatusCode, resp.Header)
		}
		if got := preflight(t, base, "https://evil.example").Header.Get("Access-Control-Allow-Origin"); got != "" {
			t.Errorf("Access-Control-Allow-Origin %q for an origin not in the list, want none", got)
		}
		_, keys := e.account("Acme")
		req, _ := http.NewRequest("GET", base+"/v1/webhooks", nil)
		req.Header.Set("Origin", allowed)
		req.Header.Set("Authorization", "Bearer "+keys[webhooksv1.Role_ROLE_ADMIN])
		got, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got.Body.Close()
		if got.StatusCode != 200 || got.Header.Get("Access-Control-Allow-Origin") != allowed {
			t.Errorf("GET from %s: %d, ACAO %q", allowed, got.StatusCode, got.Header.Get("Access-Control-Allow-Origin"))
		}

		// A chunked body (no Content-Length) over the limit.
		pr, pw := io.Pipe()
		go func() {
			_, _ = pw.Write([]byte(`{"url":"https://e.com","event_types":["new_contact"],"description":"`))
			_, _ = pw.Write(bytes.Repeat([]byte("x"), 70<<10))
			_, _ = pw.Write([]byte(`"}`))
			_ = pw.Close()
		}()
		req, _ = http.NewRequest("POST", base+"/v1/webhooks", pr)
		req.Header.Set("Authorization", "Bearer "+keys[webhooksv1.Role_ROLE_ADMIN])
		req.Header.Set("Content-Type", "application/json")
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 413 || !strings.Contains(string(body), "RESOURCE_EXHAUSTED") {
			t.Errorf("chunked oversized body: %d %s, want 413 RESOURCE_EXHAUSTED", resp.StatusCode, body)
		}
	})
}
