package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestParseConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string
		check   func(t *testing.T, c config)
	}{
		{name: "version required", wantErr: "-version"},
		{name: "version must be a tag", args: []string{"-version", "1.0/evil"}, wantErr: "-version"},
		{name: "reproducible time", env: map[string]string{"VERSION": "1.2.3", "SOURCE_DATE_EPOCH": "1700000000"},
			check: func(t *testing.T, c config) {
				if c.Version != "1.2.3" || !c.Created.Equal(time.Unix(1700000000, 0)) || len(c.Services) != 5 {
					t.Errorf("got version %q created %v services %v", c.Version, c.Created, c.Services)
				}
			}},
		{name: "bad epoch", args: []string{"-version", "v1", "-created", "yesterday"}, wantErr: "-created"},
		{name: "one service", args: []string{"-version", "v1", "-services", "dispatcher"},
			check: func(t *testing.T, c config) {
				if len(c.Services) != 1 || c.Services[0] != "dispatcher" {
					t.Errorf("services %v, want [dispatcher]", c.Services)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := parseConfig(tt.args, func(k string) string { return tt.env[k] }, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}
