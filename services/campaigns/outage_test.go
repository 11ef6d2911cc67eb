package main

import (
	"context"
	"net/url"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	campaignsv1 "github.com/customertext/webhooks/libs/gen/customertext/campaigns/v1"
	"github.com/customertext/webhooks/libs/tcpproxy"
)

// TestPostgresOutageAnswersUnavailable stops a TCP proxy between campaigns and the real
// PostgreSQL: calls answer UNAVAILABLE (retry), never INTERNAL; once the proxy is back, they
// succeed.
func TestPostgresOutageAnswersUnavailable(t *testing.T) {
	t.Parallel()
	d := newDeps(t)
	u, err := url.Parse(d.dbURL)
	if err != nil {
		t.Fatalf("parse database url: %v", err)
	}
	proxy, err := tcpproxy.New(u.Host)
	if err != nil {
		t.Fatalf("start proxy: %v", err)
	}
	t.Cleanup(proxy.Stop)
	u.Host = proxy.Addr()
	p := d.start(map[string]string{"DATABASE_URL": u.String()})
	ctx := context.Background()
	create := func() (*campaignsv1.CreateCampaignResponse, error) {
		return p.client.CreateCampaign(ctx, &campaignsv1.CreateCampaignRequest{AccountId: acct, Name: "n", Body: "b", TargetGroups: []string{"g"}})
	}
	created, err := create()
	if err != nil {
		t.Fatalf("CreateCampaign: %v", err)
	}
	get := func() error {
		_, err := p.client.GetCampaign(ctx, &campaignsv1.GetCampaignRequest{AccountId: acct, Id: created.GetCampaign().GetId()})
		return err
	}

	proxy.Stop()
	for i := range 2 { // the first call may meet a pooled connection the outage cut
		if _, err := create(); status.Code(err) != codes.Unavailable {
			t.Errorf("CreateCampaign #%d during the outage: got %v, want %s", i+1, err, codes.Unavailable)
		}
		if err := get(); status.Code(err) != codes.Unavailable {
			t.Errorf("GetCampaign #%d during the outage: got %v, want %s", i+1, err, codes.Unavailable)
		}
	}

	if err := proxy.Start(); err != nil {
		t.Fatalf("restart proxy: %v", err)
	}
	deadline := time.Now().Add(waitFor)
	for err := get(); err != nil; err = get() {
		if time.Now().After(deadline) {
			t.Fatalf("GetCampaign after the outage: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // polling a condition with a deadline
	}
	if _, err := create(); err != nil {
		t.Errorf("CreateCampaign after the outage: %v", err)
	}
}
