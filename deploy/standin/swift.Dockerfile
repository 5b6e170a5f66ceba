# A local stand-in for the official Swift image (swift:6.3.1-bookworm), for machines that cannot reach an image
# registry: Debian bookworm with the packages the official image installs for the toolchain, and this machine's
# toolchain (/opt/swift) and Swift package mirror (/opt/swift-packages, which git reads for github.com addresses).
# scripts/compose-smoke --standins builds it; nothing else uses it.
ARG BASE=conveyor-standin/debian:bookworm-slim
FROM ${BASE}
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        binutils ca-certificates git gnupg2 libc6-dev libcurl4-openssl-dev libedit2 libgcc-12-dev libncurses6 \
        libpython3.11 libsqlite3-0 libstdc++-12-dev libxml2-dev libz3-4 pkg-config tzdata zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*
COPY swift /opt/swift
COPY swift-packages /opt/swift-packages
COPY gitconfig /etc/gitconfig
ENV PATH=/opt/swift/usr/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CMD ["swift", "--version"]
