//! Compiles proto/desk/**/*.proto once for the whole workspace, with the vendored protoc so a fresh
//! machine needs no protobuf-compiler package, and writes the descriptor set reflection serves.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // Build scripts are single-threaded, so setting the variable is sound; tonic-prost-build reads it.
    unsafe { std::env::set_var("PROTOC", protoc) };
    let include = protoc_bin_vendored::include_path()?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let protos = [
        "desk/common/v1/common.proto",
        "desk/tickets/v1/tickets.proto",
        "desk/tickets/v1/events.proto",
        "desk/cmdb/v1/cmdb.proto",
        "desk/cmdb/v1/events.proto",
    ];
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("desk_descriptor.bin"))
        .compile_protos(&protos.map(PathBuf::from), &[PathBuf::from("."), include])?;
    Ok(())
}
