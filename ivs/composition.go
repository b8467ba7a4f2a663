package ivs

import (
	"time"

	"github.com/stagehand-rt/stagehand/layout"
)

// Composition states.
const (
	CompositionStarting = "STARTING"
	CompositionActive   = "ACTIVE"
	CompositionStopping = "STOPPING"
	CompositionFailed   = "FAILED"
	CompositionStopped  = "STOPPED"
)

// Destination states.
const (
	DestinationStarting     = "STARTING"
	DestinationActive       = "ACTIVE"
	DestinationStopping     = "STOPPING"
	DestinationReconnecting = "RECONNECTING"
	DestinationFailed       = "FAILED"
	DestinationStopped      = "STOPPED"
)

// Composition is a server-side composition as GetComposition returns it,
// plus the bookkeeping Stagehand keeps beside it (Run), which never goes on
// the wire.
type Composition struct {
	ARN          string              `json:"arn"`
	StageARN     string              `json:"stageArn"`
	State        string              `json:"state"`
	Layout       LayoutConfiguration `json:"layout"`
	Destinations []Destination       `json:"destinations"`
	Tags         Tags                `json:"tags"`
	StartTime    *time.Time          `json:"startTime,omitempty"`
	EndTime      *time.Time          `json:"endTime,omitempty"`
	Run          *CompositionRun     `json:"stagehand,omitempty"`
}

// CompositionRun is what the control plane and the workers record about a
// composition's execution.
type CompositionRun struct {
	IdempotencyToken string `json:"idempotencyToken,omitempty"`
	Worker           string `json:"worker,omitempty"`        // the worker running it
	StopRequested    bool   `json:"stopRequested,omitempty"` // StopComposition was called
	Reason           string `json:"reason,omitempty"`        // why it FAILED
	// Recordings are the S3 destinations' HLS recordings, by destination
	// id: what a worker that resumes the composition continues.
	Recordings map[string]*RecordingRun `json:"recordings,omitempty"`
}

// RecordingRun is where an S3 destination's HLS recording stands.
type RecordingRun struct {
	// Rendition is the rendition folder the recording writes.
	Rendition string `json:"rendition"`
	// Next is the first unused segment number: a run reserves a number
	// here before it writes that segment, so no run ever reuses one.
	Next int `json:"next"`
	// Spooled are finished segments that no uploaded playlist names yet
	// (they wait in a worker's spool, or their playlist does).
	Spooled []RecordedSegment `json:"spooled,omitempty"`
	// NextThumbnail is the number of the next sequential thumbnail.
	NextThumbnail int `json:"nextThumbnail,omitempty"`
}

// RecordedSegment is one finished HLS segment, <Index>.ts.
type RecordedSegment struct {
	Index         int     `json:"index"`
	Duration      float64 `json:"duration"`
	Discontinuity bool    `json:"discontinuity,omitempty"`
}

// Ended reports whether the composition reached a final state.
func (c Composition) Ended() bool {
	return c.State == CompositionStopped || c.State == CompositionFailed
}

// Wire returns the composition without Stagehand's bookkeeping.
func (c Composition) Wire() Composition {
	c.Run = nil
	return c
}

// Summary is the composition as ListCompositions returns it.
func (c Composition) Summary() CompositionSummary {
	s := CompositionSummary{ARN: c.ARN, StageARN: c.StageARN, State: c.State, Tags: c.Tags,
		StartTime: c.StartTime, EndTime: c.EndTime, Destinations: []DestinationSummary{}}
	for _, d := range c.Destinations {
		s.Destinations = append(s.Destinations, DestinationSummary{ID: d.ID, State: d.State, StartTime: d.StartTime,
			EndTime: d.EndTime})
	}
	return s
}

// CompositionSummary is a ListCompositions item.
type CompositionSummary struct {
	ARN          string               `json:"arn"`
	StageARN     string               `json:"stageArn"`
	State        string               `json:"state"`
	Destinations []DestinationSummary `json:"destinations"`
	Tags         Tags                 `json:"tags"`
	StartTime    *time.Time           `json:"startTime,omitempty"`
	EndTime      *time.Time           `json:"endTime,omitempty"`
}

// Destination is one output of a composition.
type Destination struct {
	ID            string                   `json:"id"`
	State         string                   `json:"state"`
	StartTime     *time.Time               `json:"startTime,omitempty"`
	EndTime       *time.Time               `json:"endTime,omitempty"`
	Configuration DestinationConfiguration `json:"configuration"`
	Detail        *DestinationDetail       `json:"detail,omitempty"`
}

// DestinationSummary is a destination as ListCompositions returns it.
type DestinationSummary struct {
	ID        string     `json:"id"`
	State     string     `json:"state"`
	StartTime *time.Time `json:"startTime,omitempty"`
	EndTime   *time.Time `json:"endTime,omitempty"`
}

// DestinationConfiguration is exactly one of Channel or S3.
type DestinationConfiguration struct {
	Name    string                           `json:"name"`
	Channel *ChannelDestinationConfiguration `json:"channel,omitempty"`
	S3      *S3DestinationConfiguration      `json:"s3,omitempty"`
}

// ChannelDestinationConfiguration sends the composite to an IVS channel.
type ChannelDestinationConfiguration struct {
	ChannelARN              string `json:"channelArn"`
	EncoderConfigurationARN string `json:"encoderConfigurationArn,omitempty"`
}

// S3DestinationConfiguration records the composite to S3 as HLS.
type S3DestinationConfiguration struct {
	StorageConfigurationARN  string                              `json:"storageConfigurationArn"`
	EncoderConfigurationARNs []string                            `json:"encoderConfigurationArns"`
	RecordingConfiguration   RecordingConfiguration              `json:"recordingConfiguration"`
	ThumbnailConfigurations  []CompositionThumbnailConfiguration `json:"thumbnailConfigurations,omitempty"`
}

