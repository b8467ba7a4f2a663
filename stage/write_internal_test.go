package stage

import (
	"context"
	"net"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// writePeer is one subscriber as the server sees it: a server-side peer
// connection made with the stage's API sending one VP8 track to a plain
// pion receiver (default codecs, interceptors and SRTP profiles, as the
// load tool's subscribers), both over loopback.
type writePeer struct {
	server, client *webrtc.PeerConnection
	track          *webrtc.TrackLocalStaticRTP
	received       chan struct{} // closed on the client's first packet
}

// newWritePeer connects a subscriber; clientSetup, if not nil, changes
// the subscriber's settings.
func newWritePeer(tb testing.TB, api *webrtc.API, clientSetup func(*webrtc.SettingEngine)) *writePeer {
	tb.Helper()
	server, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		tb.Fatal(err)
	}
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	if clientSetup != nil {
		clientSetup(&se)
	}
	client, err := webrtc.NewAPI(webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		tb.Fatal(err)
	}
	wp := &writePeer{server: server, client: client, received: make(chan struct{})}
	tb.Cleanup(func() { _ = client.Close(); _ = server.Close() })
	wp.track, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8,
		ClockRate: 90000}, "video", "pub")
	if err != nil {
		tb.Fatal(err)
	}
	sender, err := server.AddTrack(wp.track)
	if err != nil {
		tb.Fatal(err)
	}
	go func() { // RTCP is read, as the stage's RTCP reader does
		buf := make([]byte, 1500)
		for {
			if _, _, err := sender.Read(buf); err != nil {
				return
			}
		}
	}()
	client.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		buf := make([]byte, 1500)
		first := true
		for {
			if _, _, err := tr.Read(buf); err != nil {
				return
			}
			if first {
				first = false
				close(wp.received)
			}
		}
	})
	// The subscriber offers and the stage answers, as in WHEP: the stage
	// is the DTLS client, the subscriber picks the SRTP profile.
	if _, err := client.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo,
		webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := negotiate(ctx, client, server); err != nil {
		tb.Fatal(err)
	}
	// Packets go out until the client has one: the first ones may be
	// written before DTLS is up.
	p := vp8Packet(1, 1, true, true, 0)
	for {
		_ = wp.track.WriteRTP(p)
		select {
		case <-wp.received:
			return wp
		case <-ctx.Done():
			tb.Fatal("the client received nothing")
		case <-time.After(20 * time.Millisecond):
		}
		p.SequenceNumber++
	}
}

// negotiate has offerer and answerer agree, with every candidate in the
// descriptions.
func negotiate(ctx context.Context, offerer, answerer *webrtc.PeerConnection) error {
	offer, err := offerer.CreateOffer(nil)
	if err != nil {
		return err
	}
	if err := setLocal(ctx, offerer, offer); err != nil {
		return err
	}
	if err := answerer.SetRemoteDescription(*offerer.LocalDescription()); err != nil {
		return err
	}
	answer, err := answerer.CreateAnswer(nil)
	if err != nil {
		return err
	}
	if err := setLocal(ctx, answerer, answer); err != nil {
		return err
	}
	return offerer.SetRemoteDescription(*answerer.LocalDescription())
}

