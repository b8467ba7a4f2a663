package layout

import (
	"errors"
	"regexp"

	"github.com/stagehand-rt/stagehand/internal/validation"
)

// FillMode says how a participant's video fits its tile.
type FillMode string

// Fill modes, as IVS names them.
const (
	FillUnset   FillMode = ""        // the slot's default: COVER for grid tiles, CONTAIN for the featured slot
	FillFill    FillMode = "FILL"    // stretch the whole frame to the tile
	FillCover   FillMode = "COVER"   // crop the frame, centred, to the tile's aspect ratio
	FillContain FillMode = "CONTAIN" // letterbox the whole frame inside the tile
)

// AspectRatio is the grid's videoAspectRatio: the shape of non-featured tiles.
type AspectRatio string

// Aspect ratios, as IVS names them.
const (
	AspectAuto     AspectRatio = "AUTO"     // tiles take whatever shape fills the canvas best
	AspectVideo    AspectRatio = "VIDEO"    // 16:9
	AspectSquare   AspectRatio = "SQUARE"   // 1:1
	AspectPortrait AspectRatio = "PORTRAIT" // 3:4
)

// PipBehavior says what the PiP window does when nobody else is on the canvas.
type PipBehavior string

// PiP behaviours, as IVS names them.
const (
	PipStatic  PipBehavior = "STATIC"  // the window keeps its position and size
	PipDynamic PipBehavior = "DYNAMIC" // the window expands to the whole canvas
)

// PipPosition is the canvas corner the PiP window sits in.
type PipPosition string

// PiP positions, as IVS names them.
const (
	PipTopLeft     PipPosition = "TOP_LEFT"
	PipTopRight    PipPosition = "TOP_RIGHT"
	PipBottomLeft  PipPosition = "BOTTOM_LEFT"
	PipBottomRight PipPosition = "BOTTOM_RIGHT"
)

// Defaults documented by IVS.
const (
	DefaultGridGap = 2
	DefaultPipGap  = 0
)

// Config is an IVS LayoutConfiguration: exactly one of Grid or PiP, or neither,
// which means a grid with every default. Its JSON is the StartComposition
// request's "layout" member, so a file written for the preview tool can be
// sent to the API unchanged.
type Config struct {
	Grid *GridConfig `json:"grid,omitempty"`
	PiP  *PipConfig  `json:"pip,omitempty"`
}

// GridConfig is IVS's GridConfiguration. Pointer fields distinguish an
// absent key (documented default) from an explicit zero.
type GridConfig struct {
	FeaturedParticipantAttribute string      `json:"featuredParticipantAttribute,omitempty"`
	GridGap                      *int        `json:"gridGap,omitempty"`
	OmitStoppedVideo             bool        `json:"omitStoppedVideo,omitempty"`
	ParticipantOrderAttribute    string      `json:"participantOrderAttribute,omitempty"`
	VideoAspectRatio             AspectRatio `json:"videoAspectRatio,omitempty"`
	VideoFillMode                FillMode    `json:"videoFillMode,omitempty"`
}

// PipConfig is IVS's PipConfiguration.
type PipConfig struct {
	FeaturedParticipantAttribute string      `json:"featuredParticipantAttribute,omitempty"`
	GridGap                      *int        `json:"gridGap,omitempty"`
	OmitStoppedVideo             bool        `json:"omitStoppedVideo,omitempty"`
	ParticipantOrderAttribute    string      `json:"participantOrderAttribute,omitempty"`
	PipBehavior                  PipBehavior `json:"pipBehavior,omitempty"`
	PipHeight                    *int        `json:"pipHeight,omitempty"`
	PipWidth                     *int        `json:"pipWidth,omitempty"`
	PipOffset                    *int        `json:"pipOffset,omitempty"`
	PipParticipantAttribute      string      `json:"pipParticipantAttribute,omitempty"`
	PipPosition                  PipPosition `json:"pipPosition,omitempty"`
	VideoFillMode                FillMode    `json:"videoFillMode,omitempty"`
}

// ValidationError is a configuration the layout engine refuses. Field names
// the offending member with its IVS path, e.g. "layout.grid.gridGap".
type ValidationError = validation.Error

