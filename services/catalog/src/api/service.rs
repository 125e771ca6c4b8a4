//! `desk.catalog.v1.CatalogService`: one thin method per RPC — the caller, the call, the reply.

use desk_kit::{auth, error::Classify as _};
use desk_proto::catalog::v1::{self as pb, catalog_service_server::CatalogService};
use tonic::{Request, Response, Status};

use super::{ApiResult, CatalogApi, convert};

fn reply<T>(result: ApiResult<T>) -> Result<Response<T>, Status> {
    result.map(Response::new).map_err(|e| e.into_status())
}

#[tonic::async_trait]
impl CatalogService for CatalogApi {
    async fn create_offering(
        &self,
        request: Request<pb::CreateOfferingRequest>,
    ) -> Result<Response<pb::CreateOfferingResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(
            self.create_offering(&caller, request.into_inner())
                .await
                .map(|o| pb::CreateOfferingResponse {
                    offering: Some(convert::offering_pb(&self.region, &o)),
                }),
        )
    }

    async fn update_offering(
        &self,
        request: Request<pb::UpdateOfferingRequest>,
    ) -> Result<Response<pb::UpdateOfferingResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(
            self.update_offering(&caller, request.into_inner())
                .await
                .map(|o| pb::UpdateOfferingResponse {
                    offering: Some(convert::offering_pb(&self.region, &o)),
                }),
        )
    }

    async fn get_offering(
        &self,
        request: Request<pb::GetOfferingRequest>,
    ) -> Result<Response<pb::GetOfferingResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(
            self.get_offering(&caller, request.into_inner())
                .await
                .map(|o| pb::GetOfferingResponse {
                    offering: Some(convert::offering_pb(&self.region, &o)),
                }),
        )
    }

    async fn list_offerings(
        &self,
        request: Request<pb::ListOfferingsRequest>,
    ) -> Result<Response<pb::ListOfferingsResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(
            self.list_offerings(&caller, request.into_inner())
                .await
                .map(|offerings| pb::ListOfferingsResponse {
                    offerings: offerings
                        .iter()
                        .map(|o| convert::offering_pb(&self.region, o))
                        .collect(),
                }),
        )
    }

    async fn submit_request(
        &self,
        request: Request<pb::SubmitRequestRequest>,
    ) -> Result<Response<pb::SubmitRequestResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(
            self.submit(&caller, request.into_inner())
                .await
                .map(|r| pb::SubmitRequestResponse {
                    request: Some(convert::request_pb(&self.region, &r)),
                }),
        )
    }

    async fn get_request(
        &self,
        request: Request<pb::GetRequestRequest>,
    ) -> Result<Response<pb::GetRequestResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(
            self.get_request(&caller, &request.get_ref().id)
                .await
                .map(|r| pb::GetRequestResponse {
                    request: Some(convert::request_pb(&self.region, &r)),
                }),
        )
    }

    async fn list_my_requests(
        &self,
        request: Request<pb::ListMyRequestsRequest>,
    ) -> Result<Response<pb::ListMyRequestsResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(self.my_requests(&caller, request.into_inner()).await.map(
            |(requests, next_page_token)| {
                pb::ListMyRequestsResponse {
                    requests: requests
                        .iter()
                        .map(|r| convert::request_pb(&self.region, r))
                        .collect(),
                    next_page_token,
                }
            },
        ))
    }

    async fn cancel_request(
        &self,
        request: Request<pb::CancelRequestRequest>,
    ) -> Result<Response<pb::CancelRequestResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(
            self.cancel(&caller, request.into_inner())
                .await
                .map(|r| pb::CancelRequestResponse {
                    request: Some(convert::request_pb(&self.region, &r)),
                }),
        )
    }

    async fn list_my_approvals(
        &self,
        request: Request<pb::ListMyApprovalsRequest>,
    ) -> Result<Response<pb::ListMyApprovalsResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(self.my_approvals(&caller).await.map(|requests| {
            pb::ListMyApprovalsResponse {
                requests: requests
                    .iter()
                    .map(|r| convert::request_pb(&self.region, r))
                    .collect(),
            }
        }))
    }

    async fn decide_approval(
        &self,
        request: Request<pb::DecideApprovalRequest>,
    ) -> Result<Response<pb::DecideApprovalResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(self.decide(&caller, request.into_inner()).await.map(|r| {
            pb::DecideApprovalResponse {
                request: Some(convert::request_pb(&self.region, &r)),
            }
        }))
    }

    async fn set_delegation(
        &self,
        request: Request<pb::SetDelegationRequest>,
    ) -> Result<Response<pb::SetDelegationResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(self.delegate(&caller, request.into_inner()).await.map(|d| {
            pb::SetDelegationResponse {
                delegation: Some(pb::Delegation {
                    from_subject: d.from,
                    to_subject: d.to,
                    start_time: convert::timestamp(d.start),
                    end_time: convert::timestamp(d.end),
                }),
            }
        }))
    }

    async fn list_tasks(
        &self,
        request: Request<pb::ListTasksRequest>,
    ) -> Result<Response<pb::ListTasksResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(
            self.tasks(&caller, request.into_inner())
                .await
                .map(|tasks| pb::ListTasksResponse {
                    tasks: tasks
                        .iter()
                        .map(|(r, t)| convert::task_pb(&self.region, r, t))
                        .collect(),
                }),
        )
    }

    async fn claim_task(
        &self,
        request: Request<pb::ClaimTaskRequest>,
    ) -> Result<Response<pb::ClaimTaskResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(
            self.work_task(&caller, &request.get_ref().task_id, None)
                .await
                .map(|(r, t)| pb::ClaimTaskResponse {
                    task: Some(convert::task_pb(&self.region, &r, &t)),
                }),
        )
    }

    async fn complete_task(
        &self,
        request: Request<pb::CompleteTaskRequest>,
    ) -> Result<Response<pb::CompleteTaskResponse>, Status> {
        let caller = auth::caller(&request)?;
        let body = request.get_ref();
        reply(
            self.work_task(&caller, &body.task_id, Some(&body.result))
                .await
                .map(|(r, t)| pb::CompleteTaskResponse {
                    task: Some(convert::task_pb(&self.region, &r, &t)),
                    request: Some(convert::request_pb(&self.region, &r)),
                }),
        )
    }
}
