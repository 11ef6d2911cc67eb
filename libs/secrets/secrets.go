// Package secrets encrypts secrets at rest (webhook signing secrets and auth values, carrier auth
// tokens) with AES-256-GCM. A Keyring holds one or more keys, each with an id: the first encrypts,
// every key decrypts, and the key id is stored with each ciphertext, so keys can be rotated without
// rewriting the data at once.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// Keyring encrypts with its first key and decrypts with any of them.
type Keyring struct {
	primary string
	aeads   map[string]cipher.AEAD
}

// ParseKeys reads "<key-id>:<base64 32 bytes>[,<older-id>:<base64>...]". Errors never include key
// material.
func ParseKeys(s string) (*Keyring, error) {
	kr := &Keyring{aeads: map[string]cipher.AEAD{}}
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, b64, ok := strings.Cut(part, ":")
		if !ok || id == "" {
			return nil, fmt.Errorf("parse secrets keys: entry %d: want <key-id>:<base64 key>", i)
		}
		if !validID(id) {
			return nil, fmt.Errorf("parse secrets keys: entry %d: key id must be 1-32 letters, digits, '-' or '_'", i)
		}
		if _, dup := kr.aeads[id]; dup {
			return nil, fmt.Errorf("parse secrets keys: duplicate key id %q", id)
		}
		key, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			return nil, fmt.Errorf("parse secrets keys: key %q: not valid base64", id)
		}
		if len(key) != 32 {
			return nil, fmt.Errorf("parse secrets keys: key %q: want 32 bytes, got %d", id, len(key))
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("parse secrets keys: key %q: %w", id, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("parse secrets keys: key %q: %w", id, err)
		}
		kr.aeads[id] = aead
		if kr.primary == "" {
			kr.primary = id
		}
	}
	if kr.primary == "" {
		return nil, errors.New("parse secrets keys: at least one key is required")
	}
	return kr, nil
}

func validID(id string) bool {
	if len(id) > 32 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// PrimaryID is the id of the key that encrypts.
func (k *Keyring) PrimaryID() string { return k.primary }

// Seal encrypts plaintext bound to context (for example "webhook:<id>:auth"), so a ciphertext
// copied to another row or field does not decrypt. The result is "<key-id>:<base64 nonce|ct>".
func (k *Keyring) Seal(plaintext, context string) (string, error) {
	aead := k.aeads[k.primary]
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal: nonce: %w", err)
	}
	ct := aead.Seal(nonce, nonce, []byte(plaintext), []byte(context))
	return k.primary + ":" + base64.StdEncoding.EncodeToString(ct), nil
}

// Open decrypts a value produced by Seal with the same context.
func (k *Keyring) Open(sealed, context string) (string, error) {
	id, b64, ok := strings.Cut(sealed, ":")
	if !ok {
		return "", errors.New("open: malformed ciphertext")
	}
	aead, ok := k.aeads[id]
	if !ok {
		return "", fmt.Errorf("open: unknown key id %q (is it still in SECRETS_KEYS?)", id)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(raw) < aead.NonceSize() {
		return "", errors.New("open: malformed ciphertext")
	}
	pt, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], []byte(context))
	if err != nil {
		return "", fmt.Errorf("open: key %q: %w", id, err)
	}
	return string(pt), nil
}

// KeyID returns the id of the key that sealed a value.
func KeyID(sealed string) string {
	id, _, _ := strings.Cut(sealed, ":")
	return id
}
