//! Generates the message types from the repository's single proto (proto/bench.proto) into
//! OUT_DIR at build time: nothing generated lands in the source tree.

use std::path::Path;

fn main() {
    let proto_dir = Path::new("../../proto");
    let proto = proto_dir.join("bench.proto");
    println!("cargo:rerun-if-changed={}", proto.display());
    println!("cargo:rerun-if-env-changed=PROTOC");
    // prost-build 0.11 runs `protoc` from PATH unless PROTOC names one; Debian's
    // protobuf-compiler installs /usr/bin/protoc, so fall back to it when PATH lacks it.
    if std::env::var_os("PROTOC").is_none() && Path::new("/usr/bin/protoc").exists() {
        std::env::set_var("PROTOC", "/usr/bin/protoc");
    }
    let mut config = prost_build::Config::new();
    // `bytes` fields as bytes::Bytes: decoding from the received frame slices it instead of
    // copying, and the echo hands the same buffer back.
    config.bytes(["."]);
    if let Err(e) = config.compile_protos(&[&proto], &[proto_dir]) {
        panic!("cannot generate code from {}: {e}", proto.display());
    }
}
