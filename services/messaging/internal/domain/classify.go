// Package domain holds messaging's pure types: what an inbound text means (opt-out, opt-in,
// help, keyword or plain message), keywords, phone numbers and the standard replies.
package domain

import (
	"strings"
)

// Kind is what an inbound message asks for.
type Kind string

// The kinds of inbound message. They are also the values of the inbound metric's "kind" label.
const (
	KindOptOut  Kind = "opt_out"
	KindOptIn   Kind = "opt_in"
	KindHelp    Kind = "help"
	KindKeyword Kind = "keyword"
	KindMessage Kind = "message"
)

var (
	optOutWords = []string{"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"}
	optInWords  = []string{"START", "UNSTOP", "YES"}
	helpWords   = []string{"HELP", "INFO"}
)

// Intent is the classification of an inbound body.
type Intent struct {
	Kind Kind
	// Word is the matched word in upper case (the opt-out word, or the keyword); empty for a
	// plain message.
	Word string
	// Keyword is the matched account keyword when Kind is KindKeyword.
	Keyword Keyword
}

// Classify decides what body asks for. Only the whole body counts, trimmed of white space and
// compared case-insensitively: "STOP" and " stop\n" opt out, "please stop" is a message. The
// carrier words win over account keywords (NewKeyword refuses them anyway).
func Classify(body string, keywords []Keyword) Intent {
	word := normalizeWord(body)
	if word == "" {
		return Intent{Kind: KindMessage}
	}
	for _, set := range []struct {
		words []string
		kind  Kind
	}{{optOutWords, KindOptOut}, {optInWords, KindOptIn}, {helpWords, KindHelp}} {
		for _, w := range set.words {
			if word == w {
				return Intent{Kind: set.kind, Word: w}
			}
		}
	}
	for _, k := range keywords {
		if word == k.Word {
			return Intent{Kind: KindKeyword, Word: k.Word, Keyword: k}
		}
	}
	return Intent{Kind: KindMessage}
}

// normalizeWord returns body trimmed and upper-cased when it could be a single word (no inner
// white space), otherwise "".
func normalizeWord(body string) string {
	w := strings.TrimSpace(body)
	if w == "" || strings.ContainsFunc(w, isSpace) {
		return ""
	}
	return strings.ToUpper(w)
}

func isSpace(r rune) bool {
	return strings.TrimSpace(string(r)) == ""
}

// reserved reports whether word is a carrier word that an account keyword may not use.
func reserved(word string) bool {
	for _, set := range [][]string{optOutWords, optInWords, helpWords} {
		for _, w := range set {
			if w == word {
				return true
			}
		}
	}
	return false
}

// Standard replies. Carriers require the opt-out confirmation and the help reply; the texts are
// the same for every account.
const (
	ReplyOptOut = "You have been unsubscribed and will receive no more messages. Reply START to resubscribe."
	ReplyOptIn  = "You have been resubscribed. Reply STOP to unsubscribe, HELP for help."
	ReplyHelp   = "Reply STOP to unsubscribe or START to resubscribe. Msg & data rates may apply."
)
