//! `desk.directory.v1.DirectoryService` on the wire: each call takes its caller and request, and
//! answers with what the handler in its area returns.

use desk_proto::directory::v1 as pb;
use tonic::{Request, Response, Status};

use super::{DirectoryApi, convert, reply};
use crate::domain::{Person, PersonView};

fn caller_of<T>(request: &Request<T>) -> Result<desk_kit::auth::Caller, Status> {
    desk_kit::auth::caller(request)
}

impl DirectoryApi {
    /// A person as the admins who write them see them.
    fn full(&self, person: &Person) -> pb::Person {
        convert::person_to_pb(self.region(), person, PersonView::Full)
    }
}

#[tonic::async_trait]
impl pb::directory_service_server::DirectoryService for DirectoryApi {
    async fn who_am_i(
        &self,
        request: Request<pb::WhoAmIRequest>,
    ) -> Result<Response<pb::WhoAmIResponse>, Status> {
        let caller = caller_of(&request)?;
        reply(
            self.who_am_i(&caller)
                .await
                .map(|(details, created)| pb::WhoAmIResponse {
                    person: Some(details.person),
                    memberships: details.memberships,
                    presence: details.presence,
                    created,
                }),
        )
    }

    async fn create_person(
        &self,
        request: Request<pb::CreatePersonRequest>,
    ) -> Result<Response<pb::CreatePersonResponse>, Status> {
        let caller = caller_of(&request)?;
        reply(
            DirectoryApi::create_person(self, &caller, request.into_inner())
                .await
                .map(|person| pb::CreatePersonResponse {
                    person: Some(self.full(&person)),
                }),
        )
    }

    async fn get_person(
        &self,
        request: Request<pb::GetPersonRequest>,
    ) -> Result<Response<pb::GetPersonResponse>, Status> {
        let caller = caller_of(&request)?;
        reply(
            DirectoryApi::get_person(self, &caller, request.into_inner())
                .await
                .map(|details| pb::GetPersonResponse {
                    person: Some(details.person),
                    memberships: details.memberships,
                    presence: details.presence,
                }),
        )
    }

    async fn update_person(
        &self,
        request: Request<pb::UpdatePersonRequest>,
    ) -> Result<Response<pb::UpdatePersonResponse>, Status> {
        let caller = caller_of(&request)?;
        reply(
            DirectoryApi::update_person(self, &caller, request.into_inner())
                .await
                .map(|person| pb::UpdatePersonResponse {
                    person: Some(self.full(&person)),
                }),
        )
    }

    async fn deactivate_person(
        &self,
        request: Request<pb::DeactivatePersonRequest>,
    ) -> Result<Response<pb::DeactivatePersonResponse>, Status> {
        let caller = caller_of(&request)?;
        reply(
            DirectoryApi::deactivate_person(self, &caller, request.into_inner())
                .await
                .map(|(person, report)| pb::DeactivatePersonResponse {
                    person: Some(self.full(&person)),
                    report: Some(convert::report_to_pb(self.region(), &report)),
                }),
        )
    }

    async fn reactivate_person(
        &self,
        request: Request<pb::ReactivatePersonRequest>,
    ) -> Result<Response<pb::ReactivatePersonResponse>, Status> {
        let caller = caller_of(&request)?;
        reply(
            DirectoryApi::reactivate_person(self, &caller, request.into_inner())
                .await
                .map(|person| pb::ReactivatePersonResponse {
                    person: Some(self.full(&person)),
                }),
        )
    }

    async fn list_people(
        &self,
        request: Request<pb::ListPeopleRequest>,
    ) -> Result<Response<pb::ListPeopleResponse>, Status> {
        let caller = caller_of(&request)?;
        reply(DirectoryApi::list_people(self, &caller, request.into_inner()).await)
    }

