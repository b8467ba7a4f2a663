package compose

import (
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/asticode/go-astiav"

	"github.com/stagehand-rt/stagehand/engine"
	"github.com/stagehand-rt/stagehand/layout"
)

// files is the engine's source for a file composition: each input a
// participant, decoded up to each frame's time when the engine asks.
type files struct {
	inputs []*fileParticipant
	attrs  []map[string]string
	log    *slog.Logger
}

// fileParticipant is one input file playing a participant.
type fileParticipant struct {
	id         string
	in         *input
	pending    *astiav.Frame // holds a decoded video frame not due yet when hasPending
	pendingT   time.Duration
	hasPending bool
	t0         float64 // the input's first timestamp, subtracted from all
	started    bool
	done       bool
	audioErr   bool // its audio was refused once; not logged again
}

func openFiles(inputs []Input, log *slog.Logger) (_ *files, err error) {
	fs := &files{log: log}
	defer func() {
		if err != nil {
			fs.close()
		}
	}()
	for i, in := range inputs {
		dec, err := openInput(in.Path, log)
		if err != nil {
			return nil, err
		}
		fs.inputs = append(fs.inputs, &fileParticipant{id: fmt.Sprintf("P%d", i+1), in: dec, pending: astiav.AllocFrame()})
		fs.attrs = append(fs.attrs, in.Attributes)
	}
	return fs, nil
}

// participants are the inputs as the layout sees them: P1, P2, … in order.
func (fs *files) participants() []layout.Participant {
	ps := make([]layout.Participant, len(fs.inputs))
	for i, fp := range fs.inputs {
		ps[i] = layout.Participant{ID: fp.id, Attributes: fs.attrs[i], VideoStopped: fp.in.video == nil}
	}
	return ps
}

// Advance decodes every input up to media time t; done once one of them
// ran out (the composition ends with its shortest input).
func (fs *files) Advance(t time.Duration, in engine.Inputs) (done bool, err error) {
	for _, fp := range fs.inputs {
		if err := fs.advance(fp, t, in); err != nil {
			return false, err
		}
		done = done || (fp.done && !fp.hasPending)
	}
	return done, nil
}

// advance decodes fp up to t: its latest video frame at or before t is
// shown, its audio mixed.
func (fs *files) advance(fp *fileParticipant, t time.Duration, in engine.Inputs) error {
	if fp.hasPending {
		if fp.pendingT > t {
			return nil
		}
		err := in.Video(fp.id, fp.pending)
		fp.pending.Unref()
		fp.hasPending = false
		if err != nil {
			return err
		}
	}
	for !fp.done {
		video, ft, ok, err := fp.in.next()
		if err != nil {
			return err
		}
		if !ok {
			fp.done = true
			return nil
		}
		late, err := fs.take(fp, video, fp.mediaTime(ft), t, in)
		fp.in.frame.Unref()
		if err != nil || late {
			return err
		}
	}
	return nil
}

// take hands the decoded frame at media time ft to in, or keeps a video
// frame for later; late says that decoding has gone past t.
func (fs *files) take(fp *fileParticipant, video bool, ft, t time.Duration, in engine.Inputs) (late bool, err error) {
	f := fp.in.frame
	switch {
	case !video:
		if err := in.Audio(fp.id, f); err != nil && !fp.audioErr {
			fp.audioErr = true
			fs.log.Warn("participant's audio left out of the mix", "participant", fp.id, "input", fp.in.path, "error", err)
		}
		return ft > t, nil // audio is decoded a little ahead; the mixer buffers it
	case ft > t:
		if err := fp.pending.Ref(f); err != nil {
			return true, err
		}
		fp.pendingT, fp.hasPending = ft, true
		return true, nil
	default:
		return false, in.Video(fp.id, f)
	}
}

// mediaTime is a frame's time in seconds from the input's first, rounded
// to the nanosecond as the engine's clock counts.
func (fp *fileParticipant) mediaTime(ft float64) time.Duration {
	if math.IsNaN(ft) {
		return -1 // no timestamp: due at once
	}
	if !fp.started {
		fp.t0, fp.started = ft, true
	}
	return time.Duration(math.Round((ft - fp.t0) * 1e9))
}

func (fs *files) close() {
	for _, fp := range fs.inputs {
		fp.in.close()
		fp.pending.Free()
	}
}
