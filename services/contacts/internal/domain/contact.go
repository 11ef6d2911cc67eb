// Package domain holds the contacts service's pure types: contacts, groups and the new_contact
// sources, with validating constructors for every value that comes from outside (phones, names,
// emails, group names, account ids, CSV imports). It knows nothing about transports or storage.
package domain

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Errors the application reports; the gRPC port maps each to one status code.
var (
	// ErrNotFound means the contact (or group) does not exist in the account.
	ErrNotFound = errors.New("not found")
	// ErrDuplicatePhone means another contact of the account already has the phone.
	ErrDuplicatePhone = errors.New("duplicate phone")
	// ErrGroupExists means the account already has a group of that name.
	ErrGroupExists = errors.New("group already exists")
)

// InvalidError reports a bad input value, naming the offending field.
type InvalidError struct {
	Field  string
	Reason string
}

func (e *InvalidError) Error() string { return e.Field + ": " + e.Reason }

// Invalid returns an *InvalidError for field.
func Invalid(field, format string, args ...any) error {
	return &InvalidError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Source says how a contact was added: the "source" of the new_contact event.
type Source string

// The new_contact sources.
const (
	SourceManual       Source = "manual"
	SourceImport       Source = "import"
	SourceKeywordOptIn Source = "keyword_optin"
	SourceInbound      Source = "inbound"
)

// ParseSource validates a source name; empty means manual.
func ParseSource(s string) (Source, error) {
	switch Source(s) {
	case "":
		return SourceManual, nil
	case SourceManual, SourceImport, SourceKeywordOptIn, SourceInbound:
		return Source(s), nil
	}
	return "", Invalid("source", "must be one of manual, import, keyword_optin, inbound")
}

// Contact is one person in an account's address book.
type Contact struct {
	ID        string
	AccountID string
	FirstName string
	LastName  string
	// Phone is E.164 and unique within the account.
	Phone string
	Email string
	// Groups are group names, sorted case-insensitively.
	Groups     []string
	OptedOut   bool
	CreateTime time.Time
	UpdateTime time.Time
}

// ContactInput is the caller-supplied part of a contact, not yet validated.
type ContactInput struct {
	FirstName string
	LastName  string
	Phone     string
	Email     string
	Groups    []string
	OptedOut  bool
}

// Fields holds validated, editable contact fields.
type Fields struct {
	FirstName string
	LastName  string
	Phone     string
	Email     string
	Groups    []string
}

// NewFields validates every editable field of in, parsing the phone for region.
func NewFields(in ContactInput, region string) (Fields, error) {
	var f Fields
	var err error
	if f.FirstName, err = NewName("first_name", in.FirstName); err != nil {
		return Fields{}, err
	}
	if f.LastName, err = NewName("last_name", in.LastName); err != nil {
		return Fields{}, err
	}
	if f.Phone, err = NormalizePhone(in.Phone, region); err != nil {
		return Fields{}, err
	}
	if f.Email, err = NewEmail(in.Email); err != nil {
		return Fields{}, err
	}
	if f.Groups, err = NewGroupNames("groups", in.Groups); err != nil {
		return Fields{}, err
	}
	return f, nil
}

// The editable field names: update mask paths and changed_fields values, in canonical order.
const (
	FieldFirstName = "first_name"
	FieldLastName  = "last_name"
	FieldPhone     = "phone"
	FieldEmail     = "email"
	FieldGroups    = "groups"
)

// EditableFields lists the editable field names in canonical order.
func EditableFields() []string {
	return []string{FieldFirstName, FieldLastName, FieldPhone, FieldEmail, FieldGroups}
}

// Apply returns c with the fields named in paths taken from f, and the names of the fields whose
// value actually changed, in canonical order (none when the update changes nothing). Groups are
// compared as case-insensitive sets.
func (c Contact) Apply(f Fields, paths []string) (Contact, []string) {
	has := func(p string) bool { return slices.Contains(paths, p) }
	next := c
	next.Groups = slices.Clone(c.Groups)
	var changed []string
	if has(FieldFirstName) && c.FirstName != f.FirstName {
		next.FirstName = f.FirstName
		changed = append(changed, FieldFirstName)
	}
	if has(FieldLastName) && c.LastName != f.LastName {
		next.LastName = f.LastName
		changed = append(changed, FieldLastName)
	}
	if has(FieldPhone) && c.Phone != f.Phone {
		next.Phone = f.Phone
		changed = append(changed, FieldPhone)
	}
	if has(FieldEmail) && c.Email != f.Email {
		next.Email = f.Email
		changed = append(changed, FieldEmail)
	}
	if has(FieldGroups) && !SameGroups(c.Groups, f.Groups) {
		next.Groups = SortGroups(slices.Clone(f.Groups))
		changed = append(changed, FieldGroups)
	}
	return next, changed
}

// NewUpdateMask validates update mask paths: a non-empty subset of the editable fields, or "*"
// for all of them. The result is deduplicated, in canonical order.
func NewUpdateMask(paths []string) ([]string, error) {
	if len(paths) == 0 {
		return nil, Invalid("update_mask", "is required (paths among first_name, last_name, phone, email, groups)")
	}
	var out []string
	for _, p := range paths {
		if p == "*" {
			return EditableFields(), nil
		}
		if !slices.Contains(EditableFields(), p) {
			return nil, Invalid("update_mask", "unknown path %q (want first_name, last_name, phone, email or groups)", p)
		}
	}
	for _, f := range EditableFields() {
		if slices.Contains(paths, f) {
			out = append(out, f)
		}
	}
	return out, nil
}

// SameGroups reports whether a and b name the same groups, ignoring order and case.
func SameGroups(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	x, y := lowerSorted(a), lowerSorted(b)
	return slices.Equal(x, y)
}

func lowerSorted(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = strings.ToLower(n)
	}
	slices.Sort(out)
	return out
}

// SortGroups sorts group names case-insensitively (ties by byte order) and returns them.
func SortGroups(names []string) []string {
	slices.SortFunc(names, func(a, b string) int {
		if c := strings.Compare(strings.ToLower(a), strings.ToLower(b)); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	return names
}

// Group is a named set of contacts; names are unique per account, ignoring case.
type Group struct {
	ID   string
	Name string
}

// WithPrefix returns err with prefix put before its field name when err is an *InvalidError
// (e.g. "phone" becomes "contact.phone"), and err unchanged otherwise.
func WithPrefix(prefix string, err error) error {
	var ie *InvalidError
	if !errors.As(err, &ie) {
		return err
	}
	return &InvalidError{Field: prefix + ie.Field, Reason: ie.Reason}
}
