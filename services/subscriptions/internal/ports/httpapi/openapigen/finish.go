package main

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/getkin/kin-openapi/openapi3"
)

const description = `The public HTTP/JSON API of CustomerText Webhooks, transcoded from the gRPC
WebhookService (same authentication, roles and validation).

Authenticate every call with an account API key: "Authorization: Bearer ctk_...". Only keys of
the admin role may use it; other roles get 403. Another account's resources answer 404.

Errors are always {"error": {"code", "status", "message", "field_violations"}} with the HTTP
status in code and the gRPC status name in status. Unknown JSON fields are rejected (400) and
request bodies are limited to 64 KiB (413).

REST hooks (Zapier, Make): subscribe with POST /v1/webhooks {"url", "event_types": [one]},
unsubscribe with DELETE /v1/webhooks/{id}, and read sample data from
GET /v1/event-types/{event_type}/samples.`

// The statuses every operation may answer besides its success.
var errorStatuses = []int{400, 401, 403, 404, 412, 429, 503}

var errorExamples = map[int]map[string]any{
	400: {"error": map[string]any{"code": 400, "status": "INVALID_ARGUMENT", "message": "invalid url: must be an https:// URL",
		"field_violations": []any{map[string]any{"field": "url", "description": "must be an https:// URL"}}}},
	401: {"error": map[string]any{"code": 401, "status": "UNAUTHENTICATED", "message": "unknown API key"}},
	403: {"error": map[string]any{"code": 403, "status": "PERMISSION_DENIED",
		"message": "permission denied: only account admins may use the webhook settings; this API key's role is manager"}},
	404: {"error": map[string]any{"code": 404, "status": "NOT_FOUND", "message": "not found"}},
	412: {"error": map[string]any{"code": 412, "status": "FAILED_PRECONDITION",
		"message": "failed precondition: the webhook is disabled; enable it before recovering its events"}},
	429: {"error": map[string]any{"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "too many requests"}},
	503: {"error": map[string]any{"code": 503, "status": "UNAVAILABLE", "message": "service unavailable"}},
	413: {"error": map[string]any{"code": 413, "status": "RESOURCE_EXHAUSTED", "message": "request body is larger than 65536 bytes"}},
}

// bodyErrorStatus is answered, besides errorStatuses, by operations with a request body.
const bodyErrorStatus = 413

var webhookBodyExample = map[string]any{
	"event": "new_contact", "event_id": "evt_0192f5a8-7c1e-7b3a-9d2f-5e8a1c4b6d70", "timestamp": "2026-04-25T14:30:00Z",
	"account_id": "acc_0192f5a8-0000-7000-8000-000000000001",
	"data": map[string]any{"contact_id": "12345", "first_name": "Jane", "last_name": "Smith", "phone": "+15551234567",
		"email": "jane@example.com", "groups": []any{"customers", "Events"}, "source": "keyword_optin", "keyword": "JOIN"},
}

// finish turns protoc-gen-openapi's output into the served document.
func finish(ctx context.Context, raw []byte) (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(raw)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	doc.Info.Description = description
	doc.Servers = openapi3.Servers{{URL: "http://127.0.0.1:7304", Description: "local development (make dev)"}}
	if doc.Components == nil {
		doc.Components = &openapi3.Components{}
	}
	doc.Components.SecuritySchemes = openapi3.SecuritySchemes{"ApiKey": &openapi3.SecuritySchemeRef{Value: &openapi3.SecurityScheme{
		Type: "http", Scheme: "bearer", BearerFormat: "ctk_...",
		Description: "An account API key of the admin role, sent as \"Authorization: Bearer <key>\".",
	}}}
	doc.Security = openapi3.SecurityRequirements{{"ApiKey": []string{}}}

	schemas := doc.Components.Schemas
	fieldViolation := &openapi3.Schema{
		Type: &openapi3.Types{"object"}, Required: []string{"field", "description"},
		Properties: openapi3.Schemas{
			"field":       {Value: &openapi3.Schema{Type: &openapi3.Types{"string"}, Description: "The request field, e.g. url or event_types."}},
			"description": {Value: &openapi3.Schema{Type: &openapi3.Types{"string"}}},
		},
	}
	schemas["FieldViolation"] = &openapi3.SchemaRef{Value: fieldViolation}
	errorSchema := &openapi3.Schema{
		Type: &openapi3.Types{"object"}, Required: []string{"error"}, Description: "The body of every error response.",
		Properties: openapi3.Schemas{"error": {Value: &openapi3.Schema{
			Type: &openapi3.Types{"object"}, Required: []string{"code", "status", "message"},
			Properties: openapi3.Schemas{
				"code":    {Value: &openapi3.Schema{Type: &openapi3.Types{"integer"}, Format: "int32", Description: "The HTTP status."}},
				"status":  {Value: &openapi3.Schema{Type: &openapi3.Types{"string"}, Description: "The gRPC status name, e.g. INVALID_ARGUMENT."}},
				"message": {Value: &openapi3.Schema{Type: &openapi3.Types{"string"}}},
				"field_violations": {Value: &openapi3.Schema{Type: &openapi3.Types{"array"},
					Items: &openapi3.SchemaRef{Ref: "#/components/schemas/FieldViolation", Value: fieldViolation}}},
			},
		}}},
	}
	schemas["Error"] = &openapi3.SchemaRef{Value: errorSchema}
	webhookBody := &openapi3.Schema{
		Type: &openapi3.Types{"object"}, Required: []string{"event", "event_id", "timestamp", "account_id", "data"},
		Description: "Exactly the JSON body a webhook receives.",
		Properties: openapi3.Schemas{
			"event":      {Value: &openapi3.Schema{Type: &openapi3.Types{"string"}}},
			"event_id":   {Value: &openapi3.Schema{Type: &openapi3.Types{"string"}}},
			"timestamp":  {Value: &openapi3.Schema{Type: &openapi3.Types{"string"}, Format: "date-time"}},
			"account_id": {Value: &openapi3.Schema{Type: &openapi3.Types{"string"}}},
			"test":       {Value: &openapi3.Schema{Type: &openapi3.Types{"boolean"}}},
			"data":       {Value: &openapi3.Schema{Type: &openapi3.Types{"object"}, Description: "The event's fields; see GET /v1/event-types."}},
		},
		Example: webhookBodyExample,
	}
	schemas["WebhookBody"] = &openapi3.SchemaRef{Value: webhookBody}
	// The error shape replaces google.rpc.Status; deletes answer 204 with no body; samples answer
	// a bare array.
	for _, unused := range []string{"Status", "GoogleProtobufAny", "DeleteWebhookResponse", "RevokeApiKeyResponse", "ListEventSamplesResponse"} {
		delete(schemas, unused)
	}
	if s := schemas["CreateWebhookRequest"]; s != nil && s.Value != nil {
		s.Value.Example = map[string]any{"url": "https://hooks.zapier.com/hooks/standard/123/abc/", "event_types": []any{"new_contact"}}
	}
	if s := schemas["IssueApiKeyRequest"]; s != nil && s.Value != nil {
		s.Value.Example = map[string]any{"name": "Zapier", "role": "admin"}
	}

	doc.Components.Responses = openapi3.ResponseBodies{}
	for _, code := range append(errorStatuses, bodyErrorStatus) {
		name := "Error" + strconv.Itoa(code)
		doc.Components.Responses[name] = &openapi3.ResponseRef{Value: openapi3.NewResponse().
			WithDescription(http.StatusText(code)).
			WithContent(openapi3.Content{"application/json": &openapi3.MediaType{
				Schema:  &openapi3.SchemaRef{Ref: "#/components/schemas/Error", Value: errorSchema},
				Example: errorExamples[code],
			}})}
	}

	// PATCH binds webhook.id (the id inside the body's webhook); on the wire it is the same path
	// as GET and DELETE, so the document has one path item for the three.
	if patch := doc.Paths.Value("/v1/webhooks/{webhook.id}"); patch != nil && patch.Patch != nil {
		doc.Paths.Delete("/v1/webhooks/{webhook.id}")
		for _, p := range patch.Patch.Parameters {
			if p.Value != nil && p.Value.Name == "webhook.id" {
				p.Value.Name = "id"
			}
		}
		doc.Paths.Value("/v1/webhooks/{id}").Patch = patch.Patch
	}
	// An additional binding repeats its method's operation id, which must be unique.
	if item := doc.Paths.Value("/v1/attempts"); item != nil && item.Get != nil {
		item.Get.OperationID += "_All"
	}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			fixResponses(doc.Components.Responses, webhookBody, path, method, op)
		}
	}
	docResponse := openapi3.NewResponse().WithDescription("The document").WithContent(openapi3.Content{
		"application/json": &openapi3.MediaType{Schema: &openapi3.SchemaRef{Value: &openapi3.Schema{Type: &openapi3.Types{"object"}}}},
	})
	doc.Paths.Set("/v1/openapi.json", &openapi3.PathItem{Get: &openapi3.Operation{
		OperationID: "GetOpenAPI", Summary: "This OpenAPI 3 document", Tags: []string{"WebhookService"},
		Security:  &openapi3.SecurityRequirements{},
		Responses: openapi3.NewResponses(openapi3.WithStatus(200, &openapi3.ResponseRef{Value: docResponse})),
	}})
	if err := doc.Validate(ctx); err != nil {
		return nil, fmt.Errorf("validate: %w", err)
	}
	return doc, nil
}

