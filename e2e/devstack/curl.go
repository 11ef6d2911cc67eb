package devstack

import (
	"fmt"
	"strings"
)

// CurlExample is one call of the public HTTP API, printed by `make dev` as a curl command and
// run by the end-to-end tests, so the printed examples are known to work.
type CurlExample struct {
	What   string
	Method string
	Path   string
	// Body is JSON; empty for none.
	Body string
	// Status is the success status.
	Status int
}

// CurlExamples are the HTTP API examples for an account's admin key: list, create (a webhook
// for receiverURL), test, samples, and delete of webhookID.
func CurlExamples(receiverURL, webhookID string) []CurlExample {
	return []CurlExample{
		{What: "list webhooks", Method: "GET", Path: "/v1/webhooks?page_size=10", Status: 200},
		{What: "subscribe (a Zapier/Make REST hook does this)", Method: "POST", Path: "/v1/webhooks",
			Body: fmt.Sprintf(`{"url":%q,"event_types":["contact_updated"]}`, receiverURL), Status: 201},
		{What: "send a test event", Method: "POST", Path: "/v1/webhooks/" + webhookID + ":test", Body: `{}`, Status: 200},
		{What: "sample data (recent real events, else the catalog sample)", Method: "GET", Path: "/v1/event-types/new_contact/samples", Status: 200},
		{What: "unsubscribe", Method: "DELETE", Path: "/v1/webhooks/" + webhookID, Status: 204},
	}
}

// Command renders the example as a curl command line against the API at addr with key.
func (c CurlExample) Command(addr, key string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "curl -sS")
	if c.Method != "GET" {
		fmt.Fprintf(&b, " -X %s", c.Method)
	}
	fmt.Fprintf(&b, " -H 'Authorization: Bearer %s'", key)
	if c.Body != "" {
		fmt.Fprintf(&b, " -H 'Content-Type: application/json' -d '%s'", c.Body)
	}
	fmt.Fprintf(&b, " 'http://%s%s'", addr, c.Path)
	return b.String()
}
