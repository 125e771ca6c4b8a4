//! `desk.sla.v1.SlaService`: one thin method per RPC — the caller, the call, the reply.

use desk_kit::{auth, error::Classify as _};
use desk_proto::sla::v1::{self as pb, sla_service_server::SlaService};
use tonic::{Request, Response, Status};

use super::{ApiResult, SlaApi};

fn reply<T>(result: ApiResult<T>) -> Result<Response<T>, Status> {
    result.map(Response::new).map_err(|e| e.into_status())
}

#[tonic::async_trait]
impl SlaService for SlaApi {
    async fn create_calendar(
        &self,
        request: Request<pb::CreateCalendarRequest>,
    ) -> Result<Response<pb::CreateCalendarResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(
            SlaApi::create_calendar(self, &caller, request.into_inner())
                .await
                .map(|c| pb::CreateCalendarResponse { calendar: Some(c) }),
        )
    }

    async fn get_calendar(
        &self,
        request: Request<pb::GetCalendarRequest>,
    ) -> Result<Response<pb::GetCalendarResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(
            SlaApi::get_calendar(self, &caller, &request.into_inner().id)
                .await
                .map(|c| pb::GetCalendarResponse { calendar: Some(c) }),
        )
    }

    async fn list_calendars(
        &self,
        request: Request<pb::ListCalendarsRequest>,
    ) -> Result<Response<pb::ListCalendarsResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(SlaApi::list_calendars(self, &caller, request.into_inner()).await)
    }

    async fn update_calendar(
        &self,
        request: Request<pb::UpdateCalendarRequest>,
    ) -> Result<Response<pb::UpdateCalendarResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(SlaApi::update_calendar(self, &caller, request.into_inner()).await)
    }

    async fn preview_calendar_update(
        &self,
        request: Request<pb::PreviewCalendarUpdateRequest>,
    ) -> Result<Response<pb::PreviewCalendarUpdateResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(SlaApi::preview_calendar_update(self, &caller, request.into_inner()).await)
    }

    async fn import_holidays(
        &self,
        request: Request<pb::ImportHolidaysRequest>,
    ) -> Result<Response<pb::ImportHolidaysResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(SlaApi::import_holidays(self, &caller, request.into_inner()).await)
    }

    async fn create_policy(
        &self,
        request: Request<pb::CreatePolicyRequest>,
    ) -> Result<Response<pb::CreatePolicyResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(
            SlaApi::create_policy(self, &caller, request.into_inner())
                .await
                .map(|p| pb::CreatePolicyResponse { policy: Some(p) }),
        )
    }

    async fn get_policy(
        &self,
        request: Request<pb::GetPolicyRequest>,
    ) -> Result<Response<pb::GetPolicyResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(
            SlaApi::get_policy(self, &caller, &request.into_inner().id)
                .await
                .map(|p| pb::GetPolicyResponse { policy: Some(p) }),
        )
    }

    async fn list_policies(
        &self,
        request: Request<pb::ListPoliciesRequest>,
    ) -> Result<Response<pb::ListPoliciesResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(SlaApi::list_policies(self, &caller, request.into_inner()).await)
    }

    async fn update_policy(
        &self,
        request: Request<pb::UpdatePolicyRequest>,
    ) -> Result<Response<pb::UpdatePolicyResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(SlaApi::update_policy(self, &caller, request.into_inner()).await)
    }

    async fn preview_policy_update(
        &self,
        request: Request<pb::PreviewPolicyUpdateRequest>,
    ) -> Result<Response<pb::PreviewPolicyUpdateResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(SlaApi::preview_policy_update(self, &caller, request.into_inner()).await)
    }

    async fn get_ticket_sla(
        &self,
        request: Request<pb::GetTicketSlaRequest>,
    ) -> Result<Response<pb::GetTicketSlaResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(SlaApi::get_ticket_sla(self, &caller, &request.into_inner().ticket_id).await)
    }

    async fn list_breaching_soon(
        &self,
        request: Request<pb::ListBreachingSoonRequest>,
    ) -> Result<Response<pb::ListBreachingSoonResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(SlaApi::list_breaching_soon(self, &caller, request.into_inner()).await)
    }

    async fn get_kpis(
        &self,
        request: Request<pb::GetKpisRequest>,
    ) -> Result<Response<pb::GetKpisResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(SlaApi::get_kpis(self, &caller, request.into_inner()).await)
    }
}
