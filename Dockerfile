# syntax=docker/dockerfile:1
#
# paytrackr image: paytrackr-server (default command) and paytrackr-tui.
#
#   docker build -t paytrackr:0.1.0 .
#   docker run --rm -p 8080:8080 -e PAYTRACKR_DATABASE_URL=... -e PAYTRACKR_TOKENS=... paytrackr:0.1.0
#   docker run --rm -it -e PAYTRACKR_URL=wss://... -e PAYTRACKR_TOKEN=/t/token -v "$PWD/t:/t:ro" paytrackr:0.1.0 paytrackr-tui
#
# Base images are pinned to a Debian point release, never "latest", so a
# rebuild cannot silently move to another Debian. For fully reproducible
# builds pin the digest as well, e.g. --build-arg
# DEBIAN_RUNTIME=debian:12.11-slim@sha256:<digest> (docker buildx imagetools
# inspect debian:12.11-slim prints it); CI should do that and let a bot bump
# it. Debian packages are deliberately not version-pinned: security updates
# replace old versions on the mirrors, and a pinned version would stop
# building instead of getting the fix.
ARG DEBIAN_BUILD=debian:12.11
ARG DEBIAN_RUNTIME=debian:12.11-slim

# ---------------------------------------------------------------- build ---
FROM ${DEBIAN_BUILD} AS build

# The build dependencies of meson.build, all from Debian.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates gcc libc6-dev meson ninja-build pkg-config python3 \
      libwebsockets-dev libpq-dev libcjson-dev libcurl4-openssl-dev \
      libssl-dev libncurses-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .

# release: optimised, assertions kept as the project configures them, and
# hardened as meson.build sets up every release build: stack protector,
# _FORTIFY_SOURCE=3, stack-clash protection, full RELRO (-z relro -z now)
# and PIE (tests/checks/deploy-release.sh verifies them with readelf).
# Symbols are stripped on install; the build stage is thrown away.
RUN meson setup /build -Dbuildtype=release \
 && meson compile -C /build \
 && install -D -m 0755 -s /build/server/paytrackr-server /out/usr/local/bin/paytrackr-server \
 && install -D -m 0755 -s /build/tui/paytrackr-tui /out/usr/local/bin/paytrackr-tui

# -------------------------------------------------------------- runtime ---
FROM ${DEBIAN_RUNTIME} AS runtime

ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="paytrackr" \
      org.opencontainers.image.description="paytrackr payments tracker: API server and TUI" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT"

# Exactly the packages that own the shared libraries the two binaries link
# directly (libc6 comes with the base image), plus ca-certificates, which
# libcurl (Key Vault, IMDS) and libpq (PAYTRACKR_DB_SSLROOTCERT) verify
# against. tests/checks/deploy-dockerfile.sh compares this list with ldd of
# the built binaries. No shells, editors, curl or compilers are added; the
# dpkg database stays so image scanners can list what is installed.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates \
      libcjson1 \
      libcurl4 \
      libncursesw6 \
      libpq5 \
      libssl3 \
      libtinfo6 \
      libwebsockets17 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log

# A fixed numeric uid/gid, so Kubernetes can verify runAsNonRoot, and a
# passwd entry so libpq can resolve the user. No home, no login shell.
RUN groupadd --system --gid 10001 paytrackr \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin paytrackr

COPY --from=build /out/ /

# UTF-8 for the TUI (payer names are UTF-8); C.UTF-8 is built into glibc.
ENV LANG=C.UTF-8

USER 10001:10001
WORKDIR /tmp

# 8080: HTTP/WebSocket (HTTPS/WSS when PAYTRACKR_TLS_* are set).
# 9090: /healthz, /readyz, /metrics - never publish it beyond the host or cluster.
EXPOSE 8080 9090

# For docker and compose; Kubernetes ignores it and uses the Deployment's
# probes. The server binary itself GETs /healthz on the admin port from
# PAYTRACKR_ADMIN_LISTEN, so the image needs no curl.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/paytrackr-server", "healthcheck"]

# No ENTRYPOINT, so "docker run IMAGE paytrackr-tui" runs the TUI and
# "docker run IMAGE paytrackr-server migrate" runs migrations. The server
# handles SIGTERM itself (graceful WebSocket drain) and starts no children,
# so it can be PID 1 without an init.
CMD ["paytrackr-server"]
