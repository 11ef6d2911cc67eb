package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/customertext/webhooks/libs/auth"
	contactsv1 "github.com/customertext/webhooks/libs/gen/customertext/contacts/v1"
	"github.com/customertext/webhooks/services/contacts/internal/domain"
)

// runImport is "contacts import -account ACCOUNT_ID -file contacts.csv": it sends the CSV to the
// ContactService at -grpc-addr and prints the imported count and each rejected row. It fails
// (non-zero exit) when the call fails or when any row was rejected.
func runImport(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet(serviceName+" import", flag.ContinueOnError)
	fs.SetOutput(stdout)
	account := fs.String("account", "", "account id (required)")
	file := fs.String("file", "", "CSV file: header phone (required), first_name, last_name, email, groups (\";\"-separated)")
	region := fs.String("default-region", "", "ISO 3166 region for phones without \"+\" (default US)")
	addr := fs.String("grpc-addr", envOr(getenv, "GRPC_ADDR", "127.0.0.1:7101"), "contacts gRPC address (env GRPC_ADDR)")
	token := fs.String("service-token", "", "service credential (env SERVICE_TOKEN)")
	timeout := fs.Duration("timeout", 5*time.Minute, "how long the import may take")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	*token = firstOf(*token, getenv("SERVICE_TOKEN"))
	switch {
	case *account == "":
		return errors.New("import: -account is required")
	case *file == "":
		return errors.New("import: -file is required")
	case *token == "":
		return errors.New("import: SERVICE_TOKEN (-service-token) is required")
	case fs.NArg() > 0:
		return fmt.Errorf("import: unexpected arguments %q", fs.Args())
	}
	data, err := readBounded(*file, domain.MaxImportBytes)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	conn, err := grpc.NewClient(*addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(auth.Bearer(*token)))
	if err != nil {
		return fmt.Errorf("import: connect to %s: %w", *addr, err)
	}
	defer conn.Close()
	cctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	resp, err := contactsv1.NewContactServiceClient(conn).ImportContacts(cctx, &contactsv1.ImportContactsRequest{
		AccountId: *account, Csv: data, DefaultRegion: *region,
	})
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	fmt.Fprintf(stdout, "imported %d\n", resp.GetImported())
	for _, e := range resp.GetErrors() {
		fmt.Fprintf(stdout, "line %d: %s\n", e.GetLine(), e.GetReason())
	}
	if n := len(resp.GetErrors()); n > 0 {
		return fmt.Errorf("import: %d rows rejected", n)
	}
	return nil
}

// readBounded reads a file of at most max bytes.
func readBounded(path string, max int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open csv: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, int64(max)+1))
	if err != nil {
		return nil, fmt.Errorf("read csv: %w", err)
	}
	if len(data) > max {
		return nil, fmt.Errorf("read csv: %s is larger than %d bytes", path, max)
	}
	return data, nil
}
