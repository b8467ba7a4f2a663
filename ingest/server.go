// Package ingest is the RTMP(S) ingest of IVS ingest configurations: an
// encoder such as OBS or FFmpeg publishes H.264 and AAC to
// rtmps://host/app/<stream key>; the stream key selects the ingest
// configuration, whose stage gains a participant (protocol RTMP or RTMPS)
// that compositions and subscribers receive like any WHIP publisher.
// H.264 is forwarded as RTP unchanged; AAC is transcoded to Opus.
//
// It owns the listeners, the RTMP connections and the configuration's
// ACTIVE/INACTIVE state; the RTMP protocol is gortmplib's, the stage's
// bookkeeping (events, participant records) the stage server's.
package ingest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/stagehand-rt/stagehand/ivs"
	"github.com/stagehand-rt/stagehand/stage"
	"github.com/stagehand-rt/stagehand/store"
)

// Config configures the ingest server. Zero durations take the defaults.
type Config struct {
	// RTMPAddr is where plain RTMP is accepted, for ingest configurations
	// with insecureIngest; "" accepts none.
	RTMPAddr string
	// RTMPSAddr is where RTMPS (RTMP over TLS with TLS's certificate) is
	// accepted; "" accepts none.
	RTMPSAddr string
	TLS       *tls.Config
	// HandshakeTimeout bounds the time from TCP connect to the publish
	// command; ReadTimeout the silence of a publisher before it is
	// dropped. Defaults 10 s each.
	HandshakeTimeout time.Duration
	ReadTimeout      time.Duration
	// OpusBitrate is the bit rate of the Opus audio made from AAC; default
	// 96 kbps.
	OpusBitrate int
	Logger      *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = 10 * time.Second
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = 10 * time.Second
	}
	if c.OpusBitrate <= 0 {
		c.OpusBitrate = 96000
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports configuration errors before anything starts.
func (c Config) Validate() error {
	if c.RTMPAddr == "" && c.RTMPSAddr == "" {
		return errors.New("ingest: no RTMP or RTMPS address")
	}
	if c.RTMPSAddr != "" && (c.TLS == nil || len(c.TLS.Certificates) == 0 && c.TLS.GetCertificate == nil) {
		return errors.New("ingest: RTMPS needs a TLS certificate")
	}
	if c.OpusBitrate < 0 || c.OpusBitrate > 510000 {
		return fmt.Errorf("ingest: Opus bit rate %d outside 6000..510000", c.OpusBitrate)
	}
	return nil
}

// Server accepts RTMP(S) publishers into stages.
type Server struct {
	cfg     Config
	store   *store.Store
	stage   *stage.Server
	log     *slog.Logger
	metrics *metrics

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	rtmp   net.Listener
	rtmps  net.Listener

	mu     sync.Mutex
	active map[string]struct{} // ingest configuration ids publishing here
	conns  map[net.Conn]struct{}
	closed bool
}

// New creates an ingest server publishing into sfu's stages.
func New(cfg Config, st *store.Store, sfu *stage.Server) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &Server{cfg: cfg, store: st, stage: sfu, log: cfg.Logger.With("component", "ingest"), metrics: newMetrics(),
		active: map[string]struct{}{}, conns: map[net.Conn]struct{}{}}, nil
}

// Start listens on the configured addresses and accepts publishers until
// ctx is cancelled or Close is called.
func (s *Server) Start(ctx context.Context) error {
	s.ctx, s.cancel = context.WithCancel(ctx)
	var err error
	if s.cfg.RTMPAddr != "" {
		if s.rtmp, err = net.Listen("tcp", s.cfg.RTMPAddr); err != nil {
			s.cancel()
			return fmt.Errorf("ingest: RTMP address %s: %w", s.cfg.RTMPAddr, err)
		}
	}
	if s.cfg.RTMPSAddr != "" {
		ln, err := net.Listen("tcp", s.cfg.RTMPSAddr)
		if err != nil {
			if s.rtmp != nil {
				s.rtmp.Close()
			}
			s.cancel()
			return fmt.Errorf("ingest: RTMPS address %s: %w", s.cfg.RTMPSAddr, err)
		}
		s.rtmps = tls.NewListener(ln, s.cfg.TLS)
	}
	for _, l := range []struct {
		ln     net.Listener
		secure bool
	}{{s.rtmp, false}, {s.rtmps, true}} {
		if l.ln != nil {
			s.wg.Go(func() { s.accept(l.ln, l.secure) })
		}
	}
	// The accept loops and handlers end when their listeners and
	// connections close.
	s.wg.Go(func() {
		<-s.ctx.Done()
		s.closeAll()
	})
	return nil
}

// RTMPAddr is where plain RTMP listens (nil when off). Tests listen on
// port 0 and ask.
func (s *Server) RTMPAddr() net.Addr { return addr(s.rtmp) }

// RTMPSAddr is where RTMPS listens (nil when off).
func (s *Server) RTMPSAddr() net.Addr { return addr(s.rtmps) }

func addr(ln net.Listener) net.Addr {
	if ln == nil {
		return nil
	}
	return ln.Addr()
}

// Close stops accepting, ends every publish (its participant leaves the
// stage, its configuration goes INACTIVE) and waits for every goroutine.
func (s *Server) Close() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.wg.Wait()
}

// closeAll closes the listeners and every connection; the handlers then
// end on their read errors.
func (s *Server) closeAll() {
	s.mu.Lock()
	s.closed = true
	conns := make([]net.Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, ln := range []net.Listener{s.rtmp, s.rtmps} {
		if ln != nil {
			ln.Close()
		}
	}
	for _, c := range conns {
		c.Close()
	}
}

func (s *Server) accept(ln net.Listener, secure bool) {
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				s.log.Error("accept", "error", err)
			}
			return
		}
		if !s.addConn(nc) {
			nc.Close()
			return
		}
		s.wg.Go(func() {
			defer s.dropConn(nc)
			s.handle(nc, secure)
		})
	}
}

func (s *Server) addConn(nc net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[nc] = struct{}{}
	return true
}

func (s *Server) dropConn(nc net.Conn) {
	nc.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, nc)
}

// ResetStale marks INACTIVE the ingest configurations left ACTIVE by a run
// that died. Call it before Start, and only on an ingest server that is
// the deployment's only one (as `stagehand serve` runs it).
func (s *Server) ResetStale(ctx context.Context) (int, error) {
	keys, err := s.store.IngestConfigurations.Keys(ctx, "")
	if err != nil {
		return 0, fmt.Errorf("ingest: list ingest configurations: %w", err)
	}
	n := 0
	for _, k := range keys {
		_, err := s.store.IngestConfigurations.Update(ctx, k, func(c *ivs.IngestConfiguration) error {
			if c.State != stateActive {
				return errUnchanged
			}
			c.State = stateInactive
			return nil
		})
		switch {
		case err == nil:
			n++
		case errors.Is(err, errUnchanged), errors.Is(err, store.ErrNotFound):
		default:
			return n, fmt.Errorf("ingest: reset %s: %w", k, err)
		}
	}
	return n, nil
}

var errUnchanged = errors.New("unchanged")
