//! Impact analysis with explaining paths over a graph with a cycle, and the index rebuilt at start.

use super::*;

on_both_backends!(
    impact_analysis_explains_every_ci_with_a_path_and_terminates_on_cycles,
    the_impact_index_is_rebuilt_from_the_database_at_start,
);

async fn impact_analysis_explains_every_ci_with_a_path_and_terminates_on_cycles(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let agent = desk.agent();
    // given the shop, with a dependency cycle between its two applications
    let shop = build_shop(&desk, &desk.admin()).await?;

    // when an agent asks who is affected if the host fails
    let upstream = desk
        .impact(
            &agent,
            impact_request(&[&shop.host.id], ImpactDirection::Upstream),
        )
        .await?;

    // then every CI built on it is reported once, at its distance, up to the business service
    assert_eq!(
        depths(&upstream),
        BTreeMap::from([
            ("host-01".to_owned(), 0),
            ("vm-checkout".to_owned(), 1),
            ("orders-db".to_owned(), 1),
            ("checkout-app".to_owned(), 2),
            ("pricing-app".to_owned(), 2),
            ("checkout-api".to_owned(), 3),
            ("Online shop".to_owned(), 4),
        ])
    );
    assert_eq!(upstream.cis.len(), 7, "each CI once, the cycle walked once");
    assert_eq!(upstream.cis[0].id, shop.host.id, "the start CI comes first");
    assert_eq!(upstream.truncated_by, "");
    assert_eq!(
        (upstream.max_depth, upstream.max_nodes),
        (32, 200_000),
        "the service's limits are reported"
    );
    check_paths(&upstream, &[&shop.host.id], &shop.edges)?;

    // and the business service is named, with the path that explains it
    let business = business_services(&upstream);
    ensure!(
        business.len() == 1,
        "business services: {:?}",
        upstream.business_service_indexes
    );
    assert_eq!(business[0].id, shop.business.id);
    assert_eq!(business[0].class, "business_service");
    let path: Vec<(String, i32, String)> = business[0]
        .path
        .iter()
        .map(|s| (s.source_id.clone(), s.r#type, s.target_id.clone()))
        .collect();
    assert_eq!(
        path,
        vec![
            (shop.vm.id.clone(), Rel::RunsOn as i32, shop.host.id.clone()),
            (
                shop.checkout.id.clone(),
                Rel::RunsOn as i32,
                shop.vm.id.clone()
            ),
            (
                shop.service.id.clone(),
                Rel::DependsOn as i32,
                shop.checkout.id.clone()
            ),
            (
                shop.service.id.clone(),
                Rel::Provides as i32,
                shop.business.id.clone()
            ),
        ]
    );

    // when the walk may go one relationship deep, then it stops there and says so
    let shallow = desk
        .impact(
            &agent,
            pb::AnalyzeImpactRequest {
                max_depth: 1,
                ..impact_request(&[&shop.host.id], ImpactDirection::Upstream)
            },
        )
        .await?;
    assert_eq!(
        ids_of_impacted(&shallow),
        BTreeSet::from([
            shop.host.id.clone(),
            shop.vm.id.clone(),
            shop.database.id.clone()
        ])
    );
    assert_eq!(shallow.truncated_by, "depth");
    assert_eq!(shallow.max_depth, 1);
    assert!(shallow.business_service_indexes.is_empty());
    check_paths(&shallow, &[&shop.host.id], &shop.edges)?;

    // and a node limit cuts it short too
    let few = desk
        .impact(
            &agent,
            pb::AnalyzeImpactRequest {
                max_nodes: 3,
                ..impact_request(&[&shop.host.id], ImpactDirection::Upstream)
            },
        )
        .await?;
    assert_eq!(few.cis.len(), 3);
    assert_eq!(few.truncated_by, "nodes");

    // and only the asked relationship types are walked
    let hosting = desk
        .impact(
            &agent,
            pb::AnalyzeImpactRequest {
                relationship_types: vec![Rel::RunsOn as i32],
                ..impact_request(&[&shop.host.id], ImpactDirection::Upstream)
            },
        )
        .await?;
    assert_eq!(
        ids_of_impacted(&hosting),
        BTreeSet::from([
            shop.host.id.clone(),
            shop.vm.id.clone(),
            shop.database.id.clone(),
            shop.checkout.id.clone()
        ])
    );

    // when asked what the business service depends on, then the walk goes down to the host
    let downstream = desk
        .impact(
            &agent,
            impact_request(&[&shop.business.id], ImpactDirection::Downstream),
        )
        .await?;
    assert_eq!(
        depths(&downstream),
        BTreeMap::from([
            ("Online shop".to_owned(), 0),
            ("checkout-api".to_owned(), 1),
            ("checkout-app".to_owned(), 2),
            ("pricing-app".to_owned(), 3),
            ("vm-checkout".to_owned(), 3),
            ("orders-db".to_owned(), 4),
            ("host-01".to_owned(), 4),
        ])
    );
    check_paths(&downstream, &[&shop.business.id], &shop.edges)?;

    // and from a CI inside the cycle, both ways, the walk terminates with each CI once
    let both = desk
        .impact(
            &agent,
            impact_request(&[&shop.pricing.id], ImpactDirection::Both),
        )
        .await?;
    check_paths(&both, &[&shop.pricing.id], &shop.edges)?;
    assert_eq!(
        both.cis.len(),
        7,
        "every CI of the shop is connected to pricing-app one way or the other"
    );

    // and paths are left out unless asked for
    let bare = desk
        .impact(
            &agent,
            pb::AnalyzeImpactRequest {
                include_paths: false,
                ..impact_request(&[&shop.host.id], ImpactDirection::Upstream)
            },
        )
        .await?;
    assert!(bare.cis.iter().all(|c| c.path.is_empty()));
    assert!(bare.cis.iter().all(|c| c.reached_from.is_none()));
    assert_eq!(depths(&bare), depths(&upstream));

    // and the compact form explains each CI with the same path, one step per CI: following
    // `reached_from` back to the start rebuilds every CI's full path
    for direction in [ImpactDirection::Upstream, ImpactDirection::Both] {
        let request = impact_request(&[&shop.pricing.id], direction);
        let full = desk.impact(&agent, request.clone()).await?;
        let compact = desk
            .impact(
                &agent,
                pb::AnalyzeImpactRequest {
                    include_paths: false,
                    include_via: true,
                    ..request
                },
            )
            .await?;
        assert_eq!(
            compact.cis.iter().map(|c| &c.id).collect::<Vec<_>>(),
            full.cis.iter().map(|c| &c.id).collect::<Vec<_>>()
        );
        for (index, ci) in compact.cis.iter().enumerate() {
            let mut rebuilt = Vec::new();
            let mut current = index;
            while let Some(from) = compact.cis[current].reached_from {
                let from = from as usize;
                ensure!(from < current, "{} is reached from a later CI", ci.name);
                let (here, there) = (&compact.cis[current], &compact.cis[from]);
                let (source_id, target_id) = if here.reached_as_source {
                    (here.id.clone(), there.id.clone())
                } else {
                    (there.id.clone(), here.id.clone())
                };
                rebuilt.push(pb::PathStep {
                    source_id,
                    r#type: here.reached_by,
                    target_id,
                });
                current = from;
            }
            // a CI without `reached_from` is a start CI, or (walking both ways) one whose
            // whole path is given
            rebuilt.extend(compact.cis[current].path.iter().rev().cloned());
            rebuilt.reverse();
            assert_eq!(rebuilt, full.cis[index].path, "the path of {}", ci.name);
        }
    }

    // and an unknown start is not mistaken for "no impact"; no start at all is bad input
    let missing = format!("test-{}", uuid::Uuid::now_v7());
    expect_code(
        desk.impact(
            &agent,
            impact_request(&[&missing], ImpactDirection::Upstream),
        )
        .await,
        Code::NotFound,
    )?;
    expect_violations(
        desk.impact(&agent, impact_request(&[], ImpactDirection::Upstream))
            .await,
        &["ci_ids"],
    )?;
    expect_violations(
        desk.impact(
            &agent,
            impact_request(&["host-01"], ImpactDirection::Upstream),
        )
        .await,
        &["ci_ids[0]"],
    )?;
    Ok(())
}

async fn the_impact_index_is_rebuilt_from_the_database_at_start(
    mut desk: TestDesk,
) -> anyhow::Result<()> {
    let admin = desk.admin();
    // given the shop, a tenant class of business service provided by the same application service,
    // a retired VM on the host and a relationship that was removed
    let mut shop = build_shop(&desk, &admin).await?;
    let class = pb::CiClass {
        name: "customer_service".into(),
        label: "Customer-facing service".into(),
        parent: "business_service".into(),
        ..Default::default()
    };
    desk.api()
        .create_class(with_token(
            pb::CreateClassRequest { class: Some(class) },
            &admin,
        ))
        .await?;
    let portal = desk
        .create_ci(&admin, new_ci("customer_service", "Customer portal", []))
        .await?;
    desk.relate(&admin, &shop.service.id, Rel::Provides, &portal.id)
        .await?;
    shop.edges.insert((
        shop.service.id.clone(),
        Rel::Provides as i32,
        portal.id.clone(),
    ));
    let spare = desk
        .create_ci(&admin, new_ci("virtual_machine", "vm-spare", []))
        .await?;
    desk.relate(&admin, &spare.id, Rel::RunsOn, &shop.host.id)
        .await?;
    desk.retire_ci(&admin, &spare, "unused").await?;
    let cable = desk
        .relate(
            &admin,
            &shop.database.id,
            Rel::ConnectsTo,
            &shop.checkout.id,
        )
        .await?;
    desk.unrelate(&admin, &cable.id).await?;

    let upstream = impact_request(&[&shop.host.id], ImpactDirection::Upstream);
    let downstream = impact_request(&[&shop.business.id], ImpactDirection::Downstream);
    let before_up = desk.impact(&admin, upstream.clone()).await?;
    let before_down = desk.impact(&admin, downstream.clone()).await?;
    let business_before: BTreeSet<String> = business_services(&before_up)
        .iter()
        .map(|b| b.name.clone())
        .collect();
    assert_eq!(
        business_before,
        BTreeSet::from(["Online shop".to_owned(), "Customer portal".to_owned()])
    );
    assert!(
        before_up.cis.iter().all(|c| c.id != spare.id),
        "a retired CI is not entered"
    );

    // when the service is stopped and a new one starts on the same database
    desk.restart_service().await?;

    // then impact analysis answers the same: the same CIs at the same depths, explained by stored
    // relationships only (the removed one is gone, the retired CI still left out)
    let after_up = desk.impact(&admin, upstream).await?;
    let after_down = desk.impact(&admin, downstream).await?;
    let normalized = |answer: &pb::AnalyzeImpactResponse| {
        answer
            .cis
            .iter()
            .map(|c| (c.id.clone(), c.name.clone(), c.class.clone(), c.depth))
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(
        normalized(&after_up),
        normalized(&before_up),
        "upstream from the host"
    );
    assert_eq!(
        normalized(&after_down),
        normalized(&before_down),
        "downstream from the business service"
    );
    assert_eq!(
        (
            after_up.truncated_by.as_str(),
            after_down.truncated_by.as_str()
        ),
        ("", "")
    );
    check_paths(&after_up, &[&shop.host.id], &shop.edges)?;
    check_paths(&after_down, &[&shop.business.id], &shop.edges)?;

    // and the business services reached are the same, tenant subclasses of business_service included
    let business_after: BTreeSet<String> = business_services(&after_up)
        .iter()
        .map(|b| b.name.clone())
        .collect();
    assert_eq!(
        business_after, business_before,
        "after a restart the impact index no longer counts a tenant subclass of business_service as a business service"
    );
    Ok(())
}
