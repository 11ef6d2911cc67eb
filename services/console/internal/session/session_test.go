package session

import (
	"testing"
	"time"
)

func TestStore(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	st := NewStore(time.Hour)
	id, err := st.Create(Session{AccountID: "acc_1", APIKey: "ctk_x"}, now)
	if err != nil {
		t.Fatal(err)
	}
	other, err := st.Create(Session{AccountID: "acc_2"}, now)
	if err != nil {
		t.Fatal(err)
	}
	s, ok := st.Get(id, now.Add(59*time.Minute))
	if !ok || s.AccountID != "acc_1" || s.APIKey != "ctk_x" {
		t.Fatalf("Get: got %+v, %v", s, ok)
	}
	o, _ := st.Get(other, now)
	if len(s.CSRF) < 40 || s.CSRF == o.CSRF || id == other {
		t.Errorf("ids and CSRF tokens must be long and distinct: %q %q", s.CSRF, o.CSRF)
	}
	for _, tt := range []struct {
		token string
		want  bool
	}{{s.CSRF, true}, {"", false}, {o.CSRF, false}, {s.CSRF + "x", false}} {
		if got := s.CheckCSRF(tt.token); got != tt.want {
			t.Errorf("CheckCSRF(%q): got %v, want %v", tt.token, got, tt.want)
		}
	}
	st.SetFlash(id, "saved")
	if got := st.TakeFlash(id); got != "saved" {
		t.Errorf("TakeFlash: got %q", got)
	}
	if got := st.TakeFlash(id); got != "" {
		t.Errorf("second TakeFlash: got %q, want empty", got)
	}
	if _, ok := st.Get(id, now.Add(61*time.Minute)); ok {
		t.Error("an expired session is still served")
	}
	st.Delete(other)
	if _, ok := st.Get(other, now); ok {
		t.Error("a deleted session is still served")
	}
}
