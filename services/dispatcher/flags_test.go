package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// A mistyped flag prints the usage text, whose defaults must never show a credential taken from
// the environment.
func TestBogusFlagPrintsUsageWithoutSecrets(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"SERVICE_TOKEN": "tok-5ecret-dispatcher",
		"NATS_URL":      "nats://svc:nats-pa55word-dispatcher@nats.example:4222",
	}
	var out bytes.Buffer
	err := run(context.Background(), []string{"-bogus"}, func(k string) string { return env[k] }, &out)
	if err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("run -bogus: got error %v, want one naming the flag", err)
	}
	if !strings.Contains(out.String(), "Usage of") || !strings.Contains(out.String(), "-service-token") {
		t.Errorf("run -bogus printed no usage text:\n%s", out.String())
	}
	// Every secret above carries one of these markers; none may be printed.
	for _, marker := range []string{"5ecret", "pa55word", "q6urq6ur"} {
		if strings.Contains(out.String(), marker) || strings.Contains(err.Error(), marker) {
			t.Errorf("run -bogus shows a secret containing %q:\n%s\n%v", marker, out.String(), err)
		}
	}
}
