// Package fleettest runs Stagehand as a fleet of processes on loopback (a
// 3-node NATS JetStream cluster, the API and stage, workers, an S3 server
// and an RTMP server) and injects the faults a live platform meets: its
// tests are `make test-faults`.
package fleettest
