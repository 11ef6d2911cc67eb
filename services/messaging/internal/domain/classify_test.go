package domain_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/customertext/webhooks/services/messaging/internal/domain"
)

func keywords(t testing.TB) []domain.Keyword {
	t.Helper()
	join, err := domain.NewKeyword("join", []string{"Events"}, "Welcome!")
	if err != nil {
		t.Fatalf("new keyword: %v", err)
	}
	vip, err := domain.NewKeyword("VIP2026", []string{"vip", "customers"}, "")
	if err != nil {
		t.Fatalf("new keyword: %v", err)
	}
	return []domain.Keyword{join, vip}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	kws := keywords(t)
	tests := []struct {
		body string
		want domain.Intent
	}{
		{"STOP", domain.Intent{Kind: domain.KindOptOut, Word: "STOP"}},
		{"  stop\n", domain.Intent{Kind: domain.KindOptOut, Word: "STOP"}},
		{"StopAll", domain.Intent{Kind: domain.KindOptOut, Word: "STOPALL"}},
		{"unsubscribe", domain.Intent{Kind: domain.KindOptOut, Word: "UNSUBSCRIBE"}},
		{"Cancel", domain.Intent{Kind: domain.KindOptOut, Word: "CANCEL"}},
		{"end", domain.Intent{Kind: domain.KindOptOut, Word: "END"}},
		{"QUIT", domain.Intent{Kind: domain.KindOptOut, Word: "QUIT"}},
		{"optout", domain.Intent{Kind: domain.KindOptOut, Word: "OPTOUT"}},
		{"\tREVOKE ", domain.Intent{Kind: domain.KindOptOut, Word: "REVOKE"}},
		{"start", domain.Intent{Kind: domain.KindOptIn, Word: "START"}},
		{"Unstop", domain.Intent{Kind: domain.KindOptIn, Word: "UNSTOP"}},
		{"yes", domain.Intent{Kind: domain.KindOptIn, Word: "YES"}},
		{"help", domain.Intent{Kind: domain.KindHelp, Word: "HELP"}},
		{"Info", domain.Intent{Kind: domain.KindHelp, Word: "INFO"}},
		{"Join", domain.Intent{Kind: domain.KindKeyword, Word: "JOIN", Keyword: kws[0]}},
		{" vip2026 ", domain.Intent{Kind: domain.KindKeyword, Word: "VIP2026", Keyword: kws[1]}},
		{"please stop", domain.Intent{Kind: domain.KindMessage}},
		{"STOP!", domain.Intent{Kind: domain.KindMessage}},
		{"S TOP", domain.Intent{Kind: domain.KindMessage}},
		{"join now", domain.Intent{Kind: domain.KindMessage}},
		{"", domain.Intent{Kind: domain.KindMessage}},
		{"   ", domain.Intent{Kind: domain.KindMessage}},
		{"What time do you open?", domain.Intent{Kind: domain.KindMessage}},
		{"STOP\u00a0", domain.Intent{Kind: domain.KindOptOut, Word: "STOP"}},
	}
	for _, tc := range tests {
		t.Run(tc.body, func(t *testing.T) {
			got := domain.Classify(tc.body, kws)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Classify(%q) mismatch (-want +got):\n%s", tc.body, diff)
			}
		})
	}
}

