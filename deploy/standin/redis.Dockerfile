# A local stand-in for the official redis image, for machines that cannot reach an image registry: Debian
# bookworm's redis-server (7.0) with the official image's paths (/data, /usr/local/etc/redis), running as the redis
# user. scripts/compose-smoke --standins builds it.
ARG BASE=conveyor-standin/debian:bookworm-slim
FROM ${BASE}
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /data /usr/local/etc/redis \
    && chown redis:redis /data
WORKDIR /data
VOLUME /data
USER redis
EXPOSE 6379
CMD ["redis-server"]
