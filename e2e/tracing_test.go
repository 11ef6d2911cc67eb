package e2e

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/customertext/webhooks/e2e/devstack"
	"github.com/customertext/webhooks/libs/event"
	contactsv1 "github.com/customertext/webhooks/libs/gen/customertext/contacts/v1"
	webhooksv1 "github.com/customertext/webhooks/libs/gen/customertext/webhooks/v1"
)

// span is what the test keeps of one exported span.
type span struct {
	service, name, traceID, spanID, parentID string
	kind                                     tracepb.Span_SpanKind
	links                                    []string // linked trace ids
	attrs                                    map[string]string
	resource                                 map[string]string
}

// collector is an in-process OTLP/gRPC trace receiver: the services export to it as to a real
// OpenTelemetry Collector.
type collector struct {
	collectortrace.UnimplementedTraceServiceServer
	mu      sync.Mutex
	spans   []span
	headers []metadata.MD
}

func (c *collector) Export(ctx context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.headers = append(c.headers, md)
	for _, rs := range req.GetResourceSpans() {
		res := map[string]string{}
		for _, kv := range rs.GetResource().GetAttributes() {
			res[kv.GetKey()] = kv.GetValue().GetStringValue()
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				sp := span{service: res["service.name"], name: s.GetName(), traceID: hex.EncodeToString(s.GetTraceId()),
					spanID: hex.EncodeToString(s.GetSpanId()), parentID: hex.EncodeToString(s.GetParentSpanId()),
					kind: s.GetKind(), attrs: map[string]string{}, resource: res}
				for _, l := range s.GetLinks() {
					sp.links = append(sp.links, hex.EncodeToString(l.GetTraceId()))
				}
				for _, kv := range s.GetAttributes() {
					switch v := kv.GetValue().GetValue().(type) {
					case *commonpb.AnyValue_IntValue:
						sp.attrs[kv.GetKey()] = fmt.Sprint(v.IntValue)
					default:
						sp.attrs[kv.GetKey()] = kv.GetValue().GetStringValue()
					}
				}
				c.spans = append(c.spans, sp)
			}
		}
	}
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

func (c *collector) snapshot() ([]span, []metadata.MD) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]span(nil), c.spans...), append([]metadata.MD(nil), c.headers...)
}

// find returns the first span matching, or false.
func find(spans []span, match func(span) bool) (span, bool) {
	for _, s := range spans {
		if match(s) {
			return s, true
		}
	}
	return span{}, false
}

