package compose

import (
	"errors"
	"fmt"
	"log/slog"
	"math"

	"github.com/asticode/go-astiav"
)

// input is one media file decoded as a participant: its best video and
// audio streams, read in file order and decoded to frames.
type input struct {
	path       string
	log        *slog.Logger
	fc         *astiav.FormatContext
	pkt        *astiav.Packet
	frame      *astiav.Frame // reused for every decoded frame
	video      *decoder
	audio      *decoder
	eof        bool // the file is exhausted and the decoders drained
	readingEOF bool // the file is exhausted; the decoders are draining
	readErrors int  // consecutive unreadable packets
}

// maxReadErrors is how many unreadable packets in a row end an input: the
// demuxer resyncs past damage, but a file that is garbage to the end must
// not spin forever.
const maxReadErrors = 256

type decoder struct {
	cc       *astiav.CodecContext
	index    int
	timeBase astiav.Rational
	drained  bool
}

func openInput(path string, log *slog.Logger) (*input, error) {
	in := &input{path: path, log: log, fc: astiav.AllocFormatContext()}
	if in.fc == nil {
		return nil, errors.New("allocate format context")
	}
	if err := in.fc.OpenInput(path, nil, nil); err != nil {
		in.fc.Free()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := in.fc.FindStreamInfo(nil); err != nil {
		in.close()
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	for _, s := range in.fc.Streams() {
		kind := s.CodecParameters().MediaType()
		if (kind == astiav.MediaTypeVideo && in.video != nil) || (kind == astiav.MediaTypeAudio && in.audio != nil) ||
			(kind != astiav.MediaTypeVideo && kind != astiav.MediaTypeAudio) {
			continue
		}
		d, err := openDecoder(s)
		if err != nil {
			in.close()
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if kind == astiav.MediaTypeVideo {
			in.video = d
		} else {
			in.audio = d
		}
	}
	if in.video == nil && in.audio == nil {
		in.close()
		return nil, fmt.Errorf("%s: no audio or video stream", path)
	}
	in.pkt, in.frame = astiav.AllocPacket(), astiav.AllocFrame()
	return in, nil
}

func openDecoder(s *astiav.Stream) (*decoder, error) {
	cp := s.CodecParameters()
	codec := astiav.FindDecoder(cp.CodecID())
	if codec == nil {
		return nil, fmt.Errorf("no decoder for %s", cp.CodecID())
	}
	cc := astiav.AllocCodecContext(codec)
	if cc == nil {
		return nil, errors.New("allocate decoder")
	}
	if err := cp.ToCodecContext(cc); err != nil {
		cc.Free()
		return nil, fmt.Errorf("decoder parameters: %w", err)
	}
	if err := cc.Open(codec, nil); err != nil {
		cc.Free()
		return nil, fmt.Errorf("open %s decoder: %w", cp.CodecID(), err)
	}
	return &decoder{cc: cc, index: s.Index(), timeBase: s.TimeBase()}, nil
}

// next decodes the next frame into in.frame and says whether it is video,
// and its time in seconds. ok is false at the end of the file. A corrupt
// packet is skipped, not fatal: the next one may decode.
func (in *input) next() (video bool, t float64, ok bool, err error) {
	for {
		for _, d := range []*decoder{in.video, in.audio} {
			if d == nil || d.drained {
				continue
			}
			err := d.cc.ReceiveFrame(in.frame)
			switch {
			case err == nil:
				return d == in.video, frameTime(in.frame, d.timeBase), true, nil
			case errors.Is(err, astiav.ErrEof):
				d.drained = true
			case !errors.Is(err, astiav.ErrEagain):
				// A damaged frame: skip it, the decoder recovers at the next one.
				in.log.Debug("undecodable frame skipped", "input", in.path, "error", err)
			}
		}
		if in.readingEOF {
			in.eof = true
			return false, 0, false, nil
		}
		in.feed()
	}
}

// feed sends the next packet to its decoder, or starts draining at the end.
func (in *input) feed() {
	for {
		err := in.fc.ReadFrame(in.pkt)
		if err != nil && !errors.Is(err, astiav.ErrEof) && in.readErrors < maxReadErrors {
			if in.readErrors == 0 {
				in.log.Warn("damaged input; skipping to readable data", "input", in.path, "error", err)
			}
			in.readErrors++
			continue
		}
		if err != nil {
			// End of file, or an unreadable rest of it: drain what is decoded.
			in.readingEOF = true
			for _, d := range []*decoder{in.video, in.audio} {
				if d != nil {
					_ = d.cc.SendPacket(nil)
				}
			}
			return
		}
		in.readErrors = 0
		var d *decoder
		switch in.pkt.StreamIndex() {
		case streamIndex(in.video):
			d = in.video
		case streamIndex(in.audio):
			d = in.audio
		}
		if d != nil {
			_ = d.cc.SendPacket(in.pkt) // a bad packet is dropped; decoding goes on
			in.pkt.Unref()
			return
		}
		in.pkt.Unref()
	}
}

func streamIndex(d *decoder) int {
	if d == nil {
		return -1
	}
	return d.index
}

func frameTime(f *astiav.Frame, tb astiav.Rational) float64 {
	pts := f.Pts()
	if pts == astiav.NoPtsValue {
		return math.NaN()
	}
	return float64(pts) * tb.Float64()
}

func (in *input) close() {
	for _, d := range []*decoder{in.video, in.audio} {
		if d != nil {
			d.cc.Free()
		}
	}
	if in.pkt != nil {
		in.pkt.Free()
	}
	if in.frame != nil {
		in.frame.Free()
	}
	in.fc.CloseInput()
	in.fc.Free()
}
