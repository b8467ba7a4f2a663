// Package thumbnail writes JPEG thumbnails of a video stream every interval
// of media time, as IVS does for recordings: numbered files (SEQUENTIAL)
// and/or one file overwritten each time (LATEST), laid out by the caller
// (composite recordings use <W>x<H> folders, individual ones "high").
//
// A Writer owns an FFmpeg mjpeg encoder, a scaler and one frame and packet,
// allocated on the first thumbnail and reused; Close frees them. It starts
// no goroutines and is not safe for concurrent use.
package thumbnail

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"time"

	"github.com/asticode/go-astiav"

	"github.com/stagehand-rt/stagehand/sink/ivsrec"
)

// Config says where and how often thumbnails are written.
type Config struct {
	// Dir is the recording's prefix on local disk.
	Dir string
	// SequentialDir and LatestDir are folders under Dir, slash-separated;
	// an empty one is not written.
	SequentialDir, LatestDir string
	// Interval of media time between thumbnails; the first is the first
	// frame offered.
	Interval time.Duration
	// Width and Height of the JPEGs; zero: the frame's own size.
	Width, Height int
	// FirstIndex numbers the first sequential file (a recording continued
	// after a reconnect goes on counting).
	FirstIndex int
	// OnFile is told of every file written, relative to Dir with slashes.
	OnFile func(rel string)
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.Dir == "" || (c.SequentialDir == "" && c.LatestDir == "") {
		return errors.New("thumbnail: a directory and at least one of sequential or latest storage are required")
	}
	if c.Interval <= 0 {
		return fmt.Errorf("thumbnail: interval %v is not positive", c.Interval)
	}
	if c.Width < 0 || c.Height < 0 || c.Width%2 != 0 || c.Height%2 != 0 {
		return fmt.Errorf("thumbnail: size %dx%d is not even", c.Width, c.Height)
	}
	return nil
}

// Writer encodes and writes thumbnails.
type Writer struct {
	cfg   Config
	next  time.Duration // media time the next thumbnail is due
	index int           // of the next sequential file
	cc    *astiav.CodecContext
	sws   *astiav.SoftwareScaleContext
	srcW  int
	srcH  int
	srcF  astiav.PixelFormat
	frame *astiav.Frame // scaled picture handed to the encoder
	pkt   *astiav.Packet
	// encoded counts the pictures encoded: their timestamps.
	encoded int64
}

// New checks cfg and creates the folders; the encoder opens with the first
// thumbnail.
func New(cfg Config) (*Writer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	for _, d := range []string{cfg.SequentialDir, cfg.LatestDir} {
		if d == "" {
			continue
		}
		if err := os.MkdirAll(filepath.Join(cfg.Dir, filepath.FromSlash(d)), 0o700); err != nil {
			return nil, fmt.Errorf("thumbnail: %w", err)
		}
	}
	return &Writer{cfg: cfg, index: cfg.FirstIndex}, nil
}

// Next is the index the next sequential thumbnail will have.
func (w *Writer) Next() int { return w.index }

// Rebase makes the next frame offered due at once, with media times
// counted from a new origin (a new run of a recording).
func (w *Writer) Rebase() { w.next = 0 }

// Offer writes f as a thumbnail if one is due at media time t. f is not
// kept.
func (w *Writer) Offer(f *astiav.Frame, t time.Duration) error {
	// A tenth of the interval early is on time: pictures come when the
	// publisher sends them (keyframes, for a remuxed stream), not on a grid.
	if t+w.cfg.Interval/10 < w.next {
		return nil
	}
	w.next = t + w.cfg.Interval
	data, err := w.encode(f)
	if err != nil {
		return err
	}
	if d := w.cfg.SequentialDir; d != "" {
		if err := w.write(path.Join(d, strconv.Itoa(w.index)+".jpg"), data); err != nil {
			return err
		}
	}
	w.index++
	if d := w.cfg.LatestDir; d != "" {
		return w.write(path.Join(d, "thumb.jpg"), data)
	}
	return nil
}

