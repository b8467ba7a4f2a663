package loadtest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/stagehand-rt/stagehand/stage/client"
)

// joinTimeout bounds one participant's join, token included.
const joinTimeout = 20 * time.Second

// drain is how long subscribers keep receiving after the publishers stop,
// so that packets in flight are not counted lost.
const drain = 300 * time.Millisecond

// stageRun is one stage of the run and its publishers.
type stageRun struct {
	arn, whip string
	created   bool

	mu   sync.Mutex
	pubs []*publisher
}

func (s *stageRun) publishers() []*publisher {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*publisher(nil), s.pubs...)
}

// runner is one Run: its stages, participants and failures.
type runner struct {
	cfg   Config
	api   *ivsrealtime.Client
	opts  client.Options
	media *mediaLoop
	hc    *http.Client

	stages  []*stageRun
	senders sync.WaitGroup // the publishers' send loops

	mu       sync.Mutex
	pubs     []*publisher
	subs     []*subscriber // joined
	subCount int           // subscribers started
	subJoins int           // subscribers joined
	joinWall time.Duration // spent in joinSubscribers
	failures map[string]int
	maxRSS   float64
}

// Run runs the load described by cfg against its endpoint and reports on
// it. Cancelling ctx ends the run early; the report covers what ran.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("loadtest: %w", err)
	}
	media, err := encodeLoop(cfg)
	if err != nil {
		return nil, fmt.Errorf("loadtest: %w", err)
	}
	r := &runner{cfg: cfg, media: media, failures: map[string]int{}, hc: &http.Client{Timeout: 5 * time.Second},
		opts: client.Options{ICEIPs: cfg.ICEIPs, UserAgent: "stagehand-load/1"},
		api: ivsrealtime.New(ivsrealtime.Options{Region: cfg.Region, BaseEndpoint: aws.String(cfg.EndpointURL),
			RetryMaxAttempts: 1,
			Credentials:      credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, "")})}
	if err := r.openStages(ctx); err != nil {
		r.deleteStages()
		return nil, fmt.Errorf("loadtest: %w", err)
	}
	defer r.deleteStages()
	rep, err := r.run(ctx)
	if err != nil {
		return nil, fmt.Errorf("loadtest: %w", err)
	}
	return rep, nil
}

func (r *runner) run(ctx context.Context) (*Report, error) {
	sendCtx, stopSending := context.WithCancel(context.Background())
	defer func() {
		stopSending()
		r.senders.Wait()
		r.closeAll()
	}()
	before, scrapeErr := r.scrape(ctx)
	cpu0, start := selfCPU(), time.Now()
	progCtx, stopProgress := context.WithCancel(ctx)
	var progress sync.WaitGroup
	progress.Go(func() { r.progress(progCtx, start) })
	defer func() { stopProgress(); progress.Wait() }()

	r.joinPublishers(ctx, sendCtx)
	if len(r.publishers()) == 0 {
		return nil, fmt.Errorf("no publisher joined: %s", r.failureText())
	}
	measured := time.Now()
	var ramp *RampResult
	if r.cfg.Ramp.Step > 0 {
		ramp = r.ramp(ctx, measured)
	} else {
		r.joinSubscribers(ctx, r.cfg.Subscribers)
		sleep(ctx, time.Until(measured.Add(r.cfg.Duration)))
	}
	after, err := r.scrape(context.Background())
	if scrapeErr == nil {
		scrapeErr = err
	}
	cpu1 := selfCPU()
	r.noteDisconnects()
	stopSending()
	r.senders.Wait()
	time.Sleep(drain)
	stopProgress()
	progress.Wait()
	rep := r.report(measured, time.Now(), before, after, scrapeErr)
	rep.Tool.CPUCores = (cpu1 - cpu0).Seconds() / time.Since(start).Seconds()
	rep.Ramp = ramp
	return rep, nil
}

// openStages creates the run's stages or reads the named ones.
func (r *runner) openStages(ctx context.Context) error {
	for _, arn := range r.cfg.StageARNs {
		out, err := r.api.GetStage(ctx, &ivsrealtime.GetStageInput{Arn: aws.String(arn)})
		if err != nil {
			return fmt.Errorf("get stage %s: %w", arn, err)
		}
		r.stages = append(r.stages, newStageRun(*out.Stage, false))
	}
	for i := range r.cfg.stageCount() - len(r.cfg.StageARNs) {
		out, err := r.api.CreateStage(ctx, &ivsrealtime.CreateStageInput{
			Name: aws.String(fmt.Sprintf("stagehand-load-%d", i+1))})
		if err != nil {
			return fmt.Errorf("create stage: %w", err)
		}
		r.stages = append(r.stages, newStageRun(*out.Stage, true))
	}
	for _, s := range r.stages {
		if s.whip == "" {
			return fmt.Errorf("stage %s has no WHIP endpoint", s.arn)
		}
	}
	return nil
}

func newStageRun(st types.Stage, created bool) *stageRun {
	s := &stageRun{arn: aws.ToString(st.Arn), created: created}
	if st.Endpoints != nil {
		s.whip = aws.ToString(st.Endpoints.Whip)
	}
	return s
}

// deleteStages deletes the stages the run created.
func (r *runner) deleteStages() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range r.stages {
		if !s.created {
			continue
		}
		if _, err := r.api.DeleteStage(ctx, &ivsrealtime.DeleteStageInput{Arn: aws.String(s.arn)}); err != nil {
			r.cfg.Logger.Warn("delete stage", "stage", s.arn, "error", err)
		}
	}
}

