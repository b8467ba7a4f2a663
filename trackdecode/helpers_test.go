package trackdecode

import (
	"math"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/asticode/go-astiav"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"

	"github.com/stagehand-rt/stagehand/internal/avframe"
)

func TestMain(m *testing.M) {
	// Broken input is the point of several tests; FFmpeg would log every
	// frame it refuses.
	astiav.SetLogLevel(astiav.LogLevelQuiet)
	os.Exit(m.Run())
}

const (
	testSSRC   = 0x5eed1234
	testPT     = 96
	testMTU    = 1200
	videoStep  = videoClockRate / 30 // RTP ticks per frame at 30 fps
	opusFrame  = 960                 // samples per 20 ms packet
	noiseBandH = 48                  // rows of noise at the top of each test picture
)

// colour is the background of test picture i, as Y, U and V.
func colour(i int) (y, u, v uint8) {
	return uint8(40 + (i*37)%170), uint8(96 + (i*23)%64), uint8(160 - (i*29)%64)
}

// videoStream is a real encoded stream, packetized as a WebRTC sender would.
type videoStream struct {
	mime    string
	w, h    int
	key     []bool          // per frame: encoded as a keyframe
	ts      []uint32        // per frame: RTP timestamp
	packets [][]*rtp.Packet // per frame
	index   map[uint32]int  // RTP timestamp -> frame
}

// all returns every packet in sending order.
func (s *videoStream) all() []*rtp.Packet {
	var out []*rtp.Packet
	for _, f := range s.packets {
		out = append(out, f...)
	}
	return out
}

// newVideoStream encodes n pictures of w x h with a keyframe every gop
// frames and packetizes them at MTU 1200, starting near the wrap of both the
// sequence number and the timestamp. Picture i is solid colour(i) below a
// band of fresh noise, so that frames span several packets.
func newVideoStream(tb testing.TB, mime string, w, h, n, gop int) *videoStream {
	tb.Helper()
	// Generous bitrate: the noise band eats bits.
	return encodeVideo(tb, videoSpec{mime: mime, w: w, h: h, n: n, gop: gop, bitrate: w * h * 30, draw: drawPicture})
}

// videoSpec describes a test stream to encode.
type videoSpec struct {
	mime         string
	w, h, n, gop int
	bitrate      int
	draw         func(f *astiav.Frame, i int, rng *rand.Rand)
}

