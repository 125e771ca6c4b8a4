//! Offerings: catalog admins create and update them (each save a new version, kept); everyone
//! reads and lists those visible to them.

use desk_kit::auth::Caller;
use desk_proto::catalog::v1 as pb;

use super::{ApiFailure, ApiResult, CatalogApi, convert};
use crate::domain::{Offering, Permission, Violations, authorize};

impl CatalogApi {
    pub async fn create_offering(
        &self,
        caller: &Caller,
        request: pb::CreateOfferingRequest,
    ) -> ApiResult<Offering> {
        authorize(&caller.roles, Permission::ManageCatalog)?;
        let mut found = Violations::new();
        let definition = convert::definition_of(request.definition.as_ref(), &mut found);
        definition.check(found)?;
        let now = self.now();
        let offering = Offering {
            id: desk_kit::ids::new_uuid(),
            tenant: caller.tenant.clone(),
            version: 1,
            definition,
            popularity: 0,
            created_at: now,
            updated_at: now,
        };
        let txn = self.store.begin().await?;
        self.store.insert_offering(&txn, &offering).await?;
        self.store.commit(txn).await?;
        Ok(offering)
    }

    pub async fn update_offering(
        &self,
        caller: &Caller,
        request: pb::UpdateOfferingRequest,
    ) -> ApiResult<Offering> {
        authorize(&caller.roles, Permission::ManageCatalog)?;
        let id =
            convert::id_of(&self.region, &request.id).ok_or(ApiFailure::NotFound("offering"))?;
        let mut found = Violations::new();
        let definition = convert::definition_of(request.definition.as_ref(), &mut found);
        if request.expected_version < 1 {
            found.push("expected_version", "the version read");
        }
        definition.check(found)?;
        let current = self
            .store
            .offering(&caller.tenant, id)
            .await?
            .ok_or(ApiFailure::NotFound("offering"))?;
        if current.version != request.expected_version {
            return Err(ApiFailure::Stale("offering"));
        }
        let offering = Offering {
            version: current.version + 1,
            definition,
            updated_at: self.now(),
            ..current
        };
        let txn = self.store.begin().await?;
        if !self
            .store
            .update_offering(&txn, &offering, request.expected_version)
            .await?
        {
            return Err(ApiFailure::Stale("offering"));
        }
        self.store.commit(txn).await?;
        Ok(offering)
    }

    /// A version of an offering the caller may see (a denied one answers as a missing one).
    pub async fn get_offering(
        &self,
        caller: &Caller,
        request: pb::GetOfferingRequest,
    ) -> ApiResult<Offering> {
        let id =
            convert::id_of(&self.region, &request.id).ok_or(ApiFailure::NotFound("offering"))?;
        let current = self
            .store
            .offering(&caller.tenant, id)
            .await?
            .ok_or(ApiFailure::NotFound("offering"))?;
        // Visibility is the current version's: an offering hidden now hides its history too.
        if !current
            .definition
            .visibility
            .admits(&caller.roles, &caller.groups)
        {
            return Err(ApiFailure::NotFound("offering"));
        }
        let mut offering = if request.version == 0 || request.version == current.version {
            current
        } else {
            self.store
                .offering_version(
                    self.store.db().connection(),
                    &caller.tenant,
                    id,
                    request.version,
                )
                .await?
                .ok_or(ApiFailure::NotFound("offering version"))?
        };
        offering.popularity = self
            .store
            .popularity(&caller.tenant)
            .await?
            .get(&id)
            .copied()
            .unwrap_or(0);
        Ok(offering)
    }

    /// Active offerings the caller may see, most requested first.
    pub async fn list_offerings(
        &self,
        caller: &Caller,
        request: pb::ListOfferingsRequest,
    ) -> ApiResult<Vec<Offering>> {
        let category = request.category.trim();
        let offerings = self
            .store
            .offerings(&caller.tenant, (!category.is_empty()).then_some(category))
            .await?;
        let popularity = self.store.popularity(&caller.tenant).await?;
        let mut visible: Vec<Offering> = offerings
            .into_iter()
            .filter(|o| {
                o.definition
                    .visibility
                    .admits(&caller.roles, &caller.groups)
            })
            .map(|mut o| {
                o.popularity = popularity.get(&o.id).copied().unwrap_or(0);
                o
            })
            .collect();
        visible.sort_by(|a, b| b.popularity.cmp(&a.popularity).then(a.id.cmp(&b.id)));
        Ok(visible)
    }
}
