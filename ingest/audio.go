package ingest

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/asticode/go-astiav"

	"github.com/stagehand-rt/stagehand/internal/avframe"
)

// Opus as the stage carries it: 48 kHz stereo, 20 ms packets.
const (
	opusRate    = 48000
	opusSamples = 960
)

// inputPadding is the zeroed tail FFmpeg's bitstream readers may read past
// a packet's end (AV_INPUT_BUFFER_PADDING_SIZE, 64 in FFmpeg 5.1).
var inputPadding [64]byte

// Boxed once: errors.Is against the constants would box them every call.
var (
	errAgain error = astiav.ErrEagain
	errEOF   error = astiav.ErrEof
)

// transcoder turns AAC access units into Opus packets: FFmpeg's AAC
// decoder, a filter graph that resamples to 48 kHz stereo and cuts 20 ms
// frames (aresample, aformat, asetnsamples), and libopus. Frames and
// packets are allocated once and reused; close frees everything.
//
// WebRTC has no AAC, so this is the one place an RTMP publisher's media is
// re-encoded.
type transcoder struct {
	dec, enc   *astiav.CodecContext
	graph      *astiav.FilterGraph
	src, sink  *astiav.FilterContext // owned by graph
	graphFor   string                // the abuffer arguments graph was built for
	pkt, out   *astiav.Packet
	decoded    *astiav.Frame
	filtered   *astiav.Frame
	frame      *astiav.Frame // 20 ms for the encoder, filled from fifo
	fifo       []byte        // resampled samples not yet encoded
	in         []byte        // an access unit and the decoder's input padding
	decodedPTS int64         // samples decoded, at the input rate
	encodedPTS int64         // samples encoded, at 48 kHz
}

// newTranscoder opens the AAC decoder with the stream's
// AudioSpecificConfig (the FLV AAC sequence header) and the Opus encoder.
func newTranscoder(asc []byte, bitrate int) (_ *transcoder, err error) {
	t := &transcoder{}
	defer func() {
		if err != nil {
			t.close()
		}
	}()
	if t.dec, err = openAACDecoder(asc); err != nil {
		return nil, err
	}
	if t.enc, err = openOpusEncoder(bitrate); err != nil {
		return nil, err
	}
	t.pkt, t.out = astiav.AllocPacket(), astiav.AllocPacket()
	t.decoded, t.filtered = astiav.AllocFrame(), astiav.AllocFrame()
	if t.pkt == nil || t.out == nil || t.decoded == nil || t.filtered == nil {
		return nil, errors.New("allocate audio packets and frames")
	}
	if t.frame, err = newOpusFrame(); err != nil {
		return nil, err
	}
	return t, nil
}

// newOpusFrame allocates the 20 ms frame the encoder takes, reused.
func newOpusFrame() (*astiav.Frame, error) {
	f := astiav.AllocFrame()
	if f == nil {
		return nil, errors.New("allocate Opus frame")
	}
	f.SetNbSamples(opusSamples)
	f.SetSampleFormat(astiav.SampleFormatFlt)
	f.SetSampleRate(opusRate)
	f.SetChannelLayout(astiav.ChannelLayoutStereo)
	if err := f.AllocBuffer(0); err != nil {
		f.Free()
		return nil, fmt.Errorf("allocate the Opus frame buffer: %w", err)
	}
	return f, nil
}

func openAACDecoder(asc []byte) (*astiav.CodecContext, error) {
	codec := astiav.FindDecoder(astiav.CodecIDAac)
	if codec == nil {
		return nil, errors.New("no AAC decoder in FFmpeg")
	}
	cc := astiav.AllocCodecContext(codec)
	if cc == nil {
		return nil, errors.New("allocate AAC decoder")
	}
	cc.SetThreadCount(1)
	if err := cc.SetExtraData(asc); err != nil {
		cc.Free()
		return nil, fmt.Errorf("AAC decoder configuration: %w", err)
	}
	if err := cc.Open(codec, nil); err != nil {
		cc.Free()
		return nil, fmt.Errorf("open AAC decoder: %w", err)
	}
	return cc, nil
}

