package sink

import (
	"errors"
	"fmt"

	"github.com/asticode/go-astiav"
)

// Stream describes one encoded stream a writer muxes: its codec parameters
// (from the encoder) and the time base of its packets' timestamps.
type Stream struct {
	Params   *astiav.CodecParameters
	TimeBase astiav.Rational
}

// AddMuxerStreams adds streams to a muxer in order, so that a packet's
// stream index (StreamVideo, StreamAudio) is its muxer stream.
func AddMuxerStreams(fc *astiav.FormatContext, streams ...Stream) ([]*astiav.Stream, error) {
	out := make([]*astiav.Stream, 0, len(streams))
	for _, s := range streams {
		st := fc.NewStream(nil)
		if st == nil {
			return nil, errors.New("new muxer stream")
		}
		if err := s.Params.Copy(st.CodecParameters()); err != nil {
			return nil, fmt.Errorf("muxer stream parameters: %w", err)
		}
		st.CodecParameters().SetCodecTag(0) // let the muxer pick its own tag
		st.SetTimeBase(s.TimeBase)
		out = append(out, st)
	}
	return out, nil
}
