package layout

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"
)

// fuzzBytes hands out fuzz input a little at a time; once the input is
// exhausted every read returns zero, so any byte string is a valid input.
type fuzzBytes struct{ b []byte }

func (f *fuzzBytes) byte() byte {
	if len(f.b) == 0 {
		return 0
	}
	v := f.b[0]
	f.b = f.b[1:]
	return v
}

func (f *fuzzBytes) u16() int { return int(f.byte())<<8 | int(f.byte()) }

func (f *fuzzBytes) u64() uint64 {
	var v uint64
	for i := 0; i < 8; i++ {
		v = v<<8 | uint64(f.byte())
	}
	return v
}

func (f *fuzzBytes) pick(choices ...string) string {
	return choices[int(f.byte())%len(choices)]
}

// enum picks one of valid, or rarely (one byte value in 256) invalid, so
// that most inputs pass validation and reach the geometry.
func (f *fuzzBytes) enum(invalid string, valid ...string) string {
	b := f.byte()
	if b == 0xff {
		return invalid
	}
	return valid[int(b)%len(valid)]
}

// extremeInts are configuration values that stress integer arithmetic: a
// JSON layout can carry any int64.
var extremeInts = []int{
	math.MaxInt, math.MaxInt - 1, math.MinInt, math.MinInt + 1, -1,
	1 << 62, 1<<62 + 1, 1 << 61, math.MaxInt / 2, math.MaxInt/3 + 1,
	math.MaxInt / 3 * 2, 1 << 32, 1<<31 - 1,
}

// optInt is an optional configuration integer: absent, small, a canvas-sized
// value, an extreme value or any int64.
func (f *fuzzBytes) optInt() *int {
	var v int
	switch f.byte() % 16 {
	case 0, 1, 2, 3:
		return nil
	case 4, 5, 6, 7:
		v = int(f.byte() % 64)
	case 8, 9, 10, 11, 12, 13:
		v = f.u16() % 4200
	case 14:
		v = extremeInts[int(f.byte())%len(extremeInts)]
	default:
		v = int(int64(f.u64()))
	}
	return &v
}

// attrName is an attribute name: mostly the ones participants carry, sometimes
// an invalid one.
func (f *fuzzBytes) attrName() string {
	return f.enum("bad name", "", "featured", "pip", "order")
}

// videoDim is a frame dimension: unknown, tiny, odd, common or arbitrary.
func (f *fuzzBytes) videoDim() int {
	switch f.byte() % 8 {
	case 0:
		return 0
	case 1:
		return int(f.byte() % 5) // 0..4: below and at the 2-pixel minimum
	case 2:
		return 2*int(f.byte()) + 1 // odd
	case 3:
		return []int{720, 1280, 1080, 1920, 480, 640, 360}[int(f.byte())%7]
	default:
		return f.u16() % 8193
	}
}

