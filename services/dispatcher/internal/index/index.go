package index

import (
	"sync"
	"time"
)

// Index holds the current webhook configurations. It is safe for concurrent use.
type Index struct {
	mu   sync.RWMutex
	byID map[string]entry
	// byKey holds the enabled webhooks subscribed to (account, event type).
	byKey map[key][]Webhook
	// gone remembers deletions so a resync that started before one cannot resurrect it.
	gone   map[string]time.Time
	loaded bool
	ready  chan struct{}
	now    func() time.Time
}

type key struct{ account, eventType string }

type entry struct {
	w Webhook
	// seen is when this replica last learned of the webhook; a resync that started earlier must
	// not remove it.
	seen time.Time
}

// New returns an empty index.
func New() *Index {
	return &Index{byID: map[string]entry{}, byKey: map[key][]Webhook{}, gone: map[string]time.Time{}, ready: make(chan struct{}), now: time.Now}
}

// Match returns the enabled webhooks of the account that subscribe to the event type.
func (x *Index) Match(accountID, eventType string) []Webhook {
	x.mu.RLock()
	defer x.mu.RUnlock()
	ws := x.byKey[key{accountID, eventType}]
	if len(ws) == 0 {
		return nil
	}
	return append([]Webhook(nil), ws...)
}

// Get returns the webhook with the given id.
func (x *Index) Get(id string) (Webhook, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	e, ok := x.byID[id]
	return e.w, ok
}

// Len is the number of webhooks held.
func (x *Index) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.byID)
}

// Counts returns how many enabled and disabled webhooks are held.
func (x *Index) Counts() (enabled, disabled int) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	for _, e := range x.byID {
		if e.w.Enabled {
			enabled++
		} else {
			disabled++
		}
	}
	return enabled, disabled
}

// Loaded reports whether a full load has completed.
func (x *Index) Loaded() bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.loaded
}

// Upsert stores w unless the index already holds a higher version. It reports whether w was
// stored.
func (x *Index) Upsert(w Webhook) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.upsertLocked(w, x.now())
}

func (x *Index) upsertLocked(w Webhook, now time.Time) bool {
	if old, ok := x.byID[w.ID]; ok {
		if old.w.Version > w.Version {
			return false
		}
		x.unlinkLocked(old.w)
	}
	delete(x.gone, w.ID)
	x.byID[w.ID] = entry{w: w, seen: now}
	if w.Enabled {
		for _, t := range w.EventTypes {
			k := key{w.AccountID, t}
			x.byKey[k] = append(x.byKey[k], w)
		}
	}
	return true
}

// goneTTL is how long a deletion is remembered: jobs still pending for a deleted webhook are
// dropped without asking the subscription service about each.
const goneTTL = time.Hour

// Deleted reports whether the webhook was deleted recently.
func (x *Index) Deleted(id string) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	_, ok := x.gone[id]
	return ok
}

// Remove deletes the webhook (the subscription service no longer has it).
func (x *Index) Remove(id string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.removeLocked(id)
	x.gone[id] = x.now()
}

func (x *Index) removeLocked(id string) {
	old, ok := x.byID[id]
	if !ok {
		return
	}
	x.unlinkLocked(old.w)
	delete(x.byID, id)
}

func (x *Index) unlinkLocked(w Webhook) {
	for _, t := range w.EventTypes {
		k := key{w.AccountID, t}
		ws := x.byKey[k]
		out := ws[:0:0]
		for _, o := range ws {
			if o.ID != w.ID {
				out = append(out, o)
			}
		}
		if len(out) == 0 {
			delete(x.byKey, k)
		} else {
			x.byKey[k] = out
		}
	}
}

// Replace applies a full listing that was started at startedAt: listed webhooks are upserted
// (keeping higher versions already held), and webhooks missing from the listing are removed
// unless this replica learned of them after the listing started. Deletions seen after the
// listing started are not undone.
func (x *Index) Replace(ws []Webhook, startedAt time.Time) {
	x.mu.Lock()
	defer x.mu.Unlock()
	now := x.now()
	listed := make(map[string]bool, len(ws))
	for _, w := range ws {
		listed[w.ID] = true
		if at, ok := x.gone[w.ID]; ok && !at.Before(startedAt) {
			continue
		}
		x.upsertLocked(w, now)
	}
	for id, e := range x.byID {
		if !listed[id] && e.seen.Before(startedAt) {
			x.removeLocked(id)
			x.gone[id] = now
		}
	}
	for id, at := range x.gone {
		if now.Sub(at) > goneTTL {
			delete(x.gone, id)
		}
	}
	if !x.loaded {
		x.loaded = true
		close(x.ready)
	}
}

// Ready is closed once the first full load has completed.
func (x *Index) Ready() <-chan struct{} { return x.ready }
