// Package rtmp publishes an encoded H.264/AAC stream to an RTMP or RTMPS
// server (an IVS channel's ingest, or any RTMP server) as FLV, with
// libavformat's FLV muxer and RTMP protocol.
//
// It is a sink.Writer and sink.Reopener: when the server drops the
// connection, Write fails, and the fan-out calls Reopen with backoff, which
// connects again and starts a new FLV stream (the fan-out resumes it on the
// next keyframe). Every network operation is bounded by IOTimeout and
// interrupted when the destination's context ends, so a dead server never
// hangs a worker. RTMPS verifies the server's certificate unless told not to.
package rtmp

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/asticode/go-astiav"

	"github.com/stagehand-rt/stagehand/sink"
)

// Stream is one encoded stream to publish.
type Stream = sink.Stream

// Config describes one RTMP(S) destination.
type Config struct {
	URL       string // rtmp://host[:port]/app/streamkey or rtmps://…
	Video     Stream
	Audio     *Stream
	IOTimeout time.Duration // per network read or write; default 5 s
	// CAFile is a PEM bundle to verify an RTMPS server with instead of the
	// system's trust store. InsecureSkipVerify turns verification off.
	CAFile             string
	InsecureSkipVerify bool
}

// Validate checks the URL and the streams.
func (c Config) Validate() error {
	u, err := url.Parse(c.URL)
	if err != nil {
		return fmt.Errorf("rtmp: destination url: %w", err)
	}
	if u.Scheme != "rtmp" && u.Scheme != "rtmps" {
		return fmt.Errorf("rtmp: destination url scheme %q: want rtmp or rtmps", u.Scheme)
	}
	if u.Host == "" || len(u.Path) < 2 {
		return fmt.Errorf("rtmp: destination url %s: want rtmp[s]://host/app/streamkey", redact(c.URL))
	}
	if c.Video.Params == nil {
		return errors.New("rtmp: a video stream is required")
	}
	return nil
}

// Writer publishes to one RTMP(S) URL.
type Writer struct {
	cfg     Config
	conn    *conn                 // the network side; nil when not connected
	mux     *astiav.FormatContext // FLV muxer writing into conn
	ioctx   *astiav.IOContext     // custom IO between mux and conn
	streams []*astiav.Stream
	pkt     *astiav.Packet
	stop    func() bool // stops the context watch

	// The context watch runs on its own goroutine: it reaches the current
	// connection under mu, and a connection leaves current before it is
	// closed, so an interrupt never touches a freed connection.
	mu          sync.Mutex
	interrupted bool
	current     *conn
}

// New validates cfg. The connection is made by the first Write.
func New(cfg Config) (*Writer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.IOTimeout <= 0 {
		cfg.IOTimeout = 5 * time.Second
	}
	return &Writer{cfg: cfg, pkt: astiav.AllocPacket()}, nil
}

// watch interrupts blocking network calls when ctx ends. The writer
// watches the context of its first Write or Reopen: the destination's.
func (w *Writer) watch(ctx context.Context) {
	if w.stop == nil {
		w.stop = context.AfterFunc(ctx, func() {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.interrupted = true
			if w.current != nil {
				w.current.interrupt()
			}
		})
	}
}

// Write sends one packet, connecting first if needed.
func (w *Writer) Write(ctx context.Context, p *astiav.Packet, stream int) error {
	w.watch(ctx)
	if w.mux == nil {
		if err := w.connect(); err != nil {
			return err
		}
	}
	src := w.cfg.Video.TimeBase
	if stream == 1 {
		if w.cfg.Audio == nil {
			return errors.New("rtmp: audio packet for a video-only stream")
		}
		src = w.cfg.Audio.TimeBase
	}
	if err := w.pkt.Ref(p); err != nil {
		return fmt.Errorf("rtmp: reference packet: %w", err)
	}
	w.pkt.SetStreamIndex(stream)
	w.pkt.RescaleTs(src, w.streams[stream].TimeBase())
	if err := w.mux.WriteInterleavedFrame(w.pkt); err != nil {
		return fmt.Errorf("rtmp: send to %s: %w", redact(w.cfg.URL), w.conn.failure(err))
	}
	return nil
}

