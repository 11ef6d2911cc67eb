// Package session keeps the console's signed-in sessions on the server: the browser holds only
// a random session id in an HttpOnly cookie; the API credential the console calls the
// subscription service with, and the CSRF token, stay here.
package session

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"sync"
	"time"
)

// Session is one signed-in account user.
type Session struct {
	AccountID string
	Email     string
	Role      string
	// APIKey calls WebhookService as this user; it never leaves the server.
	APIKey string
	// CSRF is the token every state-changing form must carry.
	CSRF    string
	Expires time.Time
	// Flash is a one-time notice shown on the next page.
	Flash string
}

// CheckCSRF reports whether token is the session's CSRF token.
func (s *Session) CheckCSRF(token string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(s.CSRF)) == 1
}

// Store holds sessions in memory. It is safe for concurrent use.
type Store struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[string]*Session
}

// NewStore returns a store whose sessions last ttl.
func NewStore(ttl time.Duration) *Store {
	return &Store{ttl: ttl, m: map[string]*Session{}}
}

func random() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("read random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// Create stores a new session and returns its id.
func (st *Store) Create(s Session, now time.Time) (string, error) {
	id, err := random()
	if err != nil {
		return "", err
	}
	if s.CSRF, err = random(); err != nil {
		return "", err
	}
	s.Expires = now.Add(st.ttl)
	st.mu.Lock()
	defer st.mu.Unlock()
	for k, v := range st.m {
		if now.After(v.Expires) {
			delete(st.m, k)
		}
	}
	st.m[id] = &s
	return id, nil
}

// Get returns a copy of a live session.
func (st *Store) Get(id string, now time.Time) (Session, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	s, ok := st.m[id]
	if !ok || now.After(s.Expires) {
		return Session{}, false
	}
	return *s, true
}

// SetFlash stores a notice for the session's next page.
func (st *Store) SetFlash(id, msg string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if s, ok := st.m[id]; ok {
		s.Flash = msg
	}
}

// TakeFlash returns and clears the session's notice.
func (st *Store) TakeFlash(id string) string {
	st.mu.Lock()
	defer st.mu.Unlock()
	s, ok := st.m[id]
	if !ok {
		return ""
	}
	msg := s.Flash
	s.Flash = ""
	return msg
}

// Delete ends a session.
func (st *Store) Delete(id string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	delete(st.m, id)
}
