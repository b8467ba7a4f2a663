package worker

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"time"

	"github.com/stagehand-rt/stagehand/encoder"
	"github.com/stagehand-rt/stagehand/engine"
	"github.com/stagehand-rt/stagehand/ivs"
	"github.com/stagehand-rt/stagehand/recording"
	"github.com/stagehand-rt/stagehand/sink/upload"
	"github.com/stagehand-rt/stagehand/store"
)

// settings turns comp's IVS resources (its destinations, their encoder
// and storage configurations) into the engine's configuration.
func (w *Worker) settings(ctx context.Context, comp ivs.Composition) (engine.Config, error) {
	cfg := engine.Config{Layout: comp.Layout.Config(), StageARN: comp.StageARN, Realtime: true}
	encARN := ""
	for _, d := range comp.Destinations {
		dest := engine.Destination{Name: d.ID}
		switch c := d.Configuration; {
		case c.Channel != nil:
			url, ok := w.cfg.Channels[c.Channel.ChannelARN]
			if !ok {
				return cfg, fmt.Errorf("destination %s: no ingest URL configured for channel %s", d.ID, c.Channel.ChannelARN)
			}
			dest.RTMP = &engine.RTMP{URL: url, CAFile: w.cfg.RTMPSCAFile, RetryFor: w.cfg.RTMPRetryFor}
			encARN = cmp.Or(encARN, c.Channel.EncoderConfigurationARN)
		case c.S3 != nil:
			rec, err := w.recordingSettings(ctx, d)
			if err != nil {
				return cfg, fmt.Errorf("destination %s: %w", d.ID, err)
			}
			dest.Recording = rec
			cfg.SegmentSeconds = c.S3.RecordingConfiguration.HLSConfiguration.TargetSegmentDurationSeconds
			if len(c.S3.EncoderConfigurationARNs) > 0 {
				encARN = cmp.Or(encARN, c.S3.EncoderConfigurationARNs[0])
			}
		}
		cfg.Destinations = append(cfg.Destinations, dest)
	}
	if encARN != "" {
		ec, err := getByARN(ctx, w.store.EncoderConfigurations, encARN)
		if err != nil {
			return cfg, err
		}
		cfg.Video = encoder.VideoConfig{Width: ec.Video.Width, Height: ec.Video.Height,
			Framerate: int(math.Round(ec.Video.Framerate)), Bitrate: ec.Video.Bitrate}
	}
	cfg.Video = cfg.Video.WithDefaults()
	return cfg, nil
}

// recordingSettings places S3 destination d's recording: in the worker's
// spool, uploaded to the storage configuration's bucket, or straight in the
// local buckets directory.
func (w *Worker) recordingSettings(ctx context.Context, d ivs.Destination) (*engine.Recording, error) {
	c := d.Configuration.S3
	sc, err := getByARN(ctx, w.store.StorageConfigurations, c.StorageConfigurationARN)
	if err != nil {
		return nil, err
	}
	if d.Detail == nil || d.Detail.S3 == nil {
		return nil, fmt.Errorf("no recording prefix")
	}
	prefix := d.Detail.S3.RecordingPrefix
	rec := &engine.Recording{}
	root := w.cfg.BucketsDir
	if w.cfg.S3 != nil {
		// <spool>/<bucket>/<key>: a restarted worker knows where what it
		// left belongs (recoverSpool).
		root = w.cfg.SpoolDir
	}
	// The store is trusted no more than the API's input: a bucket or
	// prefix that would leave root fails the composition, nothing written.
	if rec.Dir, err = recording.LocalDir(root, sc.S3.BucketName, prefix); err != nil {
		return nil, fmt.Errorf("recording location (%s): %w", sc.ARN, err)
	}
	if w.cfg.S3 != nil {
		rec.Upload = &upload.Config{Client: upload.NewClient(*w.cfg.S3), Bucket: sc.S3.BucketName, Prefix: prefix,
			Dir: rec.Dir}
	}
	if len(c.ThumbnailConfigurations) > 0 {
		rec.Thumbnails = thumbnailSettings(c.ThumbnailConfigurations[0])
	}
	return rec, nil
}

func thumbnailSettings(tc ivs.CompositionThumbnailConfiguration) *engine.Thumbnails {
	th := &engine.Thumbnails{Interval: time.Duration(tc.TargetIntervalSeconds) * time.Second}
	for _, s := range tc.Storage {
		switch s {
		case "SEQUENTIAL":
			th.Sequential = true
		case "LATEST":
			th.Latest = true
		}
	}
	return th
}

// newRendition names a new HLS rendition folder: <height>p<fps>, with a
// random suffix for a resumed run that cannot continue the earlier
// recording, so that nothing recorded before is overwritten.
func newRendition(v encoder.VideoConfig, resumed bool) string {
	r := engine.DefaultRendition(v)
	if resumed {
		r += "-" + ivs.RandomString(8)
	}
	return r
}

func getByARN[T any](ctx context.Context, t *store.Table[T], arn string) (T, error) {
	a, err := ivs.ParseARN(arn)
	if err != nil {
		var zero T
		return zero, err
	}
	v, err := t.Get(ctx, a.ID)
	if err != nil {
		return v, fmt.Errorf("%s: %w", arn, err)
	}
	return v, nil
}
