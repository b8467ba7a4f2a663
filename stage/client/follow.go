package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"

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
	// Logger defaults to slog.Default.
	Logger *slog.Logger
}

// Follow keeps a subscription to every publisher of the stage, as a
// composition worker needs: it reads the events channel, subscribes over
// WHEP to each participant that publishes (again when its tracks change),
// and closes the subscription when it stops. When the events channel
// drops, Follow reconnects with backoff and resynchronises from the new
// snapshot. It returns when ctx ends, with every subscription closed and
// every OnTrack call returned; or early with an error the stage gave for
// the token (a 4xx), which retrying cannot fix.
func Follow(ctx context.Context, eventsURL, whipURL, tok string, o FollowOptions) error {
	f := &follower{ctx: ctx, whip: whipURL, tok: tok, o: o, subs: map[string]*followed{},
		infos: map[string]stage.ParticipantInfo{}, order: map[string]int{}}
	if f.o.Logger == nil {
		f.o.Logger = slog.Default()
	}
	f.log = f.o.Logger.With("component", "follow")
	defer f.closeAll()
	backoff := 250 * time.Millisecond
	for {
		err := f.session(eventsURL)
		var se *StatusError
		if errors.As(err, &se) && se.Status >= 400 && se.Status < 500 {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		f.log.Warn("events channel lost; reconnecting", "error", err, "in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
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
}

// followed is one publisher's subscription, being made or made.
type followed struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when the subscription is closed
}

// session follows one connection of the events channel until it fails.
func (f *follower) session(eventsURL string) error {
	ev, err := DialEvents(f.ctx, eventsURL, f.tok)
	if err != nil {
		return err
	}
	defer ev.Close()
	for {
		m, err := ev.Next(f.ctx)
		if err != nil {
			return fmt.Errorf("events channel: %w", err)
		}
		f.handle(m)
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
	if running && had && slices.Equal(old.Tracks, p.Tracks) {
		return
	}
	if running {
		f.stop(p.ParticipantID)
	}
	f.start(p.ParticipantID)
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
		f.subscribe(ctx, id)
	}()
}

// subscribe holds one subscription to id until ctx ends or it drops; a
// subscription that fails or drops while id still publishes is made again.
func (f *follower) subscribe(ctx context.Context, id string) {
	for attempt := 0; ctx.Err() == nil; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(min(time.Duration(attempt)*500*time.Millisecond, 5*time.Second)):
			}
		}
		var tracks trackGroup
		var sub *Subscription
		ready := make(chan struct{}) // sub is set, or nil if Subscribe failed
		s, err := Subscribe(ctx, WHEPURL(f.whip, id), f.tok, f.o.Options, func(tr *webrtc.TrackRemote,
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
			f.log.Info("subscribe", "participant", id, "error", err)
			var se *StatusError
			if errors.As(err, &se) && se.Status == http.StatusNotFound {
				return // no longer publishing: the events channel will say
			}
			continue
		}
		sub = s
		close(ready)
		select {
		case <-ctx.Done():
		case <-s.Done():
		}
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = s.Close(closeCtx)
		cancel()
		tracks.wait()
	}
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
