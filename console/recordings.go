package console

import (
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/stagehand-rt/stagehand/internal/safepath"
	"github.com/stagehand-rt/stagehand/ivs"
	"github.com/stagehand-rt/stagehand/sink/ivsrec"
)

// recording is where one S3 destination of a composition records, and
// what it holds so far.
type recording struct {
	Destination string      `json:"destination"` // destination id
	Bucket      string      `json:"bucket"`
	Prefix      string      `json:"prefix"`
	Playlist    string      `json:"playlist,omitempty"`  // URL under /console/rec/, once written
	Thumbnail   string      `json:"thumbnail,omitempty"` // the latest thumbnail's URL, once written
	Renditions  []rendition `json:"renditions"`
	Local       bool        `json:"local"` // in the local buckets (else in S3: not playable here)
}

type rendition struct {
	Name     string `json:"name"`
	Segments int    `json:"segments"`
	Bytes    int64  `json:"bytes"`
}

// handleRecordings answers GET /console/api/recordings?arn=<composition>.
func (c *Console) handleRecordings(w http.ResponseWriter, r *http.Request) {
	var comp struct {
		Composition ivs.Composition `json:"composition"`
	}
	if e := c.invoke(r.Context(), "GetComposition", map[string]string{"arn": r.URL.Query().Get("arn")}, &comp); e != nil {
		writeError(w, e.Status, e.Code, e.Message)
		return
	}
	out := []recording{}
	for _, d := range comp.Composition.Destinations {
		s3 := d.Configuration.S3
		if s3 == nil || d.Detail == nil || d.Detail.S3 == nil {
			continue
		}
		var sc struct {
			StorageConfiguration ivs.StorageConfiguration `json:"storageConfiguration"`
		}
		if e := c.invoke(r.Context(), "GetStorageConfiguration", map[string]string{"arn": s3.StorageConfigurationARN},
			&sc); e != nil {
			writeError(w, e.Status, e.Code, e.Message)
			return
		}
		rec := recording{Destination: d.ID, Prefix: d.Detail.S3.RecordingPrefix, Renditions: []rendition{}}
		rec.Bucket = sc.StorageConfiguration.S3.BucketName
		c.inspect(&rec)
		out = append(out, rec)
	}
	writeJSON(w, http.StatusOK, map[string]any{"recordings": out})
}

// inspect fills in what the local bucket holds of rec.
func (c *Console) inspect(rec *recording) {
	if c.cfg.BucketsDir == "" || rec.Bucket == "" || rec.Prefix == "" {
		return
	}
	base, err := safepath.Join(c.cfg.BucketsDir, rec.Bucket, rec.Prefix)
	if err != nil {
		return
	}
	rec.Local = true
	url := func(key string) string { return "/console/rec/" + rec.Bucket + "/" + rec.Prefix + "/" + key }
	if _, err := os.Stat(filepath.Join(base, filepath.FromSlash(ivsrec.MultivariantPath))); err == nil {
		rec.Playlist = url(ivsrec.MultivariantPath)
	}
	dirs, _ := os.ReadDir(filepath.Join(base, filepath.FromSlash(ivsrec.HLSDir)))
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		rd := rendition{Name: d.Name()}
		files, _ := os.ReadDir(filepath.Join(base, filepath.FromSlash(ivsrec.RenditionDir(d.Name()))))
		for _, f := range files {
			if info, err := f.Info(); err == nil && strings.HasSuffix(f.Name(), ".ts") {
				rd.Segments++
				rd.Bytes += info.Size()
			}
		}
		rec.Renditions = append(rec.Renditions, rd)
		if rec.Playlist == "" {
			if _, err := os.Stat(filepath.Join(base, filepath.FromSlash(ivsrec.PlaylistPath(d.Name())))); err == nil {
				rec.Playlist = url(ivsrec.PlaylistPath(d.Name()))
			}
		}
		thumb := path.Join(ivsrec.LatestThumbnailDir(d.Name()), "thumb.jpg")
		if _, err := os.Stat(filepath.Join(base, filepath.FromSlash(thumb))); err == nil && rec.Thumbnail == "" {
			rec.Thumbnail = url(thumb)
		}
	}
}

// recordingTypes are the files /console/rec/ serves, by extension.
var recordingTypes = map[string]string{
	".m3u8": "application/vnd.apple.mpegurl",
	".ts":   "video/mp2t",
	".m4s":  "video/iso.segment",
	".mp4":  "video/mp4",
	".jpg":  "image/jpeg",
	".png":  "image/png",
}

// handleRecording serves GET /console/rec/{bucket}/{key...} from the local
// buckets to a signed-in browser. It is a GET that changes nothing, and
// the SameSite=Strict cookie keeps other sites' pages from reading it.
func (c *Console) handleRecording(w http.ResponseWriter, r *http.Request) {
	if _, ok := c.signedIn(r); !ok {
		http.Error(w, "sign in first", http.StatusUnauthorized)
		return
	}
	bucket, key := r.PathValue("bucket"), r.PathValue("key")
	ctype, ok := recordingTypes[path.Ext(key)]
	if c.cfg.BucketsDir == "" || !ok || strings.Contains(bucket, "/") {
		http.NotFound(w, r)
		return
	}
	p, err := safepath.Join(c.cfg.BucketsDir, bucket, key)
	if err != nil {
		http.Error(w, "bad path", http.StatusBadRequest)
		return
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		http.NotFound(w, r)
		return
	} else if err != nil {
		http.Error(w, "unreadable", http.StatusInternalServerError)
		return
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil || info.IsDir() {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Cache-Control", "no-store") // live playlists change
	http.ServeContent(w, r, "", info.ModTime(), f)
}
