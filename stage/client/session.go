package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/pion/webrtc/v4"
)

// session is a WHIP or WHEP peer connection and its resource.
type session struct {
	pc       *webrtc.PeerConnection
	rmu      sync.Mutex
	resource string // absolute URL for DELETE, on the node that answered; "" once deleted
	token    string
	opts     Options

	connected chan struct{} // closed once ICE and DTLS are up
	done      chan struct{} // closed once the connection is lost or closed
	connOnce  sync.Once
	doneOnce  sync.Once
}

func newSession(api *webrtc.API, tok string, o Options) (*session, error) {
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, fmt.Errorf("new peer connection: %w", err)
	}
	s := &session{pc: pc, token: tok, opts: o, connected: make(chan struct{}), done: make(chan struct{})}
	pc.OnConnectionStateChange(s.onState)
	return s, nil
}

// onState tracks the connection. Disconnected counts as lost: with the
// short ICE timeouts of newAPI it means 2 s without a packet from the
// stage, which a live node never lets happen.
func (s *session) onState(st webrtc.PeerConnectionState) {
	switch st {
	case webrtc.PeerConnectionStateConnected:
		s.connOnce.Do(func() { close(s.connected) })
	case webrtc.PeerConnectionStateDisconnected, webrtc.PeerConnectionStateFailed,
		webrtc.PeerConnectionStateClosed:
		s.doneOnce.Do(func() { close(s.done) })
	}
}

// offer sends the peer connection's offer to endpoint, following
// redirects to the node that hosts the stage, and applies the answer.
func (s *session) offer(ctx context.Context, endpoint string) error {
	gathered := webrtc.GatheringCompletePromise(s.pc)
	o, err := s.pc.CreateOffer(nil)
	if err != nil {
		return fmt.Errorf("create offer: %w", err)
	}
	if err := s.pc.SetLocalDescription(o); err != nil {
		return fmt.Errorf("set local description: %w", err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return ctx.Err()
	}
	// A strings.Reader body gives the request a GetBody: a 307 re-sends it.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint,
		strings.NewReader(s.pc.LocalDescription().SDP))
	if err != nil {
		return err
	}
	s.header(req)
	req.Header.Set("Content-Type", "application/sdp")
	resp, err := s.opts.httpClient().Do(req)
	if err != nil {
		return err // a *url.Error: it names the method and the URL
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 256<<10))
	if resp.StatusCode != http.StatusCreated {
		err := refused(resp.StatusCode, strings.TrimSpace(string(body)))
		if after := retryAfter(resp.Header); after > 0 {
			err = &retryAfterError{error: err, after: after}
		}
		return err
	}
	// Location resolves against resp.Request.URL: the node that answered
	// after any redirect, which is the one holding the session.
	loc, err := resp.Location()
	if err != nil {
		return fmt.Errorf("the answer has no usable Location: %w", err)
	}
	s.setResource(loc.String())
	if err := s.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer,
		SDP: string(body)}); err != nil {
		return fmt.Errorf("apply answer: %w", err)
	}
	return nil
}

func (s *session) header(req *http.Request) {
	req.Header.Set("Authorization", "Bearer "+s.token)
	if s.opts.UserAgent != "" {
		req.Header.Set("User-Agent", s.opts.UserAgent)
	}
}

// waitConnected waits for ICE and DTLS to complete.
func (s *session) waitConnected(ctx context.Context) error {
	select {
	case <-s.connected:
		return nil
	case <-s.done:
		return errors.New("the connection failed before it was established")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// establish offers to endpoint and waits for the connection; on failure
// the session is closed (its resource deleted, best effort).
func (s *session) establish(ctx context.Context, endpoint string) error {
	if err := s.offer(ctx, endpoint); err != nil {
		_ = s.pc.Close()
		return err
	}
	if err := s.waitConnected(ctx); err != nil {
		s.drop()
		return err
	}
	return nil
}

// drop closes the session, DELETEing its resource within a short time:
// the node that holds it may be gone.
func (s *session) drop() {
	ctx, cancel := context.WithTimeout(context.Background(), deleteOldWithin)
	defer cancel()
	_ = s.close(ctx)
}

// close DELETEs the resource (leaving the stage) and closes the peer
// connection.
func (s *session) close(ctx context.Context) error {
	return errors.Join(s.deleteResource(ctx), s.pc.Close())
}

// setResource sets the session's resource URL and returns the one before.
func (s *session) setResource(url string) string {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	old := s.resource
	s.resource = url
	return old
}

// Resource is the session's resource URL (PATCH, DELETE); "" once deleted.
func (s *session) Resource() string {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	return s.resource
}

// deleteResource DELETEs the session's resource, once.
func (s *session) deleteResource(ctx context.Context) error {
	url := s.setResource("")
	if url == "" {
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, url, nil)
	if err != nil {
		return err
	}
	s.header(req)
	resp, err := s.opts.httpClient().Do(req)
	if err != nil {
		return err // a *url.Error: it names the method and the URL
	}
	return resp.Body.Close()
}