// Reopen drops the broken connection and connects again.
func (w *Writer) Reopen(ctx context.Context) error {
	w.watch(ctx)
	_ = w.disconnect(false) // the connection is already broken: closing it can only fail too
	return w.connect()
}

// connect opens the RTMP connection and starts an FLV stream on it.
func (w *Writer) connect() error {
	// rw_timeout, not timeout: for rtmp, "timeout" means listen for a publisher.
	opts := map[string]string{"rw_timeout": strconv.FormatInt(w.cfg.IOTimeout.Microseconds(), 10)}
	if u, _ := url.Parse(w.cfg.URL); u.Scheme == "rtmps" {
		opts["tls_verify"] = "1"
		if w.cfg.InsecureSkipVerify {
			opts["tls_verify"] = "0"
		}
		if w.cfg.CAFile != "" {
			opts["ca_file"] = w.cfg.CAFile
		}
	}
	// The connection is reachable by the context watch before it dials, so
	// that cancelling the destination interrupts a hanging connect too.
	c := newConn()
	w.mu.Lock()
	w.current = c
	if w.interrupted {
		c.interrupt()
	}
	w.mu.Unlock()
	w.conn = c
	if err := c.open(w.cfg.URL, opts); err != nil {
		_ = w.disconnect(false) // the connect error is the one to report
		return fmt.Errorf("rtmp: connect to %s: %w", redact(w.cfg.URL), err)
	}
	if err := w.startFLV(); err != nil {
		_ = w.disconnect(false)
		return fmt.Errorf("rtmp: start stream on %s: %w", redact(w.cfg.URL), c.failure(err))
	}
	return nil
}

func (w *Writer) startFLV() error {
	fc, err := astiav.AllocOutputFormatContext(nil, "flv", "")
	if err != nil {
		return fmt.Errorf("flv muxer: %w", err)
	}
	w.mux = fc
	// Every packet goes out at once: this is a live stream.
	fc.SetFlags(fc.Flags().Add(astiav.FormatContextFlagFlushPackets))
	ioctx, err := astiav.AllocIOContext(64<<10, true, nil, nil, w.conn.write)
	if err != nil {
		return fmt.Errorf("flv io: %w", err)
	}
	w.ioctx = ioctx
	fc.SetPb(ioctx)
	streams := []Stream{w.cfg.Video}
	if w.cfg.Audio != nil {
		streams = append(streams, *w.cfg.Audio)
	}
	if w.streams, err = sink.AddMuxerStreams(fc, streams...); err != nil {
		return fmt.Errorf("flv: %w", err)
	}
	if err := fc.WriteHeader(nil); err != nil {
		return fmt.Errorf("flv header: %w", err)
	}
	return nil
}

// disconnect ends the FLV stream (with its trailer when graceful) and closes
// the connection. It is safe to call in any state.
func (w *Writer) disconnect(graceful bool) error {
	var err error
	if w.mux != nil {
		if graceful && w.conn != nil && w.conn.err == nil {
			err = w.mux.WriteTrailer()
		}
		w.mux.Free()
		w.mux = nil
	}
	if w.ioctx != nil {
		w.ioctx.Free()
		w.ioctx = nil
	}
	if w.conn != nil {
		w.mu.Lock()
		w.current = nil
		w.mu.Unlock()
		err = errors.Join(err, w.conn.close())
		w.conn = nil
	}
	return err
}

// Close ends the stream cleanly and releases everything.
func (w *Writer) Close(context.Context) error {
	err := w.disconnect(true)
	if w.stop != nil {
		w.stop()
	}
	if w.pkt != nil {
		w.pkt.Free()
		w.pkt = nil
	}
	if err != nil {
		return fmt.Errorf("rtmp: close %s: %w", redact(w.cfg.URL), err)
	}
	return nil
}

// redact hides the stream key, the last path element, in logs and errors.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<invalid url>"
	}
	path := u.Path
	if i := strings.LastIndexByte(path, '/'); i >= 0 && i < len(path)-1 {
		path = path[:i+1] + "****"
	}
	return u.Scheme + "://" + u.Host + path
}
