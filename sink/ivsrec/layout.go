// Package ivsrec writes a recording's output the way IVS lays a recording
// out under its S3 prefix:
//
//	events/recording-{started,ended,failed}.json
//	media/hls/multivariant.m3u8
//	media/hls/<rendition>/playlist.m3u8, its segments (and init segments)
//	media/thumbnails/<rendition>/<n>.jpg
//	media/latest_thumbnail/<rendition>/thumb.jpg
//
// It is the one owner of that layout, of the event objects, of writing a
// file atomically and announcing it to the uploader, and of the HLS
// playlists, for both kinds of recording: a composite (Recorder, MPEG-TS
// segments, resumable across workers) and an individual participant
// recording (Writer, fragmented MP4, one run per publishing span). The
// name says what it holds: the output of an IVS recording, whichever
// pipeline produces it; the pipelines themselves (worker, compose,
// recording) only feed it packets.
//
// The directory doubles as the spool an object-store uploader reads from:
// a file is complete once it has its final name.
package ivsrec

import (
	"path"
	"strconv"
)

// Folders and file names of the layout, relative to the prefix.
const (
	// HLSDir holds the multivariant playlist and one folder per rendition.
	HLSDir = "media/hls"
	// MultivariantPath is the recording's multivariant playlist.
	MultivariantPath = HLSDir + "/" + multivariantName

	multivariantName   = "multivariant.m3u8"
	playlistName       = "playlist.m3u8"
	thumbnailsDir      = "media/thumbnails"
	latestThumbnailDir = "media/latest_thumbnail"
	eventsDir          = "events"
)

// RenditionDir is the folder of a rendition's media playlist and segments.
func RenditionDir(rendition string) string { return path.Join(HLSDir, rendition) }

// PlaylistPath is a rendition's media playlist.
func PlaylistPath(rendition string) string { return path.Join(RenditionDir(rendition), playlistName) }

// SegmentPath is MPEG-TS segment n of a rendition, as a Recorder names it.
func SegmentPath(rendition string, n int) string {
	return path.Join(RenditionDir(rendition), strconv.Itoa(n)+tsExt)
}

// ThumbnailsDir is the folder of a rendition's sequential thumbnails.
func ThumbnailsDir(rendition string) string { return path.Join(thumbnailsDir, rendition) }

// LatestThumbnailDir is the folder of a rendition's latest thumbnail.
func LatestThumbnailDir(rendition string) string { return path.Join(latestThumbnailDir, rendition) }

// eventPath is the event object written when a recording reaches status.
func eventPath(status string) string {
	name := map[string]string{StatusStarted: "started", StatusEnded: "ended", StatusEndedWithFailure: "failed"}[status]
	return eventsDir + "/recording-" + name + ".json"
}
