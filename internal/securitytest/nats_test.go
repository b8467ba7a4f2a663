//go:build security

package securitytest

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stagehand-rt/stagehand/internal/natsserver"
	"github.com/stagehand-rt/stagehand/internal/testkit"
	"github.com/stagehand-rt/stagehand/internal/testserver"
	"github.com/stagehand-rt/stagehand/ivs"
	"github.com/stagehand-rt/stagehand/jobs"
	"github.com/stagehand-rt/stagehand/store"
	"github.com/stagehand-rt/stagehand/token/tokenservice"
	"github.com/stagehand-rt/stagehand/token/tokenstore"
)

// The fleet's NATS as `stagehand nats` runs it: users with the control and
// worker roles, TLS for clients. The worker side opens the store and queue
// as `stagehand worker` does (bound, without the tables it may not read).

const (
	controlPass = "control-secret-password"
	workerPass  = "worker-secret-password"
	secretKey   = "token-signing-key"
)

var testNS = ivs.Namespace{Region: "us-east-1", Account: "123456789012"}

type natsFleet struct {
	srv     *natsserver.Server
	tls     natsserver.TLSFiles
	control *nats.Conn
	st      *store.Store
	q       *jobs.Queue
	signer  string // the stored signing key, PEM
}

func startNATS(t *testing.T) *natsFleet {
	t.Helper()
	f := &natsFleet{tls: writeTLS(t, t.TempDir())}
	var err error
	f.srv, err = natsserver.Start(natsserver.Config{StoreDir: t.TempDir(), TLS: &f.tls,
		Users: []natsserver.User{{Role: natsserver.RoleControl, Password: controlPass},
			{Role: natsserver.RoleWorker, Password: workerPass}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.srv.Shutdown)
	f.control = f.connect(t, "control", controlPass)
	js, err := jetstream.New(f.control)
	if err != nil {
		t.Fatal(err)
	}
	if f.st, err = store.Open(t.Context(), js, store.Config{}); err != nil {
		t.Fatal(err)
	}
	if f.q, err = jobs.Open(t.Context(), js, jobs.Config{}); err != nil {
		t.Fatal(err)
	}
	if _, err := tokenstore.LoadSigner(t.Context(), f.st, testNS); err != nil {
		t.Fatal(err)
	}
	if f.signer, err = f.st.Secrets.Get(t.Context(), secretKey); err != nil || !strings.Contains(f.signer, "PRIVATE") {
		t.Fatalf("signing key %q: %v", f.signer, err)
	}
	return f
}

// connect logs in over TLS; an empty user logs in as nobody.
func (f *natsFleet) connect(t *testing.T, user, pass string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := f.dial(user, pass, opts...)
	if err != nil {
		t.Fatalf("%s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func (f *natsFleet) dial(user, pass string, opts ...nats.Option) (*nats.Conn, error) {
	opts = append([]nats.Option{nats.RootCAs(f.tls.CA), nats.MaxReconnects(0)}, opts...)
	if user != "" {
		opts = append(opts, nats.UserInfo(user, pass))
	}
	if user == natsserver.WorkerInboxPrefix || user == string(natsserver.RoleWorker) {
		opts = append(opts, nats.CustomInboxPrefix(natsserver.WorkerInboxPrefix))
	}
	return nats.Connect(f.srv.ClientURL(), opts...)
}

// worker connects as the worker role and reports its permission errors.
func (f *natsFleet) worker(t *testing.T) (*nats.Conn, <-chan error) {
	t.Helper()
	errs := make(chan error, 64)
	nc := f.connect(t, "worker", workerPass, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case errs <- err:
		default:
		}
	}))
	return nc, errs
}

// stillSecret checks the signing key is the one stored before the attack.
func (f *natsFleet) stillSecret(t *testing.T) {
	t.Helper()
	got, err := f.st.Secrets.Get(t.Context(), secretKey)
	if err != nil || got != f.signer {
		t.Errorf("signing key after the attack: %.40q (%v); want it unchanged", got, err)
	}
}

// refusedRequest sends a request the worker may not publish: it must get
// no answer (the server drops it) and must not see the key.
func refusedRequest(t *testing.T, nc *nats.Conn, subject string, body []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	msg, err := nc.RequestWithContext(ctx, subject, body)
	if err == nil {
		t.Errorf("%s answered %.200q", subject, msg.Data)
		if strings.Contains(string(msg.Data), "PRIVATE") || len(msg.Header) > 0 {
			t.Errorf("%s leaked the key", subject)
		}
	}
}

// waitViolation waits for the server's permissions violation naming what.
func waitViolation(t *testing.T, errs <-chan error, what string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case err := <-errs:
			if strings.Contains(err.Error(), "Permissions Violation") && strings.Contains(err.Error(), what) {
				return
			}
		case <-timeout:
			t.Fatalf("no permissions violation for %s", what)
		}
	}
}