// RecordingConfiguration is the composite recording's format.
type RecordingConfiguration struct {
	Format           string                      `json:"format"`
	HLSConfiguration CompositionHLSConfiguration `json:"hlsConfiguration"`
}

// CompositionHLSConfiguration is the composite recording's HLS settings.
type CompositionHLSConfiguration struct {
	TargetSegmentDurationSeconds int `json:"targetSegmentDurationSeconds"`
}

// CompositionThumbnailConfiguration is the composite's thumbnails.
type CompositionThumbnailConfiguration struct {
	TargetIntervalSeconds int      `json:"targetIntervalSeconds"`
	Storage               []string `json:"storage"`
}

// DestinationDetail carries what IVS decided about a destination.
type DestinationDetail struct {
	S3 *S3Detail `json:"s3,omitempty"`
}

// S3Detail is where an S3 destination records.
type S3Detail struct {
	RecordingPrefix string `json:"recordingPrefix"`
}

// LayoutConfiguration is a composition's layout with every default filled
// in, as GetComposition echoes it: exactly one of Grid or PiP.
type LayoutConfiguration struct {
	Grid *GridConfiguration `json:"grid,omitempty"`
	PiP  *PipConfiguration  `json:"pip,omitempty"`
}

// GridConfiguration is a defaulted grid layout.
type GridConfiguration struct {
	FeaturedParticipantAttribute string `json:"featuredParticipantAttribute"`
	GridGap                      int    `json:"gridGap"`
	OmitStoppedVideo             bool   `json:"omitStoppedVideo"`
	ParticipantOrderAttribute    string `json:"participantOrderAttribute"`
	VideoAspectRatio             string `json:"videoAspectRatio"`
	VideoFillMode                string `json:"videoFillMode"`
}

// PipConfiguration is a defaulted picture-in-picture layout. PipWidth and
// PipHeight stay absent when they are derived from the PiP participant.
type PipConfiguration struct {
	FeaturedParticipantAttribute string `json:"featuredParticipantAttribute"`
	GridGap                      int    `json:"gridGap"`
	OmitStoppedVideo             bool   `json:"omitStoppedVideo"`
	ParticipantOrderAttribute    string `json:"participantOrderAttribute"`
	PipBehavior                  string `json:"pipBehavior"`
	PipHeight                    *int   `json:"pipHeight,omitempty"`
	PipWidth                     *int   `json:"pipWidth,omitempty"`
	PipOffset                    int    `json:"pipOffset"`
	PipParticipantAttribute      string `json:"pipParticipantAttribute"`
	PipPosition                  string `json:"pipPosition"`
	VideoFillMode                string `json:"videoFillMode"`
}

// LayoutFrom fills in a requested layout's defaults.
func LayoutFrom(c layout.Config) LayoutConfiguration {
	c = c.WithDefaults()
	if p := c.PiP; p != nil {
		return LayoutConfiguration{PiP: &PipConfiguration{
			FeaturedParticipantAttribute: p.FeaturedParticipantAttribute,
			GridGap:                      *p.GridGap,
			OmitStoppedVideo:             p.OmitStoppedVideo,
			ParticipantOrderAttribute:    p.ParticipantOrderAttribute,
			PipBehavior:                  string(p.PipBehavior),
			PipHeight:                    p.PipHeight,
			PipWidth:                     p.PipWidth,
			PipOffset:                    *p.PipOffset,
			PipParticipantAttribute:      p.PipParticipantAttribute,
			PipPosition:                  string(p.PipPosition),
			VideoFillMode:                string(p.VideoFillMode),
		}}
	}
	g := c.Grid
	return LayoutConfiguration{Grid: &GridConfiguration{
		FeaturedParticipantAttribute: g.FeaturedParticipantAttribute,
		GridGap:                      *g.GridGap,
		OmitStoppedVideo:             g.OmitStoppedVideo,
		ParticipantOrderAttribute:    g.ParticipantOrderAttribute,
		VideoAspectRatio:             string(g.VideoAspectRatio),
		VideoFillMode:                string(g.VideoFillMode),
	}}
}

// Config is the layout engine's view of this layout.
func (l LayoutConfiguration) Config() layout.Config {
	if p := l.PiP; p != nil {
		gap, off := p.GridGap, p.PipOffset
		return layout.Config{PiP: &layout.PipConfig{
			FeaturedParticipantAttribute: p.FeaturedParticipantAttribute,
			GridGap:                      &gap,
			OmitStoppedVideo:             p.OmitStoppedVideo,
			ParticipantOrderAttribute:    p.ParticipantOrderAttribute,
			PipBehavior:                  layout.PipBehavior(p.PipBehavior),
			PipHeight:                    p.PipHeight,
			PipWidth:                     p.PipWidth,
			PipOffset:                    &off,
			PipParticipantAttribute:      p.PipParticipantAttribute,
			PipPosition:                  layout.PipPosition(p.PipPosition),
			VideoFillMode:                layout.FillMode(p.VideoFillMode),
		}}
	}
	g := l.Grid
	if g == nil {
		return layout.Config{}
	}
	gap := g.GridGap
	return layout.Config{Grid: &layout.GridConfig{
		FeaturedParticipantAttribute: g.FeaturedParticipantAttribute,
		GridGap:                      &gap,
		OmitStoppedVideo:             g.OmitStoppedVideo,
		ParticipantOrderAttribute:    g.ParticipantOrderAttribute,
		VideoAspectRatio:             layout.AspectRatio(g.VideoAspectRatio),
		VideoFillMode:                layout.FillMode(g.VideoFillMode),
	}}
}
