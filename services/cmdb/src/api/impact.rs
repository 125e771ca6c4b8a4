//! Impact analysis over the tenant's graph in memory.

use desk_kit::auth::Caller;
use desk_proto::cmdb::v1 as pb;
use prost::Message as _;
use uuid::Uuid;

use super::{
    AnswerError, CmdbApi, CmdbError, CmdbResult, convert, encode_impact_answer_within,
    impact_answer,
};
use crate::domain::{
    Permission, Violations, authorize,
    impact::{Direction, ImpactRequest},
};

/// Impact queries that may reach this many CIs run off the async worker (`analyze_impact`).
const LONG_WALK_CIS: usize = 10_000;

impl CmdbApi {
    pub fn analyze_impact(
        &self,
        caller: &Caller,
        request: pb::AnalyzeImpactRequest,
    ) -> CmdbResult<pb::EncodedAnalyzeImpactResponse> {
        let (request_view, parsed, given_starts, found) = self.parse_impact(request);
        authorize(&caller.roles, Permission::Read)?;
        let query = parsed.query(given_starts, found)?;
        // The tenant's graph as it is now: no lock is held while it is walked, so no write of
        // any tenant waits for this walk, nor this walk for a write.
        let Some(graph) = self.index.snapshot(&caller.tenant) else {
            return Err(CmdbError::NotFound("CI"));
        };
        let summary = request_view == pb::ImpactView::Summary as i32;
        let answer = || {
            if summary {
                impact_answer::summarize_impact(&graph, &self.region, &query)
                    .map(|message| {
                        pb::EncodedAnalyzeImpactResponse::from_parts(vec![message.encode_to_vec()])
                    })
                    .map_err(AnswerError::from)
            } else {
                encode_impact_answer_within(&graph, &self.region, &query, self.answer_limit_bytes)
            }
        };
        // A closure of tens of thousands of CIs walks and writes for milliseconds: the async
        // worker's other calls (health checks among them) are handed on meanwhile. Handing
        // them on costs some 50 µs, more than a small walk takes; those stay where they are.
        let may_take_long = query.max_depth > 3
            && graph.node_count().min(query.max_nodes as usize) >= LONG_WALK_CIS;
        let answer = if may_take_long {
            desk_kit::blocking::in_place(answer)
        } else {
            answer()
        };
        answer.map_err(|error| match error {
            AnswerError::Graph(_) => CmdbError::NotFound("CI"),
            AnswerError::TooLarge { bytes, limit } => CmdbError::AnswerTooLarge { bytes, limit },
        })
    }

    /// An `AnalyzeImpact` request as the domain's, with its view, how many start ids it named and
    /// what is wrong on the wire.
    fn parse_impact(
        &self,
        request: pb::AnalyzeImpactRequest,
    ) -> (i32, ImpactRequest, usize, Violations) {
        let mut found = Violations::new();
        let start: Vec<Uuid> = request
            .ci_ids
            .iter()
            .enumerate()
            .filter_map(|(i, id)| self.parse_ci_id(&format!("ci_ids[{i}]"), id, &mut found))
            .collect();
        let direction = match pb::ImpactDirection::try_from(request.direction)
            .unwrap_or(pb::ImpactDirection::Unspecified)
        {
            pb::ImpactDirection::Upstream | pb::ImpactDirection::Unspecified => Direction::Upstream,
            pb::ImpactDirection::Downstream => Direction::Downstream,
            pb::ImpactDirection::Both => Direction::Both,
        };
        let mut relationship_types = Vec::new();
        for (index, value) in request.relationship_types.iter().enumerate() {
            match convert::relationship_type(*value) {
                Some(t) => relationship_types.push(t),
                None => found.push(
                    format!("relationship_types[{index}]"),
                    "unknown relationship type",
                ),
            }
        }
        let parsed = ImpactRequest {
            start,
            direction,
            max_depth: request.max_depth,
            max_nodes: request.max_nodes,
            relationship_types,
            include_paths: request.include_paths,
            include_via: request.include_via,
        };
        (request.view, parsed, request.ci_ids.len(), found)
    }
}
