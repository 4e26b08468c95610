# syntax=docker/dockerfile:1
#
# Embedgate's image. The binary is built by `make static`, the same target
# `make image` runs when no container engine is there (CI): static
# (CGO_ENABLED=0, -trimpath), stamped with version, commit and date, and built
# with -tags production, so dev mode and the emulator (and its demo secret)
# are not in it. It runs on distroless static (CA certificates, tzdata, no
# shell) as uid 65532 and writes nothing: a read-only root filesystem works.
#
#   make image                      # passes VERSION, COMMIT, DATE and GO_VERSION
#   docker buildx build --platform linux/amd64,linux/arm64 \
#     --build-arg VERSION=v1.2.3 --build-arg COMMIT=$(git rev-parse HEAD) \
#     --build-arg DATE=$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ) .
#
# Pin both base images by digest in your registry's release pipeline.

# The Makefile's RELEASE_GO, without the "go" prefix.
ARG GO_VERSION=1.27.3

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=v0.0.0-dev
ARG COMMIT=unknown
ARG DATE=unknown
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    make static GOOS=${TARGETOS} GOARCH=${TARGETARCH} OUT=/out/embedgate \
      VERSION=${VERSION} COMMIT=${COMMIT} DATE=${DATE} RELEASE_GO=go${GO_VERSION}

FROM gcr.io/distroless/static-debian13:nonroot
ARG VERSION=v0.0.0-dev
ARG COMMIT=unknown
ARG DATE=unknown
LABEL org.opencontainers.image.title="embedgate" \
      org.opencontainers.image.description="Mints Power BI embed tokens for the services of a platform (gRPC, mTLS, policy)" \
      org.opencontainers.image.source="https://github.com/embedgate/embedgate" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}" \
      org.opencontainers.image.created="${DATE}"
COPY --from=build /out/embedgate /embedgate
USER 65532:65532
# gRPC (mTLS) and admin (plain HTTP: /healthz, /readyz, /metrics).
EXPOSE 8443 9090
ENTRYPOINT ["/embedgate"]
CMD ["serve", "--config", "/etc/embedgate/config/config.yaml"]