    async fn get_manager_chain(
        &self,
        request: Request<pb::GetManagerChainRequest>,
    ) -> Result<Response<pb::GetManagerChainResponse>, Status> {
        let caller = caller_of(&request)?;
        reply(
            self.manager_chain(&caller, &request.get_ref().person_id)
                .await
                .map(|managers| pb::GetManagerChainResponse { managers }),
        )
    }

    async fn set_agent_profile(
        &self,
        request: Request<pb::SetAgentProfileRequest>,
    ) -> Result<Response<pb::SetAgentProfileResponse>, Status> {
        let caller = caller_of(&request)?;
        reply(
            DirectoryApi::set_agent_profile(self, &caller, request.into_inner())
                .await
                .map(|person| pb::SetAgentProfileResponse {
                    person: Some(self.full(&person)),
                }),
        )
    }

    async fn create_team(
        &self,
        request: Request<pb::CreateTeamRequest>,
    ) -> Result<Response<pb::CreateTeamResponse>, Status> {
        let caller = caller_of(&request)?;
        reply(
            DirectoryApi::create_team(self, &caller, request.into_inner())
                .await
                .map(|team| pb::CreateTeamResponse {
                    team: Some(convert::team_to_pb(self.region(), &team)),
                }),
        )
    }

    async fn get_team(
        &self,
        request: Request<pb::GetTeamRequest>,
    ) -> Result<Response<pb::GetTeamResponse>, Status> {
        let caller = caller_of(&request)?;
        reply(
            DirectoryApi::get_team(self, &caller, &request.get_ref().id)
                .await
                .map(|team| pb::GetTeamResponse {
                    team: Some(convert::team_to_pb(self.region(), &team)),
                }),
        )
    }

    async fn update_team(
        &self,
        request: Request<pb::UpdateTeamRequest>,
    ) -> Result<Response<pb::UpdateTeamResponse>, Status> {
        let caller = caller_of(&request)?;
        reply(
            DirectoryApi::update_team(self, &caller, request.into_inner())
                .await
                .map(|team| pb::UpdateTeamResponse {
                    team: Some(convert::team_to_pb(self.region(), &team)),
                }),
        )
    }

    async fn retire_team(
        &self,
        request: Request<pb::RetireTeamRequest>,
    ) -> Result<Response<pb::RetireTeamResponse>, Status> {
        let caller = caller_of(&request)?;
        reply(
            DirectoryApi::retire_team(self, &caller, request.into_inner())
                .await
                .map(|team| pb::RetireTeamResponse {
                    team: Some(convert::team_to_pb(self.region(), &team)),
                }),
        )
    }

    async fn list_teams(
        &self,
        request: Request<pb::ListTeamsRequest>,
    ) -> Result<Response<pb::ListTeamsResponse>, Status> {
        let caller = caller_of(&request)?;
        reply(DirectoryApi::list_teams(self, &caller, request.into_inner()).await)
    }

    async fn find_teams(
        &self,
        request: Request<pb::FindTeamsRequest>,
    ) -> Result<Response<pb::FindTeamsResponse>, Status> {
        let caller = caller_of(&request)?;
        reply(
            DirectoryApi::find_teams(self, &caller, request.into_inner())
                .await
                .map(|teams| pb::FindTeamsResponse {
                    teams: teams
                        .iter()
                        .map(|team| convert::team_to_pb(self.region(), team))
                        .collect(),
                }),
        )
    }

    async fn add_membership(
        &self,
        request: Request<pb::AddMembershipRequest>,
    ) -> Result<Response<pb::AddMembershipResponse>, Status> {
        let caller = caller_of(&request)?;
        reply(
            DirectoryApi::add_membership(self, &caller, request.into_inner())
                .await
                .map(|membership| pb::AddMembershipResponse {
                    membership: Some(convert::membership_to_pb(self.region(), &membership)),
                }),
        )
    }

    async fn remove_membership(
        &self,
        request: Request<pb::RemoveMembershipRequest>,
    ) -> Result<Response<pb::RemoveMembershipResponse>, Status> {
        let caller = caller_of(&request)?;
        reply(
            DirectoryApi::remove_membership(self, &caller, request.into_inner())
                .await
                .map(|membership| pb::RemoveMembershipResponse {
                    membership: Some(convert::membership_to_pb(self.region(), &membership)),
                }),
        )
    }