// fixResponses replaces the generated default error with the documented ones and sets the
// success status the HTTP API answers.
func fixResponses(errs openapi3.ResponseBodies, webhookBody *openapi3.Schema, path, method string, op *openapi3.Operation) {
	rs := op.Responses
	rs.Delete("default")
	codes := errorStatuses
	if op.RequestBody != nil {
		codes = append(codes[:len(codes):len(codes)], bodyErrorStatus)
	}
	for _, code := range codes {
		name := "Error" + strconv.Itoa(code)
		rs.Set(strconv.Itoa(code), &openapi3.ResponseRef{Ref: "#/components/responses/" + name, Value: errs[name].Value})
	}
	ok := rs.Value("200")
	switch {
	case method == http.MethodPost && (path == "/v1/webhooks" || path == "/v1/api-keys"):
		rs.Delete("200")
		ok.Value.Description = ptr("Created")
		rs.Set("201", ok)
	case method == http.MethodDelete:
		rs.Delete("200")
		rs.Set("204", &openapi3.ResponseRef{Value: openapi3.NewResponse().WithDescription("Deleted")})
	case path == "/v1/event-types/{event_type}/samples":
		ok.Value.Content = openapi3.Content{"application/json": &openapi3.MediaType{
			Schema: &openapi3.SchemaRef{Value: &openapi3.Schema{
				Type: &openapi3.Types{"array"}, Items: &openapi3.SchemaRef{Ref: "#/components/schemas/WebhookBody", Value: webhookBody},
				Description: "The account's most recent events of the type, newest first (at most 3), or the catalog sample.",
			}},
			Example: []any{webhookBodyExample},
		}}
	}
}

func ptr[T any](v T) *T { return &v }
