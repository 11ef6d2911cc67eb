package domain_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/customertext/webhooks/services/campaigns/internal/domain"
)

func TestNewCampaign(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 4, 25, 14, 0, 0, 0, time.UTC)
	tests := []struct {
		name, account, cname, body string
		groups                     []string
		want                       domain.Campaign
		wantErr                    string
	}{
		{name: "normalised", account: "a", cname: " Spring sale ", body: "20% off", groups: []string{" vip", "vip", "Events"},
			want: domain.Campaign{ID: "cmp_1", AccountID: "a", Name: "Spring sale", Body: "20% off", TargetGroups: []string{"vip", "Events"},
				State: domain.StateDraft, CreateTime: now}},
		{name: "no account", cname: "n", body: "b", groups: []string{"g"}, wantErr: "account_id"},
		{name: "account with dot", account: "a.b", cname: "n", body: "b", groups: []string{"g"}, wantErr: "account_id"},
		{name: "no name", account: "a", cname: " ", body: "b", groups: []string{"g"}, wantErr: "name"},
		{name: "long name", account: "a", cname: strings.Repeat("n", domain.MaxNameChars+1), body: "b", groups: []string{"g"}, wantErr: "name"},
		{name: "no body", account: "a", cname: "n", body: " ", groups: []string{"g"}, wantErr: "body"},
		{name: "long body", account: "a", cname: "n", body: strings.Repeat("b", domain.MaxBodyChars+1), groups: []string{"g"}, wantErr: "body"},
		{name: "no groups", account: "a", cname: "n", body: "b", wantErr: "target_groups"},
		{name: "blank group", account: "a", cname: "n", body: "b", groups: []string{""}, wantErr: "target_groups"},
		{name: "group with ;", account: "a", cname: "n", body: "b", groups: []string{"a;b"}, wantErr: "target_groups"},
		{name: "group with control", account: "a", cname: "n", body: "b", groups: []string{"a\x07"}, wantErr: "target_groups"},
		{name: "long group", account: "a", cname: "n", body: "b", groups: []string{strings.Repeat("g", domain.MaxGroupChars+1)}, wantErr: "target_groups"},
		{name: "long account", account: strings.Repeat("a", domain.MaxAccountIDChars+1), cname: "n", body: "b", groups: []string{"g"}, wantErr: "account_id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := domain.NewCampaign("cmp_1", tc.account, tc.cname, tc.body, tc.groups, now)
			if tc.wantErr != "" {
				if !errors.Is(err, domain.ErrInvalid) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got error %v, want ErrInvalid naming %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("campaign (-want +got):\n%s", diff)
			}
		})
	}
}
