package synth

import (
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/asticode/go-astiav"
)

// graph is a filter graph of lavfi sources ending in a buffer sink.
type graph struct {
	g    *astiav.FilterGraph
	sink *astiav.FilterContext // owned by g
}

// newGraph builds and configures desc, whose one open output feeds a
// sinkName ("buffersink" or "abuffersink"). Nothing is left allocated when
// it fails.
func newGraph(desc, sinkName string) (_ *graph, err error) {
	g := astiav.AllocFilterGraph()
	if g == nil {
		return nil, errors.New("allocate filter graph")
	}
	defer func() {
		if err != nil {
			g.Free()
		}
	}()
	// Slice threads per graph would multiply by the number of synthetic
	// participants in a load test; the pictures are cheap to draw.
	g.SetThreadCount(1)
	f := astiav.FindFilterByName(sinkName)
	if f == nil {
		return nil, fmt.Errorf("filter %s not found", sinkName)
	}
	sink, err := g.NewFilterContext(f, "out", nil)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", sinkName, err)
	}
	in := astiav.AllocFilterInOut()
	if in == nil {
		return nil, errors.New("allocate filter inout")
	}
	defer in.Free()
	in.SetName("out")
	in.SetFilterContext(sink)
	in.SetPadIdx(0)
	in.SetNext(nil)
	if err := g.Parse(desc, in, nil); err != nil {
		return nil, fmt.Errorf("parse filter graph %q: %w", desc, err)
	}
	if err := g.Configure(); err != nil {
		return nil, fmt.Errorf("configure filter graph %q: %w", desc, err)
	}
	return &graph{g: g, sink: sink}, nil
}

func (g *graph) free() {
	if g != nil && g.g != nil {
		g.g.Free()
		g.g = nil
	}
}

// filter writes name=k1=v1:k2=v2 with every value escaped for both levels
// of parsing it goes through (the graph description, then the filter's
// option string), so that a label such as "O'Brien: 50%, [live]" arrives
// verbatim.
func filter(name string, kv ...string) string {
	var b strings.Builder
	b.WriteString(name)
	for i := 0; i+1 < len(kv); i += 2 {
		if i == 0 {
			b.WriteByte('=')
		} else {
			b.WriteByte(':')
		}
		b.WriteString(kv[i])
		b.WriteByte('=')
		b.WriteString(escape(escape(kv[i+1])))
	}
	return b.String()
}

// escape backslash-escapes every ASCII character that is not a letter or a
// digit: av_get_token, which both parsing levels use, takes the character
// after a backslash literally, whatever it is. Bytes of multi-byte UTF-8
// characters are never special and pass as they are.
func escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < utf8.RuneSelf && !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	return b.String()
}

