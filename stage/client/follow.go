package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/webrtc/v4"

	"github.com/stagehand-rt/stagehand/stage"
)

// FollowOptions say what a Follow reports.
type FollowOptions struct {
	Options
	// OnParticipants receives the stage's publishing participants (their
	// attributes and tracks), in the order they started publishing, each
	// time that set changes. Calls are serial.
	OnParticipants func([]stage.ParticipantInfo)
	// OnTrack is called on its own goroutine for each received track of
	// participant id and should read it until it ends (the publisher left,
	// or Follow returned); sub can request keyframes.
	OnTrack func(id string, tr *webrtc.TrackRemote, sub *Subscription)
	// Filter, when set, limits the subscriptions (and OnParticipants) to
	// the participants it accepts: a participant recording follows one.
	Filter func(participantID string) bool
	// Layer, when set, names the simulcast layer to receive a
	// participant's video in (as for LayerURL; "" for the default, the
	// highest). It is asked when subscribing, and again after each
	// OnParticipants: a subscription whose answer changed switches layer
	// (Subscription.SetLayer) without a new connection.
	Layer func(participantID string) string
	// Logger defaults to slog.Default.
	Logger *slog.Logger
	// Reconnect bounds how long the events channel may stay out of reach
	// (on by default); OnReconnect counts its reconnections.
	Reconnect Reconnect
}

// Follow keeps a subscription to every publisher of the stage, as a
// composition worker needs: it reads the events channel, subscribes over
// WHEP to each participant that publishes (again when its tracks change),
// and closes the subscription when it stops. A subscription that is lost
// (its node left) is made again while its publisher is listed. When the
// events channel drops, or the node serving it says it is leaving, Follow
// reconnects with backoff and reconciles its subscriptions with the new
// snapshot. It returns when ctx ends, with every subscription closed and
// every OnTrack call returned; early with an error the stage gave for the
// token (a 4xx), which retrying cannot fix; or when the events channel could
// not be reached again within FollowOptions.Reconnect.Within.
func Follow(ctx context.Context, eventsURL, whipURL, tok string, o FollowOptions) error {
	f := &follower{ctx: ctx, whip: whipURL, tok: tok, o: o, subs: map[string]*followed{},
		infos: map[string]stage.ParticipantInfo{}, order: map[string]int{}}
	if f.o.Logger == nil {
		f.o.Logger = slog.Default()
	}
	f.log = f.o.Logger.With("component", "follow")
	defer f.closeAll()
	b := newBackoff()
	lost := time.Now() // when the events channel was last lost (or first dialled)
	for attempts := 1; ; attempts++ {
		connected, err := f.session(eventsURL, func() {
			f.reconnected(attempts, lost)
			attempts = 0
			b.reset()
		})
		var se *StatusError
		if errors.As(err, &se) && se.Status >= 400 && se.Status < 500 {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		if connected {
			lost = time.Now()
		}
		if f.o.Reconnect.Off {
			return fmt.Errorf("client: %w", err)
		}
		d := b.delay(0)
		f.log.Warn("events channel lost; reconnecting", "error", err, "in", d)
		if !wait(ctx, d, lost.Add(f.o.Reconnect.within())) {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("client: not reconnected within %v: %w", f.o.Reconnect.within(), err)
		}
	}
}

// reconnected reports an events channel that is back after an outage.
func (f *follower) reconnected(attempts int, lost time.Time) {
	if f.dialled {
		took := time.Since(lost)
		f.log.Info("events channel reconnected", "attempts", attempts, "took", took.Round(time.Millisecond))
		if cb := f.o.Reconnect.OnReconnect; cb != nil {
			cb(attempts, took)
		}
	}
	f.dialled = true
}

type follower struct {
	ctx  context.Context
	whip string
	tok  string
	o    FollowOptions
	log  *slog.Logger

	wg    sync.WaitGroup // subscribe goroutines and OnTrack calls
	mu    sync.Mutex
	subs  map[string]*followed // by participant id
	infos map[string]stage.ParticipantInfo
	order map[string]int // when each was first seen: layouts go by arrival
	seen  int

	dialled bool // the events channel was up once; touched by Follow's goroutine only
}

// followed is one publisher's subscription, being made or made.
type followed struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when the subscription is closed

	mu    sync.Mutex
	sub   *Subscription // the live subscription, nil between attempts
	layer string        // the layer sub receives
}

