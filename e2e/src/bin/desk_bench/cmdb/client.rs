//! The suite's gRPC client of the CMDB: a connection opened wide for megabyte answers, requests
//! with the bearer token, and the wait until a started desk answers.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use desk_proto::cmdb::v1::{self as pb, cmdb_service_client::CmdbServiceClient};
use tonic::{
    Request,
    metadata::{Ascii, MetadataValue},
    transport::Channel,
};

/// Answers list every planned item and relationship.
const MAX_DECODING: usize = 64 * 1024 * 1024;
/// HTTP/2 flow-control window of the client per call (its connection's is twice that).
const CLIENT_STREAM_WINDOW: u32 = 8 * 1024 * 1024;
/// The largest HTTP/2 frame the client accepts (the default is 16 KiB).
const CLIENT_MAX_FRAME: u32 = 1024 * 1024;

pub(super) type Client = CmdbServiceClient<Channel>;

pub(super) fn request<T>(message: T, token: &MetadataValue<Ascii>) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", token.clone());
    request
}

async fn connect(addr: std::net::SocketAddr) -> anyhow::Result<Client> {
    // Impact answers run to megabytes. HTTP/2's default 64 KiB window, and an adaptive one on
    // loopback (where the bandwidth-delay product stays small), would make the desk wait for a
    // window update every 64 KiB; a client that expects large answers opens the window wide, as
    // grpc-go's `WithInitialWindowSize` and grpc-java's `flowControlWindow` let it.
    let channel = Channel::from_shared(format!("http://{addr}"))?
        .initial_stream_window_size(CLIENT_STREAM_WINDOW)
        .initial_connection_window_size(CLIENT_STREAM_WINDOW * 2)
        .max_frame_size(CLIENT_MAX_FRAME)
        .connect()
        .await?;
    Ok(CmdbServiceClient::new(channel)
        .max_decoding_message_size(MAX_DECODING)
        .max_encoding_message_size(MAX_DECODING))
}

/// Waits until `ListClasses` succeeds; returns the client.
pub(super) async fn wait_ready(
    addr: std::net::SocketAddr,
    token: &MetadataValue<Ascii>,
    log: &Path,
    within: Duration,
) -> anyhow::Result<Client> {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(mut client) = connect(addr).await
            && client
                .list_classes(request(pb::ListClassesRequest {}, token))
                .await
                .is_ok()
        {
            return Ok(client);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "desk did not answer ListClasses within {} s; see {}",
            within.as_secs(),
            log.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
