package chaos

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/customertext/webhooks/e2e/devstack"
	"github.com/customertext/webhooks/libs/event"
	contactsv1 "github.com/customertext/webhooks/libs/gen/customertext/contacts/v1"
)

// Producer creates contacts through the contacts service's gRPC API, as the product's backend
// does, and updates every fourth one, remembering every change the API confirmed: each must come
// out as a webhook (new_contact, contact_updated).
type Producer struct {
	conn     *grpc.ClientConn
	contacts contactsv1.ContactServiceClient

	mu       sync.Mutex
	seq      int
	accounts map[string]*Account
	created  map[string][]string // account id → contact ids confirmed by the API
	updated  map[string][]string // account id → contact ids whose update the API confirmed
	failed   map[string]int      // gRPC code → calls
}

// NewProducer dials the contacts service with the service credential.
func NewProducer(addr, token string) (*Producer, error) {
	conn, err := devstack.Dial(addr, token)
	if err != nil {
		return nil, err
	}
	return &Producer{conn: conn, contacts: contactsv1.NewContactServiceClient(conn), accounts: map[string]*Account{},
		created: map[string][]string{}, updated: map[string][]string{}, failed: map[string]int{}}, nil
}

// Close closes the connection.
func (p *Producer) Close() { p.conn.Close() }

func (p *Producer) addAccount(a *Account) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.accounts[a.ID] = a
}

// Run creates contacts in account a at about rate per second (with up to 8 calls in flight)
// until ctx ends.
func (p *Producer) Run(ctx context.Context, a *Account, rate int) {
	tokens := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range tokens {
				p.createOne(ctx, a)
			}
		})
	}
	t := time.NewTicker(time.Second / time.Duration(max(rate, 1)))
	defer t.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-t.C:
			select {
			case tokens <- struct{}{}:
			case <-ctx.Done():
				break loop
			}
		}
	}
	close(tokens)
	wg.Wait()
}

// Create creates n contacts in a, one after another.
func (p *Producer) Create(ctx context.Context, a *Account, n int) {
	for range n {
		p.createOne(ctx, a)
	}
}

func (p *Producer) createOne(ctx context.Context, a *Account) {
	p.mu.Lock()
	p.seq++
	n := p.seq
	p.mu.Unlock()
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	resp, err := p.contacts.CreateContact(cctx, &contactsv1.CreateContactRequest{AccountId: a.ID,
		Contact: &contactsv1.Contact{FirstName: fmt.Sprintf("Chaos%d", n), Phone: fmt.Sprintf("+1555%07d", n)}})
	if !p.settle(a.ID, p.created, err, resp.GetContact().GetId()) || n%4 != 0 {
		return
	}
	_, err = p.contacts.UpdateContact(cctx, &contactsv1.UpdateContactRequest{AccountId: a.ID,
		Contact:    &contactsv1.Contact{Id: resp.GetContact().GetId(), LastName: fmt.Sprintf("Updated%d", n)},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"last_name"}}})
	p.settle(a.ID, p.updated, err, resp.GetContact().GetId())
}

// settle records a call's outcome: the contact id under the account when it succeeded, the
// error's code otherwise.
func (p *Producer) settle(accountID string, into map[string][]string, err error, contactID string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.failed[status.Code(err).String()]++
		return false
	}
	into[accountID] = append(into[accountID], contactID)
	return true
}

// Created is how many contacts the API confirmed.
func (p *Producer) Created() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, ids := range p.created {
		n += len(ids)
	}
	return n
}

// Events is how many events the API confirmed (creations and updates).
func (p *Producer) Events() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, m := range []map[string][]string{p.created, p.updated} {
		for _, ids := range m {
			n += len(ids)
		}
	}
	return n
}

// Failures summarises failed calls by gRPC code ("UNAVAILABLE 120, INTERNAL 3"), empty if none.
func (p *Producer) Failures() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var parts []string
	for code, n := range p.failed {
		parts = append(parts, fmt.Sprintf("%s %d", code, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// FailedWith is how many calls failed with the given gRPC code.
func (p *Producer) FailedWith(code codes.Code) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failed[code.String()]
}

// expected returns, per webhook, the event keys that must reach it.
func (p *Producer) expected() map[*Webhook][]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[*Webhook][]string{}
	for id, a := range p.accounts {
		for _, w := range a.Webhooks {
			if !w.Expected {
				continue
			}
			keys := make([]string, 0, len(p.created[id])+len(p.updated[id]))
			for _, c := range p.created[id] {
				keys = append(keys, event.NewContact+"/"+c)
			}
			for _, c := range p.updated[id] {
				keys = append(keys, event.ContactUpdated+"/"+c)
			}
			out[w] = keys
		}
	}
	return out
}