func encodeVideo(tb testing.TB, spec videoSpec) *videoStream {
	tb.Helper()
	mime, w, h, n, gop := spec.mime, spec.w, spec.h, spec.n, spec.gop
	var (
		enc       *astiav.Codec
		payloader rtp.Payloader
		opts      = map[string]string{}
	)
	switch mime {
	case MimeTypeVP8:
		enc = astiav.FindEncoderByName("libvpx")
		payloader = &codecs.VP8Payloader{EnablePictureID: true}
		opts["deadline"] = "realtime"
		opts["cpu-used"] = "8"
		opts["lag-in-frames"] = "0"
		opts["auto-alt-ref"] = "0"
	case MimeTypeH264:
		enc = astiav.FindEncoderByName("libx264")
		payloader = &codecs.H264Payloader{}
		opts["preset"] = "ultrafast"
		opts["tune"] = "zerolatency"
		opts["profile"] = "baseline"
		opts["forced-idr"] = "1"
		opts["sc_threshold"] = "0"
	default:
		tb.Fatalf("no encoder for %s", mime)
	}
	if enc == nil {
		tb.Skipf("no encoder for %s in this FFmpeg", mime)
	}
	cc := astiav.AllocCodecContext(enc)
	defer cc.Free()
	cc.SetWidth(w)
	cc.SetHeight(h)
	cc.SetPixelFormat(astiav.PixelFormatYuv420P)
	cc.SetTimeBase(astiav.NewRational(1, 30))
	cc.SetFramerate(astiav.NewRational(30, 1))
	cc.SetBitRate(int64(spec.bitrate))
	cc.SetGopSize(10 * n) // only the keyframes forced below
	cc.SetThreadCount(1)
	d := astiav.NewDictionary()
	defer d.Free()
	for k, v := range opts {
		if err := d.Set(k, v, 0); err != nil {
			tb.Fatal(err)
		}
	}
	if err := cc.Open(enc, d); err != nil {
		tb.Fatalf("open %s encoder: %v", mime, err)
	}
	pkt := astiav.AllocPacket()
	defer pkt.Free()

	s := &videoStream{mime: mime, w: w, h: h, index: map[uint32]int{}}
	p := rtp.NewPacketizerWithOptions(testMTU, payloader, rtp.NewFixedSequencer(65500), videoClockRate,
		rtp.WithSSRC(testSSRC), rtp.WithPayloadType(testPT), rtp.WithTimestamp(math.MaxUint32-20*videoStep))
	rng := rand.New(rand.NewPCG(7, uint64(len(mime))))
	emit := func() {
		for {
			if err := cc.ReceivePacket(pkt); err != nil {
				return
			}
			i := len(s.packets)
			s.key = append(s.key, pkt.Flags().Has(astiav.PacketFlagKey))
			s.packets = append(s.packets, p.Packetize(pkt.Data(), videoStep))
			s.ts = append(s.ts, s.packets[i][0].Timestamp)
			s.index[s.ts[i]] = i
			pkt.Unref()
		}
	}
	for i := 0; i < n; i++ {
		f := astiav.AllocFrame()
		f.SetWidth(w)
		f.SetHeight(h)
		f.SetPixelFormat(astiav.PixelFormatYuv420P)
		if err := f.AllocBuffer(0); err != nil {
			tb.Fatal(err)
		}
		spec.draw(f, i, rng)
		f.SetPts(int64(i))
		if i%gop == 0 {
			f.SetPictureType(astiav.PictureTypeI)
		}
		err := cc.SendFrame(f)
		f.Free()
		if err != nil {
			tb.Fatal(err)
		}
		emit()
	}
	if err := cc.SendFrame(nil); err != nil {
		tb.Fatal(err)
	}
	emit()
	if len(s.packets) != n {
		tb.Fatalf("%s encoder gave %d frames for %d pictures", mime, len(s.packets), n)
	}
	for i, k := range s.key {
		if k != (i%gop == 0) {
			tb.Fatalf("%s frame %d: keyframe %v, want keyframes every %d frames exactly", mime, i, k, gop)
		}
	}
	return s
}

// drawPicture draws colour(i) below a band of noise.
func drawPicture(f *astiav.Frame, i int, rng *rand.Rand) {
	y, u, v := colour(i)
	for p, c := range []uint8{y, u, v} {
		plane, ls := avframe.VideoPlane(f, p)
		rows, cols := f.Height(), f.Width()
		if p > 0 {
			rows, cols = rows/2, cols/2
		}
		for r := 0; r < rows; r++ {
			line := plane[r*ls : r*ls+cols]
			noise := p == 0 && r < noiseBandH
			for x := range line {
				if noise {
					line[x] = uint8(rng.IntN(256))
				} else {
					line[x] = c
				}
			}
		}
	}
}

// meanBelowBand is the mean of each plane of f below the noise band.
func meanBelowBand(f *astiav.Frame) [3]float64 {
	var m [3]float64
	for p := 0; p < 3; p++ {
		plane, ls := avframe.VideoPlane(f, p)
		top, rows, cols := noiseBandH+16, f.Height(), f.Width()
		if p > 0 {
			top, rows, cols = top/2, rows/2, cols/2
		}
		var sum, n float64
		for r := top; r < rows; r++ {
			for _, b := range plane[r*ls : r*ls+cols] {
				sum += float64(b)
				n++
			}
		}
		m[p] = sum / n
	}
	return m
}

// audioStream is a real Opus stream of a 600 Hz tone left and 1500 Hz right.
type audioStream struct {
	packets []*rtp.Packet // one per 20 ms frame
}

const (
	toneLeft  = 600.0
	toneRight = 1500.0
)