// fuzzInput turns fuzz bytes into Compute's arguments.
func fuzzInput(data []byte) (Size, []Participant, Config) {
	in := &fuzzBytes{data}
	canvas := Size{2 + 2*(in.u16()%2048), 2 + 2*(in.u16()%2048)}
	if in.byte() == 0xff { // rarely an odd canvas, which Compute must refuse
		canvas.W++
	}
	var cfg Config
	switch in.byte() % 4 {
	case 1:
		cfg.Grid = &GridConfig{
			FeaturedParticipantAttribute: in.attrName(),
			GridGap:                      in.optInt(),
			OmitStoppedVideo:             in.byte()&1 == 1,
			ParticipantOrderAttribute:    in.attrName(),
			VideoAspectRatio:             AspectRatio(in.enum("WIDE", "", "AUTO", "VIDEO", "SQUARE", "PORTRAIT")),
			VideoFillMode:                FillMode(in.enum("STRETCH", "", "FILL", "COVER", "CONTAIN")),
		}
	case 2, 3:
		cfg.PiP = &PipConfig{
			FeaturedParticipantAttribute: in.attrName(),
			GridGap:                      in.optInt(),
			OmitStoppedVideo:             in.byte()&1 == 1,
			ParticipantOrderAttribute:    in.attrName(),
			PipBehavior:                  PipBehavior(in.enum("SOMETIMES", "", "STATIC", "DYNAMIC")),
			PipHeight:                    in.optInt(),
			PipWidth:                     in.optInt(),
			PipOffset:                    in.optInt(),
			PipParticipantAttribute:      in.attrName(),
			PipPosition:                  PipPosition(in.enum("CENTER", "", "TOP_LEFT", "TOP_RIGHT", "BOTTOM_LEFT", "BOTTOM_RIGHT")),
			VideoFillMode:                FillMode(in.enum("STRETCH", "", "FILL", "COVER", "CONTAIN")),
		}
		if in.byte() == 0xff { // rarely both, which Validate must refuse
			cfg.Grid = &GridConfig{}
		}
	}
	n := int(in.byte()) % 21
	ps := make([]Participant, n)
	for i := range ps {
		p := Participant{ID: fmt.Sprint("p", i), Attributes: map[string]string{}}
		attrs := in.byte()
		for k, key := range []string{"featured", "pip", "order"} {
			if attrs&(1<<k) != 0 {
				p.Attributes[key] = in.pick("true", "false", "", "1", "-1", "10", "9", "1.5", "abc", "0", "+3", "true")
			}
		}
		p.VideoStopped = attrs&0x80 != 0
		p.Video = Size{in.videoDim(), in.videoDim()}
		ps[i] = p
	}
	return canvas, ps, cfg
}

func FuzzCompute(f *testing.F) {
	// Seeds, in fuzzInput's encoding: canvas W and H (2 + 2*(u16 % 2048)),
	// odd-canvas flag, config kind (0 default, 1 grid, 2 PiP), the config's
	// members in struct order, the participant count, then per participant
	// an attribute mask (bits: featured, pip, order; 0x80 stopped), one value
	// per set bit and the video width and height.
	f.Add([]byte{}) // default grid, no participants
	// Default grid, 1920x1080, five 1280x720 participants.
	f.Add([]byte{0x03, 0xbf, 0x02, 0x1b, 0, 0, 5,
		0, 3, 1, 3, 0, 0, 3, 1, 3, 0, 0, 3, 1, 3, 0, 0, 3, 1, 3, 0, 0, 3, 1, 3, 0})
	// Grid on 1280x720: featured and order attributes, gap 10,
	// omitStoppedVideo, SQUARE; a stopped, a portrait and an odd-sized video.
	f.Add([]byte{0x02, 0x7f, 0x01, 0x67, 0, 1, 1, 4, 10, 1, 3, 3, 0, 4,
		0x05, 0, 5, 3, 1, 3, 0,
		0x84, 6, 0, 0,
		0x04, 4, 3, 0, 3, 1,
		0x00, 2, 7, 3, 6})
	// PiP on 1920x1080: featured, pip and order attributes, DYNAMIC, offset 20, TOP_LEFT.
	f.Add([]byte{0x03, 0xbf, 0x02, 0x1b, 0, 2, 1, 0, 0, 3, 2, 0, 0, 4, 20, 2, 1, 0, 0, 3,
		0x01, 0, 3, 1, 3, 0,
		0x02, 0, 3, 5, 3, 4,
		0x00, 3, 0, 3, 1})
	// PiP with an explicit 640x360 window, gap 4, CONTAIN, 13 participants.
	f.Add([]byte{0x03, 0xbf, 0x02, 0x1b, 0, 2, 0, 8, 0, 4, 0, 0, 0, 8, 0x01, 0x68, 8, 0x02, 0x80, 0, 0, 4, 3, 0, 13})
	// Portrait 720x1280 AUTO grid with a featured participant.
	f.Add([]byte{0x01, 0x67, 0x02, 0x7f, 0, 1, 1, 0, 0, 0, 1, 0, 7, 0x01, 0, 3, 0, 3, 1})
	// PiP on 1440x1080 with offset 820 and a 4:3 PiP participant: the
	// derived window (360x270) does not fit below the offset, which must be
	// refused before anyone joins, not when the participant does.
	f.Add([]byte{0x02, 0xcf, 0x02, 0x1b, 0, 2, 0, 0, 0, 0, 0, 0, 0, 8, 0x03, 0x34, 0, 1, 0, 0, 2,
		0, 3, 1, 3, 0,
		0, 3, 5, 3, 4})
	f.Fuzz(func(t *testing.T, data []byte) {
		canvas, ps, cfg := fuzzInput(data)
		l, err := Compute(canvas, ps, cfg)
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Compute error %v (%T) is not a *ValidationError", err, err)
			}
			// A configuration accepted for an empty stage may only fail
			// later because its gap leaves no room for the participants:
			// the PiP window's size and offset are checked up front.
			if _, err0 := Compute(canvas, nil, cfg); err0 == nil && !strings.HasSuffix(ve.Field, ".gridGap") {
				t.Fatalf("Compute accepts the configuration with no participants but refuses %d: %v", len(ps), err)
			}
			return
		}
		checkInvariants(t, canvas, ps, cfg, l)
		checkPipWindow(t, canvas, cfg, l)
	})
}

