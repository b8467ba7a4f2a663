package stage_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/stagehand-rt/stagehand/internal/stagetest"
	"github.com/stagehand-rt/stagehand/stage/client"
)

// BenchmarkJoin: one WHIP publish from POST to an established (ICE + DTLS)
// connection, and its DELETE, over loopback.
func BenchmarkJoin(b *testing.B) {
	env := stagetest.Start(b, stagetest.Options{})
	st := env.CreateStage(b, "bench-join")
	keep := env.Token(b, *st.Arn, "keeper", nil)
	// A participant that stays keeps the session open, as on a busy stage.
	p, err := client.Publish(env.Ctx, *st.Endpoints.Whip, *keep.Token, client.PublishOptions{Options: loopback})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close(context.Background())
	toks := make([]string, b.N)
	for i := range toks {
		toks[i] = *env.Token(b, *st.Arn, "", nil).Token
	}
	b.ResetTimer()
	for i := range b.N {
		p, err := client.Publish(env.Ctx, *st.Endpoints.Whip, toks[i], client.PublishOptions{Options: loopback})
		if err != nil {
			b.Fatal(err)
		}
		if err := p.Close(env.Ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRelay: the CPU the whole process (stage, publisher and
// subscribers, SRTP both ways) spends relaying one second of a 30 fps,
// 1.2 Mbps video stream with 50 packets/s of audio to 4 subscribers. The
// stage's own share is a fraction of it.
func BenchmarkRelay(b *testing.B) {
	env := stagetest.Start(b, stagetest.Options{})
	st := env.CreateStage(b, "bench-relay")
	tok := env.Token(b, *st.Arn, "pub", nil)
	pub, err := client.Publish(env.Ctx, *st.Endpoints.Whip, *tok.Token, client.PublishOptions{Options: loopback})
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close(context.Background())
	frame := make([]byte, 5000) // 1.2 Mbps at 30 fps
	_ = pub.Video.WriteSample(media.Sample{Data: frame, Duration: time.Second / 30})
	_ = pub.Audio.WriteSample(media.Sample{Data: frame[:120], Duration: 20 * time.Millisecond})
	var subs []*received
	for range 4 {
		stok := env.Token(b, *st.Arn, "sub", nil, types.ParticipantTokenCapabilitySubscribe)
		r := &received{packets: map[string]int{}, senders: map[string]bool{}}
		s, err := client.Subscribe(env.Ctx, client.WHEPURL(*st.Endpoints.Whip, *tok.ParticipantId), *stok.Token, loopback, r.onTrack)
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close(context.Background())
		subs = append(subs, r)
	}
	start := cpuTime()
	b.ResetTimer()
	for i := range b.N {
		next := time.Now()
		for n := range 30 {
			copy(frame, marked("pub", i*30+n))
			_ = pub.Video.WriteSample(media.Sample{Data: frame, Duration: time.Second / 30})
			for range 2 {
				_ = pub.Audio.WriteSample(media.Sample{Data: frame[:120], Duration: 20 * time.Millisecond})
			}
			next = next.Add(time.Second / 30)
			time.Sleep(time.Until(next))
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-start)/float64(time.Millisecond)/float64(b.N), "cpu-ms/stream-s")
	time.Sleep(200 * time.Millisecond)
	for _, r := range subs {
		if r.count("video") == 0 {
			b.Fatal("a subscriber received nothing")
		}
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
