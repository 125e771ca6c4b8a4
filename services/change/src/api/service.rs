//! `desk.change.v1.ChangeService`: one thin method per RPC — the caller, the call, the reply.

use desk_kit::{auth, error::Classify as _};
use desk_proto::change::v1::{self as pb, change_service_server::ChangeService};
use tonic::{Request, Response, Status};

use super::{ApiResult, ChangeApi, convert};
use crate::domain::Change;

fn reply<T>(result: ApiResult<T>) -> Result<Response<T>, Status> {
    result.map(Response::new).map_err(|e| e.into_status())
}

impl ChangeApi {
    fn change_pb(&self, change: &Change) -> Option<pb::Change> {
        Some(convert::change_pb(&self.region, change))
    }
}

#[tonic::async_trait]
impl ChangeService for ChangeApi {
    async fn create_template(
        &self,
        request: Request<pb::CreateTemplateRequest>,
    ) -> Result<Response<pb::CreateTemplateResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(
            self.create_template(&caller, request.into_inner())
                .await
                .map(|t| pb::CreateTemplateResponse {
                    template: Some(convert::template_pb(&self.region, &t)),
                }),
        )
    }

    async fn list_templates(
        &self,
        request: Request<pb::ListTemplatesRequest>,
    ) -> Result<Response<pb::ListTemplatesResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(self.templates(&caller).await.map(|templates| {
            pb::ListTemplatesResponse {
                templates: templates
                    .iter()
                    .map(|t| convert::template_pb(&self.region, t))
                    .collect(),
            }
        }))
    }

    async fn create_change(
        &self,
        request: Request<pb::CreateChangeRequest>,
    ) -> Result<Response<pb::CreateChangeResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(
            self.create_change(&caller, request.into_inner())
                .await
                .map(|c| pb::CreateChangeResponse {
                    change: self.change_pb(&c),
                }),
        )
    }

    async fn get_change(
        &self,
        request: Request<pb::GetChangeRequest>,
    ) -> Result<Response<pb::GetChangeResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(
            self.get_change(&caller, &request.get_ref().id)
                .await
                .map(|c| pb::GetChangeResponse {
                    change: self.change_pb(&c),
                }),
        )
    }

    async fn update_change(
        &self,
        request: Request<pb::UpdateChangeRequest>,
    ) -> Result<Response<pb::UpdateChangeResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(
            self.update_change(&caller, request.into_inner())
                .await
                .map(|c| pb::UpdateChangeResponse {
                    change: self.change_pb(&c),
                }),
        )
    }

    async fn list_changes(
        &self,
        request: Request<pb::ListChangesRequest>,
    ) -> Result<Response<pb::ListChangesResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(self.list_changes(&caller, request.into_inner()).await.map(
            |(changes, next_page_token)| {
                pb::ListChangesResponse {
                    changes: changes
                        .iter()
                        .map(|c| convert::change_pb(&self.region, c))
                        .collect(),
                    next_page_token,
                }
            },
        ))
    }

    async fn get_change_history(
        &self,
        request: Request<pb::GetChangeHistoryRequest>,
    ) -> Result<Response<pb::GetChangeHistoryResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(
            self.history(&caller, &request.get_ref().id)
                .await
                .map(|entries| pb::GetChangeHistoryResponse { entries }),
        )
    }

    async fn submit_change(
        &self,
        request: Request<pb::SubmitChangeRequest>,
    ) -> Result<Response<pb::SubmitChangeResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(
            self.submit(&caller, request.into_inner())
                .await
                .map(|c| pb::SubmitChangeResponse {
                    change: self.change_pb(&c),
                }),
        )
    }

    async fn assess_change(
        &self,
        request: Request<pb::AssessChangeRequest>,
    ) -> Result<Response<pb::AssessChangeResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(
            self.assess(&caller, request.into_inner())
                .await
                .map(|c| pb::AssessChangeResponse {
                    change: self.change_pb(&c),
                }),
        )
    }

    async fn decide_change(
        &self,
        request: Request<pb::DecideChangeRequest>,
    ) -> Result<Response<pb::DecideChangeResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(
            self.decide(&caller, request.into_inner())
                .await
                .map(|c| pb::DecideChangeResponse {
                    change: self.change_pb(&c),
                }),
        )
    }

    async fn delegate_approvals(
        &self,
        request: Request<pb::DelegateApprovalsRequest>,
    ) -> Result<Response<pb::DelegateApprovalsResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(
            self.delegate(&caller, request.into_inner())
                .await
                .map(|()| pb::DelegateApprovalsResponse {}),
        )
    }

    async fn check_conflicts(
        &self,
        request: Request<pb::CheckConflictsRequest>,
    ) -> Result<Response<pb::CheckConflictsResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(
            self.check_conflicts(&caller, request.into_inner())
                .await
                .map(|conflicts| pb::CheckConflictsResponse {
                    conflicts: conflicts
                        .iter()
                        .map(|c| convert::conflict_pb(&self.region, c))
                        .collect(),
                }),
        )
    }

    async fn suggest_slot(
        &self,
        request: Request<pb::SuggestSlotRequest>,
    ) -> Result<Response<pb::SuggestSlotResponse>, Status> {
        let caller = auth::caller(&request)?;
        let time_zone = request.get_ref().time_zone.clone();
        reply(
            self.suggest_slot(&caller, request.into_inner())
                .await
                .map(|slot| pb::SuggestSlotResponse {
                    window: slot.map(|range| pb::Window {
                        start_time: convert::timestamp(range.start),
                        end_time: convert::timestamp(range.end),
                        time_zone: if time_zone.trim().is_empty() {
                            "UTC".to_owned()
                        } else {
                            time_zone.trim().to_owned()
                        },
                    }),
                }),
        )
    }

    async fn schedule_change(
        &self,
        request: Request<pb::ScheduleChangeRequest>,
    ) -> Result<Response<pb::ScheduleChangeResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(self.schedule(&caller, request.into_inner()).await.map(|c| {
            pb::ScheduleChangeResponse {
                change: self.change_pb(&c),
            }
        }))
    }

    async fn start_implementation(
        &self,
        request: Request<pb::StartImplementationRequest>,
    ) -> Result<Response<pb::StartImplementationResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(self.start(&caller, request.into_inner()).await.map(|c| {
            pb::StartImplementationResponse {
                change: self.change_pb(&c),
            }
        }))
    }

    async fn complete_implementation(
        &self,
        request: Request<pb::CompleteImplementationRequest>,
    ) -> Result<Response<pb::CompleteImplementationResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(self.complete(&caller, request.into_inner()).await.map(|c| {
            pb::CompleteImplementationResponse {
                change: self.change_pb(&c),
            }
        }))
    }

    async fn close_change(
        &self,
        request: Request<pb::CloseChangeRequest>,
    ) -> Result<Response<pb::CloseChangeResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(
            self.close(&caller, request.into_inner())
                .await
                .map(|c| pb::CloseChangeResponse {
                    change: self.change_pb(&c),
                }),
        )
    }

    async fn cancel_change(
        &self,
        request: Request<pb::CancelChangeRequest>,
    ) -> Result<Response<pb::CancelChangeResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(
            self.cancel(&caller, request.into_inner())
                .await
                .map(|c| pb::CancelChangeResponse {
                    change: self.change_pb(&c),
                }),
        )
    }

    async fn create_freeze_window(
        &self,
        request: Request<pb::CreateFreezeWindowRequest>,
    ) -> Result<Response<pb::CreateFreezeWindowResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(
            self.create_freeze(&caller, request.into_inner())
                .await
                .map(|f| pb::CreateFreezeWindowResponse {
                    window: Some(convert::freeze_pb(&self.region, &f)),
                }),
        )
    }

    async fn create_maintenance_window(
        &self,
        request: Request<pb::CreateMaintenanceWindowRequest>,
    ) -> Result<Response<pb::CreateMaintenanceWindowResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(
            self.create_maintenance(&caller, request.into_inner())
                .await
                .map(|m| pb::CreateMaintenanceWindowResponse {
                    window: Some(convert::maintenance_pb(&self.region, &m)),
                }),
        )
    }

    async fn list_schedule(
        &self,
        request: Request<pb::ListScheduleRequest>,
    ) -> Result<Response<pb::ListScheduleResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(
            self.schedule_between(&caller, request.into_inner())
                .await
                .map(|(changes, freezes, maintenance)| pb::ListScheduleResponse {
                    changes: changes
                        .iter()
                        .map(|c| convert::change_pb(&self.region, c))
                        .collect(),
                    freeze_windows: freezes
                        .iter()
                        .map(|f| convert::freeze_pb(&self.region, f))
                        .collect(),
                    maintenance_windows: maintenance
                        .iter()
                        .map(|m| convert::maintenance_pb(&self.region, m))
                        .collect(),
                }),
        )
    }

    async fn get_change_policy(
        &self,
        request: Request<pb::GetChangePolicyRequest>,
    ) -> Result<Response<pb::GetChangePolicyResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(
            self.policy(&caller)
                .await
                .map(|policy| pb::GetChangePolicyResponse {
                    policy: Some(policy),
                }),
        )
    }

    async fn set_change_policy(
        &self,
        request: Request<pb::SetChangePolicyRequest>,
    ) -> Result<Response<pb::SetChangePolicyResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(
            self.set_policy(&caller, request.into_inner())
                .await
                .map(|policy| pb::SetChangePolicyResponse {
                    policy: Some(policy),
                }),
        )
    }

    async fn get_change_metrics(
        &self,
        request: Request<pb::GetChangeMetricsRequest>,
    ) -> Result<Response<pb::GetChangeMetricsResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(
            self.metrics(&caller, request.into_inner())
                .await
                .map(|figures| pb::GetChangeMetricsResponse {
                    metrics: figures
                        .into_iter()
                        .map(|f| pb::ChangeMetrics {
                            group_id: f.group.unwrap_or_default(),
                            period_start: convert::timestamp(f.period_start),
                            changes: f.changes,
                            successful: f.successful,
                            failed: f.failed,
                            emergency: f.emergency,
                            success_rate: f.success_rate,
                            emergency_share: f.emergency_share,
                            mean_lead_time_seconds: f.mean_lead_time_seconds,
                        })
                        .collect(),
                }),
        )
    }
}