func setLocal(ctx context.Context, pc *webrtc.PeerConnection, d webrtc.SessionDescription) error {
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(d); err != nil {
		return err
	}
	select {
	case <-gathered:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// srtpCipher is the SRTP protection profile pc's transport uses.
func srtpCipher(pc *webrtc.PeerConnection) string {
	for _, s := range pc.GetStats() {
		if ts, ok := s.(webrtc.TransportStats); ok && ts.SRTPCipher != "" {
			return ts.SRTPCipher
		}
	}
	return ""
}

func testAPI(tb testing.TB) *webrtc.API {
	tb.Helper()
	api, err := newWebRTCAPI(Config{ICEIPs: []string{"127.0.0.1"}, ICEDisconnectedTimeout: 5 * time.Second,
		ICEFailedTimeout: 10 * time.Second}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return api
}

// TestSRTPProfile: a pion subscriber with its default profiles (AES-256-GCM
// first) gets AES-128-GCM from the stage, and one that knows only
// AES_CM_128_HMAC_SHA1_80 (the profile every WebRTC endpoint has) still
// connects, with it.
func TestSRTPProfile(t *testing.T) {
	api := testAPI(t)
	for _, tc := range []struct {
		name     string
		profiles []dtls.SRTPProtectionProfile
		want     string
	}{
		{"default", nil, "SRTP_AEAD_AES_128_GCM"},
		{"cm-only", []dtls.SRTPProtectionProfile{dtls.SRTP_AES128_CM_HMAC_SHA1_80}, "SRTP_AES128_CM_HMAC_SHA1_80"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wp := newWritePeer(t, api, func(se *webrtc.SettingEngine) {
				if tc.profiles != nil {
					se.SetSRTPProtectionProfiles(tc.profiles...)
				}
			})
			if got := srtpCipher(wp.server); got != tc.want {
				t.Errorf("stage's SRTP profile %q, want %q", got, tc.want)
			}
			if got := srtpCipher(wp.client); got != tc.want {
				t.Errorf("subscriber's SRTP profile %q, want %q", got, tc.want)
			}
		})
	}
}

// threadCPU is the CPU time (user and system) of the calling OS thread.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_THREAD, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkWritePath: what the server's CPU spends on one packet to one
// subscriber through pion's whole write path (the interceptors, SRTP,
// ICE, the socket), for inlineSubscribers real subscribers written by the
// relay goroutine: with a socket per peer, and with the one media socket
// (Config.UDPAddr), whose writes the fan-out batches. cpu-ns/pkt is the
// writing thread's CPU time only (the receivers run on other threads), so
// it holds on a busy machine better than ns/op.
func BenchmarkWritePath(b *testing.B) {
	b.Run("sockets", func(b *testing.B) { benchmarkWritePath(b, nil, false) })
	for _, batched := range []bool{false, true} {
		name := "mux"
		if batched {
			name = "mux-batched"
		}
		b.Run(name, func(b *testing.B) {
			media, err := listenMedia("127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer media.close()
			benchmarkWritePath(b, media, batched)
		})
	}
}

func benchmarkWritePath(b *testing.B, media *mediaSocket, batched bool) {
	b.Helper()
	api, err := newWebRTCAPI(Config{ICEIPs: []string{"127.0.0.1"}, ICEDisconnectedTimeout: 5 * time.Second,
		ICEFailedTimeout: 10 * time.Second}, media)
	if err != nil {
		b.Fatal(err)
	}
	f := newFanout(func(fn func()) bool { go fn(); return true })
	defer f.close()
	if batched {
		f.batch = media.conn
	}
	for range inlineSubscribers {
		f.add(newWritePeer(b, api, nil).track)
	}
	// A 1.5 Mbit/s VP8 stream's packets: about 1100 bytes.
	pkts := make([]*rtp.Packet, historySize)
	for i := range pkts {
		pkts[i] = vp8Packet(uint16(i), uint32(i/10)*3000, false, i%10 == 0, 0)
		pkts[i].Payload = append(pkts[i].Payload, make([]byte, 1100-len(pkts[i].Payload))...)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ReportAllocs()
	b.ResetTimer()
	start := threadCPU()
	for i := range b.N {
		p := pkts[i%len(pkts)]
		p.SequenceNumber = uint16(i) // no replays: the receivers take every packet
		f.write(p)
		if i%64 == 63 { // paced a little: the receivers keep up
			time.Sleep(100 * time.Microsecond)
		}
	}
	cpu := threadCPU() - start
	b.StopTimer()
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*inlineSubscribers), "cpu-ns/pkt")
}
