#!/usr/bin/env bash
# Installs what the project needs on a fresh Debian 12 machine, and nothing twice.
# Every toolchain the harness builds with is checked here, so a missing one is named
# up front instead of failing halfway through a suite.
set -euo pipefail

# Debian packages, with why each is needed.
packages=(
  cmake g++                                  # cpp/ builds
  liburing-dev                               # cpp/ io_uring candidate
  librust-tokio-dev                          # rust/: Tokio from Debian's crate registry (no crates.io here)
  dpdk dpdk-dev librte-net-memif23 librte-mempool-ring23   # dpdk-testpmd, the real memif peer
  nghttp2-client                             # h2load, an independent gRPC load generator
  protobuf-compiler libgrpc++-dev protobuf-compiler-grpc libssl-dev   # cpp/grpc: gRPC C++ and OpenSSL
  golang-go golang-google-grpc-dev golang-google-protobuf-dev protoc-gen-go protoc-gen-go-grpc   # go/grpc: grpc-go, built offline (GOPATH mode)
  librust-h2-dev librust-prost-dev librust-prost-build-dev librust-bytes-dev librust-openssl-dev   # rust/grpc: gRPC on h2 + prost
  python3-grpcio python3-protobuf python3-cryptography python3-uvloop   # python/grpc: grpcio and uvloop (importable by /usr/bin/python3 only)
  libfontconfig1 fonts-dejavu-core           # ScottPlot text rendering
  iproute2 procps util-linux                 # ss, taskset, /proc readers
  openssh-client openssh-server              # multi-host runs over ssh, and the test bed's sshd in each namespace (scripts/testbed.sh)
  time                                       # GNU time: a client's exact CPU time and peak memory
  linux-perf                                 # perf stat: the server's system calls per request (--syscalls)
  chromium                                   # the results page's test opens index.html in a real browser (Playwright cannot download one here)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  if [[ $EUID -ne 0 ]]; then
    echo "setup: missing Debian packages: ${missing[*]}" >&2
    echo "setup: run as root, or: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# cargo usually comes from rustup; where it does not, Debian's builds rust/ too (Cargo.lock is kept at version 3 for it).
if ! command -v cargo >/dev/null && [[ $EUID -eq 0 ]]; then
  echo "setup: no cargo on PATH; installing Debian's"
  apt-get install -y -qq --no-install-recommends cargo >/dev/null
fi

for tool in dotnet cargo python3 cmake go protoc protoc-gen-go protoc-gen-go-grpc taskset; do
  command -v "$tool" >/dev/null || { echo "setup: '$tool' is not on PATH; install it first" >&2; exit 1; }
done
