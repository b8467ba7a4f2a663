package layout

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestValidation(t *testing.T) {
	long := strings.Repeat("a", 129)
	type validationCase struct {
		name   string
		canvas Size
		n      int // participants, p0 featured
		cfg    Config
		field  string // "" when valid
	}
	cases := []validationCase{
		{"default grid", hd, 3, Config{}, ""},
		{"negative gridGap", hd, 0, Config{Grid: &GridConfig{GridGap: ip(-1)}}, "layout.grid.gridGap"},
		{"negative pip gridGap", hd, 0, Config{PiP: &PipConfig{GridGap: ip(-2)}}, "layout.pip.gridGap"},
		{"negative pipOffset", hd, 0, Config{PiP: &PipConfig{PipOffset: ip(-1)}}, "layout.pip.pipOffset"},
		{"pipWidth 0", hd, 0, Config{PiP: &PipConfig{PipWidth: ip(0)}}, "layout.pip.pipWidth"},
		{"pipHeight -5", hd, 0, Config{PiP: &PipConfig{PipHeight: ip(-5)}}, "layout.pip.pipHeight"},
		{"pipWidth 1 is allowed", hd, 2, Config{PiP: &PipConfig{PipWidth: ip(1), PipHeight: ip(1)}}, ""},
		{"videoFillMode STRETCH", hd, 0, Config{Grid: &GridConfig{VideoFillMode: "STRETCH"}}, "layout.grid.videoFillMode"},
		{"lower-case videoFillMode", hd, 0, Config{Grid: &GridConfig{VideoFillMode: "cover"}}, "layout.grid.videoFillMode"},
		{"pip videoFillMode STRETCH", hd, 0, Config{PiP: &PipConfig{VideoFillMode: "STRETCH"}}, "layout.pip.videoFillMode"},
		{"videoAspectRatio WIDE", hd, 0, Config{Grid: &GridConfig{VideoAspectRatio: "WIDE"}}, "layout.grid.videoAspectRatio"},
		{"pipPosition CENTER", hd, 0, Config{PiP: &PipConfig{PipPosition: "CENTER"}}, "layout.pip.pipPosition"},
		{"pipBehavior SOMETIMES", hd, 0, Config{PiP: &PipConfig{PipBehavior: "SOMETIMES"}}, "layout.pip.pipBehavior"},
		{"featured attribute with a space", hd, 0, Config{Grid: &GridConfig{FeaturedParticipantAttribute: "is featured"}}, "layout.grid.featuredParticipantAttribute"},
		{"order attribute with a dot", hd, 0, Config{Grid: &GridConfig{ParticipantOrderAttribute: "a.b"}}, "layout.grid.participantOrderAttribute"},
		{"pip attribute non-ASCII", hd, 0, Config{PiP: &PipConfig{PipParticipantAttribute: "pïp"}}, "layout.pip.pipParticipantAttribute"},
		{"pip featured attribute with a slash", hd, 0, Config{PiP: &PipConfig{FeaturedParticipantAttribute: "a/b"}}, "layout.pip.featuredParticipantAttribute"},
		{"pip order attribute too long", hd, 0, Config{PiP: &PipConfig{ParticipantOrderAttribute: long}}, "layout.pip.participantOrderAttribute"},
		{"attribute of 129 chars", hd, 0, Config{Grid: &GridConfig{FeaturedParticipantAttribute: long}}, "layout.grid.featuredParticipantAttribute"},
		{"attribute of 128 chars", hd, 0, Config{Grid: &GridConfig{FeaturedParticipantAttribute: long[:128]}}, ""},
		{"attribute with dash, underscore, digits", hd, 2, Config{Grid: &GridConfig{FeaturedParticipantAttribute: "is-Featured_2"}}, ""},
		{"both grid and pip", hd, 0, Config{Grid: &GridConfig{}, PiP: &PipConfig{}}, "layout"},
		{"pipWidth wider than the canvas", hd, 0, Config{PiP: &PipConfig{PipWidth: ip(2000)}}, "layout.pip"},
		{"pipHeight higher than the canvas", hd, 0, Config{PiP: &PipConfig{PipHeight: ip(1082)}}, "layout.pip"},
		{"odd pipHeight rounds up past the canvas", hd, 0, Config{PiP: &PipConfig{PipHeight: ip(1081)}}, "layout.pip"},
		{"pipWidth plus offset too wide", hd, 0, Config{PiP: &PipConfig{PipWidth: ip(1901), PipOffset: ip(20)}}, "layout.pip"},
		{"pipWidth plus offset exactly fits", hd, 2, Config{PiP: &PipConfig{PipWidth: ip(1900), PipOffset: ip(20)}}, ""},
		{"offset leaves no room", hd, 0, Config{PiP: &PipConfig{PipOffset: ip(1080)}}, "layout.pip.pipOffset"},
		{"offset leaves less than a quarter", hd, 0, Config{PiP: &PipConfig{PipOffset: ip(812)}}, "layout.pip"},
		{"offset leaves a quarter", hd, 2, Config{PiP: &PipConfig{PipOffset: ip(810)}}, ""},
		{"pipWidth MaxInt", hd, 2, Config{PiP: &PipConfig{PipWidth: ip(math.MaxInt)}}, "layout.pip"},
		{"pipHeight MaxInt", hd, 2, Config{PiP: &PipConfig{PipHeight: ip(math.MaxInt)}}, "layout.pip"},
		{"pipOffset MaxInt", hd, 2, Config{PiP: &PipConfig{PipOffset: ip(math.MaxInt)}}, "layout.pip.pipOffset"},
		{"odd canvas width", Size{1921, 1080}, 0, Config{}, "canvas"},
		{"odd canvas height", Size{1920, 1079}, 0, Config{}, "canvas"},
		{"zero canvas", Size{}, 0, Config{}, "canvas"},
		{"negative canvas", Size{-2, 1080}, 0, Config{}, "canvas"},
		{"canvas too small", Size{0, 2}, 0, Config{}, "canvas"},
		{"smallest canvas", Size{2, 2}, 1, Config{}, ""},
		{"smallest canvas for pip", Size{2, 2}, 2, Config{PiP: &PipConfig{}}, ""},
		{"config checked before the canvas", Size{1, 1}, 0, Config{Grid: &GridConfig{GridGap: ip(-1)}}, "layout.grid.gridGap"},
		{"gap so large nothing fits", hd, 2, Config{Grid: &GridConfig{GridGap: ip(1920)}}, "layout.grid.gridGap"},
		{"gap just small enough", hd, 2, Config{Grid: &GridConfig{GridGap: ip(1916)}}, ""},
		{"gap leaves no room beside the featured slot", hd, 2, Config{Grid: &GridConfig{GridGap: ip(1918), FeaturedParticipantAttribute: "featured"}}, "layout.grid.gridGap"},
		{"gap leaves just room for the third", hd, 3, Config{Grid: &GridConfig{GridGap: ip(1076), FeaturedParticipantAttribute: "featured"}}, ""},
		{"gap leaves no room for the third", hd, 3, Config{Grid: &GridConfig{GridGap: ip(1078), FeaturedParticipantAttribute: "featured"}}, "layout.grid.gridGap"},
		{"pip background gap too large", hd, 3, Config{PiP: &PipConfig{GridGap: ip(1920)}}, "layout.pip.gridGap"},
		{"pip featured gap too large", hd, 3, Config{PiP: &PipConfig{GridGap: ip(1920), FeaturedParticipantAttribute: "featured"}}, "layout.pip.gridGap"},
		{"too many tiles for a tiny canvas", Size{8, 8}, 9, Config{}, "layout.grid.gridGap"},
	}
	// Gaps that overflow int arithmetic if multiplied carelessly: either
	// refused or laid out inside the canvas (checked by mustCompute).
	for _, g := range []int{math.MaxInt, math.MaxInt - 1, 1 << 62, math.MaxInt/3 + 1, math.MaxInt / 3 * 2, 1 << 32} {
		for _, n := range []int{2, 3, 5} {
			cases = append(cases,
				validationCase{"huge grid gap", hd, n, Config{Grid: &GridConfig{GridGap: ip(g)}}, "layout.grid.gridGap"},
				validationCase{"huge featured gap", hd, n, Config{Grid: &GridConfig{GridGap: ip(g), FeaturedParticipantAttribute: "featured"}}, "layout.grid.gridGap"},
				validationCase{"huge pip gap", hd, n + 1, Config{PiP: &PipConfig{GridGap: ip(g)}}, "layout.pip.gridGap"},
				validationCase{"huge pip featured gap", hd, n + 1, Config{PiP: &PipConfig{GridGap: ip(g), FeaturedParticipantAttribute: "featured"}}, "layout.pip.gridGap"},
			)
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ps := people(c.n, Size{1280, 720})
			if c.n > 0 {
				ps[0].Attributes["featured"] = "true"
			}
			l, err := Compute(c.canvas, ps, c.cfg)
			if c.field == "" {
				if err != nil {
					t.Fatalf("Compute: %v", err)
				}
				checkInvariants(t, c.canvas, ps, c.cfg, l)
				checkPipWindow(t, c.canvas, c.cfg, l)
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Compute: err %v (%T), want a *ValidationError for %s (layout %+v)", err, err, c.field, l)
			}
			if ve.Field != c.field {
				t.Errorf("Field %q, want %q (%v)", ve.Field, c.field, err)
			}
			if ve.Reason == "" || !strings.HasPrefix(err.Error(), c.field+": ") {
				t.Errorf("Error() %q", err.Error())
			}
		})
	}
}

