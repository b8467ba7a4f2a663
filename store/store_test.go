package store

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stagehand-rt/stagehand/internal/natsserver"
	"github.com/stagehand-rt/stagehand/ivs"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// cluster starts n embedded JetStream nodes routed to each other and
// returns their client URLs.
func cluster(t *testing.T, n int) string {
	t.Helper()
	var addrs, routes []string
	for range n {
		addrs = append(addrs, freeAddr(t))
		routes = append(routes, "nats-route://"+freeAddr(t))
	}
	var urls string
	for i := range n {
		s, err := natsserver.Start(natsserver.Config{Addr: addrs[i], StoreDir: t.TempDir(), Name: "n" + strconv.Itoa(i),
			Cluster: &natsserver.ClusterConfig{Name: "test", Addr: routes[i][len("nats-route://"):], Routes: routes}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Shutdown)
		if i > 0 {
			urls += ","
		}
		urls += s.ClientURL()
	}
	return urls
}

// TestConcurrentUpdates: updates of one record from many goroutines all
// land, on a single server and on a 3-node cluster with R3 buckets (whose
// revision conflicts carry another error code).
func TestConcurrentUpdates(t *testing.T) {
	for _, tc := range []struct {
		name     string
		nodes    int
		replicas int
	}{{"single server", 1, 1}, {"R3 cluster", 3, 3}} {
		t.Run(tc.name, func(t *testing.T) {
			var url string
			if tc.nodes == 1 {
				s, err := natsserver.Start(natsserver.Config{StoreDir: t.TempDir()})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(s.Shutdown)
				url = s.ClientURL()
			} else {
				url = cluster(t, tc.nodes)
			}
			nc, err := nats.Connect(url)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			js, _ := jetstream.New(nc)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			var st *Store
			for { // a new cluster elects its leader first
				octx, ocancel := context.WithTimeout(ctx, 5*time.Second)
				st, err = Open(octx, js, Config{Replicas: tc.replicas})
				ocancel()
				if err == nil {
					break
				}
				if ctx.Err() != nil {
					t.Fatal(err)
				}
				time.Sleep(200 * time.Millisecond)
			}
			if err := st.Compositions.Create(ctx, "c", ivs.Composition{}); err != nil {
				t.Fatal(err)
			}
			const writers, each = 6, 5
			var wg sync.WaitGroup
			for w := range writers {
				wg.Go(func() {
					for i := range each {
						if _, err := st.Compositions.Update(ctx, "c", func(c *ivs.Composition) error {
							c.Tags = appendTag(c.Tags, fmt.Sprintf("w%d-%d", w, i))
							return nil
						}); err != nil {
							t.Error(err)
						}
					}
				})
			}
			wg.Wait()
			c, err := st.Compositions.Get(ctx, "c")
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Tags) != writers*each {
				t.Errorf("%d of %d updates landed", len(c.Tags), writers*each)
			}
		})
	}
}

func appendTag(m map[string]string, k string) map[string]string {
	if m == nil {
		m = map[string]string{}
	}
	m[k] = "x"
	return m
}
