// Package ivs holds the resource model of the IVS Real-Time API as it
// travels on the wire and sits in the store: stages, sessions, participants
// and their events, encoder/storage/ingest configurations, public keys and
// compositions, with their JSON names, enums and IVS's documented defaults.
// It also owns the identifiers: ARNs, resource ids, session ids.
//
// The package holds data only. Validation of requests and the rules of each
// operation live in package api; workers read and update compositions
// through package store.
package ivs

import (
	"crypto/rand"
	"fmt"
	"regexp"
	"strings"
)

// Resource types, as they appear in ARNs.
const (
	TypeStage                = "stage"
	TypeComposition          = "composition"
	TypeEncoderConfiguration = "encoder-configuration"
	TypeStorageConfiguration = "storage-configuration"
	TypeIngestConfiguration  = "ingest-configuration"
	TypePublicKey            = "public-key"
	TypeChannel              = "channel" // an IVS low-latency channel, referenced by compositions
)

// ARN is an IVS resource name: arn:aws:ivs:<region>:<account>:<type>/<id>.
type ARN struct {
	Region  string
	Account string
	Type    string
	ID      string
}

var arnPattern = regexp.MustCompile(`^arn:aws:ivs:([a-z0-9-]+):([0-9]+):([a-z-]+)/([a-zA-Z0-9-]+)$`)

// ParseARN splits an IVS ARN; it refuses anything else.
func ParseARN(s string) (ARN, error) {
	m := arnPattern.FindStringSubmatch(s)
	if m == nil || len(s) > 128 {
		return ARN{}, fmt.Errorf("%q is not an IVS ARN (arn:aws:ivs:<region>:<account>:<type>/<id>)", s)
	}
	return ARN{Region: m[1], Account: m[2], Type: m[3], ID: m[4]}, nil
}

func (a ARN) String() string {
	return "arn:aws:ivs:" + a.Region + ":" + a.Account + ":" + a.Type + "/" + a.ID
}

// Namespace is the region and account that shape the ARNs a server issues.
type Namespace struct {
	Region  string
	Account string
}

// ARN names a resource of this namespace.
func (n Namespace) ARN(typ, id string) string {
	return ARN{Region: n.Region, Account: n.Account, Type: typ, ID: id}.String()
}

// Owns reports whether a is a resource of type typ in this namespace.
func (n Namespace) Owns(a ARN, typ string) bool {
	return a.Region == n.Region && a.Account == n.Account && a.Type == typ
}

const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// RandomString returns n characters of [a-zA-Z0-9] from crypto/rand.
func RandomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand: " + err.Error()) // never fails on Linux
	}
	var s strings.Builder
	s.Grow(n)
	for _, c := range b {
		// 62 symbols: the bias of c%62 is below 1 in 4 and harmless for ids.
		s.WriteByte(alnum[int(c)%len(alnum)])
	}
	return s.String()
}

// NewID returns a resource id as IVS makes them: 12 alphanumeric characters.
func NewID() string { return RandomString(12) }

// NewSessionID returns a stage session id: "st-" and 13 alphanumerics.
func NewSessionID() string { return "st-" + RandomString(13) }