// write publishes a thumbnail atomically: the uploader may be reading the
// previous LATEST file.
func (w *Writer) write(rel string, data []byte) error {
	if err := (ivsrec.Output{Dir: w.cfg.Dir, OnFile: w.cfg.OnFile}).Publish(rel, data); err != nil {
		return fmt.Errorf("thumbnail: %w", err)
	}
	return nil
}

// encode scales f into the encoder's frame and returns the JPEG.
func (w *Writer) encode(f *astiav.Frame) ([]byte, error) {
	if w.cc == nil {
		if err := w.open(f); err != nil {
			w.Close()
			return nil, err
		}
	}
	if err := w.scaler(f); err != nil {
		return nil, err
	}
	if err := w.sws.ScaleFrame(f, w.frame); err != nil {
		return nil, fmt.Errorf("thumbnail: scale: %w", err)
	}
	w.frame.SetPts(w.encoded) // the encoder wants increasing timestamps
	w.encoded++
	if err := w.cc.SendFrame(w.frame); err != nil {
		return nil, fmt.Errorf("thumbnail: encode: %w", err)
	}
	if err := w.cc.ReceivePacket(w.pkt); err != nil {
		return nil, fmt.Errorf("thumbnail: encode: %w", err)
	}
	defer w.pkt.Unref()
	return append([]byte(nil), w.pkt.Data()...), nil
}

// open allocates the mjpeg encoder at the thumbnail size.
func (w *Writer) open(f *astiav.Frame) error {
	width, height := w.cfg.Width, w.cfg.Height
	if width == 0 || height == 0 {
		width, height = f.Width()&^1, f.Height()&^1
	}
	codec := astiav.FindEncoder(astiav.CodecIDMjpeg)
	if codec == nil {
		return errors.New("thumbnail: no mjpeg encoder in FFmpeg")
	}
	w.cc = astiav.AllocCodecContext(codec)
	if w.cc == nil {
		return errors.New("thumbnail: allocate mjpeg encoder")
	}
	w.cc.SetWidth(width)
	w.cc.SetHeight(height)
	w.cc.SetPixelFormat(astiav.PixelFormatYuvj420P)
	w.cc.SetTimeBase(astiav.NewRational(1, 1))
	// Fixed quality rather than a bit rate, as each thumbnail stands
	// alone: frames carry no quality, so the scale is clipped to qmin.
	w.cc.SetFlags(w.cc.Flags().Add(astiav.CodecContextFlagQscale))
	w.cc.SetQmin(3)
	if err := w.cc.Open(codec, nil); err != nil {
		return fmt.Errorf("thumbnail: open mjpeg encoder: %w", err)
	}
	w.frame = astiav.AllocFrame()
	w.frame.SetWidth(width)
	w.frame.SetHeight(height)
	w.frame.SetPixelFormat(astiav.PixelFormatYuvj420P)
	if err := w.frame.AllocBuffer(0); err != nil {
		return fmt.Errorf("thumbnail: frame: %w", err)
	}
	w.pkt = astiav.AllocPacket()
	return nil
}

// scaler (re)creates the scaler for f's geometry.
func (w *Writer) scaler(f *astiav.Frame) error {
	if w.sws != nil && f.Width() == w.srcW && f.Height() == w.srcH && f.PixelFormat() == w.srcF {
		return nil
	}
	if w.sws != nil {
		w.sws.Free()
		w.sws = nil
	}
	sws, err := astiav.CreateSoftwareScaleContext(f.Width(), f.Height(), f.PixelFormat(),
		w.frame.Width(), w.frame.Height(), w.frame.PixelFormat(),
		astiav.NewSoftwareScaleContextFlags(astiav.SoftwareScaleContextFlagBilinear))
	if err != nil {
		return fmt.Errorf("thumbnail: scaler: %w", err)
	}
	w.sws, w.srcW, w.srcH, w.srcF = sws, f.Width(), f.Height(), f.PixelFormat()
	return nil
}

// Close frees the encoder, scaler, frame and packet.
func (w *Writer) Close() {
	if w.sws != nil {
		w.sws.Free()
		w.sws = nil
	}
	if w.frame != nil {
		w.frame.Free()
		w.frame = nil
	}
	if w.pkt != nil {
		w.pkt.Free()
		w.pkt = nil
	}
	if w.cc != nil {
		w.cc.Free()
		w.cc = nil
	}
}