func TestNATSRefusesStrangers(t *testing.T) {
	f := startNATS(t)
	Attack(t, "NATS client without credentials", func(t *testing.T) {
		if nc, err := f.dial("", ""); err == nil {
			nc.Close()
			t.Fatal("a client without credentials connected")
		} else if !strings.Contains(strings.ToLower(err.Error()), "authorization") {
			t.Errorf("refused with %v; want an authorization violation", err)
		}
	})
	Attack(t, "NATS client with a wrong password", func(t *testing.T) {
		for _, user := range []string{"control", "worker", "admin"} {
			if nc, err := f.dial(user, "guess"); err == nil {
				nc.Close()
				t.Errorf("%s with a wrong password connected", user)
			}
		}
	})
	Attack(t, "NATS client in plain text", func(t *testing.T) {
		// The right password, sent without TLS, must not be taken.
		nc, err := nats.Connect(f.srv.ClientURL(), nats.UserInfo("control", controlPass), nats.MaxReconnects(0),
			nats.SetCustomDialer(plainDialer{}))
		if err == nil {
			nc.Close()
			t.Fatal("a plain-text client connected")
		}
	})
	Attack(t, "NATS client trusting no CA of ours", func(t *testing.T) {
		// A client that checks the server's certificate against the system's
		// roots refuses ours: the server is who the fleet's CA says.
		nc, err := nats.Connect(f.srv.ClientURL(), nats.UserInfo("control", controlPass), nats.MaxReconnects(0),
			nats.Secure(&tls.Config{MinVersion: tls.VersionTLS12}))
		if err == nil {
			nc.Close()
			t.Fatal("connected to a server whose certificate no trusted CA signed")
		}
	})
}

// plainDialer connects in plain text whatever the server asks for.
type plainDialer struct{}

func (plainDialer) Dial(network, address string) (net.Conn, error) { return net.Dial(network, address) }