// TestOneTracePerEvent: one trace runs from the producer's CreateContact call through the outbox
// relay's publish, the dispatcher's fan-out, the job's queue wait and the attempt, to the
// endpoint's POST, across the real processes, exported over OTLP/gRPC as the standard OTEL_*
// variables say (endpoint, headers, resource). A retry starts its own trace, linked to the first.
func TestOneTracePerEvent(t *testing.T) {
	col := &collector{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(srv, col)
	go func() { _ = srv.Serve(l) }()
	defer srv.Stop()

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	stack := startStack(ctx, t, devstack.Config{ExtraEnv: []string{
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + l.Addr().String(),
		"OTEL_EXPORTER_OTLP_HEADERS=x-tenant=e2e",
		"OTEL_RESOURCE_ATTRIBUTES=deployment.environment=e2e",
		"OTEL_BSP_SCHEDULE_DELAY=100",
		"RETRY_SCHEDULE=0s,300ms",
	}})
	rcv, err := devstack.StartReceiver("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer rcv.Close()
	demo, err := devstack.RunDemo(ctx, stack, rcv)
	if err != nil {
		t.Fatal(err)
	}
	// traceparent: 00-<trace id>-<parent span id>-<flags>
	tp := strings.Split(demo.Request.Header.Get("Traceparent"), "-")
	if len(tp) != 4 {
		t.Fatalf("the endpoint got traceparent %q, want a W3C one", demo.Request.Header.Get("Traceparent"))
	}
	traceID, postID := tp[1], tp[2]

	var spans []span
	var post span
	// Walk from the POST up to the root: every hop is in the one trace. A parent ends after its
	// child and each process exports in batches, so wait until the walk reaches a root span (or
	// the deadline) before judging the chain.
	var chain []string
	err = await(ctx, func() (bool, string) {
		spans, _ = col.snapshot()
		var ok bool
		if post, ok = find(spans, func(s span) bool { return s.spanID == postID }); !ok {
			return false, fmt.Sprintf("%d spans, none with the traceparent's id %s", len(spans), postID)
		}
		chain = chain[:0]
		for cur, ok := post, true; ok; cur, ok = find(spans, func(s span) bool { return s.spanID == cur.parentID }) {
			chain = append([]string{cur.service + ": " + cur.name}, chain...)
			if cur.parentID == "" || cur.parentID == "0000000000000000" {
				return true, ""
			}
		}
		return false, fmt.Sprintf("the chain so far has no root: %v", chain)
	})
	if err != nil {
		t.Fatal(err)
	}
	for cur, ok := post, true; ok; cur, ok = find(spans, func(s span) bool { return s.spanID == cur.parentID }) {
		if cur.traceID != traceID {
			t.Errorf("span %s/%s: trace %s, want %s", cur.service, cur.name, cur.traceID, traceID)
		}
		if cur.parentID == "" || cur.parentID == "0000000000000000" {
			break
		}
	}
	want := []string{
		"contacts: customertext.contacts.v1.ContactService/CreateContact",
		"contacts: publish events.{account_id}.{event_type}",
		"dispatcher: process events.{account_id}.{event_type}",
		"dispatcher: process deliveries.ready.default.{delivery_id}",
		"dispatcher: POST",
	}
	if strings.Join(chain, "\n") != strings.Join(want, "\n") {
		t.Errorf("the trace from CreateContact to the endpoint's POST:\n%s\nwant:\n%s", strings.Join(chain, "\n"), strings.Join(want, "\n"))
	}
	deliver, _ := find(spans, func(s span) bool { return s.spanID == post.parentID })
	if _, ok := find(spans, func(s span) bool { return s.name == "queue wait" && s.parentID == deliver.spanID }); !ok {
		t.Error("no queue wait span under the delivery's process span")
	}
	for _, s := range spans {
		if s.traceID != traceID {
			continue
		}
		if strings.HasPrefix(s.name, "publish ") || strings.HasPrefix(s.name, "process ") {
			if s.attrs["messaging.system"] != "nats" || s.attrs["messaging.destination.name"] == "" || s.attrs["messaging.message.id"] == "" {
				t.Errorf("span %s: messaging attributes %v, want messaging.system nats, destination and message id", s.name, s.attrs)
			}
		}
		if s.resource["deployment.environment"] != "e2e" {
			t.Errorf("span %s/%s: resource %v, want OTEL_RESOURCE_ATTRIBUTES' deployment.environment=e2e", s.service, s.name, s.resource)
		}
	}
	if _, headers := col.snapshot(); len(headers) == 0 || strings.Join(headers[0].Get("x-tenant"), "") != "e2e" {
		t.Errorf("export metadata %v, want OTEL_EXPORTER_OTLP_HEADERS' x-tenant=e2e", headers)
	}

	contacts, err := devstack.Dial(devstack.Addr(stack.Ports().ContactsGRPC), stack.ServiceToken)
	if err != nil {
		t.Fatal(err)
	}
	defer contacts.Close()

	// A webhook left at the default (send_trace_context unset) gets no trace headers; the demo
	// webhook, which opted in, gets the same event with its traceparent.
	quiet, err := devstack.StartReceiver("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer quiet.Close()
	admin, err := devstack.Dial(devstack.Addr(stack.Ports().SubscriptionsGRPC), demo.AdminKey)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	before, err := stack.MinIndexed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := webhooksv1.NewWebhookServiceClient(admin).CreateWebhook(ctx, &webhooksv1.CreateWebhookRequest{
		Url: quiet.URL, EventTypes: []string{event.NewContact}}); err != nil {
		t.Fatal(err)
	}
	if err := stack.WaitIndexed(ctx, before+1); err != nil {
		t.Fatal(err)
	}
	c, err := contactsv1.NewContactServiceClient(contacts).CreateContact(ctx, &contactsv1.CreateContactRequest{
		AccountId: demo.AccountID, Contact: &contactsv1.Contact{FirstName: "Quinn", Phone: "+15551230041"}})
	if err != nil {
		t.Fatal(err)
	}
	forContact := func(r devstack.Request) bool { return strings.Contains(string(r.Body), c.GetContact().GetId()) }
	got, err := quiet.WaitFor(ctx, forContact)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"Traceparent", "Tracestate"} {
		if v, ok := got.Header[h]; ok {
			t.Errorf("webhook at the default: %s %q, want none", h, v)
		}
	}
	if opted, err := rcv.WaitFor(ctx, forContact); err != nil || opted.Header.Get("Traceparent") == "" {
		t.Errorf("opted-in webhook, same event: traceparent %q (%v), want one", opted.Header.Get("Traceparent"), err)
	}

	// A failing endpoint: the second attempt, 300 ms later, is a trace of its own linked to the first.
	rcv.SetStatus(http.StatusInternalServerError)
	if _, err := contactsv1.NewContactServiceClient(contacts).CreateContact(ctx, &contactsv1.CreateContactRequest{
		AccountId: demo.AccountID, Contact: &contactsv1.Contact{FirstName: "Rita", Phone: "+15551230042"}}); err != nil {
		t.Fatal(err)
	}
	var first, retry span
	err = await(ctx, func() (bool, string) {
		spans, _ = col.snapshot()
		var ok1, ok2 bool
		retry, ok2 = find(spans, func(s span) bool {
			return strings.HasPrefix(s.name, "process deliveries") && s.attrs["webhook.attempt"] == "2"
		})
		first, ok1 = find(spans, func(s span) bool {
			return strings.HasPrefix(s.name, "process deliveries") && s.attrs["webhook.attempt"] == "1" &&
				s.attrs["messaging.message.id"] == retry.attrs["messaging.message.id"]
		})
		return ok1 && ok2, "no first and second attempt of one delivery yet"
	})
	if err != nil {
		t.Fatal(err)
	}
	if retry.traceID == first.traceID || (retry.parentID != "" && retry.parentID != "0000000000000000") {
		t.Errorf("retry span: trace %s parent %q, want a new root (first attempt's trace %s)", retry.traceID, retry.parentID, first.traceID)
	}
	if len(retry.links) != 1 || retry.links[0] != first.traceID {
		t.Errorf("retry span links to traces %v, want [%s]", retry.links, first.traceID)
	}
}
