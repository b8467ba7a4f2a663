# The S3 server of the container test: versitygw (go install'ed by
# scripts/deps.sh --test) on the local Debian base, as a non-root user.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
COPY versitygw /usr/local/bin/versitygw
RUN install -d -o 10001 -g 10001 -m 0700 /data
USER 10001:10001
VOLUME ["/data"]
ENTRYPOINT ["versitygw"]