func (fw *followed) set(s *Subscription, layer string) {
	fw.mu.Lock()
	fw.sub, fw.layer = s, layer
	fw.mu.Unlock()
}

// errMoving is a node's word that it is leaving (stage.MsgReconnect).
var errMoving = errors.New("the stage's node is leaving")

// session follows one connection of the events channel until it fails;
// up is called once its snapshot is in. connected reports whether it was.
func (f *follower) session(eventsURL string, up func()) (connected bool, err error) {
	ev, err := DialEventsWith(f.ctx, eventsURL, f.tok, f.o.Options)
	if err != nil {
		return false, err
	}
	defer ev.Close()
	for {
		m, err := ev.Next(f.ctx)
		if err != nil {
			if websocket.CloseStatus(err) == websocket.StatusServiceRestart {
				err = errMoving
			}
			return connected, fmt.Errorf("events channel: %w", err)
		}
		if m.Type == stage.MsgReconnect {
			f.log.Info("the stage's node is leaving; reconnecting", "reason", m.Reason)
			return connected, fmt.Errorf("events channel: %w", errMoving)
		}
		f.handle(m)
		if !connected && m.Type == stage.MsgSnapshot {
			connected = true
			up()
		}
	}
}

func (f *follower) handle(m stage.Message) {
	switch m.Type {
	case stage.MsgSnapshot:
		seen := map[string]bool{}
		for _, p := range m.Participants {
			if len(p.Tracks) > 0 {
				seen[p.ParticipantID] = true
				f.publish(p)
			}
		}
		for id := range f.snapshotIDs() {
			if !seen[id] {
				f.unpublish(id)
			}
		}
	case stage.MsgTracksPublished:
		f.publish(*m.Participant)
	case stage.MsgTracksUnpublished, stage.MsgParticipantLeft:
		f.unpublish(m.Participant.ParticipantID)
	default:
		return
	}
	f.report()
	f.switchLayers()
}

// switchLayers moves each live subscription to the layer FollowOptions.Layer
// now names for it.
func (f *follower) switchLayers() {
	if f.o.Layer == nil {
		return
	}
	f.mu.Lock()
	subs := maps.Clone(f.subs)
	f.mu.Unlock()
	for id, fw := range subs {
		f.switchLayer(id, fw)
	}
}

// switchLayer moves participant id's live subscription, if any, to the
// layer FollowOptions.Layer names for it. A subscription still being made
// is switched by hold once it is.
func (f *follower) switchLayer(id string, fw *followed) {
	want := f.o.Layer(id)
	fw.mu.Lock()
	s, have := fw.sub, fw.layer
	fw.mu.Unlock()
	if s == nil || want == have || want == "" {
		return
	}
	ctx, cancel := context.WithTimeout(f.ctx, 5*time.Second)
	_, err := s.SetLayer(ctx, want)
	cancel()
	if err != nil {
		f.log.Info("switch layer", "participant", id, "layer", want, "error", err)
		return
	}
	f.log.Debug("layer switched", "participant", id, "from", have, "to", want)
	fw.mu.Lock()
	if fw.sub == s {
		fw.layer = want
	}
	fw.mu.Unlock()
}

func (f *follower) snapshotIDs() map[string]bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	ids := map[string]bool{}
	for id := range f.infos {
		ids[id] = true
	}
	return ids
}

// publish subscribes to p, again when its tracks changed (a track that
// started late is only carried by a new subscription).
func (f *follower) publish(p stage.ParticipantInfo) {
	if f.o.Filter != nil && !f.o.Filter(p.ParticipantID) {
		return
	}
	f.mu.Lock()
	old, had := f.infos[p.ParticipantID]
	f.infos[p.ParticipantID] = p
	if _, ok := f.order[p.ParticipantID]; !ok {
		f.seen++
		f.order[p.ParticipantID] = f.seen
	}
	running := f.subs[p.ParticipantID] != nil
	f.mu.Unlock()
	if running && had && slices.EqualFunc(old.Tracks, p.Tracks, sameTrack) {
		return
	}
	if running {
		f.stop(p.ParticipantID)
	}
	f.start(p.ParticipantID)
}