// checkInvariants asserts every rule that holds for any layout Compute accepts.
func checkInvariants(t *testing.T, canvas Size, ps []Participant, cfg Config, l Layout) {
	t.Helper()
	full := Rect{0, 0, canvas.W, canvas.H}
	if l.Canvas != canvas {
		t.Errorf("Canvas %v, want %v", l.Canvas, canvas)
	}
	if l.Gap < 0 || l.Gap%2 != 0 {
		t.Errorf("Gap %d is negative or odd", l.Gap)
	}
	if len(l.Tiles) > MaxTiles {
		t.Errorf("%d tiles, more than MaxTiles", len(l.Tiles))
	}
	isEven := func(r Rect) bool { return r.X%2 == 0 && r.Y%2 == 0 && r.W%2 == 0 && r.H%2 == 0 && r.W >= 2 && r.H >= 2 }
	pipCfg := cfg.PiP != nil && cfg.Grid == nil
	for k, tl := range l.Tiles {
		if tl.Participant < 0 || tl.Participant >= len(ps) {
			t.Fatalf("tile %d: participant index %d out of range", k, tl.Participant)
		}
		p := ps[tl.Participant]
		if tl.ID != p.ID {
			t.Errorf("tile %d: ID %q, participant %d is %q", k, tl.ID, tl.Participant, p.ID)
		}
		if !isEven(tl.Tile) || !isEven(tl.Video) {
			t.Errorf("tile %d (%s): Tile %v / Video %v not even or smaller than 2x2", k, tl.ID, tl.Tile, tl.Video)
		}
		if !full.Contains(tl.Tile) {
			t.Errorf("tile %d (%s): Tile %v outside the %v canvas", k, tl.ID, tl.Tile, canvas)
		}
		if !tl.Tile.Contains(tl.Video) {
			t.Errorf("tile %d (%s): Video %v outside Tile %v", k, tl.ID, tl.Video, tl.Tile)
		}
		if tl.Placeholder != p.VideoStopped {
			t.Errorf("tile %d (%s): Placeholder %v, VideoStopped %v", k, tl.ID, tl.Placeholder, p.VideoStopped)
		}
		known := !p.VideoStopped && p.Video.W >= 2 && p.Video.H >= 2
		frame := Rect{0, 0, p.Video.W &^ 1, p.Video.H &^ 1}
		if !known {
			if tl.Crop != (Rect{}) || tl.Video != tl.Tile {
				t.Errorf("tile %d (%s): no known video but Crop %v, Video %v (Tile %v)", k, tl.ID, tl.Crop, tl.Video, tl.Tile)
			}
		} else {
			if !isEven(tl.Crop) {
				t.Errorf("tile %d (%s): Crop %v not even or smaller than 2x2", k, tl.ID, tl.Crop)
			}
			if !frame.Contains(tl.Crop) {
				t.Errorf("tile %d (%s): Crop %v outside the %v frame", k, tl.ID, tl.Crop, p.Video)
			}
			switch tl.Fill {
			case FillFill:
				if tl.Video != tl.Tile || tl.Crop != frame {
					t.Errorf("tile %d (%s) FILL: Video %v Crop %v, want Tile %v and frame %v", k, tl.ID, tl.Video, tl.Crop, tl.Tile, frame)
				}
			case FillCover:
				if tl.Video != tl.Tile {
					t.Errorf("tile %d (%s) COVER: Video %v, want Tile %v", k, tl.ID, tl.Video, tl.Tile)
				}
			case FillContain:
				if tl.Crop != frame {
					t.Errorf("tile %d (%s) CONTAIN: Crop %v, want frame %v", k, tl.ID, tl.Crop, frame)
				}
			default:
				t.Errorf("tile %d (%s): unresolved fill mode %q", k, tl.ID, tl.Fill)
			}
		}
		if k > 0 && l.Tiles[k-1].Z > tl.Z {
			t.Errorf("tiles not sorted by Z: %d then %d", l.Tiles[k-1].Z, tl.Z)
		}
		if tl.Slot == SlotPiP {
			if !pipCfg {
				t.Errorf("tile %d (%s): PiP slot in a grid layout", k, tl.ID)
			}
			if k != len(l.Tiles)-1 {
				t.Errorf("PiP tile %d is not the last of %d", k, len(l.Tiles))
			}
			continue
		}
		for j := 0; j < k; j++ {
			if o := l.Tiles[j]; o.Slot != SlotPiP && o.Tile.Intersects(tl.Tile) {
				t.Errorf("tiles %d (%s) %v and %d (%s) %v overlap", j, o.ID, o.Tile, k, tl.ID, tl.Tile)
			}
		}
	}
	if n := len(l.Tiles); n > 1 && l.Tiles[n-1].Slot == SlotPiP && l.Tiles[n-2].Z >= l.Tiles[n-1].Z {
		t.Errorf("PiP tile Z %d not above background Z %d", l.Tiles[n-1].Z, l.Tiles[n-2].Z)
	}

	// Every participant appears exactly once across Tiles, Dropped and Omitted.
	var seen []string
	for _, tl := range l.Tiles {
		seen = append(seen, tl.ID)
	}
	seen = append(seen, l.Dropped...)
	seen = append(seen, l.Omitted...)
	var want []string
	for _, p := range ps {
		want = append(want, p.ID)
	}
	sort.Strings(seen)
	sort.Strings(want)
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("Tiles+Dropped+Omitted = %v, want each participant once: %v", seen, want)
	}
	if len(l.Dropped) > 0 && len(l.Tiles) != MaxTiles {
		t.Errorf("%d dropped with only %d tiles", len(l.Dropped), len(l.Tiles))
	}
}

