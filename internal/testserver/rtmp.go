package testserver

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// RTMP is nginx with the RTMP module on 127.0.0.1, recording every stream it
// receives, with stunnel in front of it for RTMPS.
type RTMP struct {
	Port      int    // plain RTMP
	TLSPort   int    // RTMPS, through stunnel
	CAFile    string // verifies the RTMPS certificate
	RecordDir string // <stream key>-<unix time>.flv per publish
	dir       string
	nginx     *Process
	t         testing.TB
}

// StartRTMP starts nginx-rtmp and stunnel; they stop when the test ends.
func StartRTMP(t testing.TB) *RTMP {
	t.Helper()
	s := &RTMP{Port: FreePort(t), TLSPort: FreePort(t), dir: t.TempDir(), t: t}
	// nginx's workers may run as another user: the recording directory, and
	// the path to it, must be theirs to write.
	s.RecordDir = filepath.Join(s.dir, "rec")
	if err := os.MkdirAll(s.RecordDir, 0o777); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{s.dir, s.RecordDir} {
		if err := os.Chmod(d, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;"
	}
	module := "/usr/lib/nginx/modules/ngx_rtmp_module.so"
	if _, err := os.Stat(module); err != nil {
		t.Fatalf("%s missing: run scripts/deps.sh (libnginx-mod-rtmp)", module)
	}
	writeFile(t, filepath.Join(s.dir, "nginx.conf"), user+"\n"+
		RTMPConfig(s.Port, s.RecordDir, s.dir+"/nginx.pid", s.dir+"/error.log"))
	s.startNginx()

	cert, key := SelfSignedCert(t, s.dir)
	s.CAFile = cert
	writeFile(t, filepath.Join(s.dir, "stunnel.conf"), sprintf(`
foreground = yes
pid =
debug = 4
[rtmps]
accept = 127.0.0.1:%d
connect = 127.0.0.1:%d
cert = %s
key = %s
`, s.TLSPort, s.Port, cert, key))
	start(t, filepath.Join(s.dir, "stunnel.log"), lookPath(t, "stunnel4", "stunnel"), filepath.Join(s.dir, "stunnel.conf"))
	WaitListening(t, s.TLSPort, 10*time.Second)
	return s
}

// RTMPConfig is nginx.conf for nginx-rtmp in one process on
// 127.0.0.1:port, recording every stream of application "app" into
// recordDir (FLV, one file per publish), with its pid and error log where
// given ("stderr" for the log).
func RTMPConfig(port int, recordDir, pidFile, errorLog string) string {
	return sprintf(`
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
daemon off;
master_process off; # one process: killing it drops every connection
worker_processes 1;
pid %s;
error_log %s info;
events { worker_connections 64; }
rtmp {
    server {
        listen 127.0.0.1:%d;
        chunk_size 4096;
        application app {
            live on;
            record all;
            record_path %s;
            record_unique on;
        }
    }
}
`, pidFile, errorLog, port, recordDir)
}

func (s *RTMP) startNginx() {
	s.t.Helper()
	s.nginx = start(s.t, filepath.Join(s.dir, "nginx.out"), lookPath(s.t, "nginx"), "-p", s.dir, "-c",
		filepath.Join(s.dir, "nginx.conf"))
	WaitListening(s.t, s.Port, 10*time.Second)
}

// URL is the plain RTMP URL that publishes stream key.
func (s *RTMP) URL(key string) string {
	return "rtmp://127.0.0.1:" + strconv.Itoa(s.Port) + "/app/" + key
}

// TLSURL is the RTMPS URL that publishes stream key.
func (s *RTMP) TLSURL(key string) string {
	return "rtmps://127.0.0.1:" + strconv.Itoa(s.TLSPort) + "/app/" + key
}

// Restart kills nginx (dropping every connection) and starts it again after pause.
func (s *RTMP) Restart(pause time.Duration) {
	s.t.Helper()
	s.nginx.stop()
	time.Sleep(pause)
	s.startNginx()
}

// Recordings lists the FLV files nginx wrote for stream key.
func (s *RTMP) Recordings(key string) []string {
	s.t.Helper()
	files, err := filepath.Glob(filepath.Join(s.RecordDir, key+"*.flv"))
	if err != nil {
		s.t.Fatal(err)
	}
	return files
}
