// The stage cluster. Any number of stage servers share the NATS cluster;
// each live stage is hosted by one of them at a time, the holder of the
// stage's lease in the store (compare-and-set, renewed every LeaseTTL/4,
// lapsing LeaseTTL after its last renewal). A node that cannot renew its
// lease before it lapses stops serving the stage: there is never a second
// host while the first still serves.
//
// Participants may reach any node. A WHIP or WHEP request for a stage
// hosted elsewhere is answered 307 to the host's own URL; one for a stage
// nobody hosts is placed on the least-loaded live node (each node announces
// its load in the store every second). A stage whose node died is free once
// its lease lapsed: the next request places it again, and the new host ends
// the session the dead one left open (its participants LEFT; they JOIN a
// new session as they reconnect). The events WebSocket is served by any
// node: the host publishes its events on NATS (feed.go).

package stage

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/stagehand-rt/stagehand/internal/refusal"
	"github.com/stagehand-rt/stagehand/store"
	"github.com/stagehand-rt/stagehand/token"
)

// ClusterConfig makes a stage server one node of a stage cluster.
type ClusterConfig struct {
	// NodeID names this node; default host-pid-random.
	NodeID string
	// NodeURL is this node's own public base URL (http[s]://host:port):
	// other nodes redirect the participants of the stages it hosts there.
	NodeURL string
	// LeaseTTL is how long a stage stays with a node that stopped renewing
	// its lease (it died, or lost NATS). Default 4 s.
	LeaseTTL time.Duration
	// Role is what the node takes: RoleAny (default) hosts stages and
	// serves subscribers; RoleOrigin hosts stages and sends subscribers to
	// the other nodes while any can take them; RoleEdge hosts no stage and
	// serves subscribers, relayed from the origins.
	Role Role
	// RelaySigner signs the tokens this node relays stages with (the
	// server's key). Without it the node serves no stage it does not host:
	// their subscribers are sent to the host.
	RelaySigner *token.Signer
}

// Role is a stage node's part in the cluster.
type Role string

// Roles of a stage node.
const (
	RoleAny    Role = "any"
	RoleOrigin Role = "origin"
	RoleEdge   Role = "edge"
)

// ParseRole reads a role flag ("" is RoleAny).
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case "", RoleAny:
		return RoleAny, nil
	case RoleOrigin, RoleEdge:
		return r, nil
	}
	return "", fmt.Errorf("stage role %q: want any, origin or edge", s)
}

func (r Role) hosts() bool      { return r != RoleEdge }
func (r Role) subscribes() bool { return r != RoleOrigin }

func (c ClusterConfig) withDefaults() ClusterConfig {
	if c.NodeID == "" {
		host, _ := os.Hostname()
		b := make([]byte, 3)
		_, _ = rand.Read(b)
		c.NodeID = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = 4 * time.Second
	}
	if c.Role == "" {
		c.Role = RoleAny
	}
	return c
}

// lease says which node hosts a stage; key: the stage id.
type lease struct {
	Node  string    `json:"node"`
	URL   string    `json:"url"`
	Since time.Time `json:"since"`
}

// nodeInfo is what a node announces of itself; key: the node id.
type nodeInfo struct {
	ID           string `json:"id"`
	URL          string `json:"url"`
	Stages       int    `json:"stages"`
	Participants int    `json:"participants"`
	Peers        int    `json:"peers"`
	Role         Role   `json:"role,omitempty"`
	Draining     bool   `json:"draining,omitempty"`
	// At is when the node announced this; a node silent for
	// silentAfter is taken for dead before its entry expires.
	At time.Time `json:"at"`
}

// Timings of the cluster's bookkeeping.
const (
	announceEvery = time.Second
	// releaseAfter is how long a node keeps the lease of a stage it no
	// longer has a room for: a participant coming back soon finds it here.
	releaseAfter = 10 * time.Second
	// silentAfter: a node that has not announced itself for this long is
	// not sent participants (it died, or lost NATS).
	silentAfter = 5 * announceEvery / 2
	// placeQuery names the node a redirect placed a stage on.
	placeQuery = "node"
	// janitorEvery is how often a node ends the sessions of stages whose
	// node died and that nobody came back to (no lease, session open).
	janitorEvery = 30 * time.Second
)

