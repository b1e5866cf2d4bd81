# The plugin on the official Fluent Bit image: the release library, a plugins file that loads
# it, a state_dir volume, a non-root user. Build the release artifacts first, then:
#   scripts/release.sh
#   docker buildx build --platform linux/amd64,linux/arm64 --build-arg VERSION=0.1.0 \
#       -t fluent-bit-mimecast:0.1.0-fluent-bit-5.1.1 .
# Run it with your configuration mounted over the image's (README: Install, container):
#   docker run -v $PWD/fluent-bit.conf:/fluent-bit/etc/fluent-bit.conf:ro \
#       -v mimecast-state:/var/lib/fluent-bit/mimecast -e MIMECAST_CLIENT_ID -e MIMECAST_CLIENT_SECRET ...
# This repository's CI has no container engine: it does not build this file. tests/shipping.rs
# checks that its paths, user and Fluent Bit version are the ones the package, the Helm values
# and the real-host tests use.
ARG FLUENT_BIT_VERSION=5.1.1

# Picks the library of the image's architecture from dist/ and checks its sum.
FROM --platform=$BUILDPLATFORM busybox:1.36.1 AS pick
ARG TARGETARCH
ARG VERSION
SHELL ["/bin/ash", "-eo", "pipefail", "-c"]
COPY dist/ /dist/
WORKDIR /dist
RUN \
    [ -n "$VERSION" ] || { echo "--build-arg VERSION=<plugin version> is required" >&2; exit 1; }; \
    case "$TARGETARCH" in \
        amd64) arch=x86_64 ;; \
        arm64) arch=aarch64 ;; \
        *) echo "no release build for $TARGETARCH (amd64, arm64)" >&2; exit 1 ;; \
    esac; \
    lib="libfluent_bit_mimecast-$VERSION-linux-$arch.so"; \
    grep " $lib\$" SHA256SUMS | sha256sum -c -; \
    mkdir -p /out/state && cp "/dist/$lib" /out/libfluent_bit_mimecast.so

FROM fluent/fluent-bit:${FLUENT_BIT_VERSION}
ARG VERSION
ARG FLUENT_BIT_VERSION
LABEL org.opencontainers.image.title="fluent-bit-mimecast" \
      org.opencontainers.image.description="Fluent Bit with the Mimecast API 2.0 input plugin" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      io.fluentbit.version="${FLUENT_BIT_VERSION}" \
      io.fluentbit.plugin.mimecast.version="${VERSION}"
COPY --from=pick --chmod=0644 /out/libfluent_bit_mimecast.so /fluent-bit/bin/libfluent_bit_mimecast.so
# The image's configuration names plugins.conf as its plugins file: this one loads the plugin.
COPY --chmod=0644 packaging/docker/plugins.conf /fluent-bit/etc/plugins.conf
COPY --from=pick --chown=65532:65532 /out/state /var/lib/fluent-bit/mimecast
VOLUME /var/lib/fluent-bit/mimecast
# The distroless base has no useradd; 65532 is its "nonroot" user.
USER 65532:65532
