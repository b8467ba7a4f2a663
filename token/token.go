// Package token owns IVS participant tokens: it issues them and verifies
// them. A participant token is a JWT signed with ES384 (ECDSA on P-384 with
// SHA-384, the signature being the 96-byte r||s of RFC 7518). The server
// signs the tokens CreateParticipantToken returns with its own key;
// customers may sign their own with a key pair whose public half they
// registered with ImportPublicKey, naming its ARN in the header's kid.
//
// The claims are IVS's: exp and iat (seconds since 1970), jti (the
// participant id), user_id, resource (the stage ARN), topic (the stage id),
// events_url, whip_url, capabilities {allow_publish, allow_subscribe},
// attributes and version "1.0". The rules IVS sets and this package
// enforces on both sides:
//
//   - jti is 1 to 64 characters of [A-Za-z0-9_-]; user_id at most 128;
//   - exp is after iat and at most 14 days (20160 minutes) after it;
//   - attributes total at most 1 KB of keys and values;
//   - a token is refused once exp is reached, and when iat is more than a
//     minute ahead of the verifier's clock.
//
// The package knows neither stages nor stores: callers say which keys to
// trust through [Keys], and check that the stage exists and the
// participant is not revoked themselves.
package token

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits IVS sets on participant tokens.
const (
	// MaxLifetime is the longest a token may live: exp - iat.
	MaxLifetime = 14 * 24 * time.Hour
	// MaxAttributeBytes bounds the attributes, keys and values together.
	MaxAttributeBytes = 1024
	// Version is the only claim-set version there is.
	Version = "1.0"

	maxParticipantID = 64
	maxUserID        = 128
	// maxIssueSkew is how far ahead of the verifier's clock iat may be, for
	// signers whose clocks run a little fast.
	maxIssueSkew = time.Minute
)

// Reasons a token is refused. Every error Verify returns wraps exactly one
// of them; test with errors.Is. Sign's claim errors wrap ErrInvalidClaims.
var (
	ErrMalformed            = errors.New("token is not a well-formed JWT")
	ErrUnsupportedAlgorithm = errors.New("token is not signed with ES384")
	ErrUnknownKey           = errors.New("token is signed with an unknown key")
	ErrBadSignature         = errors.New("token signature is not valid")
	ErrExpired              = errors.New("token has expired")
	ErrNotYetValid          = errors.New("token is not valid yet")
	ErrInvalidClaims        = errors.New("token claims are invalid")
)

// Claims are what a participant token grants. The comments name the JWT
// claims they travel in.
type Claims struct {
	ParticipantID string            // jti
	UserID        string            // user_id
	StageARN      string            // resource
	StageID       string            // topic: the last segment of StageARN
	EventsURL     string            // events_url
	WhipURL       string            // whip_url
	Publish       bool              // capabilities.allow_publish
	Subscribe     bool              // capabilities.allow_subscribe
	Attributes    map[string]string // attributes
	IssuedAt      time.Time         // iat
	ExpiresAt     time.Time         // exp
}

// validate applies IVS's rules to claims. Sign and Verify share it, so
// whatever Sign issues, Verify accepts until it expires.
func (c Claims) validate() error {
	if err := validParticipantID(c.ParticipantID); err != nil {
		return err
	}
	if n := utf8.RuneCountInString(c.UserID); n > maxUserID {
		return invalid("user_id is %d characters long; at most %d are allowed", n, maxUserID)
	}
	if err := validStage(c.StageARN, c.StageID); err != nil {
		return err
	}
	if err := validLifetime(c.IssuedAt, c.ExpiresAt); err != nil {
		return err
	}
	return validAttributes(c.Attributes)
}

func validParticipantID(id string) error {
	if id == "" {
		return invalid("jti (the participant id) is missing")
	}
	if len(id) > maxParticipantID {
		return invalid("jti (the participant id) is %d characters long; at most %d are allowed", len(id), maxParticipantID)
	}
	for _, r := range id {
		if !isIDChar(r) {
			return invalid("jti (the participant id) %s may hold only letters, digits, '_' and '-'", excerpt(id))
		}
	}
	return nil
}

func isIDChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-'
}

// validStage checks that resource names a stage and that topic, which IVS
// sets to the stage id, agrees with it: a token naming two stages is
// refused rather than guessed at.
func validStage(arn, topic string) error {
	if arn == "" {
		return invalid("resource (the stage ARN) is missing")
	}
	id := stageID(arn)
	if id == "" {
		return invalid("resource %s is not a stage ARN (arn:aws:ivs:<region>:<account>:stage/<id>)", excerpt(arn))
	}
	if topic != id {
		return invalid("topic %s is not the id of the stage in resource (%s)", excerpt(topic), excerpt(id))
	}
	return nil
}

// stageID is the id at the end of a stage ARN, or "" when arn is not one.
func stageID(arn string) string {
	i := strings.LastIndex(arn, ":stage/")
	if !strings.HasPrefix(arn, "arn:") || i < 0 {
		return ""
	}
	id := arn[i+len(":stage/"):]
	if strings.Contains(id, "/") {
		return ""
	}
	return id
}

func validLifetime(iat, exp time.Time) error {
	switch {
	case iat.IsZero():
		return invalid("iat (the issue time) is missing")
	case exp.IsZero():
		return invalid("exp (the expiry time) is missing")
	case !exp.After(iat):
		return invalid("exp (%s) is not after iat (%s)", stamp(exp), stamp(iat))
	case exp.Sub(iat) > MaxLifetime:
		return invalid("exp (%s) is more than 14 days (20160 minutes) after iat (%s)", stamp(exp), stamp(iat))
	}
	return nil
}

func validAttributes(attrs map[string]string) error {
	n := 0
	for k, v := range attrs {
		n += len(k) + len(v)
	}
	if n > MaxAttributeBytes {
		return invalid("attributes hold %d bytes of keys and values; at most %d are allowed", n, MaxAttributeBytes)
	}
	return nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidClaims, fmt.Sprintf(format, args...))
}

// excerpt quotes a value taken from a token for an error message, cut
// short so that errors stay readable and never carry a whole token.
func excerpt(s string) string {
	const max = 64
	if len(s) > max {
		return strconv.Quote(s[:max]) + "..."
	}
	return strconv.Quote(s)
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
