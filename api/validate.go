package api

import (
	"encoding/base64"
	"fmt"
	"regexp"
	"slices"

	"github.com/stagehand-rt/stagehand/ivs"
)

var (
	namePattern      = regexp.MustCompile(`^[a-zA-Z0-9-_]*$`)
	tokenIDPattern   = regexp.MustCompile(`^[a-zA-Z0-9-_]*$`)
	nextTokenPattern = regexp.MustCompile(`^[a-zA-Z0-9+/=_-]*$`)
	sessionPattern   = regexp.MustCompile(`^st-[a-zA-Z0-9]+$`)
)

func (v *violations) name(field string, s *string) {
	if s == nil {
		return
	}
	v.length(field, *s, 0, 128)
	if !namePattern.MatchString(*s) {
		v.add(field, *s, "Member must satisfy regular expression pattern: [a-zA-Z0-9-_]*")
	}
}

func (v *violations) length(field, s string, lo, hi int) {
	switch {
	case len(s) < lo:
		v.add(field, s, fmt.Sprintf("Member must have length greater than or equal to %d", lo))
	case len(s) > hi:
		v.add(field, truncate(s), fmt.Sprintf("Member must have length less than or equal to %d", hi))
	}
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

func (v *violations) required(field string, present bool) bool {
	if !present {
		v.add(field, "null", "Member must not be null")
	}
	return present
}

func (v *violations) intRange(field string, x *int, lo, hi int) {
	if x == nil {
		return
	}
	if *x < lo {
		v.add(field, *x, fmt.Sprintf("Member must have value greater than or equal to %d", lo))
	}
	if *x > hi {
		v.add(field, *x, fmt.Sprintf("Member must have value less than or equal to %d", hi))
	}
}

func (v *violations) enum(field, s string, allowed ...string) {
	if !slices.Contains(allowed, s) {
		v.add(field, s, fmt.Sprintf("Member must satisfy enum value set: %v", allowed))
	}
}

func (v *violations) tags(field string, t map[string]string) {
	if len(t) > 50 {
		v.add(field, fmt.Sprintf("map of %d entries", len(t)), "Member must have at most 50 entries")
	}
	for k, val := range t {
		v.length(field+".key", k, 1, 128)
		v.length(field+"."+k, val, 0, 256)
	}
}

// attributes are participant attributes: at most 1 KB of keys and values.
func (v *violations) attributes(field string, a map[string]string) {
	n := 0
	for k, val := range a {
		n += len(k) + len(val)
	}
	if n > 1024 {
		v.add(field, fmt.Sprintf("%d bytes of keys and values", n), "Member must total at most 1024 bytes")
	}
}

// arn checks an ARN's syntax and type; whether it exists is the
// operation's business (ResourceNotFoundException).
func (v *violations) arn(field, s, typ string) (ivs.ARN, bool) {
	a, err := ivs.ParseARN(s)
	if err != nil || a.Type != typ {
		v.add(field, truncate(s),
			fmt.Sprintf("Member must satisfy regular expression pattern: arn:aws:ivs:[a-z0-9-]+:[0-9]+:%s/[a-zA-Z0-9-]+", typ))
		return ivs.ARN{}, false
	}
	return a, true
}

func (v *violations) sessionID(field, s string) {
	if len(s) != 16 || !sessionPattern.MatchString(s) {
		v.add(field, truncate(s), "Member must satisfy regular expression pattern: st-[a-zA-Z0-9]+ with length 16")
	}
}

func (v *violations) participantID(field, s string) {
	v.length(field, s, 1, 64)
	if !tokenIDPattern.MatchString(s) {
		v.add(field, truncate(s), "Member must satisfy regular expression pattern: [a-zA-Z0-9-_]*")
	}
}

// page is a List operation's pagination: the key to continue after and
// the page size.
type page struct {
	after string
	limit int
}

func (v *violations) page(nextToken *string, maxResults *int, def int) page {
	p := page{limit: def}
	if maxResults != nil {
		v.intRange("maxResults", maxResults, 1, 100)
		p.limit = *maxResults
	}
	if nextToken != nil && *nextToken != "" {
		t := *nextToken
		b, err := base64.RawURLEncoding.DecodeString(t)
		if len(t) > 1024 || !nextTokenPattern.MatchString(t) || err != nil {
			v.add("nextToken", truncate(t), "Member must be a token returned by this operation")
		}
		p.after = string(b)
	}
	return p
}

// nextToken continues a listing after key; "" when nothing is left.
func nextToken(key string, more bool) string {
	if !more {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString([]byte(key))
}

func strOr(s *string, def string) string {
	if s == nil {
		return def
	}
	return *s
}

func intOr(x *int, def int) int {
	if x == nil {
		return def
	}
	return *x
}

func tagsOrEmpty(t map[string]string) ivs.Tags {
	if t == nil {
		return ivs.Tags{}
	}
	return t
}

func attrsOrEmpty(a map[string]string) map[string]string {
	if a == nil {
		return map[string]string{}
	}
	return a
}