func TestValidateReportsEveryField(t *testing.T) {
	err := Config{Grid: &GridConfig{GridGap: ip(-1), VideoFillMode: "STRETCH", VideoAspectRatio: "WIDE", FeaturedParticipantAttribute: "a b"}}.Validate()
	for _, f := range []string{"layout.grid.gridGap", "layout.grid.videoFillMode", "layout.grid.videoAspectRatio", "layout.grid.featuredParticipantAttribute"} {
		if err == nil || !strings.Contains(err.Error(), f+":") {
			t.Errorf("Validate() = %v, missing %s", err, f)
		}
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Errorf("errors.As found no *ValidationError in %v", err)
	}
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("Config{}.Validate() = %v", err)
	}
}

func TestConfigJSON(t *testing.T) {
	cases := []struct {
		name string
		json string
		want Config
	}{
		{"empty", `{}`, Config{}},
		{"pip with explicit zero gap", `{"pip":{"pipPosition":"TOP_LEFT","gridGap":0}}`,
			Config{PiP: &PipConfig{PipPosition: PipTopLeft, GridGap: ip(0)}}},
		{"grid without gap", `{"grid":{"featuredParticipantAttribute":"featured"}}`,
			Config{Grid: &GridConfig{FeaturedParticipantAttribute: "featured"}}},
		{"grid with explicit zero gap", `{"grid":{"gridGap":0}}`, Config{Grid: &GridConfig{GridGap: ip(0)}}},
		{"every grid member", `{"grid":{"featuredParticipantAttribute":"f","gridGap":7,"omitStoppedVideo":true,"participantOrderAttribute":"o","videoAspectRatio":"SQUARE","videoFillMode":"CONTAIN"}}`,
			Config{Grid: &GridConfig{FeaturedParticipantAttribute: "f", GridGap: ip(7), OmitStoppedVideo: true, ParticipantOrderAttribute: "o", VideoAspectRatio: AspectSquare, VideoFillMode: FillContain}}},
		{"every pip member", `{"pip":{"featuredParticipantAttribute":"f","gridGap":4,"omitStoppedVideo":true,"participantOrderAttribute":"o","pipBehavior":"DYNAMIC","pipHeight":200,"pipWidth":300,"pipOffset":10,"pipParticipantAttribute":"p","pipPosition":"TOP_RIGHT","videoFillMode":"FILL"}}`,
			Config{PiP: &PipConfig{FeaturedParticipantAttribute: "f", GridGap: ip(4), OmitStoppedVideo: true, ParticipantOrderAttribute: "o", PipBehavior: PipDynamic, PipHeight: ip(200), PipWidth: ip(300), PipOffset: ip(10), PipParticipantAttribute: "p", PipPosition: PipTopRight, VideoFillMode: FillFill}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got Config
			if err := json.Unmarshal([]byte(c.json), &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %s, want %s", dump(got), dump(c.want))
			}
			// Round trip: marshalling keeps explicit zeros and drops absent members.
			b, err := json.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			var again Config
			if err := json.Unmarshal(b, &again); err != nil || !reflect.DeepEqual(again, got) {
				t.Errorf("round trip %s: %s (%v)", b, dump(again), err)
			}
		})
	}
	t.Run("absent gap takes the default, explicit 0 stays 0", func(t *testing.T) {
		for _, c := range []struct {
			json string
			gap  int
		}{
			{`{"grid":{}}`, 2},
			{`{"grid":{"gridGap":0}}`, 0},
			{`{"grid":{"gridGap":5}}`, 6},
			{`{}`, 2},
			{`{"pip":{}}`, 0},
			{`{"pip":{"gridGap":0}}`, 0},
			{`{"pip":{"gridGap":2}}`, 2},
		} {
			var cfg Config
			if err := json.Unmarshal([]byte(c.json), &cfg); err != nil {
				t.Fatal(err)
			}
			l := mustCompute(t, hd, people(4, Size{1280, 720}), cfg)
			if l.Gap != c.gap {
				t.Errorf("%s: Gap %d, want %d", c.json, l.Gap, c.gap)
			}
		}
	})
	t.Run("explicit zero marshals", func(t *testing.T) {
		b, err := json.Marshal(Config{PiP: &PipConfig{GridGap: ip(0), PipOffset: ip(0)}})
		if err != nil {
			t.Fatal(err)
		}
		if want := `{"pip":{"gridGap":0,"pipOffset":0}}`; string(b) != want {
			t.Errorf("%s, want %s", b, want)
		}
		b, _ = json.Marshal(Config{Grid: &GridConfig{}})
		if want := `{"grid":{}}`; string(b) != want {
			t.Errorf("%s, want %s", b, want)
		}
	})
}

