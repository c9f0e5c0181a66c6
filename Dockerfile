# For those who build with a daemon. `make image` builds the same image without one (and
# without pulling a base): see hack/image.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/lazyscale/lazyscale/comp/core/version.Version=${VERSION} -X github.com/lazyscale/lazyscale/comp/core/version.Commit=${COMMIT}" \
      -o /out/lazyscale ./cmd/lazyscale

# distroless/static: CA certificates, a nonroot user (65532), no shell, no libc (not needed:
# the binary is static).
FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title=lazyscale \
      org.opencontainers.image.version=${VERSION} \
      org.opencontainers.image.source=https://github.com/lazyscale/lazyscale
COPY --from=build /out/lazyscale /lazyscale
COPY hack/image/config.yaml /etc/lazyscale/config.yaml
USER 65532:65532
ENTRYPOINT ["/lazyscale"]
CMD ["run"]