// checkPipWindow asserts that the PiP window honours pipWidth, pipHeight,
// pipOffset and pipPosition: explicit sizes rounded up to even, the window
// exactly the offset (rounded up to even) from the two nearest edges. A
// DYNAMIC window alone on the canvas fills it instead.
func checkPipWindow(t *testing.T, canvas Size, cfg Config, l Layout) {
	t.Helper()
	if cfg.PiP == nil || len(l.Tiles) == 0 || l.Tiles[len(l.Tiles)-1].Slot != SlotPiP {
		return
	}
	p := cfg.WithDefaults().PiP
	w := l.Tiles[len(l.Tiles)-1].Tile
	if len(l.Tiles) == 1 && p.PipBehavior == PipDynamic {
		if w != (Rect{0, 0, canvas.W, canvas.H}) {
			t.Errorf("DYNAMIC PiP alone: window %v, want the whole %v canvas", w, canvas)
		}
		return
	}
	up := func(v int) int { return v + v&1 }
	if p.PipWidth != nil && w.W != up(*p.PipWidth) {
		t.Errorf("pipWidth %d: window %v", *p.PipWidth, w)
	}
	if p.PipHeight != nil && w.H != up(*p.PipHeight) {
		t.Errorf("pipHeight %d: window %v", *p.PipHeight, w)
	}
	off := up(*p.PipOffset)
	x, y := off, off
	if p.PipPosition == PipTopRight || p.PipPosition == PipBottomRight {
		x = canvas.W - off - w.W
	}
	if p.PipPosition == PipBottomLeft || p.PipPosition == PipBottomRight {
		y = canvas.H - off - w.H
	}
	if w.X != x || w.Y != y {
		t.Errorf("%s offset %d: window %v, want it at %d,%d", p.PipPosition, *p.PipOffset, w, x, y)
	}
}
