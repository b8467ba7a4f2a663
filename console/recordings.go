package console

import (
	"context"
	"net/http"
	"path"
	"sort"
	"strings"

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
	Source      string      `json:"source,omitempty"` // "local" or "s3" once found
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
		c.inspect(r.Context(), &rec)
		out = append(out, rec)
	}
	writeJSON(w, http.StatusOK, map[string]any{"recordings": out})
}

// inspect fills in what the bucket holds of rec.
func (c *Console) inspect(ctx context.Context, rec *recording) {
	if c.buckets == nil || rec.Bucket == "" || rec.Prefix == "" {
		return
	}
	objects, err := c.buckets.list(ctx, rec.Bucket, rec.Prefix)
	if err != nil {
		c.log.Info("list a recording", "bucket", rec.Bucket, "prefix", rec.Prefix, "error", err)
		return
	}
	rec.Source = c.buckets.kind()
	url := func(key string) string { return "/console/rec/" + rec.Bucket + "/" + rec.Prefix + "/" + key }
	renditions := map[string]*rendition{}
	var names []string
	playlists := map[string]bool{}
	for _, o := range objects {
		playlists[o.key] = true
		rest, ok := strings.CutPrefix(o.key, ivsrec.HLSDir+"/")
		if !ok {
			continue
		}
		name, file, ok := strings.Cut(rest, "/")
		if !ok || strings.Contains(file, "/") {
			continue
		}
		rd := renditions[name]
		if rd == nil {
			rd = &rendition{Name: name}
			renditions[name] = rd
			names = append(names, name)
		}
		if strings.HasSuffix(file, ".ts") {
			rd.Segments++
			rd.Bytes += o.size
		}
	}
	sort.Strings(names)
	for _, n := range names {
		rec.Renditions = append(rec.Renditions, *renditions[n])
		thumb := path.Join(ivsrec.LatestThumbnailDir(n), "thumb.jpg")
		if rec.Thumbnail == "" && playlists[thumb] {
			rec.Thumbnail = url(thumb)
		}
	}
	switch {
	case playlists[ivsrec.MultivariantPath]:
		rec.Playlist = url(ivsrec.MultivariantPath)
	case len(names) > 0 && playlists[ivsrec.PlaylistPath(names[0])]:
		rec.Playlist = url(ivsrec.PlaylistPath(names[0]))
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
	if c.buckets == nil || !ok || strings.Contains(bucket, "/") {
		http.NotFound(w, r)
		return
	}
	if badKey(bucket, key) {
		http.Error(w, "bad path", http.StatusBadRequest)
		return
	}
	w.Header().Set("Cache-Control", "no-store") // live playlists change
	c.buckets.serve(w, r, bucket, key, ctype)
}

// badKey refuses a bucket or key that is not a plain relative path (the
// local buckets also join it through safepath).
func badKey(bucket, key string) bool {
	if bucket == "" || bucket == "." || bucket == ".." || strings.ContainsAny(bucket, "/\\\x00") ||
		strings.ContainsAny(key, "\\\x00") {
		return true
	}
	for _, el := range strings.Split(key, "/") {
		if el == "" || el == "." || el == ".." {
			return true
		}
	}
	return false
}
