# The RTMP server of the container test (the channel): Debian's nginx with
# the RTMP module on the local Debian base. The test mounts its nginx.conf
# and the directory nginx records every stream into.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends nginx-light libnginx-mod-rtmp \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
 && chown -R 10001:10001 /var/log/nginx /var/lib/nginx
USER 10001:10001
ENTRYPOINT ["nginx", "-e", "/dev/stderr", "-c", "/etc/stagehand-rtmp/nginx.conf"]
