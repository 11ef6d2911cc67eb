package devstack

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// Request is a webhook request a Receiver got.
type Request struct {
	Header http.Header
	Body   []byte
	// Status is what the receiver answered.
	Status int
	At     time.Time
}

// Receiver is a real HTTP endpoint on loopback that records every request it gets.
type Receiver struct {
	URL string

	srv      *http.Server
	mu       sync.Mutex
	requests []Request
	status   int
	arrived  chan struct{}
}

// SetStatus makes the receiver answer every further request with code (204 by default).
func (r *Receiver) SetStatus(code int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status = code
}

// StartReceiver listens on addr ("127.0.0.1:0" for a random port) and answers 204 to POSTs.
func StartReceiver(addr string) (*Receiver, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for the receiver on %s: %w", addr, err)
	}
	r := &Receiver{URL: "http://" + lis.Addr().String() + "/webhook", status: http.StatusNoContent, arrived: make(chan struct{}, 1)}
	r.srv = &http.Server{Handler: http.HandlerFunc(r.handle), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = r.srv.Serve(lis) }()
	return r, nil
}

func (r *Receiver) handle(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.requests = append(r.requests, Request{Header: req.Header.Clone(), Body: body, Status: r.status, At: time.Now()})
	status := r.status
	r.mu.Unlock()
	select {
	case r.arrived <- struct{}{}:
	default:
	}
	w.WriteHeader(status)
}

// Requests returns a copy of what arrived so far.
func (r *Receiver) Requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Request(nil), r.requests...)
}

// WaitFor waits until match accepts a request, and returns it.
func (r *Receiver) WaitFor(ctx context.Context, match func(Request) bool) (Request, error) {
	for {
		for _, req := range r.Requests() {
			if match(req) {
				return req, nil
			}
		}
		select {
		case <-ctx.Done():
			return Request{}, fmt.Errorf("wait for webhook request: %w", ctx.Err())
		case <-r.arrived:
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Close stops the receiver.
func (r *Receiver) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return r.srv.Shutdown(ctx)
}