    async fn list_team_members(
        &self,
        request: Request<pb::ListTeamMembersRequest>,
    ) -> Result<Response<pb::ListTeamMembersResponse>, Status> {
        let caller = caller_of(&request)?;
        reply(DirectoryApi::list_team_members(self, &caller, request.into_inner()).await)
    }

    async fn set_presence(
        &self,
        request: Request<pb::SetPresenceRequest>,
    ) -> Result<Response<pb::SetPresenceResponse>, Status> {
        let caller = caller_of(&request)?;
        reply(
            DirectoryApi::set_presence(self, &caller, request.into_inner())
                .await
                .map(|presence| pb::SetPresenceResponse {
                    presence: Some(presence),
                }),
        )
    }

    async fn get_skill_catalog(
        &self,
        request: Request<pb::GetSkillCatalogRequest>,
    ) -> Result<Response<pb::GetSkillCatalogResponse>, Status> {
        let caller = caller_of(&request)?;
        reply(
            DirectoryApi::get_skill_catalog(self, &caller)
                .await
                .map(|catalog| pb::GetSkillCatalogResponse {
                    catalog: Some(convert::catalog_to_pb(&catalog)),
                }),
        )
    }

    async fn set_skill_catalog(
        &self,
        request: Request<pb::SetSkillCatalogRequest>,
    ) -> Result<Response<pb::SetSkillCatalogResponse>, Status> {
        let caller = caller_of(&request)?;
        reply(
            DirectoryApi::set_skill_catalog(self, &caller, request.into_inner())
                .await
                .map(|catalog| pb::SetSkillCatalogResponse {
                    catalog: Some(convert::catalog_to_pb(&catalog)),
                }),
        )
    }

    async fn stage_provisioning(
        &self,
        request: Request<pb::StageProvisioningRequest>,
    ) -> Result<Response<pb::StageProvisioningResponse>, Status> {
        let caller = caller_of(&request)?;
        reply(
            DirectoryApi::stage_provisioning(self, &caller, request.into_inner())
                .await
                .map(|batch| pb::StageProvisioningResponse { batch: Some(batch) }),
        )
    }

    async fn get_provisioning(
        &self,
        request: Request<pb::GetProvisioningRequest>,
    ) -> Result<Response<pb::GetProvisioningResponse>, Status> {
        let caller = caller_of(&request)?;
        reply(
            DirectoryApi::get_provisioning(self, &caller, &request.get_ref().id)
                .await
                .map(|batch| pb::GetProvisioningResponse { batch: Some(batch) }),
        )
    }

    async fn commit_provisioning(
        &self,
        request: Request<pb::CommitProvisioningRequest>,
    ) -> Result<Response<pb::CommitProvisioningResponse>, Status> {
        let caller = caller_of(&request)?;
        reply(
            DirectoryApi::commit_provisioning(self, &caller, &request.get_ref().id)
                .await
                .map(|batch| pb::CommitProvisioningResponse { batch: Some(batch) }),
        )
    }

    async fn discard_provisioning(
        &self,
        request: Request<pb::DiscardProvisioningRequest>,
    ) -> Result<Response<pb::DiscardProvisioningResponse>, Status> {
        let caller = caller_of(&request)?;
        reply(
            DirectoryApi::discard_provisioning(self, &caller, &request.get_ref().id)
                .await
                .map(|batch| pb::DiscardProvisioningResponse { batch: Some(batch) }),
        )
    }

    async fn list_provisionings(
        &self,
        request: Request<pb::ListProvisioningsRequest>,
    ) -> Result<Response<pb::ListProvisioningsResponse>, Status> {
        let caller = caller_of(&request)?;
        reply(DirectoryApi::list_provisionings(self, &caller, request.into_inner()).await)
    }
}
