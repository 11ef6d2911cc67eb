package chaos

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/customertext/webhooks/libs/signing"
)

// Mode is how an endpoint of the ledger answers.
type Mode int32

// Endpoint behaviours.
const (
	// ModeOK answers 204 at once.
	ModeOK Mode = iota
	// ModeFail answers 500.
	ModeFail
	// ModeHang never answers: the request waits until the client gives up.
	ModeHang
	// ModeDrip answers 200, one byte of the response every DripEvery, status line first.
	ModeDrip
	// ModeHuge answers 200 with a HugeBody-byte body.
	ModeHuge
)

func (m Mode) String() string {
	return [...]string{"ok", "500", "hang", "drip", "huge"}[m]
}

// Bad endpoints' parameters.
const (
	DripEvery = 250 * time.Millisecond
	HugeBody  = 100 << 20
)

// signatureTolerance is how old a webhook-timestamp may be; generous, because a retry is
// signed when it is sent, and the harness only checks the signature, not freshness.
const signatureTolerance = 10 * time.Minute

// Ledger is the receiver of every webhook of a chaos run: a real net/http server on loopback
// with one path per endpoint. It verifies the Standard Webhooks signature of every request with
// its endpoint's secret and records, per event, which webhook-ids reached a 2xx answer.
type Ledger struct {
	base string
	srv  *http.Server
	lis  net.Listener
	quit chan struct{}

	mu        sync.Mutex
	endpoints map[string]*Endpoint
}

// Endpoint is one webhook URL of the ledger.
type Endpoint struct {
	Name string
	URL  string
	mode atomic.Int32

	mu       sync.Mutex
	secret   signing.Secret
	requests int
	badSig   int
	answered map[Mode]int
	// receipts by event key (see EventKey): webhook-id → 2xx answers carrying it.
	receipts map[string]map[string]int
}

// StartLedger listens on a random loopback port.
func StartLedger() (*Ledger, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for the ledger: %w", err)
	}
	l := &Ledger{base: "http://" + lis.Addr().String(), lis: lis, quit: make(chan struct{}), endpoints: map[string]*Endpoint{}}
	l.srv = &http.Server{Handler: http.HandlerFunc(l.handle), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = l.srv.Serve(lis) }()
	return l, nil
}

// Endpoint returns the endpoint called name, creating it (answering ModeOK) on first use.
func (l *Ledger) Endpoint(name string) *Endpoint {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.endpoints[name]; ok {
		return e
	}
	e := &Endpoint{Name: name, URL: l.base + "/e/" + name, answered: map[Mode]int{}, receipts: map[string]map[string]int{}}
	l.endpoints[name] = e
	return e
}

// Endpoints returns every endpoint.
func (l *Ledger) Endpoints() []*Endpoint {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*Endpoint, 0, len(l.endpoints))
	for _, e := range l.endpoints {
		out = append(out, e)
	}
	return out
}

// Close stops the server, cutting hanging and dripping requests.
func (l *Ledger) Close() {
	close(l.quit)
	_ = l.srv.Close()
}

// SetSecret sets the signing secret ("whsec_…") the endpoint verifies with.
func (e *Endpoint) SetSecret(whsec string) error {
	s, err := signing.ParseSecret(whsec)
	if err != nil {
		return fmt.Errorf("endpoint %s: %w", e.Name, err)
	}
	e.mu.Lock()
	e.secret = s
	e.mu.Unlock()
	return nil
}

// SetMode changes how the endpoint answers further requests.
func (e *Endpoint) SetMode(m Mode) { e.mode.Store(int32(m)) }

// Mode is how the endpoint answers now.
func (e *Endpoint) Mode() Mode { return Mode(e.mode.Load()) }

func (l *Ledger) handle(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutPrefix(r.URL.Path, "/e/")
	l.mu.Lock()
	e := l.endpoints[name]
	l.mu.Unlock()
	if !ok || e == nil || r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	e.mu.Lock()
	e.requests++
	secret := e.secret
	e.mu.Unlock()
	if secret == nil || signing.Verify(secret, r.Header, body, time.Now(), signatureTolerance) != nil {
		e.mu.Lock()
		e.badSig++
		e.mu.Unlock()
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	mode := e.Mode()
	e.mu.Lock()
	e.answered[mode]++
	e.mu.Unlock()
	delivered := false
	switch mode {
	case ModeOK:
		w.WriteHeader(http.StatusNoContent)
		delivered = true
	case ModeFail:
		http.Error(w, "chaos: failing on purpose", http.StatusInternalServerError)
	case ModeHang:
		select {
		case <-r.Context().Done():
		case <-l.quit:
		}
	case ModeDrip:
		delivered = l.drip(w)
	case ModeHuge:
		delivered = huge(w)
	}
	if delivered {
		e.record(EventKey(body), r.Header.Get(signing.HeaderID))
	}
}

// drip writes a whole 200 response one byte at a time; the delivery counts as answered 2xx only
// if every byte of the head got out (the client could have read the status).
func (l *Ledger) drip(w http.ResponseWriter) bool {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return false
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		return false
	}
	defer conn.Close()
	const head = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n"
	for i, b := range []byte(head + "ok") {
		if err := buf.WriteByte(b); err != nil {
			return false
		}
		if err := buf.Flush(); err != nil {
			return i >= len(head)
		}
		select {
		case <-time.After(DripEvery):
		case <-l.quit:
			return false
		}
	}
	return true
}

// huge answers 200 and streams HugeBody bytes; the status went out once the first chunk did.
func huge(w http.ResponseWriter) bool {
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	chunk := make([]byte, 64<<10)
	sent := false
	for n := 0; n < HugeBody; n += len(chunk) {
		if _, err := w.Write(chunk); err != nil {
			break
		}
		if !sent {
			if err := http.NewResponseController(w).Flush(); err != nil {
				break
			}
			sent = true
		}
	}
	return sent
}

func (e *Endpoint) record(key, webhookID string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ids := e.receipts[key]
	if ids == nil {
		ids = map[string]int{}
		e.receipts[key] = ids
	}
	ids[webhookID]++
}

// EventKey names what a webhook body is about, independently of its event_id: the event type and
// the contact for contact events (a second event for one contact creation would be a duplicate
// with another webhook-id), else the event_id.
func EventKey(body []byte) string {
	var b struct {
		Event   string `json:"event"`
		EventID string `json:"event_id"`
		Data    struct {
			ContactID string `json:"contact_id"`
		} `json:"data"`
	}
	if json.Unmarshal(body, &b) != nil {
		return "unparseable"
	}
	if b.Data.ContactID != "" {
		return b.Event + "/" + b.Data.ContactID
	}
	return b.Event + "/" + b.EventID
}

// Snapshot is what an endpoint recorded.
type Snapshot struct {
	Requests int
	BadSig   int
	Answered map[Mode]int
	// Receipts by event key: webhook-id → 2xx answers.
	Receipts map[string]map[string]int
}

// Snapshot copies the endpoint's records.
func (e *Endpoint) Snapshot() Snapshot {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := Snapshot{Requests: e.requests, BadSig: e.badSig, Answered: map[Mode]int{}, Receipts: make(map[string]map[string]int, len(e.receipts))}
	for m, n := range e.answered {
		s.Answered[m] = n
	}
	for k, ids := range e.receipts {
		c := make(map[string]int, len(ids))
		for id, n := range ids {
			c[id] = n
		}
		s.Receipts[k] = c
	}
	return s
}

// Delivered reports whether the event key reached a 2xx answer.
func (e *Endpoint) Delivered(key string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.receipts[key]) > 0
}
