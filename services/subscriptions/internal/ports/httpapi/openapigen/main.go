// Command openapigen finishes the OpenAPI 3 document protoc-gen-openapi derives from the
// google.api.http annotations (`make generate` runs it): it adds what the proto cannot say, the
// bearer security scheme, the error shape and the statuses the HTTP API really answers (201,
// 204, 4xx), the samples' bare array of webhook bodies, examples, and /v1/openapi.json itself,
// then validates the result with kin-openapi and writes it as JSON.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
)

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "openapigen:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("openapigen", flag.ContinueOnError)
	in := fs.String("in", "", "protoc-gen-openapi's openapi.yaml (required)")
	out := fs.String("out", "", "where to write the finished openapi.json (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *in == "" || *out == "" {
		return fmt.Errorf("-in and -out are required")
	}
	raw, err := os.ReadFile(*in)
	if err != nil {
		return err
	}
	doc, err := finish(ctx, raw)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Errorf("marshal: %w", err)
	}
	return os.WriteFile(*out, append(b, '\n'), 0o644)
}
