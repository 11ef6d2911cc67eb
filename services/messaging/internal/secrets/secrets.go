// Package secrets encrypts carrier auth tokens at rest with AES-256-GCM. The key format and the
// ciphertext format are the subscription service's (SECRETS_KEYS="<id>:<base64 32 bytes>[,...]";
// "<key-id>:<base64 nonce|ciphertext>"): the first key encrypts, every key decrypts.
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

// plainID marks a value stored without encryption (no keys configured). It is not a valid key
// id, so a configured keyring still reads such values and the next write seals them.
const plainID = "plain"

// Keyring encrypts with its first key and decrypts with any of them. A nil *Keyring stores
// values unencrypted (development only).
type Keyring struct {
	primary string
	aeads   map[string]cipher.AEAD
}

// ParseKeys reads "<key-id>:<base64 32 bytes>[,<older-id>:<base64>...]"; an empty string gives
// a nil keyring. Errors never include key material.
func ParseKeys(s string) (*Keyring, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	kr := &Keyring{aeads: map[string]cipher.AEAD{}}
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, b64, ok := strings.Cut(part, ":")
		if !ok || !validID(id) || id == plainID {
			return nil, fmt.Errorf("parse secrets keys: entry %d: want <key-id>:<base64 key>, the id 1-32 letters, digits, '-' or '_' (not %q)", i, plainID)
		}
		if _, dup := kr.aeads[id]; dup {
			return nil, fmt.Errorf("parse secrets keys: duplicate key id %q", id)
		}
		key, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(key) != 32 {
			return nil, fmt.Errorf("parse secrets keys: key %q: want 32 bytes in base64", id)
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
		return nil, errors.New("parse secrets keys: no key found")
	}
	return kr, nil
}

func validID(id string) bool {
	if id == "" || len(id) > 32 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// Seal encrypts plaintext bound to context (e.g. "number:+15557654321"), so a ciphertext copied
// to another row does not decrypt.
func (k *Keyring) Seal(plaintext, context string) (string, error) {
	if k == nil {
		return plainID + ":" + plaintext, nil
	}
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
	id, rest, ok := strings.Cut(sealed, ":")
	if !ok {
		return "", errors.New("open: malformed ciphertext")
	}
	if id == plainID {
		return rest, nil
	}
	if k == nil {
		return "", fmt.Errorf("open: value sealed with key %q but no SECRETS_KEYS are configured", id)
	}
	aead, ok := k.aeads[id]
	if !ok {
		return "", fmt.Errorf("open: unknown key id %q (is it still in SECRETS_KEYS?)", id)
	}
	raw, err := base64.StdEncoding.DecodeString(rest)
	if err != nil || len(raw) < aead.NonceSize() {
		return "", errors.New("open: malformed ciphertext")
	}
	pt, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], []byte(context))
	if err != nil {
		return "", fmt.Errorf("open: key %q: %w", id, err)
	}
	return string(pt), nil
}
