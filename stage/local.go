package stage

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/stagehand-rt/stagehand/internal/refusal"
	"github.com/stagehand-rt/stagehand/token"
)

// LocalParticipant describes a publisher that is not a WebRTC peer, such
// as an RTMP(S) ingest: its media is written by the caller into
// TrackLocalStaticRTP tracks, which the stage relays to subscribers and
// compositions exactly as it relays a WHIP publisher's.
type LocalParticipant struct {
	StageID, StageARN string
	ParticipantID     string
	UserID            string
	Attributes        map[string]string
	// Protocol is the participant's IVS protocol: "RTMP" or "RTMPS".
	Protocol string
	// IngestConfigurationARN is reported on the participant record.
	IngestConfigurationARN string
}

// Local is a local publisher on a stage. Its owner calls Publish once the
// tracks are known, writes RTP to them, and calls Leave when the media
// ends; Done tells it the stage ended the participant first
// (DisconnectParticipant, the stage deleted, the server closing).
type Local struct{ p *peer }

// JoinLocal joins a local publisher to its stage: JOINED is recorded, and
// the stage session starts if the stage was idle. It fails when the stage
// does not exist, when the participant is already publishing, or when the
// stage is full; the error says which.
func (s *Server) JoinLocal(ctx context.Context, lp LocalParticipant) (*Local, error) {
	c := token.Claims{ParticipantID: lp.ParticipantID, UserID: lp.UserID, StageARN: lp.StageARN,
		StageID: lp.StageID, Attributes: lp.Attributes, Publish: true}
	rm, err := s.openRoom(ctx, c, nil, true)
	if err != nil {
		return nil, err
	}
	p := newPeer(s, rm, publishPeer, lp.ParticipantID)
	info := clientInfo{protocol: lp.Protocol, ingestARN: lp.IngestConfigurationARN}
	err = rm.join(c, p, info)
	if errors.Is(err, errRoomGone) {
		// The room emptied meanwhile; the next one takes over.
		if rm = s.room(c.StageID, c.StageARN); rm == nil {
			return nil, refusal.New(http.StatusServiceUnavailable, "the stage server is shutting down")
		}
		p.r = rm
		err = rm.join(c, p, info)
	}
	if err != nil {
		return nil, err
	}
	s.log.Info("local publisher joined", "stage", lp.StageID, "participant", lp.ParticipantID, "protocol", lp.Protocol)
	return &Local{p: p}, nil
}

// LocalTrack is a local publisher's track: the RTP its owner writes goes
// to the stage's subscribers once the track is published.
type LocalTrack struct {
	t      *forwardTrack
	fan    atomic.Pointer[fanout] // set by Publish
	stream string
}

// NewLocalTrack makes a track named id ("audio", "video") of codec c in
// the stream of participantID, as the stage names a WHIP publisher's.
func NewLocalTrack(c webrtc.RTPCodecCapability, id, participantID string) *LocalTrack {
	return &LocalTrack{t: &forwardTrack{id: id, codec: c}, stream: participantID}
}

// ID is the track's id.
func (lt *LocalTrack) ID() string { return lt.t.id }

// StreamID is the participant id the track belongs to.
func (lt *LocalTrack) StreamID() string { return lt.stream }

// Kind is audio or video, from the codec.
func (lt *LocalTrack) Kind() webrtc.RTPCodecType { return webrtc.NewRTPCodecType(lt.t.kind()) }

// WriteRTP sends a copy of p to the track's subscribers (the caller may
// reuse p); before Publish it is dropped.
func (lt *LocalTrack) WriteRTP(p *rtp.Packet) error {
	fan := lt.fan.Load()
	if fan == nil {
		return nil
	}
	c := &rtp.Packet{Header: p.Header, Payload: append([]byte(nil), p.Payload...)}
	c.CSRC = append([]uint32(nil), p.CSRC...)
	c.Extension, c.ExtensionProfile, c.Extensions = false, 0, nil
	fan.write(c)
	return nil
}

// Publish declares the publisher's tracks (at most one audio and one
// video) and records PUBLISH_STARTED: from now on subscribers receive what
// is written to them. It may be called once.
func (l *Local) Publish(tracks ...*LocalTrack) error {
	p := l.p
	p.tmu.Lock()
	if len(p.tracks) > 0 {
		p.tmu.Unlock()
		return errors.New("stage: local publisher already published")
	}
	for _, lt := range tracks {
		if lt.stream != p.participantID {
			p.tmu.Unlock()
			return fmt.Errorf("stage: track %s has stream id %q; want the participant id %q", lt.ID(), lt.stream,
				p.participantID)
		}
		lt.t.pub = p
		lt.t.fan = p.s.newFanout()
		lt.fan.Store(lt.t.fan)
		p.tracks = append(p.tracks, lt.t)
	}
	p.expected = len(tracks)
	p.tmu.Unlock()
	p.markReady()
	return nil
}

// Done is closed once the participant has left the stage, by Leave or by
// the stage.
func (l *Local) Done() <-chan struct{} { return l.p.done }

// Leave records PUBLISH_STOPPED (if it published) and LEFT, and closes the
// subscriptions to it. It is safe to call more than once.
func (l *Local) Leave(reason string) { l.p.close(reason) }

// RecordLocalError records an error event (JOIN_ERROR, PUBLISH_ERROR) with
// its IVS error code for a local publisher that was refused, in the stage's
// active session; on an idle stage it is only logged, as for WHIP.
func (s *Server) RecordLocalError(stageID, participantID, name, code string) {
	s.mu.Lock()
	rm := s.rooms[stageID]
	s.mu.Unlock()
	if rm == nil {
		s.log.Info("participant refused", "stage", stageID, "participant", participantID, "event", name, "code", code)
		return
	}
	rm.recordError(participantID, name, code)
}