var errLeaseLost = errors.New("the stage's lease is held by another node")

type cluster struct {
	s      *Server
	cfg    ClusterConfig
	nc     *nats.Conn
	leases *store.Table[lease]
	nodes  *store.Table[nodeInfo]
	snap   *nats.Subscription // snapshot requests (feed.go)
	// reports from edges, orders from origins (remote.go)
	reports, orders *nats.Subscription

	draining atomic.Bool

	mu      sync.Mutex
	held    map[string]*held // stage id → our lease
	remotes map[string]*peer // the subscribers edges serve, by edgeRef.key
	sent    map[string]int   // subscribers sent to each node since it last announced
	// silentEdges: since when each edge serving remotes has been silent.
	silentEdges map[string]time.Time
	// others is the last listing of the other live nodes (liveNodes).
	others   []nodeInfo
	othersAt time.Time
}

// held is a lease this node holds.
type held struct {
	until  time.Time // it surely has not lapsed before then
	idleAt time.Time // when the stage's room went (zero while it has one)
}

func newCluster(ctx context.Context, s *Server, cfg ClusterConfig, st *store.Store, nc *nats.Conn) (*cluster, error) {
	if nc == nil {
		return nil, errors.New("stage: a cluster node needs NATS")
	}
	cfg = cfg.withDefaults()
	if _, err := url.Parse(cfg.NodeURL); err != nil || cfg.NodeURL == "" {
		return nil, fmt.Errorf("stage: node URL %q: want http[s]://host:port", cfg.NodeURL)
	}
	leases, err := store.OpenTable[lease](ctx, st, "stage_leases", cfg.LeaseTTL)
	if err != nil {
		return nil, err
	}
	nodes, err := store.OpenTable[nodeInfo](ctx, st, "stage_nodes", max(cfg.LeaseTTL, 3*announceEvery))
	if err != nil {
		return nil, err
	}
	cl := &cluster{s: s, cfg: cfg, nc: nc, leases: leases, nodes: nodes, held: map[string]*held{},
		remotes: map[string]*peer{}, sent: map[string]int{}, silentEdges: map[string]time.Time{}}
	if cl.snap, err = nc.Subscribe(snapshotSubject(nodeKey(cfg.NodeID), "*"), cl.onSnapshotRequest); err != nil {
		return nil, fmt.Errorf("stage: subscribe to snapshot requests: %w", err)
	}
	if err := cl.listenEdges(); err != nil {
		cl.unsubscribe()
		return nil, err
	}
	cl.announce(ctx)
	return cl, nil
}

// run renews leases and announces the node until ctx ends.
func (cl *cluster) run(ctx context.Context) {
	renew := time.NewTicker(cl.cfg.LeaseTTL / 4)
	defer renew.Stop()
	announce := time.NewTicker(announceEvery)
	defer announce.Stop()
	janitor := time.NewTicker(janitorEvery)
	defer janitor.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-renew.C:
			cl.renewAll(ctx)
			cl.followOrigins(ctx)
		case <-announce.C:
			cl.announce(ctx)
			cl.sweepRemotes(ctx)
		case <-janitor.C:
			if n, err := cl.s.EndStaleSessions(ctx); err != nil && ctx.Err() == nil {
				cl.s.log.Warn("end sessions of stages whose node is gone", "error", err)
			} else if n > 0 {
				cl.s.log.Info("ended sessions of stages whose node is gone", "sessions", n)
			}
		}
	}
}

// holds reports whether this node hosts stageID now.
func (cl *cluster) holds(stageID string) bool {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	h := cl.held[stageID]
	return h != nil && time.Now().Before(h.until)
}