func TestNATSWorkerCannotReachSecrets(t *testing.T) {
	f := startNATS(t)
	if err := f.st.IngestConfigurations.Put(t.Context(), "ingest1", ivs.IngestConfiguration{StreamKey: "sk_secret"}); err != nil {
		t.Fatal(err)
	}
	nc, errs := f.worker(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	Attack(t, "worker KV get of the secrets bucket", func(t *testing.T) {
		if kv, err := js.KeyValue(quick(t), "stagehand_secrets"); err == nil {
			e, err := kv.Get(ctx, secretKey)
			t.Fatalf("worker bound the secrets bucket; get: %v %v", e, err)
		}
		if _, err := store.Open(quick(t), js, store.Config{Bind: true}); err == nil {
			t.Fatal("worker opened the store with its secrets table")
		}
	})
	Attack(t, "worker direct get of the signing key", func(t *testing.T) {
		refusedRequest(t, nc, "$JS.API.DIRECT.GET.KV_stagehand_secrets.$KV.stagehand_secrets."+secretKey, nil)
		refusedRequest(t, nc, "$JS.API.DIRECT.GET.KV_stagehand_secrets",
			[]byte(`{"last_by_subj":"$KV.stagehand_secrets.`+secretKey+`"}`))
		waitViolation(t, errs, "KV_stagehand_secrets")
	})
	Attack(t, "worker stream msg get of the signing key", func(t *testing.T) {
		refusedRequest(t, nc, "$JS.API.STREAM.MSG.GET.KV_stagehand_secrets",
			[]byte(`{"last_by_subj":"$KV.stagehand_secrets.`+secretKey+`"}`))
		refusedRequest(t, nc, "$JS.API.STREAM.MSG.GET.KV_stagehand_secrets", []byte(`{"seq":1}`))
	})
	Attack(t, "worker consumer on the secrets stream", func(t *testing.T) {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		if _, err := js.OrderedConsumer(cctx, "KV_stagehand_secrets", jetstream.OrderedConsumerConfig{}); err == nil {
			t.Error("worker created an ordered consumer on the secrets")
		}
		refusedRequest(t, nc, "$JS.API.CONSUMER.CREATE.KV_stagehand_secrets.spy",
			[]byte(`{"stream_name":"KV_stagehand_secrets","config":{"name":"spy","deliver_policy":"all"}}`))
		refusedRequest(t, nc, "$JS.API.CONSUMER.DURABLE.CREATE.KV_stagehand_secrets.spy",
			[]byte(`{"stream_name":"KV_stagehand_secrets","config":{"durable_name":"spy"}}`))
		s, err := f.controlJS(t).Stream(ctx, "KV_stagehand_secrets")
		if err != nil {
			t.Fatal(err)
		}
		if info, err := s.Info(ctx); err != nil || info.State.Consumers != 0 {
			t.Errorf("consumers on the secrets after the attack: %+v (%v)", info, err)
		}
	})
	Attack(t, "worker stream sourcing the secrets", func(t *testing.T) {
		sc := jetstream.StreamConfig{Name: "COPY", Subjects: []string{"copy.>"},
			Sources: []*jetstream.StreamSource{{Name: "KV_stagehand_secrets"}}}
		if _, err := js.CreateStream(quick(t), sc); err == nil {
			t.Error("worker created a stream sourcing the secrets")
		}
		sc = jetstream.StreamConfig{Name: "KV_stagehand_compositions",
			Sources: []*jetstream.StreamSource{{Name: "KV_stagehand_secrets"}}}
		if _, err := js.UpdateStream(quick(t), sc); err == nil {
			t.Error("worker made the compositions bucket source the secrets")
		}
		if _, err := f.controlJS(t).Stream(ctx, "COPY"); !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Errorf("stream COPY after the attack: %v; want none", err)
		}
	})
	Attack(t, "worker listens to the secrets and control's replies", func(t *testing.T) {
		got := make(chan *nats.Msg, 16)
		for _, subj := range []string{"$KV.stagehand_secrets.>", "_INBOX.>", ">", natsserver.TokenSubject} {
			if _, err := nc.ChanSubscribe(subj, got); err != nil {
				t.Fatal(err)
			}
			waitViolation(t, errs, subj)
		}
		// Control writes and reads the key: nothing of it may reach the worker.
		if err := f.st.Secrets.Put(ctx, secretKey, f.signer); err != nil {
			t.Fatal(err)
		}
		if _, err := f.st.Secrets.Get(ctx, secretKey); err != nil {
			t.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-got:
			t.Errorf("worker received %s: %.80q", m.Subject, m.Data)
		default:
		}
	})
	Attack(t, "worker overwrites the signing key", func(t *testing.T) {
		if _, err := js.Publish(quick(t), "$KV.stagehand_secrets."+secretKey, []byte("attacker key")); err == nil {
			t.Error("worker wrote into the secrets bucket")
		}
		f.stillSecret(t)
	})
	Attack(t, "worker reads the ingest stream keys", func(t *testing.T) {
		if _, err := js.KeyValue(quick(t), "stagehand_ingest_configurations"); err == nil {
			t.Error("worker bound the ingest configurations")
		}
		refusedRequest(t, nc, "$JS.API.DIRECT.GET.KV_stagehand_ingest_configurations.$KV.stagehand_ingest_configurations.ingest1",
			nil)
	})
	f.stillSecret(t)
}