func openOpusEncoder(bitrate int) (*astiav.CodecContext, error) {
	codec := astiav.FindEncoderByName("libopus")
	if codec == nil {
		return nil, errors.New("no libopus encoder in FFmpeg")
	}
	cc := astiav.AllocCodecContext(codec)
	if cc == nil {
		return nil, errors.New("allocate Opus encoder")
	}
	cc.SetSampleFormat(astiav.SampleFormatFlt)
	cc.SetSampleRate(opusRate)
	cc.SetChannelLayout(astiav.ChannelLayoutStereo)
	cc.SetBitRate(int64(bitrate))
	cc.SetTimeBase(astiav.NewRational(1, opusRate))
	if err := cc.Open(codec, nil); err != nil {
		cc.Free()
		return nil, fmt.Errorf("open Opus encoder: %w", err)
	}
	if fs := cc.FrameSize(); fs != opusSamples {
		cc.Free()
		return nil, fmt.Errorf("the Opus encoder's frame size is %d, want %d", fs, opusSamples)
	}
	return cc, nil
}

// push decodes one AAC access unit and passes every Opus packet that
// completes to emit, with its timestamp in 48 kHz samples. The packet
// bytes are valid only during the call.
func (t *transcoder) push(au []byte, emit func(opus []byte, ts uint32) error) error {
	t.in = append(append(t.in[:0], au...), inputPadding[:]...)
	if err := t.pkt.FromData(t.in); err != nil {
		return fmt.Errorf("AAC packet: %w", err)
	}
	t.pkt.SetSize(len(au))
	err := t.dec.SendPacket(t.pkt)
	t.pkt.Unref()
	if err != nil {
		return fmt.Errorf("decode AAC: %w", err)
	}
	for {
		t.decoded.Unref()
		err := t.dec.ReceiveFrame(t.decoded)
		if errors.Is(err, errAgain) || errors.Is(err, errEOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("decode AAC: %w", err)
		}
		if err := t.filter(emit); err != nil {
			return err
		}
	}
}

// filter resamples the decoded frame and encodes every 20 ms frame out of
// the graph.
func (t *transcoder) filter(emit func([]byte, uint32) error) error {
	if err := t.ensureGraph(t.decoded); err != nil {
		return err
	}
	t.decoded.SetPts(t.decodedPTS)
	t.decodedPTS += int64(t.decoded.NbSamples())
	if err := t.src.BuffersrcAddFrame(t.decoded, astiav.NewBuffersrcFlags()); err != nil {
		return fmt.Errorf("resample: %w", err)
	}
	for {
		t.filtered.Unref()
		err := t.sink.BuffersinkGetFrame(t.filtered, astiav.NewBuffersinkFlags())
		if errors.Is(err, errAgain) || errors.Is(err, errEOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("resample: %w", err)
		}
		if err := t.encode(emit); err != nil {
			return err
		}
	}
}

// encode queues the filtered samples and encodes every whole 20 ms.
func (t *transcoder) encode(emit func([]byte, uint32) error) error {
	t.fifo = append(t.fifo, avframe.AudioPlane(t.filtered, 0)[:t.filtered.NbSamples()*8]...)
	var done int
	for ; len(t.fifo)-done >= opusFrameBytes; done += opusFrameBytes {
		// The encoder has let go of the frame: every packet of the previous
		// one was received.
		copy(avframe.AudioPlane(t.frame, 0), t.fifo[done:done+opusFrameBytes])
		if err := t.encodeFrame(emit); err != nil {
			t.fifo = t.fifo[:copy(t.fifo, t.fifo[done+opusFrameBytes:])]
			return err
		}
	}
	t.fifo = t.fifo[:copy(t.fifo, t.fifo[done:])]
	return nil
}