func dump(c Config) string {
	b, _ := json.Marshal(c)
	return string(b)
}

func TestWithDefaults(t *testing.T) {
	gridDefaults := Config{Grid: &GridConfig{GridGap: ip(2), VideoAspectRatio: AspectVideo}}
	pipDefaults := Config{PiP: &PipConfig{GridGap: ip(0), PipOffset: ip(0), PipBehavior: PipStatic, PipPosition: PipBottomRight, VideoFillMode: FillCover}}
	cases := []struct {
		name    string
		in, out Config
	}{
		{"nil layout is a default grid", Config{}, gridDefaults},
		{"empty grid", Config{Grid: &GridConfig{}}, gridDefaults},
		{"empty pip", Config{PiP: &PipConfig{}}, pipDefaults},
		{"grid keeps what is set", Config{Grid: &GridConfig{GridGap: ip(0), VideoAspectRatio: AspectAuto, VideoFillMode: FillFill, FeaturedParticipantAttribute: "f", OmitStoppedVideo: true, ParticipantOrderAttribute: "o"}},
			Config{Grid: &GridConfig{GridGap: ip(0), VideoAspectRatio: AspectAuto, VideoFillMode: FillFill, FeaturedParticipantAttribute: "f", OmitStoppedVideo: true, ParticipantOrderAttribute: "o"}}},
		{"pip keeps what is set", Config{PiP: &PipConfig{GridGap: ip(6), PipOffset: ip(8), PipBehavior: PipDynamic, PipPosition: PipTopLeft, VideoFillMode: FillContain, PipWidth: ip(100)}},
			Config{PiP: &PipConfig{GridGap: ip(6), PipOffset: ip(8), PipBehavior: PipDynamic, PipPosition: PipTopLeft, VideoFillMode: FillContain, PipWidth: ip(100)}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := dump(c.in)
			got := c.in.WithDefaults()
			if !reflect.DeepEqual(got, c.out) {
				t.Errorf("got %s, want %s", dump(got), dump(c.out))
			}
			if dump(c.in) != before {
				t.Errorf("WithDefaults changed its receiver: %s, was %s", dump(c.in), before)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("defaults do not validate: %v", err)
			}
			if !reflect.DeepEqual(got.WithDefaults(), got) {
				t.Errorf("WithDefaults is not idempotent")
			}
		})
	}
	t.Run("no aliasing", func(t *testing.T) {
		in := Config{Grid: &GridConfig{GridGap: ip(4)}}
		out := in.WithDefaults()
		*out.Grid.GridGap = 10
		out.Grid.VideoFillMode = FillFill
		if *in.Grid.GridGap != 4 || in.Grid.VideoFillMode != "" {
			t.Errorf("the input changed through the output: %s", dump(in))
		}
		pin := Config{PiP: &PipConfig{PipOffset: ip(4)}}
		pout := pin.WithDefaults()
		*pout.PiP.PipOffset = 10
		if *pin.PiP.PipOffset != 4 {
			t.Errorf("the input changed through the output: %s", dump(pin))
		}
	})
	t.Run("grid videoFillMode stays empty", func(t *testing.T) {
		if m := (Config{}).WithDefaults().Grid.VideoFillMode; m != FillUnset {
			t.Errorf("videoFillMode %q, want empty", m)
		}
	})
}