// sameTrack compares what a subscription depends on: a layer's picture
// size becoming known changes nothing.
func sameTrack(a, b stage.TrackInfo) bool {
	return a.TrackID == b.TrackID && a.Kind == b.Kind && a.Codec == b.Codec && len(a.Layers) == len(b.Layers)
}

func (f *follower) unpublish(id string) {
	f.mu.Lock()
	delete(f.infos, id)
	delete(f.order, id)
	f.mu.Unlock()
	f.stop(id)
}

// start subscribes to participant id on a goroutine, retrying while the
// participant still publishes.
func (f *follower) start(id string) {
	ctx, cancel := context.WithCancel(f.ctx)
	fw := &followed{cancel: cancel, done: make(chan struct{})}
	f.mu.Lock()
	f.subs[id] = fw
	f.mu.Unlock()
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		defer close(fw.done)
		f.subscribe(ctx, id, fw)
	}()
}

// subscribe holds a subscription to id until ctx ends (id no longer
// publishes, or Follow returns): one that fails or is lost is made again,
// with backoff, since the publisher may be moving to another node. A 404
// is retried too: the publisher may not be back yet, and the events
// channel says when it is gone for good.
func (f *follower) subscribe(ctx context.Context, id string, fw *followed) {
	b := newBackoff()
	for attempt := 0; ctx.Err() == nil; attempt++ {
		if attempt > 0 {
			t := time.NewTimer(b.delay(0))
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		if f.hold(ctx, id, fw) {
			b.reset()
		}
	}
}

// hold makes one subscription to id and keeps it until ctx ends or it is
// lost, with every OnTrack call it made returned; it reports whether the
// subscription was made.
func (f *follower) hold(ctx context.Context, id string, fw *followed) bool {
	var tracks trackGroup
	var sub *Subscription
	ready := make(chan struct{}) // sub is set, or nil if Subscribe failed
	url, layer := WHEPURL(f.whip, id), ""
	if f.o.Layer != nil {
		if layer = f.o.Layer(id); layer != "" {
			url = LayerURL(url, layer)
		}
	}
	s, err := Subscribe(ctx, url, f.tok, f.o.Options, func(tr *webrtc.TrackRemote,
		_ *webrtc.RTPReceiver) {
		<-ready
		if sub == nil || f.o.OnTrack == nil || !tracks.add() {
			return
		}
		defer tracks.wg.Done()
		f.o.OnTrack(id, tr, sub)
	})
	if err != nil {
		close(ready)
		if ctx.Err() == nil {
			f.log.Info("subscribe", "participant", id, "error", err)
		}
		return false
	}
	sub = s
	close(ready)
	fw.set(s, layer)
	defer fw.set(nil, "")
	if f.o.Layer != nil {
		// The layout may have changed while the subscription was made.
		f.switchLayer(id, fw)
	}
	select {
	case <-ctx.Done():
	case <-s.Done():
		f.log.Info("subscription lost; subscribing again", "participant", id)
	}
	closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deleteOldWithin)
	_ = s.Close(closeCtx)
	cancel()
	tracks.wait()
	return true
}

// trackGroup counts the OnTrack calls of one subscription; once wait has
// begun, late tracks are not handed out.
type trackGroup struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

func (g *trackGroup) add() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.wg.Add(1)
	return true
}

func (g *trackGroup) wait() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.wg.Wait()
}

// stop ends the subscription to id and waits for it.
func (f *follower) stop(id string) {
	f.mu.Lock()
	fw := f.subs[id]
	delete(f.subs, id)
	f.mu.Unlock()
	if fw != nil {
		fw.cancel()
		<-fw.done
	}
}

func (f *follower) report() {
	if f.o.OnParticipants == nil {
		return
	}
	f.mu.Lock()
	ps := slices.Collect(maps.Values(f.infos))
	order := maps.Clone(f.order)
	f.mu.Unlock()
	slices.SortFunc(ps, func(a, b stage.ParticipantInfo) int { return order[a.ParticipantID] - order[b.ParticipantID] })
	f.o.OnParticipants(ps)
}

func (f *follower) closeAll() {
	f.mu.Lock()
	ids := slices.Collect(maps.Keys(f.subs))
	f.mu.Unlock()
	for _, id := range ids {
		f.stop(id)
	}
	f.wg.Wait()
}
