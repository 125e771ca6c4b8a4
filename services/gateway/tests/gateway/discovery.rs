//! Discovery at the gateway: reflection lists every public service, from the one descriptor set.

use desk_gateway::domain::methods::MethodTable;
use desk_testkit::NatsServer;
use futures::StreamExt as _;
use tonic::transport::Channel;
use tonic_reflection::pb::{v1, v1alpha};

use crate::support::Region;

/// `listed_by_<version>(channel)`: the services reflection lists, in that protocol version (the
/// two generated clients have the same shape but distinct types).
macro_rules! listed_by {
    ($name:ident, $version:ident) => {
        async fn $name(channel: Channel) -> anyhow::Result<Vec<String>> {
            use $version::{
                ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
                server_reflection_request::MessageRequest,
                server_reflection_response::MessageResponse,
            };
            let request = ServerReflectionRequest {
                host: String::new(),
                message_request: Some(MessageRequest::ListServices(String::new())),
            };
            let mut answers = ServerReflectionClient::new(channel)
                .server_reflection_info(futures::stream::iter([request]))
                .await?
                .into_inner();
            let mut names = Vec::new();
            if let Some(answer) = answers.next().await
                && let Some(MessageResponse::ListServicesResponse(list)) = answer?.message_response
            {
                names.extend(list.service.into_iter().map(|s| s.name));
            }
            Ok(names)
        }
    };
}

listed_by!(listed_by_v1alpha, v1alpha);
listed_by!(listed_by_v1, v1);

#[tokio::test]
async fn reflection_at_the_gateway_lists_every_public_service() -> anyhow::Result<()> {
    // given a gateway that serves no public service itself, only forwards them
    let nats = NatsServer::start().await?;
    let region = Region::start("emea", &nats, |_| {}).await?;
    let public = MethodTable::from_descriptor_set(desk_proto::FILE_DESCRIPTOR_SET)?;
    assert!(public.services().len() >= 2, "{:?}", public.services());

    // when a generic client asks it, in both protocol versions
    for listed in [
        listed_by_v1(region.gateway_channel()).await?,
        listed_by_v1alpha(region.gateway_channel()).await?,
    ] {
        // then every public service is listed, and health with them
        for service in public.services() {
            assert!(
                listed.contains(&service.name),
                "{} not in {listed:?}",
                service.name
            );
        }
        assert!(
            listed.iter().any(|s| s == "grpc.health.v1.Health"),
            "{listed:?}"
        );
    }
    Ok(())
}
