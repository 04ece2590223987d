# The kuberay-apiserver image, for anyone with a container registry:
#
#   docker build -t <registry>/kuberay-apiserver:0.1.0 .        (or: podman build, buildah bud)
#
# Stage 1 builds the release binary in the official Rust image (it has the C compiler that `ring`
# needs; the protos are compiled by protox, so no protoc). Stage 2 is distroless `cc`: glibc,
# libgcc, CA certificates, /etc/passwd with the non-root user 65532 (`nonroot`), a writable /tmp,
# and nothing else (no shell). deploy/image/build makes the same image from a binary built on the
# host, with buildah and no registry; keep the two in step.
#
# The version label follows the workspace version in Cargo.toml (deploy/image/build checks that
# the default below matches it); override it with --build-arg VERSION=...

ARG RUST_VERSION=1.90
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM docker.io/library/rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src
# Only what the build reads: the workspace manifests and lock file, the protos, the crates.
COPY Cargo.toml Cargo.lock ./
COPY proto proto
COPY crates crates
# The cache mounts keep the registry and the target directory between builds (BuildKit, podman
# and buildah support them); the binary is copied out of the cached target directory.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p kuberay-apiserver \
    && install -D -m 0755 target/release/kuberay-apiserver /out/kuberay-apiserver \
    && install -d -m 0755 -o 65532 -g 65532 /out/data

FROM ${RUNTIME_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="kuberay-apiserver" \
      org.opencontainers.image.description="KubeRay API server (Rust): gRPC and HTTP/JSON APIs for Ray clusters, jobs and services on Kubernetes" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/kuberay-apiserver /usr/local/bin/kuberay-apiserver
# The embedded backend's default data directory (used when no Kubernetes is configured, e.g.
# `docker run -p 8888:8888 -p 8887:8887 IMAGE`); mount a volume here to keep the data. In a pod
# the backend is the cluster itself and nothing is written.
COPY --from=build --chown=65532:65532 /out/data /var/lib/kuberay-apiserver
ENV KUBERAY_APISERVER_DATA_DIR=/var/lib/kuberay-apiserver
USER 65532:65532
EXPOSE 8888 8887
ENTRYPOINT ["/usr/local/bin/kuberay-apiserver"]
