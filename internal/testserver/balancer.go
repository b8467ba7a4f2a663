package testserver

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Balancer is nginx as an HTTP load balancer on 127.0.0.1: one address
// in front of several backends, as an operator puts one before the stage
// nodes (and the API servers) of a fleet. A backend that refuses
// connections is skipped, for every method; WebSockets pass through.
type Balancer struct {
	Port int
	dir  string
}

// StartBalancer balances over backends (host:port), round robin.
func StartBalancer(t testing.TB, backends []string) *Balancer {
	t.Helper()
	b := &Balancer{Port: FreePort(t), dir: t.TempDir()}
	if err := os.Chmod(b.dir, 0o777); err != nil {
		t.Fatal(err)
	}
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;"
	}
	var servers strings.Builder
	for _, addr := range backends {
		fmt.Fprintf(&servers, "        server %s max_fails=1 fail_timeout=5s;\n", addr)
	}
	writeFile(t, filepath.Join(b.dir, "nginx.conf"), sprintf(`
%s
daemon off;
master_process off;
worker_processes 1;
pid %s/nginx.pid;
error_log %s/error.log warn;
events { worker_connections 512; }
http {
    access_log off;
    client_body_temp_path %s/body;
    proxy_temp_path %s/proxy;
    fastcgi_temp_path %s/fastcgi;
    uwsgi_temp_path %s/uwsgi;
    scgi_temp_path %s/scgi;
    map $http_upgrade $connection_upgrade { default upgrade; '' close; }
    upstream backends {
%s    }
    server {
        listen 127.0.0.1:%d;
        location / {
            proxy_pass http://backends;
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_next_upstream error timeout non_idempotent;
            proxy_connect_timeout 1s;
            proxy_read_timeout 1h;
            proxy_redirect off;
        }
    }
}
`, user, b.dir, b.dir, b.dir, b.dir, b.dir, b.dir, b.dir, servers.String(), b.Port))
	start(t, filepath.Join(b.dir, "nginx.out"), lookPath(t, "nginx"), "-p", b.dir, "-c",
		filepath.Join(b.dir, "nginx.conf"))
	WaitListening(t, b.Port, 10*time.Second)
	return b
}

// URL is the balancer's base URL.
func (b *Balancer) URL() string { return "http://127.0.0.1:" + strconv.Itoa(b.Port) }
