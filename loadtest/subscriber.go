package loadtest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/stagehand-rt/stagehand/stage/client"
)

// subscriber is one participant with a SUBSCRIBE token, receiving every
// publisher of its stage over one WHEP connection each.
type subscriber struct {
	stage *stageRun
	token string

	mu       sync.Mutex
	sessions []*client.Subscription
	tracks   []*trackStats
	joins    []time.Duration // per WHEP connection
	readers  sync.WaitGroup  // the track readers, ended by closing the sessions
	closed   bool
}

// connect subscribes to each publisher in turn. A publisher whose tracks
// do not flow yet (404) is asked again until ctx ends.
func (s *subscriber) connect(ctx context.Context, o client.Options) error {
	for _, p := range s.stage.publishers() {
		start := time.Now()
		for {
			err := s.subscribe(ctx, p, o)
			var se *client.StatusError
			if err == nil {
				break
			}
			if !errors.As(err, &se) || se.Status != http.StatusNotFound || ctx.Err() != nil {
				return fmt.Errorf("subscribe to %s: %w", p.id, err)
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("subscribe to %s: %w", p.id, err)
			case <-time.After(100 * time.Millisecond):
			}
		}
		s.mu.Lock()
		s.joins = append(s.joins, time.Since(start))
		s.mu.Unlock()
	}
	return nil
}

func (s *subscriber) subscribe(ctx context.Context, p *publisher, o client.Options) error {
	sub, err := client.Subscribe(ctx, client.WHEPURL(s.stage.whip, p.id), s.token, o,
		func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
			t := &trackStats{video: tr.Kind() == webrtc.RTPCodecTypeVideo, log: &p.log}
			s.mu.Lock()
			if s.closed {
				s.mu.Unlock()
				return
			}
			s.tracks = append(s.tracks, t)
			s.readers.Add(1)
			s.mu.Unlock()
			defer s.readers.Done()
			read(tr, t)
		})
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.sessions = append(s.sessions, sub)
	s.mu.Unlock()
	return nil
}

// read counts a track's packets until its connection closes. One buffer,
// one header, reused.
func read(tr *webrtc.TrackRemote, t *trackStats) {
	buf := make([]byte, 1500)
	var h rtp.Header
	for {
		n, _, err := tr.Read(buf)
		if err != nil {
			return
		}
		hn, err := h.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		payload := n - hn
		if h.Padding && n > 0 {
			payload -= int(buf[n-1])
		}
		t.packet(h.SequenceNumber, h.Timestamp, payload, time.Now())
	}
}

// disconnected reports whether a WHEP connection ended early.
func (s *subscriber) disconnected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ss := range s.sessions {
		select {
		case <-ss.Done():
			return true
		default:
		}
	}
	return false
}

func (s *subscriber) snapshotTracks() []*trackStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*trackStats(nil), s.tracks...)
}

// close leaves the stage and waits for the track readers.
func (s *subscriber) close(ctx context.Context) {
	s.mu.Lock()
	sessions := s.sessions
	s.sessions, s.closed = nil, true
	s.mu.Unlock()
	for _, ss := range sessions {
		_ = ss.Close(ctx)
	}
	s.readers.Wait()
}
