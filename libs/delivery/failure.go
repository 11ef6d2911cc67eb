package delivery

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/customertext/webhooks/libs/ssrf"
)

// Failure is a transport failure: Text says what happened in the customer's words (shown in test
// results and the delivery log); Err is the full error, for our own logs only, since it can name
// our resolver, our addresses and the proxy path.
type Failure struct {
	Text string
	Err  error
}

func (f *Failure) Error() string { return f.Text + ": " + f.Err.Error() }

// Unwrap returns the underlying error.
func (f *Failure) Unwrap() error { return f.Err }

// describe classifies a transport error into a Failure.
func describe(err error, timeout time.Duration) error {
	return &Failure{Text: customerText(err, timeout), Err: err}
}

func customerText(err error, timeout time.Duration) string {
	var (
		dnsErr      *net.DNSError
		unknownCA   x509.UnknownAuthorityError
		hostname    x509.HostnameError
		invalidCert x509.CertificateInvalidError
		verify      *tls.CertificateVerificationError
		record      tls.RecordHeaderError
		alert       tls.AlertError
		netErr      net.Error
	)
	switch {
	case errors.Is(err, ssrf.ErrForbidden):
		return "refused by address policy (SSRF guard): the host resolves to a private or reserved address"
	case errors.As(err, &dnsErr):
		switch {
		case dnsErr.IsNotFound:
			return fmt.Sprintf("DNS lookup failed: %s not found", printable(dnsErr.Name))
		case dnsErr.IsTimeout:
			return fmt.Sprintf("DNS lookup failed: %s did not resolve in time", printable(dnsErr.Name))
		}
		return fmt.Sprintf("DNS lookup failed for %s", printable(dnsErr.Name))
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return fmt.Sprintf("timed out after %s waiting for the endpoint", timeout)
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused by the endpoint"
	case errors.Is(err, syscall.ECONNRESET):
		return "the endpoint reset the connection"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "the endpoint's network is unreachable"
	case errors.As(err, &unknownCA):
		return "TLS error: the endpoint's certificate is not trusted"
	case errors.As(err, &hostname):
		return "TLS error: the endpoint's certificate does not match its host name"
	case errors.As(err, &invalidCert):
		if invalidCert.Reason == x509.Expired {
			return "TLS error: the endpoint's certificate is expired or not yet valid"
		}
		return "TLS error: the endpoint's certificate is invalid"
	case errors.As(err, &verify):
		return "TLS error: the endpoint's certificate could not be verified"
	case errors.As(err, &record):
		return "TLS error: the endpoint did not answer with TLS"
	case errors.As(err, &alert), strings.Contains(err.Error(), "tls: "):
		return "TLS error: the handshake with the endpoint failed"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the endpoint closed the connection without answering"
	}
	return "the request to the endpoint failed"
}

// printable keeps a host name (the customer's own, from their URL) short and free of control
// characters.
func printable(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return -1
		}
		return r
	}, s)
	if len(s) > 253 {
		s = s[:253]
	}
	return s
}
