package main

import (
	"io"
	"net/http"
	"os"
	"testing"
	"time"

	webhooksv1 "github.com/customertext/webhooks/libs/gen/customertext/webhooks/v1"
)

// TestMeasureTranscoding prints the cost of the HTTP API's transcoding: the same GetWebhook over
// gRPC and over HTTP/JSON (vanguard into the same gRPC server), sequentially on loopback with
// PostgreSQL behind. It asserts nothing about speed and runs only with MEASURE_TRANSCODING=1;
// docs/architecture.md records its figures.
func TestMeasureTranscoding(t *testing.T) {
	if os.Getenv("MEASURE_TRANSCODING") == "" {
		t.Skip("set MEASURE_TRANSCODING=1 to measure")
	}
	e := newEnv(t)
	_, keys := e.account("Acme")
	key := keys[webhooksv1.Role_ROLE_ADMIN]
	id := e.createWebhook(as(key), validCreate()).GetWebhook().GetId()
	const n = 2000
	ctx := as(key)
	measure := func(name string, call func() error) {
		for range 100 {
			if err := call(); err != nil {
				t.Fatal(err)
			}
		}
		start := time.Now()
		for range n {
			if err := call(); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("%s: %v per call (%d sequential calls)", name, time.Since(start)/n, n)
	}
	measure("gRPC GetWebhook", func() error {
		_, err := e.webhooks.GetWebhook(ctx, &webhooksv1.GetWebhookRequest{Id: id})
		return err
	})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	measure("HTTP GET /v1/webhooks/{id}", func() error {
		req, _ := http.NewRequest("GET", "http://"+e.addrs.HTTP+"/v1/webhooks/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return err
	})
}
