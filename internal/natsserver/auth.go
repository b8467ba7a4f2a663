package natsserver

import (
	"crypto/tls"
	"errors"
	"fmt"

	"github.com/nats-io/nats-server/v2/server"
)

// Role is what a client of the fleet's NATS may do.
type Role string

// Roles. The user name of a role is the role's name.
const (
	// RoleControl is `serve` (API and stage): it creates the buckets and
	// streams and holds the token-signing key, so it may do anything.
	RoleControl Role = "control"
	// RoleWorker is `stagehand worker`: it claims jobs, reads the stages
	// and configurations it composes, writes compositions and recordings,
	// and asks control for its subscribe tokens. It never reaches the
	// secrets or the ingest stream keys, and never creates, updates,
	// purges or deletes a stream: a stream it could configure could source
	// the secrets.
	RoleWorker Role = "worker"
)

// WorkerInboxPrefix is the inbox prefix worker clients must use: a worker
// may subscribe to its own inboxes only, never to control's replies.
const WorkerInboxPrefix = "_INBOX_worker"

// WorkerDeniedTables are the store's tables no worker may read or write:
// the token-signing key and the ingest stream keys. Their buckets are
// stagehand_<table>.
var WorkerDeniedTables = []string{"secrets", "ingest_configurations"}

// User is one client credential.
type User struct {
	Role     Role
	Password string
}

// TLSFiles are PEM files: the server's certificate and key, and the CA that
// signed every node's and (for routes) every peer's certificate.
type TLSFiles struct {
	Cert, Key, CA string
}

func (r Role) permissions() (*server.Permissions, error) {
	switch r {
	case RoleControl:
		return nil, nil
	case RoleWorker:
		return workerPermissions(), nil
	}
	return nil, fmt.Errorf("natsserver: unknown role %q", r)
}

// workerPermissions allow the JetStream API calls a bound worker makes and
// deny every one that names a denied bucket's stream, in any position.
func workerPermissions() *server.Permissions {
	allow := []string{
		"$JS.API.INFO",
		"$JS.API.STREAM.INFO.*",
		"$JS.API.STREAM.MSG.GET.*",
		"$JS.API.DIRECT.GET.*", "$JS.API.DIRECT.GET.*.>",
		"$JS.API.CONSUMER.*.*", "$JS.API.CONSUMER.*.*.>",
		"$JS.ACK.>", "$JS.FC.>",
		"$KV.stagehand_compositions.>", "$KV.stagehand_participant_recordings.>", "$KV.stagehand_stops.>",
		"stagehand.jobs.start.*", "stagehand.jobs.owner.>", TokenSubject,
		WorkerInboxPrefix + ".>",
	}
	deny := []string{
		// The workers' shared durable consumer is control's to define and
		// keep; workers fetch from it and read its info.
		"$JS.API.CONSUMER.CREATE.STAGEHAND_JOBS.>", "$JS.API.CONSUMER.DURABLE.CREATE.STAGEHAND_JOBS.>",
		"$JS.API.CONSUMER.DELETE.STAGEHAND_JOBS.>", "$JS.API.CONSUMER.PAUSE.STAGEHAND_JOBS.>",
	}
	for _, t := range WorkerDeniedTables {
		b := "stagehand_" + t
		s := "KV_" + b
		deny = append(deny, "$KV."+b+".>",
			"$JS.API.*."+s, "$JS.API.*."+s+".>",
			"$JS.API.*.*."+s, "$JS.API.*.*."+s+".>",
			"$JS.API.*.*.*."+s, "$JS.API.*.*.*."+s+".>")
	}
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: allow, Deny: deny},
		Subscribe: &server.SubjectPermission{Allow: []string{WorkerInboxPrefix + ".>", "stagehand.jobs.owner.>"}},
	}
}

// TokenSubject is where control answers workers' requests for subscribe
// tokens (package tokenservice).
const TokenSubject = "stagehand.tokens.subscribe"

func users(us []User) ([]*server.User, error) {
	out := make([]*server.User, 0, len(us))
	for _, u := range us {
		if u.Password == "" {
			return nil, fmt.Errorf("natsserver: user %s: empty password", u.Role)
		}
		p, err := u.Role.permissions()
		if err != nil {
			return nil, err
		}
		out = append(out, &server.User{Username: string(u.Role), Password: u.Password, Permissions: p})
	}
	return out, nil
}

// tlsConfig loads f; verify makes peers present a certificate the CA
// signed (routes), and the CA then also verifies the peers this server
// dials.
func tlsConfig(f TLSFiles, verify bool) (*tls.Config, error) {
	if f.Cert == "" || f.Key == "" {
		return nil, errors.New("natsserver: TLS needs a certificate and a key")
	}
	if verify && f.CA == "" {
		return nil, errors.New("natsserver: route TLS needs a CA")
	}
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: f.Cert, KeyFile: f.Key, CaFile: f.CA,
		Verify: verify, Timeout: 5})
	if err != nil {
		return nil, fmt.Errorf("natsserver: TLS: %w", err)
	}
	tc.RootCAs = tc.ClientCAs
	return tc, nil
}
