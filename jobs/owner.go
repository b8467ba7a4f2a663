package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// A job is delivered again when its heartbeats did not reach the consumer's
// leader within AckWait, which happens while a NATS node is lost and a new
// leader is elected, although the worker that runs it is alive. The worker
// the new delivery reaches asks the one its composition names whether it
// still runs the job (AskOwner); the owner answers from its own state
// (AnswerOwnership). Only a silent owner — dead or cut off from NATS — is
// taken over.

// ownerSubjectPrefix + "." + Token(workerID) is where a worker answers.
const ownerSubjectPrefix = "stagehand.jobs.owner"

// ownerAsks and ownerAskTimeout bound AskOwner: an owner that reconnects
// to another NATS node after losing its own has done so long before its
// job is delivered again (AckWait); a dead one delays the takeover by a
// second.
const (
	ownerAsks       = 2
	ownerAskTimeout = time.Second
)

// Answers on the wire.
const (
	answerRuns    = "runs"
	answerNotHere = "not-here"
)

// AnswerOwnership answers other workers' AskOwner for workerID with runs,
// which reports whether this worker runs the job named so. Unsubscribe the
// subscription when the worker stops.
func (q *Queue) AnswerOwnership(workerID string, runs func(jobName string) bool) (*nats.Subscription, error) {
	sub, err := q.nc.Subscribe(ownerSubject(workerID), func(m *nats.Msg) {
		answer := answerNotHere
		if runs(string(m.Data)) {
			answer = answerRuns
		}
		_ = m.Respond([]byte(answer))
	})
	if err != nil {
		return nil, fmt.Errorf("jobs: answer ownership: %w", err)
	}
	return sub, nil
}

// AskOwner reports whether workerID answers that it runs the job named
// jobName. It asks twice, a second apart; false when the worker says it
// does not or stays silent.
func (q *Queue) AskOwner(ctx context.Context, workerID, jobName string) bool {
	for range ownerAsks {
		actx, cancel := context.WithTimeout(ctx, ownerAskTimeout)
		reply, err := q.nc.RequestWithContext(actx, ownerSubject(workerID), []byte(jobName))
		cancel()
		if err == nil {
			return string(reply.Data) == answerRuns
		}
		if ctx.Err() != nil {
			return false
		}
		if errors.Is(err, nats.ErrNoResponders) {
			// Not subscribed (yet, while it reconnects): wait before asking again.
			select {
			case <-time.After(ownerAskTimeout):
			case <-ctx.Done():
				return false
			}
		}
	}
	return false
}

func ownerSubject(workerID string) string { return ownerSubjectPrefix + "." + Token(workerID) }
