package compositor

import (
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/asticode/go-astiav"

	"github.com/stagehand-rt/stagehand/internal/avframe"
)

// MixRate is the sample rate the mixer works at: Opus decodes at 48 kHz and
// AAC is encoded at it, so stage audio needs no resampling.
const MixRate = 48000

// ErrUnsupportedAudio is returned for audio the mixer cannot take as is.
var ErrUnsupportedAudio = errors.New("unsupported audio")

// mixBufferSeconds bounds each participant's queued audio; older samples
// are dropped (and counted) when a source runs ahead of the output clock.
const mixBufferSeconds = 2

// Mixer sums the participants' audio into 48 kHz stereo on the output
// clock. Sources push decoded frames; the clock pulls mixed frames. A source
// that has not delivered enough samples contributes silence for the gap.
// Sums beyond full scale are soft-clipped rather than wrapped or cut hard.
// It is safe for concurrent use.
type Mixer struct {
	mu      sync.Mutex
	sources map[string]*audioSource
	list    []*audioSource // the same sources, for the per-sample loop
	dropped uint64
}

type audioSource struct {
	ch [2]ring
}

// ring is a fixed-capacity FIFO of samples.
type ring struct {
	buf        []float32
	head, size int
}

func (r *ring) push(v float32) bool {
	dropped := false
	if r.size == len(r.buf) {
		r.head = (r.head + 1) % len(r.buf)
		r.size--
		dropped = true
	}
	r.buf[(r.head+r.size)%len(r.buf)] = v
	r.size++
	return dropped
}

func (r *ring) pop() float32 {
	if r.size == 0 {
		return 0
	}
	v := r.buf[r.head]
	r.head = (r.head + 1) % len(r.buf)
	r.size--
	return v
}

// NewMixer returns a mixer with no sources.
func NewMixer() *Mixer { return &Mixer{sources: map[string]*audioSource{}} }

// SetParticipants adds sources for new ids and drops those not listed.
func (m *Mixer) SetParticipants(ids []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	keep := make(map[string]bool, len(ids))
	for _, id := range ids {
		keep[id] = true
		if m.sources[id] == nil {
			s := &audioSource{}
			for c := range s.ch {
				s.ch[c].buf = make([]float32, mixBufferSeconds*MixRate)
			}
			m.sources[id] = s
		}
	}
	m.list = m.list[:0]
	for id, s := range m.sources {
		if !keep[id] {
			delete(m.sources, id)
			continue
		}
		m.list = append(m.list, s)
	}
}

// Push queues a decoded frame of participant id: 48 kHz, mono or stereo,
// float or 16-bit, planar or packed.
func (m *Mixer) Push(id string, f *astiav.Frame) error {
	if f.SampleRate() != MixRate {
		return fmt.Errorf("audio of %s at %d Hz: %w (want %d Hz)", id, f.SampleRate(), ErrUnsupportedAudio, MixRate)
	}
	channels := f.ChannelLayout().NbChannels()
	if channels < 1 {
		return fmt.Errorf("audio of %s has no channels: %w", id, ErrUnsupportedAudio)
	}
	read, err := sampleReader(f, channels)
	if err != nil {
		return fmt.Errorf("audio of %s: %w", id, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.sources[id]
	if s == nil {
		return fmt.Errorf("audio for %q: %w", id, ErrUnknownParticipant)
	}
	for i := 0; i < f.NbSamples(); i++ {
		l := read(0, i)
		r := l
		if channels > 1 {
			r = read(1, i)
		}
		if s.ch[0].push(l) {
			m.dropped++
		}
		s.ch[1].push(r)
	}
	return nil
}

// sampleReader returns a function reading sample i of channel c as float.
func sampleReader(f *astiav.Frame, channels int) (func(c, i int) float32, error) {
	// The planes are looked up once per frame: a cgo call per sample cost
	// more than the mixing.
	var planes [8][]byte
	for c := range min(channels, len(planes)) {
		planes[c] = avframe.AudioPlane(f, c)
	}
	p0 := planes[0]
	plane := func(c int) []byte { return planes[c] }
	switch f.SampleFormat() {
	case astiav.SampleFormatFltp:
		return func(c, i int) float32 { return math.Float32frombits(le32(plane(c)[4*i:])) }, nil
	case astiav.SampleFormatFlt:
		return func(c, i int) float32 { return math.Float32frombits(le32(p0[4*(i*channels+c):])) }, nil
	case astiav.SampleFormatS16P:
		return func(c, i int) float32 { return float32(int16(le16(plane(c)[2*i:]))) / 32768 }, nil
	case astiav.SampleFormatS16:
		return func(c, i int) float32 { return float32(int16(le16(p0[2*(i*channels+c):]))) / 32768 }, nil
	}
	return nil, fmt.Errorf("sample format %s: %w", f.SampleFormat(), ErrUnsupportedAudio)
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}
func le16(b []byte) uint16 { return uint16(b[0]) | uint16(b[1])<<8 }

// Buffered is the number of samples queued for participant id.
func (m *Mixer) Buffered(id string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.sources[id]; s != nil {
		return s.ch[0].size
	}
	return 0
}

// Dropped counts samples dropped because a source ran more than two
// seconds ahead of the output.
func (m *Mixer) Dropped() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.dropped
}

// Mix fills dst (planar float stereo at 48 kHz, NbSamples set and buffers
// allocated) with the next NbSamples of every source, summed.
func (m *Mixer) Mix(dst *astiav.Frame) error {
	if dst.SampleFormat() != astiav.SampleFormatFltp || dst.ChannelLayout().NbChannels() != 2 {
		return fmt.Errorf("mix into %s with %d channels: want fltp stereo",
			dst.SampleFormat(), dst.ChannelLayout().NbChannels())
	}
	n := dst.NbSamples()
	out := [2][]byte{avframe.AudioPlane(dst, 0), avframe.AudioPlane(dst, 1)}
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := 0; i < n; i++ {
		for c := 0; c < 2; c++ {
			var sum float32
			for _, s := range m.list {
				sum += s.ch[c].pop()
			}
			v := math.Float32bits(softClip(sum))
			o := out[c][4*i:]
			o[0], o[1], o[2], o[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
		}
	}
	return nil
}

// softClip passes levels below 0.9 untouched and bends the rest smoothly
// towards full scale, so that loud overlapping voices distort gently
// instead of clipping hard.
func softClip(x float32) float32 {
	const knee = 0.9
	switch {
	case x > knee:
		return knee + (1-knee)*float32(math.Tanh(float64((x-knee)/(1-knee))))
	case x < -knee:
		return -knee - (1-knee)*float32(math.Tanh(float64((-x-knee)/(1-knee))))
	}
	return x
}