// token mints a participant token of stage s.
func (r *runner) token(ctx context.Context, s *stageRun, user string,
	capab types.ParticipantTokenCapability) (types.ParticipantToken, error) {
	out, err := r.api.CreateParticipantToken(ctx, &ivsrealtime.CreateParticipantTokenInput{
		StageArn: aws.String(s.arn), UserId: aws.String(user),
		Capabilities: []types.ParticipantTokenCapability{capab}})
	if err != nil {
		return types.ParticipantToken{}, fmt.Errorf("create participant token: %w", err)
	}
	return *out.ParticipantToken, nil
}

// joinPublishers joins the publishers, spread over the stages, and starts
// their send loops, which run until sendCtx ends.
func (r *runner) joinPublishers(ctx, sendCtx context.Context) {
	r.parallel(ctx, r.cfg.Publishers, func(ctx context.Context, i int) error {
		s := r.stages[i%len(r.stages)]
		tok, err := r.token(ctx, s, fmt.Sprintf("load-pub-%d", i+1), types.ParticipantTokenCapabilityPublish)
		if err != nil {
			return err
		}
		p, err := newPublisher(s, r.media, aws.ToString(tok.ParticipantId))
		if err != nil {
			return err
		}
		if err := p.connect(ctx, aws.ToString(tok.Token), r.opts); err != nil {
			return err
		}
		// Sending starts before anyone subscribes: the stage offers a
		// publisher to subscribers once its tracks flow.
		r.senders.Go(func() { p.run(sendCtx) })
		s.mu.Lock()
		s.pubs = append(s.pubs, p)
		s.mu.Unlock()
		r.mu.Lock()
		r.pubs = append(r.pubs, p)
		r.mu.Unlock()
		return nil
	})
}

// joinSubscribers joins n more subscribers, spread over the stages.
func (r *runner) joinSubscribers(ctx context.Context, n int) {
	r.mu.Lock()
	first := r.subCount
	r.subCount += n
	r.mu.Unlock()
	start := time.Now()
	defer func() {
		r.mu.Lock()
		r.joinWall += time.Since(start)
		r.mu.Unlock()
	}()
	r.parallel(ctx, n, func(ctx context.Context, i int) error {
		i += first
		s := r.stages[i%len(r.stages)]
		tok, err := r.token(ctx, s, fmt.Sprintf("load-sub-%d", i+1), types.ParticipantTokenCapabilitySubscribe)
		if err != nil {
			return err
		}
		sub := &subscriber{stage: s, token: aws.ToString(tok.Token)}
		err = sub.connect(ctx, r.opts)
		r.mu.Lock()
		r.subs = append(r.subs, sub) // closed at the end, joined or not
		if err == nil {
			r.subJoins++
		}
		r.mu.Unlock()
		return err
	})
}

// parallel runs join(i) for i < n, cfg.JoinConcurrency at a time, each
// within joinTimeout, and records the failures.
func (r *runner) parallel(ctx context.Context, n int, join func(context.Context, int) error) {
	sem := make(chan struct{}, r.cfg.JoinConcurrency)
	var wg sync.WaitGroup
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return
		}
		wg.Go(func() {
			defer func() { <-sem }()
			jctx, cancel := context.WithTimeout(ctx, joinTimeout)
			defer cancel()
			if err := join(jctx, i); err != nil && ctx.Err() == nil {
				r.fail(err)
			}
		})
	}
	wg.Wait()
}

// ids are what makes otherwise equal errors differ.
var ids = regexp.MustCompile(`(/whep/|/session/|subscribe to |arn:aws:ivs:)[^ :"]+`)

func (r *runner) fail(err error) {
	msg := ids.ReplaceAllString(err.Error(), "$1…")
	r.cfg.Logger.Debug("participant failed", "error", err)
	r.mu.Lock()
	r.failures[msg]++
	r.mu.Unlock()
}

func (r *runner) failureText() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var s []string
	for m := range r.failures {
		s = append(s, m)
	}
	sort.Strings(s)
	if len(s) == 0 {
		return "no error"
	}
	return s[0]
}

func (r *runner) publishers() []*publisher {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*publisher(nil), r.pubs...)
}

func (r *runner) subscribers() []*subscriber {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*subscriber(nil), r.subs...)
}

// noteDisconnects counts the connections that ended before the run did.
func (r *runner) noteDisconnects() {
	for _, p := range r.publishers() {
		select {
		case <-p.conn.Done():
			r.fail(errors.New("a publisher was disconnected before the end"))
		default:
		}
	}
	for _, s := range r.subscribers() {
		if s.disconnected() {
			r.fail(errors.New("a subscriber was disconnected before the end"))
		}
	}
}

// closeAll has every participant leave.
func (r *runner) closeAll() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for _, s := range r.subscribers() {
		sem <- struct{}{}
		wg.Go(func() { defer func() { <-sem }(); s.close(ctx) })
	}
	wg.Wait()
	for _, p := range r.publishers() {
		_ = p.conn.Close(ctx)
	}
	r.mu.Lock()
	r.subs, r.pubs = nil, nil
	r.mu.Unlock()
}

func (r *runner) scrape(ctx context.Context) (serverSample, error) {
	if r.cfg.MetricsURL == "none" {
		return serverSample{}, errors.New("not read (--metrics-url none)")
	}
	s, err := scrape(ctx, r.hc, r.cfg.MetricsURL)
	if err == nil {
		r.mu.Lock()
		r.maxRSS = max(r.maxRSS, s.rssBytes)
		r.mu.Unlock()
	}
	return s, err
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(max(d, 0))
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