func newAudioStream(tb testing.TB, frames int) *audioStream {
	tb.Helper()
	enc := astiav.FindEncoderByName("libopus")
	if enc == nil {
		tb.Skip("no libopus encoder in this FFmpeg")
	}
	cc := astiav.AllocCodecContext(enc)
	defer cc.Free()
	cc.SetSampleRate(AudioSampleRate)
	cc.SetSampleFormat(astiav.SampleFormatFlt)
	cc.SetChannelLayout(astiav.ChannelLayoutStereo)
	cc.SetBitRate(96000)
	cc.SetTimeBase(astiav.NewRational(1, AudioSampleRate))
	if err := cc.Open(enc, nil); err != nil {
		tb.Fatalf("open libopus: %v", err)
	}
	if cc.FrameSize() != opusFrame {
		tb.Fatalf("libopus frame size %d, want %d", cc.FrameSize(), opusFrame)
	}
	pkt := astiav.AllocPacket()
	defer pkt.Free()
	s := &audioStream{}
	p := rtp.NewPacketizerWithOptions(testMTU, &codecs.OpusPayloader{}, rtp.NewFixedSequencer(65530), AudioSampleRate,
		rtp.WithSSRC(testSSRC+1), rtp.WithPayloadType(111), rtp.WithTimestamp(math.MaxUint32-10*opusFrame))
	emit := func() {
		for cc.ReceivePacket(pkt) == nil {
			s.packets = append(s.packets, p.Packetize(pkt.Data(), opusFrame)...)
			pkt.Unref()
		}
	}
	buf := make([]byte, opusFrame*2*4)
	for i := 0; i < frames; i++ {
		f := astiav.AllocFrame()
		f.SetNbSamples(opusFrame)
		f.SetSampleFormat(astiav.SampleFormatFlt)
		f.SetChannelLayout(astiav.ChannelLayoutStereo)
		f.SetSampleRate(AudioSampleRate)
		if err := f.AllocBuffer(0); err != nil {
			tb.Fatal(err)
		}
		for n := 0; n < opusFrame; n++ {
			t := float64(i*opusFrame+n) / AudioSampleRate
			for c, hz := range []float64{toneLeft, toneRight} {
				v := float32(0.5 * math.Sin(2*math.Pi*hz*t))
				putFloat32(buf[(n*2+c)*4:], v)
			}
		}
		copy(avframe.AudioPlane(f, 0), buf)
		f.SetPts(int64(i * opusFrame))
		err := cc.SendFrame(f)
		f.Free()
		if err != nil {
			tb.Fatal(err)
		}
		emit()
	}
	if err := cc.SendFrame(nil); err != nil {
		tb.Fatal(err)
	}
	emit()
	return s
}

func putFloat32(b []byte, v float32) {
	u := math.Float32bits(v)
	b[0], b[1], b[2], b[3] = byte(u), byte(u>>8), byte(u>>16), byte(u>>24)
}

// clone deep-copies a packet, so a test can change it.
func clone(p *rtp.Packet) *rtp.Packet { return p.Clone() }

// renumber gives pkts consecutive sequence numbers from the first one's.
func renumber(pkts []*rtp.Packet) []*rtp.Packet {
	out := make([]*rtp.Packet, len(pkts))
	for i, p := range pkts {
		out[i] = clone(p)
		out[i].SequenceNumber = pkts[0].SequenceNumber + uint16(i)
	}
	return out
}

// looper replays a stream without end: every pass continues the sequence
// numbers and timestamps of the last, so the decoder sees one long track.
type looper struct {
	frames  [][]*rtp.Packet // working copies, rewritten for each pass
	seq     [][]uint16      // the originals
	ts      []uint32
	seqSpan uint16
	tsSpan  uint32
}

func newLooper(s *videoStream) *looper {
	l := &looper{tsSpan: uint32(len(s.packets) * videoStep)}
	for i, ps := range s.packets {
		var fr []*rtp.Packet
		var sq []uint16
		for _, p := range ps {
			fr = append(fr, clone(p))
			sq = append(sq, p.SequenceNumber)
		}
		l.frames = append(l.frames, fr)
		l.seq = append(l.seq, sq)
		l.ts = append(l.ts, s.ts[i])
		l.seqSpan += uint16(len(ps))
	}
	return l
}

// frame returns the packets of frame i of the endless track.
func (l *looper) frame(i int) []*rtp.Packet {
	pass, f := i/len(l.frames), i%len(l.frames)
	for j, p := range l.frames[f] {
		p.SequenceNumber = l.seq[f][j] + uint16(pass)*l.seqSpan
		p.Timestamp = l.ts[f] + uint32(pass)*l.tsSpan
	}
	return l.frames[f]
}
