# A local stand-in for the official rabbitmq:*-management image, for machines that cannot reach an image registry:
# Debian bookworm's rabbitmq-server (3.10) with the management plugin, the same paths (/etc/rabbitmq/rabbitmq.conf,
# /var/lib/rabbitmq) and RABBITMQ_DEFAULT_USER / RABBITMQ_DEFAULT_PASS. scripts/compose-smoke --standins builds it.
ARG BASE=conveyor-standin/debian:bookworm-slim
FROM ${BASE}
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends rabbitmq-server \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /etc/rabbitmq /var/lib/rabbitmq \
    && chown -R rabbitmq:rabbitmq /var/lib/rabbitmq
COPY rabbitmq-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
VOLUME /var/lib/rabbitmq
EXPOSE 5672 15672
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["rabbitmq-server"]