func (t *transcoder) encodeFrame(emit func([]byte, uint32) error) error {
	t.frame.SetPts(t.encodedPTS)
	t.encodedPTS += opusSamples
	if err := t.enc.SendFrame(t.frame); err != nil {
		return fmt.Errorf("encode Opus: %w", err)
	}
	for {
		t.out.Unref()
		err := t.enc.ReceivePacket(t.out)
		if errors.Is(err, errAgain) || errors.Is(err, errEOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("encode Opus: %w", err)
		}
		if err := emit(t.out.Data(), uint32(t.out.Pts())); err != nil {
			return err
		}
	}
}

// resampleGraph makes 48 kHz interleaved stereo float. Frames are cut to
// Opus's 20 ms in Go (t.fifo): FFmpeg 5.1's asetnsamples behind a buffer
// sink releases one frame per input frame, so a backlog grows when the
// input frames are longer than 20 ms (AAC's 1024 samples at 32 kHz are).
const resampleGraph = "aresample=48000,aformat=sample_fmts=flt:channel_layouts=stereo"

// opusFrameBytes is one 20 ms frame of interleaved stereo float.
const opusFrameBytes = opusSamples * 2 * 4

// ensureGraph builds the resampling graph for f's format, again if the
// format changes mid-stream (an encoder restarting with other settings).
func (t *transcoder) ensureGraph(f *astiav.Frame) error {
	args := astiav.FilterArgs{
		"time_base":      fmt.Sprintf("1/%d", f.SampleRate()),
		"sample_rate":    strconv.Itoa(f.SampleRate()),
		"sample_fmt":     f.SampleFormat().Name(),
		"channel_layout": f.ChannelLayout().String(),
	}
	key := fmt.Sprint(args)
	if key == t.graphFor {
		return nil
	}
	t.freeGraph()
	if err := t.buildGraph(args); err != nil {
		t.freeGraph()
		return fmt.Errorf("resampling graph for %s: %w", key, err)
	}
	t.graphFor = key
	return nil
}

func (t *transcoder) buildGraph(args astiav.FilterArgs) error {
	if t.graph = astiav.AllocFilterGraph(); t.graph == nil {
		return errors.New("allocate filter graph")
	}
	t.graph.SetThreadCount(1)
	var err error
	if t.src, err = t.graph.NewFilterContext(astiav.FindFilterByName("abuffer"), "in", args); err != nil {
		return fmt.Errorf("abuffer: %w", err)
	}
	if t.sink, err = t.graph.NewFilterContext(astiav.FindFilterByName("abuffersink"), "out", nil); err != nil {
		return fmt.Errorf("abuffersink: %w", err)
	}
	// The graph's open input is fed by "in", its open output feeds "out".
	outputs, inputs := astiav.AllocFilterInOut(), astiav.AllocFilterInOut()
	defer outputs.Free()
	defer inputs.Free()
	outputs.SetName("in")
	outputs.SetFilterContext(t.src)
	outputs.SetPadIdx(0)
	outputs.SetNext(nil)
	inputs.SetName("out")
	inputs.SetFilterContext(t.sink)
	inputs.SetPadIdx(0)
	inputs.SetNext(nil)
	if err := t.graph.Parse(resampleGraph, inputs, outputs); err != nil {
		return fmt.Errorf("parse: %w", err)
	}
	if err := t.graph.Configure(); err != nil {
		return fmt.Errorf("configure: %w", err)
	}
	return nil
}

// freeGraph frees the graph and the filters it owns.
func (t *transcoder) freeGraph() {
	if t.graph != nil {
		t.graph.Free()
		t.graph, t.src, t.sink, t.graphFor = nil, nil, nil, ""
	}
}

// close frees everything; the transcoder is unusable afterwards.
func (t *transcoder) close() {
	t.freeGraph()
	for _, f := range []**astiav.Frame{&t.decoded, &t.filtered, &t.frame} {
		if *f != nil {
			(*f).Free()
			*f = nil
		}
	}
	for _, p := range []**astiav.Packet{&t.pkt, &t.out} {
		if *p != nil {
			(*p).Free()
			*p = nil
		}
	}
	for _, cc := range []**astiav.CodecContext{&t.dec, &t.enc} {
		if *cc != nil {
			(*cc).Free()
			*cc = nil
		}
	}
}
