//! Compiles `proto/umbra.proto` (Umbra's protobuf subset,
//! `shared/spec/messages.md` §6) into Rust with prost.
//!
//! No `protoc` is needed: `protox` parses the `.proto` file into a
//! `FileDescriptorSet` in pure Rust, and `prost-build` generates code from it.
//! The output (`umbra.rs` in `OUT_DIR`) is included by
//! `src/message/protos.rs`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(["umbra.proto"], ["proto"])?;
    prost_build::Config::new()
        // These carry key material (attachment keys, profile keys, group
        // seeds and auth tokens); src/message/protos.rs implements a
        // redacting `Debug` for them so logging a `Content` leaks no keys.
        .skip_debug([
            ".umbra.AttachmentPointer",
            ".umbra.DataMessage",
            ".umbra.MessageRequestResponse",
            ".umbra.UmbraGroupControl",
        ])
        .compile_fds(fds)?;
    Ok(())
}
