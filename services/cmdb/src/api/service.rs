//! `desk.cmdb.v1.CmdbService` on the wire: each call takes its caller and request, and answers
//! with what the handler in its area returns.

use super::CmdbApi;
use super::convert;
use super::reply;
use desk_kit::auth;
use desk_proto::cmdb::v1 as pb;
use tonic::Request;
use tonic::Response;
use tonic::Status;

#[tonic::async_trait]
impl pb::cmdb_service_server::CmdbService for CmdbApi {
    async fn list_classes(
        &self,
        request: Request<pb::ListClassesRequest>,
    ) -> Result<Response<pb::ListClassesResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(
            CmdbApi::list_classes(self, &caller)
                .await
                .map(|classes| pb::ListClassesResponse { classes }),
        )
    }
    async fn create_class(
        &self,
        request: Request<pb::CreateClassRequest>,
    ) -> Result<Response<pb::CreateClassResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(
            CmdbApi::create_class(self, &caller, request.into_inner())
                .await
                .map(|class| pb::CreateClassResponse { class: Some(class) }),
        )
    }
    async fn create_ci(
        &self,
        request: Request<pb::CreateCiRequest>,
    ) -> Result<Response<pb::CreateCiResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(
            CmdbApi::create_ci(self, &caller, request.into_inner())
                .await
                .map(|ci| pb::CreateCiResponse {
                    ci: Some(convert::ci_to_pb(&self.region, &ci)),
                }),
        )
    }
    async fn get_ci(
        &self,
        request: Request<pb::GetCiRequest>,
    ) -> Result<Response<pb::GetCiResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(
            CmdbApi::get_ci(self, &caller, &request.get_ref().id)
                .await
                .map(|ci| pb::GetCiResponse {
                    ci: Some(convert::ci_to_pb(&self.region, &ci)),
                }),
        )
    }
    async fn update_ci(
        &self,
        request: Request<pb::UpdateCiRequest>,
    ) -> Result<Response<pb::UpdateCiResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(
            CmdbApi::update_ci(self, &caller, request.into_inner())
                .await
                .map(|ci| pb::UpdateCiResponse {
                    ci: Some(convert::ci_to_pb(&self.region, &ci)),
                }),
        )
    }
    async fn retire_ci(
        &self,
        request: Request<pb::RetireCiRequest>,
    ) -> Result<Response<pb::RetireCiResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(
            CmdbApi::retire_ci(self, &caller, request.into_inner())
                .await
                .map(|ci| pb::RetireCiResponse {
                    ci: Some(convert::ci_to_pb(&self.region, &ci)),
                }),
        )
    }
    async fn list_cis(
        &self,
        request: Request<pb::ListCisRequest>,
    ) -> Result<Response<pb::ListCisResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(CmdbApi::list_cis(self, &caller, request.into_inner()).await)
    }
    async fn get_ci_history(
        &self,
        request: Request<pb::GetCiHistoryRequest>,
    ) -> Result<Response<pb::GetCiHistoryResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(
            self.history(&caller, &request.get_ref().id)
                .await
                .map(|entries| pb::GetCiHistoryResponse { entries }),
        )
    }
    async fn add_relationship(
        &self,
        request: Request<pb::AddRelationshipRequest>,
    ) -> Result<Response<pb::AddRelationshipResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(
            CmdbApi::add_relationship(self, &caller, request.into_inner())
                .await
                .map(|r| pb::AddRelationshipResponse {
                    relationship: Some(r),
                }),
        )
    }
    async fn remove_relationship(
        &self,
        request: Request<pb::RemoveRelationshipRequest>,
    ) -> Result<Response<pb::RemoveRelationshipResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(
            CmdbApi::remove_relationship(self, &caller, &request.get_ref().id)
                .await
                .map(|()| pb::RemoveRelationshipResponse {}),
        )
    }
    async fn list_relationships(
        &self,
        request: Request<pb::ListRelationshipsRequest>,
    ) -> Result<Response<pb::ListRelationshipsResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(
            CmdbApi::list_relationships(self, &caller, &request.get_ref().ci_id)
                .await
                .map(|relationships| pb::ListRelationshipsResponse { relationships }),
        )
    }
    async fn analyze_impact(
        &self,
        request: Request<pb::AnalyzeImpactRequest>,
    ) -> Result<Response<pb::EncodedAnalyzeImpactResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(CmdbApi::analyze_impact(self, &caller, request.into_inner()))
    }
    async fn stage_import(
        &self,
        request: Request<pb::StageImportRequest>,
    ) -> Result<Response<pb::StageImportResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(
            CmdbApi::stage_import(self, &caller, request.into_inner())
                .await
                .map(|batch| pb::StageImportResponse { batch: Some(batch) }),
        )
    }
    async fn get_import(
        &self,
        request: Request<pb::GetImportRequest>,
    ) -> Result<Response<pb::GetImportResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(
            CmdbApi::get_import(self, &caller, &request.get_ref().id)
                .await
                .map(|batch| pb::GetImportResponse { batch: Some(batch) }),
        )
    }
    async fn commit_import(
        &self,
        request: Request<pb::CommitImportRequest>,
    ) -> Result<Response<pb::CommitImportResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(
            CmdbApi::commit_import(self, &caller, &request.get_ref().id)
                .await
                .map(|batch| pb::CommitImportResponse { batch: Some(batch) }),
        )
    }
    async fn discard_import(
        &self,
        request: Request<pb::DiscardImportRequest>,
    ) -> Result<Response<pb::DiscardImportResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(
            CmdbApi::discard_import(self, &caller, &request.get_ref().id)
                .await
                .map(|batch| pb::DiscardImportResponse { batch: Some(batch) }),
        )
    }
    async fn get_source_precedence(
        &self,
        request: Request<pb::GetSourcePrecedenceRequest>,
    ) -> Result<Response<pb::GetSourcePrecedenceResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(
            CmdbApi::get_source_precedence(self, &caller)
                .await
                .map(|p| pb::GetSourcePrecedenceResponse {
                    precedence: Some(p),
                }),
        )
    }
    async fn set_source_precedence(
        &self,
        request: Request<pb::SetSourcePrecedenceRequest>,
    ) -> Result<Response<pb::SetSourcePrecedenceResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(
            CmdbApi::set_source_precedence(self, &caller, request.into_inner())
                .await
                .map(|p| pb::SetSourcePrecedenceResponse {
                    precedence: Some(p),
                }),
        )
    }
    async fn list_imports(
        &self,
        request: Request<pb::ListImportsRequest>,
    ) -> Result<Response<pb::ListImportsResponse>, Status> {
        let caller = auth::caller(&request)?;
        reply(CmdbApi::list_imports(self, &caller, request.into_inner()).await)
    }
}
