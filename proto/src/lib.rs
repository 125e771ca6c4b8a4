//! The desk's protobuf contract, compiled once for every service.
//!
//! # Layout
//! - `desk/<area>/v1/*.proto` beside this crate are the source of truth (Buf STANDARD lint).
//! - [`common::v1`], [`tickets::v1`], [`cmdb::v1`], [`directory::v1`], [`change::v1`],
//!   [`sla::v1`], [`notifications::v1`], [`catalog::v1`]: generated messages, clients and servers.
//! - [`FILE_DESCRIPTOR_SET`]: every file's descriptor, for gRPC server reflection.
//! - [`Encoded`]: what a server stub returns for a method whose answer the server writes
//!   straight in wire format (`PRE_ENCODED` in `build.rs`; today `CmdbService.AnalyzeImpact`).
//! - [`SliceCodec`]: the codec of every generated client and server, prost reading each message
//!   from one slice.

/// Every desk proto file plus the well-known types they import, for `tonic-reflection`.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/desk_descriptor.bin"));

mod codec;
mod encoded;
pub use codec::{SliceCodec, SliceDecoder};
pub use encoded::Encoded;

pub mod common {
    // Generated code: its style is prost's and tonic's, not ours.
    #[allow(clippy::all, clippy::pedantic)]
    pub mod v1 {
        tonic::include_proto!("desk.common.v1");
    }
}

pub mod cmdb {
    // Generated code: its style is prost's and tonic's, not ours.
    #[allow(clippy::all, clippy::pedantic)]
    pub mod v1 {
        tonic::include_proto!("desk.cmdb.v1");

        /// What `CmdbService.AnalyzeImpact`'s server returns; see [`crate::Encoded`].
        pub type EncodedAnalyzeImpactResponse = crate::Encoded<AnalyzeImpactResponse>;
    }
}

pub mod tickets {
    // Generated code: its style is prost's and tonic's, not ours.
    #[allow(clippy::all, clippy::pedantic)]
    pub mod v1 {
        tonic::include_proto!("desk.tickets.v1");
    }
}

pub mod directory {
    // Generated code: its style is prost's and tonic's, not ours.
    #[allow(clippy::all, clippy::pedantic)]
    pub mod v1 {
        tonic::include_proto!("desk.directory.v1");
    }
}

pub mod change {
    // Generated code: its style is prost's and tonic's, not ours.
    #[allow(clippy::all, clippy::pedantic)]
    pub mod v1 {
        tonic::include_proto!("desk.change.v1");
    }
}

pub mod sla {
    // Generated code: its style is prost's and tonic's, not ours.
    #[allow(clippy::all, clippy::pedantic)]
    pub mod v1 {
        tonic::include_proto!("desk.sla.v1");
    }
}

pub mod notifications {
    // Generated code: its style is prost's and tonic's, not ours.
    #[allow(clippy::all, clippy::pedantic)]
    pub mod v1 {
        tonic::include_proto!("desk.notifications.v1");
    }
}

pub mod catalog {
    // Generated code: its style is prost's and tonic's, not ours.
    #[allow(clippy::all, clippy::pedantic)]
    pub mod v1 {
        tonic::include_proto!("desk.catalog.v1");
    }
}
