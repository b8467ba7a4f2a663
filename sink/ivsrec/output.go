package ivsrec

import (
	"fmt"
	"os"
	"path/filepath"
)

// Output is a recording prefix on local disk, where files appear whole.
type Output struct {
	Dir string
	// OnFile, when set, is told of every file once it is complete, by its
	// path relative to Dir with slashes: the uploader's queue.
	OnFile func(rel string)
}

// Publish writes the file rel atomically, so that players and the uploader
// never see part of one (the uploader may be reading the previous
// version), and announces it.
func (o Output) Publish(rel string, data []byte) error {
	p := o.path(rel)
	if err := os.WriteFile(p+".tmp", data, 0o600); err != nil {
		return fmt.Errorf("ivsrec: %w", err)
	}
	if err := os.Rename(p+".tmp", p); err != nil {
		return fmt.Errorf("ivsrec: %w", err)
	}
	o.announce(rel)
	return nil
}

func (o Output) announce(rel string) {
	if o.OnFile != nil {
		o.OnFile(rel)
	}
}

func (o Output) path(rel string) string { return filepath.Join(o.Dir, filepath.FromSlash(rel)) }

// mkdirs creates the events folder and the rendition's.
func (o Output) mkdirs(rendition string) error {
	for _, d := range []string{eventsDir, RenditionDir(rendition)} {
		if err := os.MkdirAll(o.path(d), 0o700); err != nil {
			return fmt.Errorf("ivsrec: %w", err)
		}
	}
	return nil
}

// writeEvent publishes e as the event object of its status.
func (o Output) writeEvent(e event) error {
	data, err := e.marshal()
	if err != nil {
		return err
	}
	return o.Publish(eventPath(e.Status), data)
}
