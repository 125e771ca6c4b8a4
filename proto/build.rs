//! Compiles proto/desk/**/*.proto once for the whole workspace, with the vendored protoc so a fresh
//! machine needs no protobuf-compiler package, and writes the descriptor set reflection serves.
//!
//! The server stubs of the methods in [`PRE_ENCODED`] return a hand-written type instead of the
//! generated response message; clients still decode the generated one. See `EncodedResponse`
//! in `src/lib.rs` for why.

use std::path::PathBuf;

/// `(service, method, Rust type)`: the server's trait method returns the Rust type, which sends
/// the method's response message already encoded.
const PRE_ENCODED: &[(&str, &str, &str)] = &[(
    "CmdbService",
    "AnalyzeImpact",
    "crate::cmdb::v1::EncodedAnalyzeImpactResponse",
)];

/// The codec of every client and server stub: see `src/codec.rs`.
const CODEC: &str = "crate::SliceCodec";

/// tonic's generator, run once for the clients as they are and once for the servers with the
/// response types of [`PRE_ENCODED`] swapped.
struct Services {
    clients: Box<dyn prost_build::ServiceGenerator>,
    servers: Box<dyn prost_build::ServiceGenerator>,
}

impl prost_build::ServiceGenerator for Services {
    fn generate(&mut self, mut service: prost_build::Service, buf: &mut String) {
        self.clients.generate(service.clone(), buf);
        for method in &mut service.methods {
            if let Some((_, _, rust_type)) = PRE_ENCODED
                .iter()
                .find(|(s, m, _)| *s == service.proto_name && *m == method.proto_name)
            {
                method.output_type = (*rust_type).to_owned();
            }
        }
        self.servers.generate(service, buf);
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Given to prost-build directly rather than through `PROTOC`: setting an environment
    // variable is `unsafe`, which the workspace lints forbid.
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let include = protoc_bin_vendored::include_path()?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let protos = [
        "desk/common/v1/common.proto",
        "desk/tickets/v1/tickets.proto",
        "desk/tickets/v1/events.proto",
        "desk/cmdb/v1/cmdb.proto",
        "desk/cmdb/v1/events.proto",
        "desk/directory/v1/directory.proto",
        "desk/directory/v1/events.proto",
        "desk/change/v1/change.proto",
        "desk/change/v1/events.proto",
        "desk/sla/v1/sla.proto",
        "desk/sla/v1/events.proto",
        "desk/notifications/v1/notifications.proto",
        "desk/notifications/v1/events.proto",
        "desk/catalog/v1/catalog.proto",
        "desk/catalog/v1/events.proto",
    ];
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    let mut config = prost_build::Config::new();
    // What tonic_prost_build::compile_protos sets besides the service generator.
    config
        .protoc_executable(protoc)
        .out_dir(&out_dir)
        .type_attribute(".", "#[allow(clippy::all)]")
        .file_descriptor_set_path(out_dir.join("desk_descriptor.bin"))
        .service_generator(Box::new(Services {
            clients: tonic_prost_build::configure()
                .build_server(false)
                .codec_path(CODEC)
                .service_generator(),
            servers: tonic_prost_build::configure()
                .build_client(false)
                .codec_path(CODEC)
                .service_generator(),
        }));
    config.compile_protos(&protos.map(PathBuf::from), &[PathBuf::from("."), include])?;
    Ok(())
}