func TestNewKeyword(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		word    string
		groups  []string
		reply   string
		want    domain.Keyword
		wantErr string
	}{
		{name: "normalised", word: " join ", groups: []string{" Events ", "Events", "vip"}, reply: " hi ",
			want: domain.Keyword{Word: "JOIN", Groups: []string{"Events", "vip"}, Reply: "hi"}},
		{name: "unicode letters", word: "café", groups: []string{"g"}, want: domain.Keyword{Word: "CAFÉ", Groups: []string{"g"}}},
		{name: "empty", word: " ", groups: []string{"g"}, wantErr: "keyword.keyword"},
		{name: "space inside", word: "join now", groups: []string{"g"}, wantErr: "keyword.keyword"},
		{name: "punctuation", word: "join!", groups: []string{"g"}, wantErr: "keyword.keyword"},
		{name: "reserved stop", word: "stop", groups: []string{"g"}, wantErr: "reserved"},
		{name: "reserved help", word: "HELP", groups: []string{"g"}, wantErr: "reserved"},
		{name: "too long", word: strings.Repeat("A", domain.MaxKeywordChars+1), groups: []string{"g"}, wantErr: "keyword.keyword"},
		{name: "no groups", word: "JOIN", wantErr: "keyword.groups"},
		{name: "blank group", word: "JOIN", groups: []string{" "}, wantErr: "keyword.groups"},
		{name: "group with ;", word: "JOIN", groups: []string{"a;b"}, wantErr: "keyword.groups"},
		{name: "group with control", word: "JOIN", groups: []string{"a\u200e"}, wantErr: "keyword.groups"},
		{name: "long reply", word: "JOIN", groups: []string{"g"}, reply: strings.Repeat("x", domain.MaxBodyChars+1), wantErr: "keyword.reply"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := domain.NewKeyword(tc.word, tc.groups, tc.reply)
			if tc.wantErr != "" {
				if err == nil || !errors.Is(err, domain.ErrInvalid) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got error %v, want ErrInvalid mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want nil", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("keyword mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNormalizePhone(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw, want string
		wantErr   bool
	}{
		{raw: "+15551234567", want: "+15551234567"},
		{raw: "+1 (555) 123-4567", want: "+15551234567"},
		{raw: "(202) 555-0142", want: "+12025550142"},
		{raw: "+442079460958", want: "+442079460958"},
		{raw: "", wantErr: true},
		{raw: "hello", wantErr: true},
		{raw: "+1555", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.raw, func(t *testing.T) {
			got, err := domain.NormalizePhone("From", tc.raw, "US")
			if tc.wantErr {
				if !errors.Is(err, domain.ErrInvalid) || !strings.Contains(err.Error(), "From") {
					t.Fatalf("got (%q, %v), want ErrInvalid naming From", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("got (%q, %v), want %q", got, err, tc.want)
			}
		})
	}
}

func TestValidateBody(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		body    string
		wantErr bool
	}{
		{"empty", "", false},
		{"limit in characters", strings.Repeat("é", domain.MaxBodyChars), false},
		{"over limit", strings.Repeat("a", domain.MaxBodyChars+1), true},
		{"invalid utf8", "\xff", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := domain.ValidateBody("Body", tc.body)
			if got := err != nil; got != tc.wantErr {
				t.Errorf("got error %v, want error %v", err, tc.wantErr)
			}
		})
	}
}

// FuzzClassify checks the matcher's invariants on arbitrary bodies: it never panics, a match
// is always the whole trimmed body compared case-insensitively, and surrounding white space or
// a change of case never changes the outcome.
func FuzzClassify(f *testing.F) {
	for _, s := range []string{"STOP", " stop ", "join", "Join now", "", "ß", "ǅ", "\u00a0help\u00a0", "İ", "VIP2026", "\xff"} {
		f.Add(s)
	}
	kws := keywords(f)
	f.Fuzz(func(t *testing.T, body string) {
		got := domain.Classify(body, kws)
		switch got.Kind {
		case domain.KindMessage:
			if got.Word != "" {
				t.Fatalf("Classify(%q): message with word %q", body, got.Word)
			}
		case domain.KindOptOut, domain.KindOptIn, domain.KindHelp, domain.KindKeyword:
			if !strings.EqualFold(strings.TrimSpace(body), got.Word) && strings.ToUpper(strings.TrimSpace(body)) != got.Word {
				t.Fatalf("Classify(%q) = %+v: the word is not the whole trimmed body", body, got)
			}
			if got.Kind == domain.KindKeyword && got.Keyword.Word != got.Word {
				t.Fatalf("Classify(%q): keyword %q but word %q", body, got.Keyword.Word, got.Word)
			}
		default:
			t.Fatalf("Classify(%q): unknown kind %q", body, got.Kind)
		}
		if padded := domain.Classify(" \t"+body+"\n ", kws); padded.Kind != got.Kind || padded.Word != got.Word {
			t.Fatalf("padding changed the outcome of %q: got %+v, want %+v", body, padded, got)
		}
		if utf8.ValidString(body) {
			if lower := domain.Classify(strings.ToLower(body), kws); got.Kind != domain.KindMessage && lower.Kind != got.Kind {
				t.Fatalf("lower case changed the outcome of %q: got %+v, want %+v", body, lower, got)
			}
		}
	})
}

// FuzzNewKeyword checks that every keyword NewKeyword accepts is matched by its own word in any
// case, and never shadows a carrier word.
func FuzzNewKeyword(f *testing.F) {
	for _, s := range []string{"JOIN", "stop", "café", "ǆ", "ß", "İ", "a1", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, word string) {
		k, err := domain.NewKeyword(word, []string{"g"}, "")
		if err != nil {
			return
		}
		for _, body := range []string{k.Word, strings.ToLower(k.Word), " " + k.Word + " "} {
			got := domain.Classify(body, []domain.Keyword{k})
			if got.Kind != domain.KindKeyword || got.Word != k.Word {
				t.Fatalf("keyword %q (from %q): Classify(%q) = %+v, want the keyword", k.Word, word, body, got)
			}
		}
	})
}

// FuzzNormalizePhone checks the phone parser on arbitrary carrier input: it never panics, what
// it accepts is E.164, and normalising an accepted number again gives the same number.
func FuzzNormalizePhone(f *testing.F) {
	for _, s := range []string{"+15551234567", "(555) 123-4567", "+44 20 7946 0958", "", "+", "++1", "1-800-FLOWERS", "+1555\x00", "٠١٢٣"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := domain.NormalizePhone("From", raw, "US")
		if err != nil {
			if !errors.Is(err, domain.ErrInvalid) {
				t.Fatalf("NormalizePhone(%q): error %v does not wrap ErrInvalid", raw, err)
			}
			return
		}
		if len(got) < 3 || got[0] != '+' || strings.Trim(got[1:], "0123456789") != "" {
			t.Fatalf("NormalizePhone(%q) = %q, want E.164", raw, got)
		}
		again, err := domain.NormalizePhone("From", got, "US")
		if err != nil || again != got {
			t.Fatalf("NormalizePhone(%q) = %q, then %q (%v); want a fixed point", raw, got, again, err)
		}
	})
}