// host makes sure this node may serve stageID for request r: it returns
// nil when it hosts the stage (placing it here if nobody does and place is
// set), or the error to answer with — a redirect to the host, 404 for a
// stage nobody hosts when place is not set, 503 while it moves.
func (cl *cluster) host(ctx context.Context, stageID string, r *http.Request, place bool) error {
	deadline := time.Now().Add(cl.cfg.LeaseTTL + time.Second)
	for !cl.holds(stageID) {
		l, err := cl.leases.Get(ctx, stageID)
		switch {
		case err == nil && l.Node == cl.cfg.NodeID:
			// A lease this node gave up on (it could not renew it in
			// time) that has not lapsed yet: free it and start over.
			cl.release(ctx, stageID)
			continue
		case err == nil:
			if cl.alive(ctx, l.Node) {
				return redirect(l.URL, r, "")
			}
			// Its node is gone: the lease lapses within LeaseTTL.
		case errors.Is(err, store.ErrNotFound):
			if !place {
				return errNotHosted
			}
			done, err := cl.place(ctx, stageID, r)
			if done || err != nil {
				return err
			}
		default:
			return refusal.New(http.StatusServiceUnavailable, "the stage cluster's store does not answer: "+err.Error())
		}
		if time.Now().After(deadline) {
			return refusal.New(http.StatusServiceUnavailable, "the stage is moving to another node; retry in a second")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return nil
}

var errNotHosted = refusal.New(http.StatusNotFound, "nobody publishes on this stage")

// place puts an unhosted stage on the least-loaded node: here (it takes
// the lease) or there (a redirect naming that node). done is false when
// another node took the lease first.
func (cl *cluster) place(ctx context.Context, stageID string, r *http.Request) (done bool, err error) {
	placedHere := r != nil && r.URL.Query().Get(placeQuery) == cl.cfg.NodeID && !cl.draining.Load() &&
		cl.cfg.Role.hosts()
	if !placedHere {
		n, ok := cl.leastLoaded(ctx)
		if !ok {
			return true, refusal.New(http.StatusServiceUnavailable, "no stage node can take the stage now")
		}
		if n.ID != cl.cfg.NodeID {
			return true, redirect(n.URL, r, n.ID)
		}
	}
	ok, err := cl.acquire(ctx, stageID)
	if err != nil {
		return true, refusal.New(http.StatusServiceUnavailable, "cannot take the stage's lease: "+err.Error())
	}
	return ok, nil
}

// acquire takes the lease of a stage nobody hosts; false when another node
// was first.
func (cl *cluster) acquire(ctx context.Context, stageID string) (bool, error) {
	start := time.Now()
	err := cl.leases.Create(ctx, stageID, lease{Node: cl.cfg.NodeID, URL: cl.cfg.NodeURL, Since: now()})
	if errors.Is(err, store.ErrExists) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	cl.mu.Lock()
	cl.held[stageID] = &held{until: start.Add(cl.cfg.LeaseTTL)}
	cl.mu.Unlock()
	cl.s.log.Info("stage placed on this node", "stage", stageID, "node", cl.cfg.NodeID)
	if rm := cl.s.roomOf(stageID); rm != nil && rm.origin != nil {
		rm.evict("the stage moved to this node: reconnect") // it relayed the stage from its old host
	}
	// The node that hosted it before died with its session open.
	if err := cl.s.endStaleSession(ctx, stageID); err != nil {
		cl.s.log.Warn("end the session a lost node left open", "stage", stageID, "error", err)
	}
	return true, nil
}

// renewAll renews every lease this node holds, gives up those of stages
// it has had no room for a while, and stops serving a stage whose lease
// it lost or could not renew in time.
func (cl *cluster) renewAll(ctx context.Context) {
	cl.mu.Lock()
	ids := make([]string, 0, len(cl.held))
	for id := range cl.held {
		ids = append(ids, id)
	}
	cl.mu.Unlock()
	for _, id := range ids {
		cl.renew(ctx, id)
	}
}

func (cl *cluster) renew(ctx context.Context, stageID string) {
	start := time.Now()
	cl.mu.Lock()
	h := cl.held[stageID]
	cl.mu.Unlock()
	if h == nil {
		return
	}
	if cl.s.roomOf(stageID) == nil {
		if h.idleAt.IsZero() {
			h.idleAt = start
		} else if start.Sub(h.idleAt) > releaseAfter {
			cl.release(ctx, stageID)
			return
		}
	} else {
		h.idleAt = time.Time{}
	}
	rctx, cancel := context.WithTimeout(ctx, cl.cfg.LeaseTTL/2)
	defer cancel()
	_, err := cl.leases.Update(rctx, stageID, func(l *lease) error {
		if l.Node != cl.cfg.NodeID {
			return errLeaseLost
		}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		// It lapsed before this renewal reached the store, and nobody
		// took it: take it again.
		var ok bool
		if ok, err = cl.acquireAgain(rctx, stageID); err == nil && !ok {
			err = errLeaseLost
		}
	}
	switch {
	case err == nil:
		cl.mu.Lock()
		h.until = start.Add(cl.cfg.LeaseTTL)
		cl.mu.Unlock()
	case errors.Is(err, errLeaseLost):
		cl.lose(stageID, "the stage moved to another node")
	case time.Now().After(h.until):
		cl.lose(stageID, "this node lost the cluster: its lease on the stage lapsed")
	default:
		cl.s.log.Warn("renew stage lease", "stage", stageID, "error", err)
	}
}

func (cl *cluster) acquireAgain(ctx context.Context, stageID string) (bool, error) {
	err := cl.leases.Create(ctx, stageID, lease{Node: cl.cfg.NodeID, URL: cl.cfg.NodeURL, Since: now()})
	if errors.Is(err, store.ErrExists) {
		return false, nil
	}
	return err == nil, err
}

// lose stops serving a stage whose lease is not ours any more.
func (cl *cluster) lose(stageID, reason string) {
	cl.mu.Lock()
	delete(cl.held, stageID)
	cl.mu.Unlock()
	cl.s.log.Warn("stopped serving a stage", "stage", stageID, "reason", reason)
	if rm := cl.s.roomOf(stageID); rm != nil {
		rm.evict(reason)
	}
}

// release gives a lease up, for the next request to place the stage anew.
func (cl *cluster) release(ctx context.Context, stageID string) {
	cl.mu.Lock()
	delete(cl.held, stageID)
	cl.mu.Unlock()
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cl.cfg.LeaseTTL/2)
	defer cancel()
	if _, err := cl.leases.DeleteIf(rctx, stageID, func(l lease) bool { return l.Node == cl.cfg.NodeID }); err != nil {
		cl.s.log.Warn("release stage lease", "stage", stageID, "error", err)
	}
}

// drain hands every stage over: its lease is released, then its
// participants and watchers are told to reconnect (through the cluster's
// address they reach another node, as this one places nothing any more).
func (cl *cluster) drain(ctx context.Context) {
	cl.draining.Store(true)
	cl.announce(ctx)
	for _, rm := range cl.s.allRooms() {
		cl.release(ctx, rm.stageID)
		rm.evict("the stage node is shutting down: reconnect")
	}
}

// close forgets the node in the store.
func (cl *cluster) close() {
	cl.unsubscribe()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = cl.nodes.Delete(ctx, nodeKey(cl.cfg.NodeID))
}

func (cl *cluster) unsubscribe() {
	for _, sub := range []*nats.Subscription{cl.snap, cl.reports, cl.orders} {
		if sub != nil {
			_ = sub.Unsubscribe()
		}
	}
}

// announce records this node's load.
func (cl *cluster) announce(ctx context.Context) {
	n := cl.s.load()
	n.ID, n.URL, n.Role, n.Draining, n.At = cl.cfg.NodeID, cl.cfg.NodeURL, cl.cfg.Role, cl.draining.Load(), time.Now()
	cl.mu.Lock()
	clear(cl.sent) // the nodes' next announcements count them
	cl.mu.Unlock()
	actx, cancel := context.WithTimeout(ctx, announceEvery)
	defer cancel()
	if err := cl.nodes.Put(actx, nodeKey(cl.cfg.NodeID), n); err != nil && ctx.Err() == nil {
		cl.s.log.Warn("announce stage node", "error", err)
	}
}

// alive reports whether node id announced itself lately (or the store
// cannot tell now).
func (cl *cluster) alive(ctx context.Context, id string) bool {
	n, err := cl.nodes.Get(ctx, nodeKey(id))
	if err != nil {
		return !errors.Is(err, store.ErrNotFound)
	}
	return !n.silent()
}

// silent reports whether the node has not announced itself for
// silentAfter: it died, or lost NATS.
func (n nodeInfo) silent() bool { return time.Since(n.At) >= silentAfter }

// nodeKey is how a node id appears in keys and subjects.
func nodeKey(id string) string { return base64.RawURLEncoding.EncodeToString([]byte(id)) }

// liveNodes lists the nodes that take participants now: this one, with
// its current load, and those that announced themselves lately, none
// draining. A node's peers count the subscribers this node sent there
// since it announced itself.
func (cl *cluster) liveNodes(ctx context.Context) []nodeInfo {
	self := cl.s.load()
	self.ID, self.URL, self.Role = cl.cfg.NodeID, cl.cfg.NodeURL, cl.cfg.Role
	var live []nodeInfo
	if !cl.draining.Load() {
		live = append(live, self)
	}
	cl.mu.Lock()
	others, fresh := cl.others, time.Since(cl.othersAt) < othersFresh
	cl.mu.Unlock()
	if !fresh {
		others = cl.listOthers(ctx)
		cl.mu.Lock()
		cl.others, cl.othersAt = others, time.Now()
		cl.mu.Unlock()
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	for _, n := range others {
		n.Peers += cl.sent[n.ID]
		live = append(live, n)
	}
	return live
}

// othersFresh is how long a listing of the other nodes is reused: a burst
// of subscribers does not read the store for each.
const othersFresh = 250 * time.Millisecond

func (cl *cluster) listOthers(ctx context.Context) []nodeInfo {
	keys, err := cl.nodes.Keys(ctx, "")
	if err != nil {
		return nil
	}
	var out []nodeInfo
	for _, k := range keys {
		n, err := cl.nodes.Get(ctx, k)
		if err != nil || n.Draining || n.ID == cl.cfg.NodeID || n.silent() {
			continue
		}
		out = append(out, n)
	}
	return out
}

// lighter orders nodes by peers, then stages.
func lighter(a, b nodeInfo) int {
	if a.Peers != b.Peers {
		return a.Peers - b.Peers
	}
	return a.Stages - b.Stages
}

// leastLoaded picks the live node that may host stages with the fewest
// peers (then stages).
func (cl *cluster) leastLoaded(ctx context.Context) (nodeInfo, bool) {
	live := slices.DeleteFunc(cl.liveNodes(ctx), func(n nodeInfo) bool { return !n.Role.hosts() })
	if len(live) == 0 {
		return nodeInfo{}, false
	}
	return slices.MinFunc(live, lighter), true
}

// spreadSubscriber decides where a subscriber that reached this node is
// served: here (nil), or the redirect to a node that serves subscribers
// and carries clearly fewer peers. A node of role origin sends every
// subscriber on while another node serves them.
func (cl *cluster) spreadSubscriber(ctx context.Context, r *http.Request) error {
	if r.URL.Query().Get(placeQuery) == cl.cfg.NodeID {
		return nil
	}
	var self *nodeInfo
	var candidates []nodeInfo
	live := cl.liveNodes(ctx)
	for i, n := range live {
		if n.ID == cl.cfg.NodeID {
			self = &live[i]
		}
		if n.Role.subscribes() {
			candidates = append(candidates, n)
		}
	}
	if len(candidates) == 0 {
		return nil
	}
	best := slices.MinFunc(candidates, lighter)
	if best.ID == cl.cfg.NodeID || self != nil && self.Role.subscribes() && self.Peers <= best.Peers+4+self.Peers/8 {
		return nil
	}
	cl.mu.Lock()
	cl.sent[best.ID]++
	cl.mu.Unlock()
	return redirect(best.URL, r, best.ID)
}

// subscriberHome says how this node serves a subscriber of stageID: as
// its host (nil), as an edge relaying from the host the lease names, or
// not at all (the error: a redirect, 404 for a stage nobody hosts, 503
// while it moves). A relay, or a subscriber choosing a simulcast layer
// (an edge relays one), is served by the host itself.
func (cl *cluster) subscriberHome(ctx context.Context, c token.Claims, r *http.Request) (*lease, error) {
	if isRelay(c.ParticipantID) || r.URL.Query().Get("layer") != "" || cl.cfg.RelaySigner == nil {
		return nil, cl.host(ctx, c.StageID, r, false)
	}
	if err := cl.spreadSubscriber(ctx, r); err != nil {
		return nil, err
	}
	if cl.holds(c.StageID) {
		return nil, nil
	}
	l, err := cl.leases.Get(ctx, c.StageID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, errNotHosted
	case err != nil:
		return nil, refusal.New(http.StatusServiceUnavailable, "the stage cluster's store does not answer: "+err.Error())
	case l.Node == cl.cfg.NodeID:
		return nil, cl.host(ctx, c.StageID, r, false)
	case !cl.alive(ctx, l.Node):
		return nil, refusal.New(http.StatusServiceUnavailable, "the stage's node is gone; it moves to another "+
			"node in a few seconds: retry")
	}
	return &l, nil
}

// redirectError answers a request with 307 to the same path on another
// node.
type redirectError struct{ to string }

func (e *redirectError) Error() string { return "the stage is served at " + e.to }

// redirect is the 307 of r to base; node names the node it places the
// stage on ("" when the stage is hosted there already).
func redirect(base string, r *http.Request, node string) error {
	if r == nil {
		return refusal.Newf(http.StatusConflict, "the stage is hosted at %s", base)
	}
	u, err := url.Parse(base)
	if err != nil {
		return fmt.Errorf("stage node URL %q: %w", base, err)
	}
	u.Path = r.URL.Path
	q := r.URL.Query()
	q.Del(placeQuery)
	if node != "" {
		q.Set(placeQuery, node)
	}
	// Clients drop the Authorization header on a redirect to another host
	// (Go's client, browsers' fetch): the token goes in the URL, which the
	// stage reads too.
	if tok := bearer(r); tok != "" {
		q.Set("access_token", tok)
	}
	u.RawQuery = q.Encode()
	return &redirectError{to: u.String()}
}

// NodeStatus is a stage node's load as it last announced it.
type NodeStatus struct {
	ID           string    `json:"id"`
	URL          string    `json:"url"`
	Stages       int       `json:"stages"`
	Participants int       `json:"participants"`
	Peers        int       `json:"peers"`
	Role         Role      `json:"role"`
	Draining     bool      `json:"draining"`
	Silent       bool      `json:"silent"` // not heard from lately: dead or cut off from NATS
	At           time.Time `json:"at"`
}

// Nodes lists the stage cluster's nodes as they announced themselves, this
// node's own entry with its current load; none when not clustered.
func (s *Server) Nodes(ctx context.Context) ([]NodeStatus, error) {
	cl := s.cluster
	if cl == nil {
		return nil, nil
	}
	self := s.load()
	out := []NodeStatus{{ID: cl.cfg.NodeID, URL: cl.cfg.NodeURL, Stages: self.Stages,
		Participants: self.Participants, Peers: self.Peers, Role: cl.cfg.Role, Draining: cl.draining.Load(),
		At: time.Now()}}
	keys, err := cl.nodes.Keys(ctx, "")
	if err != nil {
		return out, err
	}
	for _, k := range keys {
		n, err := cl.nodes.Get(ctx, k)
		if err != nil || n.ID == cl.cfg.NodeID {
			continue
		}
		out = append(out, NodeStatus{ID: n.ID, URL: n.URL, Stages: n.Stages, Participants: n.Participants,
			Peers: n.Peers, Role: n.Role, Draining: n.Draining, Silent: n.silent(), At: n.At})
	}
	return out, nil
}