// quick bounds a request the server is expected to drop: it is never
// answered, and waiting long proves nothing more.
func quick(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func (f *natsFleet) controlJS(t *testing.T) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(f.control)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func TestNATSWorkerCannotTamperWithJobs(t *testing.T) {
	f := startNATS(t)
	ctx := t.Context()
	if err := f.q.Submit(ctx, jobs.Job{Name: "arn:aws:ivs:us-east-1:123456789012:composition/abc"}); err != nil {
		t.Fatal(err)
	}
	nc, _ := f.worker(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stored := func(t *testing.T) {
		t.Helper()
		s, err := f.controlJS(t).Stream(ctx, jobs.StreamName)
		if err != nil {
			t.Fatal(err)
		}
		if info, err := s.Info(ctx); err != nil || info.State.Msgs != 1 || info.State.Consumers < 1 {
			t.Errorf("job stream after the attack: %+v (%v); want its job and consumer", info, err)
		}
		if _, err := s.Consumer(ctx, jobs.ConsumerName); err != nil {
			t.Errorf("workers' consumer after the attack: %v", err)
		}
	}
	Attack(t, "worker purges the job stream", func(t *testing.T) {
		if s, err := js.Stream(ctx, jobs.StreamName); err != nil {
			t.Fatal(err)
		} else if err := s.Purge(quick(t)); err == nil {
			t.Error("worker purged the jobs")
		}
		stored(t)
	})
	Attack(t, "worker deletes the job stream or its consumer", func(t *testing.T) {
		if err := js.DeleteStream(quick(t), jobs.StreamName); err == nil {
			t.Error("worker deleted the job stream")
		}
		if err := js.DeleteConsumer(quick(t), jobs.StreamName, jobs.ConsumerName); err == nil {
			t.Error("worker deleted the workers' consumer")
		}
		stored(t)
	})
	Attack(t, "worker redefines the workers' consumer", func(t *testing.T) {
		_, err := js.UpdateConsumer(quick(t), jobs.StreamName, jetstream.ConsumerConfig{Durable: jobs.ConsumerName,
			AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: jobs.SubjectPrefix + ".*", MaxDeliver: 1000})
		if err == nil {
			t.Error("worker updated the workers' consumer")
		}
		stored(t)
	})
	Attack(t, "worker writes a stage", func(t *testing.T) {
		if _, err := js.Publish(quick(t), "$KV.stagehand_stages.evil", []byte(`{"arn":"x"}`)); err == nil {
			t.Error("worker wrote into the stages bucket")
		}
		if _, err := f.st.Stages.Get(ctx, "evil"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("stage after the attack: %v; want none", err)
		}
	})
	Attack(t, "worker forges the stage cascade's messages", func(t *testing.T) {
		// A stage node answers these: an edge's report admits a subscriber
		// on the origin, an origin's order ends one on an edge.
		for _, subject := range []string{"stagehand.stage.origin.node", "stagehand.stage.edge.node"} {
			sub, err := f.control.Subscribe(subject, func(m *nats.Msg) { _ = m.Respond([]byte(`{}`)) })
			if err != nil {
				t.Fatal(err)
			}
			refusedRequest(t, nc, subject, []byte(`{"op":"join","stage":"s","edge":"e","session":"x","participant":"p"}`))
			_ = sub.Unsubscribe()
		}
	})
}

// TestNATSWorkerRole is the positive control: a worker opens the store
// and the queue as `stagehand worker` does, claims a job, writes its
// composition and gets its subscribe token from control, which refuses
// one for a composition that has ended.
func TestNATSWorkerRole(t *testing.T) {
	f := startNATS(t)
	ctx := t.Context()
	signer, err := tokenstore.LoadSigner(ctx, f.st, testNS)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := tokenservice.Serve(f.control, natsserver.TokenSubject, tokenservice.Minter{Store: f.st, Signer: signer},
		slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	stageARN := testNS.ARN(ivs.TypeStage, "stage1")
	compARN := testNS.ARN(ivs.TypeComposition, "comp1")
	if err := f.st.Stages.Put(ctx, "stage1", ivs.Stage{ARN: stageARN}); err != nil {
		t.Fatal(err)
	}
	for id, state := range map[string]string{"comp1": ivs.CompositionStarting, "ended": ivs.CompositionStopped} {
		c := ivs.Composition{ARN: testNS.ARN(ivs.TypeComposition, id), StageARN: stageARN, State: state}
		if err := f.st.Compositions.Put(ctx, id, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.q.Submit(ctx, jobs.Job{Name: compARN, StageARN: stageARN}); err != nil {
		t.Fatal(err)
	}

	nc, _ := f.worker(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	wst, err := store.Open(ctx, js, store.Config{Bind: true, Without: natsserver.WorkerDeniedTables})
	if err != nil {
		t.Fatalf("worker opens the store: %v", err)
	}
	wq, err := jobs.Open(ctx, js, jobs.Config{Bind: true})
	if err != nil {
		t.Fatalf("worker opens the queue: %v", err)
	}
	claim, err := wq.Claim(ctx)
	if err != nil || claim.Job.Name != compARN {
		t.Fatalf("worker claims: %+v, %v", claim, err)
	}
	if _, err := wst.Compositions.Update(ctx, "comp1", func(c *ivs.Composition) error {
		c.State = ivs.CompositionActive
		return nil
	}); err != nil {
		t.Fatalf("worker updates its composition: %v", err)
	}
	if err := claim.Done(ctx); err != nil {
		t.Fatalf("worker settles the job: %v", err)
	}
	tokens := tokenservice.Client{NC: nc, Subject: natsserver.TokenSubject}
	tok, err := tokens.CompositionToken(ctx, "comp1")
	if err != nil || tok == "" {
		t.Fatalf("worker's token: %q, %v", tok, err)
	}
	Attack(t, "worker asks a token for an ended or unknown composition", func(t *testing.T) {
		for _, id := range []string{"ended", "nope", ""} {
			if tok, err := tokens.CompositionToken(ctx, id); err == nil {
				t.Errorf("token for composition %q: %.20s…", id, tok)
			}
		}
		if tok, err := tokens.RecordingToken(ctx, "stage1", "someone"); err == nil {
			t.Errorf("token for an unrecorded participant: %.20s…", tok)
		}
	})
}

// TestNATSRoutesNeedTLS: a cluster node with route TLS takes a peer that
// presents a certificate of the fleet's CA, and no other.
func TestNATSRoutesNeedTLS(t *testing.T) {
	dir := t.TempDir()
	files := writeTLS(t, dir)
	addrA, addrB := freeAddr(t), freeAddr(t)
	node := func(name, addr, peer string, tf *natsserver.TLSFiles) *natsserver.Server {
		s, err := natsserver.Start(natsserver.Config{Name: name, StoreDir: t.TempDir(), TLS: tf,
			Users: []natsserver.User{{Role: natsserver.RoleControl, Password: controlPass}},
			Cluster: &natsserver.ClusterConfig{Name: "sec", Addr: addr, Routes: []string{"nats-route://" + peer},
				TLS: tf}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Shutdown)
		return s
	}
	a := node("a", addrA, addrB, &files)
	Attack(t, "route in plain text", func(t *testing.T) {
		if got := routeHandshake(t, addrA, nil); got != "" {
			t.Errorf("a plain-text route got %q", got)
		}
	})
	Attack(t, "route with a certificate of another CA", func(t *testing.T) {
		rogue := writeTLS(t, t.TempDir())
		cert, err := tls.LoadX509KeyPair(rogue.Cert, rogue.Key)
		if err != nil {
			t.Fatal(err)
		}
		got := routeHandshake(t, addrA, &tls.Config{Certificates: []tls.Certificate{cert}, InsecureSkipVerify: true, //nolint:gosec // the attacker does not care who it talks to
			MinVersion: tls.VersionTLS12})
		if got != "" {
			t.Errorf("a route with a rogue certificate got %q", got)
		}
	})
	Attack(t, "route without a certificate", func(t *testing.T) {
		got := routeHandshake(t, addrA, &tls.Config{InsecureSkipVerify: true, //nolint:gosec // as above
			MinVersion: tls.VersionTLS12})
		if got != "" {
			t.Errorf("a route without a certificate got %q", got)
		}
	})
	// The positive controls: the fleet's certificate is answered, and a
	// peer that has it joins.
	cert, err := tls.LoadX509KeyPair(files.Cert, files.Key)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if pem, err := os.ReadFile(files.CA); err != nil || !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("CA: %v", err)
	}
	if got := routeHandshake(t, addrA, &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, ServerName: "127.0.0.1",
		MinVersion: tls.VersionTLS12}); !strings.HasPrefix(got, "INFO") {
		t.Fatalf("the fleet's own certificate got %q; want INFO", got)
	}
	b := node("b", addrB, addrA, &files)
	testkit.WaitFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		if a.Routes() == 0 || b.Routes() == 0 {
			return errors.New("the two nodes have no route")
		}
		return nil
	})
}

// routeHandshake speaks the route protocol to addr, in TLS with cfg when
// given (a node with route TLS starts with the handshake); it returns the
// node's first answer, INFO or PONG, or "" when it closed without one.
func routeHandshake(t *testing.T, addr string, cfg *tls.Config) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	var c net.Conn = conn
	if cfg != nil {
		tc := tls.Client(conn, cfg)
		if err := tc.Handshake(); err != nil {
			return "" // refused during the handshake
		}
		c = tc
	}
	b, _ := json.Marshal(map[string]any{"name": "intruder", "cluster": "sec", "verbose": false, "pedantic": false})
	if _, err := c.Write([]byte("CONNECT " + string(b) + "\r\nPING\r\n")); err != nil {
		return ""
	}
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		switch {
		case err != nil, strings.HasPrefix(line, "-ERR"):
			return "" // closed: refused
		case strings.HasPrefix(line, "PONG"), strings.HasPrefix(line, "INFO"):
			return strings.TrimSpace(line)
		}
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(testserver.FreePort(t)))
}

// writeTLS writes a CA and a certificate it signed for 127.0.0.1, good
// for serving and for routes both ways.
func writeTLS(t *testing.T, dir string) natsserver.TLSFiles {
	t.Helper()
	caKey := newKey(t)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test NATS CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	key := newKey(t)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "test NATS node"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	f := natsserver.TLSFiles{CA: filepath.Join(dir, "ca.crt"), Cert: filepath.Join(dir, "node.crt"),
		Key: filepath.Join(dir, "node.key")}
	for path, blk := range map[string]*pem.Block{f.CA: {Type: "CERTIFICATE", Bytes: caDER},
		f.Cert: {Type: "CERTIFICATE", Bytes: leafDER}, f.Key: {Type: "PRIVATE KEY", Bytes: keyDER}} {
		if err := os.WriteFile(path, pem.EncodeToMemory(blk), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