// videoDesc describes the picture: the background colour, then either text
// (the label in the middle, a clock and frame counter in the bottom left
// corner) or, without text, a bar across the middle in a colour derived from
// the label and a box that slides along the bottom. The top quarter is
// always plain background.
func videoDesc(cfg Config, bg RGB, text bool) string {
	w, h := cfg.Width, cfg.Height
	size, rate := fmt.Sprintf("%dx%d", w, h), strconv.Itoa(cfg.FPS)
	var chain []string
	if text {
		chain = append(chain, filter("color", "c", bg.String(), "s", size, "r", rate))
		if cfg.Label != "" {
			chain = append(chain, filter("drawtext",
				"font", "Sans",
				"text", cfg.Label,
				"expansion", "none",
				"fontsize", strconv.Itoa(labelFontSize(w, h, utf8.RuneCountInString(cfg.Label))),
				"fontcolor", "white",
				"borderw", strconv.Itoa(max(1, h/180)),
				"bordercolor", "black",
				"x", "(w-text_w)/2",
				"y", "(h-text_h)/2"))
		}
		chain = append(chain, filter("drawtext",
			"font", "Sans",
			"text", "%{pts:hms}  #%{n}",
			"fontsize", strconv.Itoa(max(8, h/14)),
			"fontcolor", "white",
			"box", "1",
			"boxcolor", "black@0.5",
			"boxborderw", strconv.Itoa(max(2, h/90)),
			"x", strconv.Itoa(max(4, h/30)),
			"y", fmt.Sprintf("h-text_h-%d", max(4, h/30))))
	} else {
		// drawbox evaluates its position once, so the moving box is an
		// overlay, whose position is evaluated per frame.
		side := max(2, h/8) &^ 1
		chain = append(chain,
			filter("color", "c", "white", "s", fmt.Sprintf("%dx%d", side, side), "r", rate)+"[box];"+
				filter("color", "c", bg.String(), "s", size, "r", rate)+"[bg];"+
				"[bg][box]"+filter("overlay", "x", "mod(t*W/4,W-w)", "y", strconv.Itoa(h-side-h/16), "eval", "frame"))
		if cfg.Label != "" {
			chain = append(chain, filter("drawbox",
				"x", "0", "y", strconv.Itoa(h/2&^1), "w", "iw", "h", strconv.Itoa(max(2, h/8)&^1),
				"color", labelColor(cfg.Label).String(), "t", "fill"))
		}
	}
	if cfg.SyncMarks {
		chain = append(chain, filter("drawbox", "x", "0", "y", "0", "w", "iw", "h", "ih", "color", "white", "t", "fill",
			"enable", fmt.Sprintf("lt(mod(n,%d),1)", cfg.FPS)))
	}
	chain = append(chain, filter("format", "pix_fmts", "yuv420p"))
	return strings.Join(chain, ",")
}

// labelFontSize fits n characters of DejaVu Sans (about 0.6 em wide each)
// into 90% of the width, and at most a fifth of the height.
func labelFontSize(w, h, n int) int {
	return max(8, min(h/5, 3*w/(2*max(n, 1))))
}

// labelColor derives a saturated colour from the label, so that without
// text participants remain distinguishable.
func labelColor(label string) RGB {
	f := fnv.New32a()
	f.Write([]byte(label))
	sum := f.Sum32()
	hue := float64(sum%360) / 60
	x := uint8(255 * (1 - abs(mod2(hue)-1)))
	switch int(hue) {
	case 0:
		return RGB{255, x, 0}
	case 1:
		return RGB{x, 255, 0}
	case 2:
		return RGB{0, 255, x}
	case 3:
		return RGB{0, x, 255}
	case 4:
		return RGB{x, 0, 255}
	default:
		return RGB{255, 0, x}
	}
}

func mod2(v float64) float64 { return v - 2*float64(int(v/2)) }

func abs(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
}

// audioDesc describes 20 ms frames of 48 kHz stereo s16: the tone, or silence.
func audioDesc(cfg Config) string {
	src := filter("sine", "frequency", strconv.FormatFloat(cfg.ToneHz, 'f', -1, 64),
		"sample_rate", strconv.Itoa(SampleRate), "samples_per_frame", strconv.Itoa(AudioFrame))
	if cfg.Silent {
		src = filter("anullsrc", "sample_rate", strconv.Itoa(SampleRate),
			"channel_layout", "stereo", "nb_samples", strconv.Itoa(AudioFrame))
	}
	var marks []string
	if cfg.SyncMarks && !cfg.Silent {
		// Five 20 ms frames of tone at the start of every second.
		marks = append(marks, filter("volume", "volume", "lt(mod(t,1),0.099)", "eval", "frame"))
	}
	return strings.Join(append(append([]string{src}, marks...),
		filter("aformat", "sample_fmts", "s16", "sample_rates", strconv.Itoa(SampleRate), "channel_layouts", "stereo"),
		// The converter may regroup samples; the encoder needs exactly one
		// Opus frame per buffer.
		filter("asetnsamples", "nb_out_samples", strconv.Itoa(AudioFrame), "pad", "1"),
	), ",")
}
