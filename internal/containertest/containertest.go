// Package containertest runs Stagehand's fleet as containers with podman —
// the image built from docker/Dockerfile, 3 NATS nodes, serve, 2 workers,
// an S3 server and an RTMP server, all on the host's network bound to
// 127.0.0.1 — and drives it through a composition, a killed worker and a
// drained one. Its test is `make test-containers` (build tag containers).
package containertest
