package main

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	webhooksv1 "github.com/customertext/webhooks/libs/gen/customertext/webhooks/v1"
)

// TestSendTraceContextRoundTrip: send_trace_context is off unless chosen, settable on create and
// update (its own mask path, untouched by other paths), always present in Get and List, and fed
// to the dispatchers.
func TestSendTraceContextRoundTrip(t *testing.T) {
	e := newEnv(t)
	_, ctx := e.admin("Acme")
	want := func(when, id string, on bool) {
		t.Helper()
		got, err := e.webhooks.GetWebhook(ctx, &webhooksv1.GetWebhookRequest{Id: id})
		if err != nil || got.GetWebhook().SendTraceContext == nil || got.GetWebhook().GetSendTraceContext() != on {
			t.Errorf("%s: GetWebhook send_trace_context %v (%v), want set to %v", when, got.GetWebhook().SendTraceContext, err, on)
		}
		list, err := e.webhooks.ListWebhooks(ctx, &webhooksv1.ListWebhooksRequest{})
		if err != nil {
			t.Fatalf("%s: ListWebhooks: %v", when, err)
		}
		found := false
		for _, w := range list.GetWebhooks() {
			if w.GetId() != id {
				continue
			}
			found = true
			if w.SendTraceContext == nil || w.GetSendTraceContext() != on {
				t.Errorf("%s: ListWebhooks send_trace_context %v, want set to %v", when, w.SendTraceContext, on)
			}
		}
		if !found {
			t.Errorf("%s: ListWebhooks lacks %s", when, id)
		}
		cfg, err := e.configs.GetWebhookConfig(e.service(), &webhooksv1.GetWebhookConfigRequest{Id: id})
		if err != nil || cfg.GetConfig().GetSendTraceContext() != on {
			t.Errorf("%s: dispatcher config send_trace_context %v (%v), want %v", when, cfg.GetConfig().GetSendTraceContext(), err, on)
		}
	}

	byDefault := e.createWebhook(ctx, validCreate())
	if w := byDefault.GetWebhook(); w.SendTraceContext == nil || w.GetSendTraceContext() {
		t.Errorf("create without send_trace_context: got %v, want set to false", w.SendTraceContext)
	}
	want("created without the field", byDefault.GetWebhook().GetId(), false)

	req := validCreate()
	req.SendTraceContext = proto.Bool(true)
	id := e.createWebhook(ctx, req).GetWebhook().GetId()
	want("created with true", id, true)

	update := func(w *webhooksv1.Webhook, paths ...string) {
		t.Helper()
		w.Id = id
		if _, err := e.webhooks.UpdateWebhook(ctx, &webhooksv1.UpdateWebhookRequest{
			Webhook: w, UpdateMask: &fieldmaskpb.FieldMask{Paths: paths}}); err != nil {
			t.Fatalf("update %v: %v", paths, err)
		}
	}
	update(&webhooksv1.Webhook{Description: "other field"}, "description")
	want("after an update of another path", id, true)
	update(&webhooksv1.Webhook{SendTraceContext: proto.Bool(false)}, "send_trace_context")
	want("updated to false", id, false)
	update(&webhooksv1.Webhook{SendTraceContext: proto.Bool(true)}, "send_trace_context")
	want("updated to true", id, true)
	update(&webhooksv1.Webhook{}, "send_trace_context")
	want("path named, field unset (the default)", id, false)
}

// TestSendTraceContextHTTP: the field over the JSON API, as created, read and patched.
func TestSendTraceContextHTTP(t *testing.T) {
	e := newEnv(t)
	_, keys := e.account("Acme")
	admin := keys[webhooksv1.Role_ROLE_ADMIN]
	c := e.rest(t)
	rcv := okReceiver(t)
	type webhook struct {
		ID               string `json:"id"`
		SendTraceContext *bool  `json:"send_trace_context"`
	}
	var created struct {
		Webhook webhook `json:"webhook"`
	}
	wantField := func(when string, w webhook, on bool) {
		t.Helper()
		if w.SendTraceContext == nil || *w.SendTraceContext != on {
			t.Errorf("%s: send_trace_context %v, want present and %v", when, w.SendTraceContext, on)
		}
	}
	c.call("POST", "/v1/webhooks", admin, map[string]any{"url": rcv.URL, "event_types": []string{"new_contact"}}, 201, &created)
	wantField("POST without the field", created.Webhook, false)

	c.call("POST", "/v1/webhooks", admin, map[string]any{"url": rcv.URL + "/2", "event_types": []string{"new_contact"},
		"send_trace_context": true}, 201, &created)
	wantField("POST with true", created.Webhook, true)
	id := created.Webhook.ID
	var got struct {
		Webhook webhook `json:"webhook"`
	}
	c.call("GET", "/v1/webhooks/"+id, admin, nil, 200, &got)
	wantField("GET", got.Webhook, true)

	got.Webhook = webhook{}
	// Over HTTP the mask has its JSON form: lowerCamelCase paths.
	c.call("PATCH", "/v1/webhooks/"+id+"?update_mask=sendTraceContext", admin, map[string]any{"send_trace_context": false}, 200, &got)
	wantField("PATCH to false", got.Webhook, false)
	var list struct {
		Webhooks []webhook `json:"webhooks"`
	}
	c.call("GET", "/v1/webhooks", admin, nil, 200, &list)
	for _, w := range list.Webhooks {
		wantField("GET list "+w.ID, w, false)
	}
	if len(list.Webhooks) != 2 {
		t.Errorf("list: got %d webhooks, want 2", len(list.Webhooks))
	}
}

// TestTestEventTraceContextFollowsTheWebhook: a test event carries the caller's trace
// (traceparent) to an endpoint that chose it and no trace headers to one that did not.
func TestTestEventTraceContextFollowsTheWebhook(t *testing.T) {
	e := newEnv(t)
	_, ctx := e.admin("Acme")
	var mu sync.Mutex
	got := map[string]http.Header{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got[r.URL.Path] = r.Header.Clone()
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)

	const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	traced := metadata.AppendToOutgoingContext(ctx, "traceparent", traceparent)
	for _, tc := range []struct {
		path string
		send *bool
		want string
	}{
		{"/on", proto.Bool(true), traceparent},
		{"/off", proto.Bool(false), ""},
		{"/default", nil, ""},
	} {
		t.Run(tc.path, func(t *testing.T) {
			req := validCreate()
			req.Url, req.SendTraceContext = srv.URL+tc.path, tc.send
			id := e.createWebhook(ctx, req).GetWebhook().GetId()
			resp, err := e.webhooks.SendTestEvent(traced, &webhooksv1.SendTestEventRequest{Id: id})
			if err != nil {
				t.Fatal(err)
			}
			if resp.GetAttempt().GetOutcome() != webhooksv1.Outcome_OUTCOME_SUCCEEDED {
				t.Fatalf("test event: got %v, want success", resp.GetAttempt())
			}
			mu.Lock()
			h := got[tc.path]
			mu.Unlock()
			if h == nil {
				t.Fatal("the endpoint received no request")
			}
			if v := h.Get("traceparent"); v != tc.want {
				t.Errorf("traceparent at the endpoint: got %q, want %q", v, tc.want)
			}
			if v := resp.GetAttempt().GetRequestHeaders()["traceparent"]; v != tc.want {
				t.Errorf("traceparent in the attempt's request headers: got %q, want %q", v, tc.want)
			}
		})
	}
}