// attributeKey is IVS's pattern for attribute names (featured, pip, order).
var attributeKey = regexp.MustCompile(`^[a-zA-Z0-9-_]*$`)

// Validate checks everything that does not depend on the canvas size.
func (c Config) Validate() error {
	if c.Grid != nil && c.PiP != nil {
		return &ValidationError{Field: "layout", Reason: "exactly one of grid or pip may be set"}
	}
	if c.PiP != nil {
		return c.PiP.validate("layout.pip")
	}
	if c.Grid != nil {
		return c.Grid.validate("layout.grid")
	}
	return nil
}

func (g *GridConfig) validate(path string) error {
	return errors.Join(
		validateAttribute(path+".featuredParticipantAttribute", g.FeaturedParticipantAttribute),
		validateAttribute(path+".participantOrderAttribute", g.ParticipantOrderAttribute),
		validateNonNegative(path+".gridGap", g.GridGap),
		validateEnum(path+".videoAspectRatio", string(g.VideoAspectRatio), "AUTO", "VIDEO", "SQUARE", "PORTRAIT"),
		validateEnum(path+".videoFillMode", string(g.VideoFillMode), "FILL", "COVER", "CONTAIN"),
	)
}

func (p *PipConfig) validate(path string) error {
	return errors.Join(
		validateAttribute(path+".featuredParticipantAttribute", p.FeaturedParticipantAttribute),
		validateAttribute(path+".participantOrderAttribute", p.ParticipantOrderAttribute),
		validateAttribute(path+".pipParticipantAttribute", p.PipParticipantAttribute),
		validateNonNegative(path+".gridGap", p.GridGap),
		validateNonNegative(path+".pipOffset", p.PipOffset),
		validatePositive(path+".pipWidth", p.PipWidth),
		validatePositive(path+".pipHeight", p.PipHeight),
		validateEnum(path+".pipBehavior", string(p.PipBehavior), "STATIC", "DYNAMIC"),
		validateEnum(path+".pipPosition", string(p.PipPosition), "TOP_LEFT", "TOP_RIGHT", "BOTTOM_LEFT", "BOTTOM_RIGHT"),
		validateEnum(path+".videoFillMode", string(p.VideoFillMode), "FILL", "COVER", "CONTAIN"),
	)
}

func validateAttribute(field, v string) error {
	if len(v) > 128 {
		return validation.Errorf(field, "length %d exceeds 128", len(v))
	}
	if !attributeKey.MatchString(v) {
		return validation.Errorf(field, "%q does not match [a-zA-Z0-9-_]*", v)
	}
	return nil
}

func validateNonNegative(field string, v *int) error {
	if v != nil && *v < 0 {
		return validation.Errorf(field, "%d is negative; minimum is 0", *v)
	}
	return nil
}

func validatePositive(field string, v *int) error {
	if v != nil && *v < 1 {
		return validation.Errorf(field, "%d is below the minimum of 1", *v)
	}
	return nil
}

func validateEnum(field, v string, allowed ...string) error {
	if v == "" {
		return nil
	}
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return validation.Errorf(field, "unknown value %q; valid values are %v", v, allowed)
}

// WithDefaults returns a copy with every absent member set to its IVS
// default, as GetComposition echoes it. A nil layout becomes a default grid.
// videoFillMode stays empty for grids: IVS echoes "" and resolves it per slot.
func (c Config) WithDefaults() Config {
	if c.PiP != nil {
		p := *c.PiP
		p.GridGap = intOr(p.GridGap, DefaultPipGap)
		p.PipOffset = intOr(p.PipOffset, 0)
		if p.PipBehavior == "" {
			p.PipBehavior = PipStatic
		}
		if p.PipPosition == "" {
			p.PipPosition = PipBottomRight
		}
		if p.VideoFillMode == "" {
			p.VideoFillMode = FillCover
		}
		return Config{PiP: &p}
	}
	g := GridConfig{}
	if c.Grid != nil {
		g = *c.Grid
	}
	g.GridGap = intOr(g.GridGap, DefaultGridGap)
	if g.VideoAspectRatio == "" {
		g.VideoAspectRatio = AspectVideo
	}
	return Config{Grid: &g}
}

func intOr(v *int, def int) *int {
	if v != nil {
		x := *v
		return &x
	}
	return &def
}
