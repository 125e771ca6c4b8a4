//! Two CMDB replicas on one PostgreSQL and one nats-server (what a Helm HPA runs; SQLite serves
//! one process only). Whatever one writes, the other answers within the event delivery time.

use super::*;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_one_replica_writes_the_other_answers() -> anyhow::Result<()> {
    let desk = crate::support::spawn_desk(desk_testkit::postgres_database().await?).await?;
    // given two replicas, the second started before anything was written
    let replica = desk.start_replica().await?;
    let admin = desk.admin();
    let b = || replica.client.clone();
    // which has read (and so cached) the tenant's classes and source precedence
    let classes = b()
        .list_classes(with_token(pb::ListClassesRequest::default(), &admin))
        .await?
        .into_inner();
    assert!(!classes.classes.iter().any(|c| c.name == "customer_service"));
    b().get_source_precedence(with_token(
        pb::GetSourcePrecedenceRequest::default(),
        &admin,
    ))
    .await?;

    // when the first creates a tenant class, the shop, and a CI of the new class
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
    let shop = build_shop(&desk, &admin).await?;
    let portal = desk
        .create_ci(&admin, new_ci("customer_service", "Customer portal", []))
        .await?;
    desk.relate(&admin, &shop.service.id, Rel::Provides, &portal.id)
        .await?;
    let written = Instant::now();

    // then the second answers impact from the same graph: the same CIs, the tenant's subclass
    // of business_service counted as one
    let upstream = impact_request(&[&shop.host.id], ImpactDirection::Upstream);
    let on_a = desk.impact(&admin, upstream.clone()).await?;
    let normalized = |answer: &pb::AnalyzeImpactResponse| {
        answer
            .cis
            .iter()
            .map(|c| (c.id.clone(), c.name.clone(), c.class.clone(), c.depth))
            .collect::<BTreeSet<_>>()
    };
    let on_b_answer = eventually(|| async {
        let answer = b()
            .analyze_impact(with_token(upstream.clone(), &admin))
            .await;
        Ok(answer
            .ok()
            .map(|a| a.into_inner())
            .filter(|a| normalized(a) == normalized(&on_a)))
    })
    .await
    .context("replica B never answered impact as A does")?;
    eprintln!(
        "replica convergence: B answered A's graph {:.1} ms after A's last write returned",
        written.elapsed().as_secs_f64() * 1e3
    );
    let names: BTreeSet<String> = business_services(&on_b_answer)
        .iter()
        .map(|b| b.name.clone())
        .collect();
    assert_eq!(
        names,
        BTreeSet::from(["Online shop".to_owned(), "Customer portal".to_owned()])
    );

    // and knows the class: it lists it and creates a CI of it
    let classes = b()
        .list_classes(with_token(pb::ListClassesRequest::default(), &admin))
        .await?
        .into_inner();
    assert!(classes.classes.iter().any(|c| c.name == "customer_service"));
    let made_on_b = b()
        .create_ci(with_token(
            new_ci("customer_service", "Partner portal", []),
            &admin,
        ))
        .await?
        .into_inner()
        .ci
        .context("a CI")?;

    // and what B writes, A answers: B's new CI provided by the same service
    b().add_relationship(with_token(
        pb::AddRelationshipRequest {
            source_id: shop.service.id.clone(),
            r#type: Rel::Provides as i32,
            target_id: made_on_b.id.clone(),
        },
        &admin,
    ))
    .await?;
    eventually(|| async {
        let answer = desk.impact(&admin, upstream.clone()).await?;
        Ok(business_services(&answer)
            .iter()
            .any(|b| b.name == "Partner portal")
            .then_some(()))
    })
    .await
    .context("replica A never saw B's relationship")?;

    // and a retirement on A takes the retired CI out of B's walks
    let vm = desk.get_ci(&admin, &shop.vm.id).await?;
    desk.retire_ci(&admin, &vm, "moved to the new cluster")
        .await?;
    let summary_request = pb::AnalyzeImpactRequest {
        view: pb::ImpactView::Summary as i32,
        include_paths: false,
        ..upstream.clone()
    };
    let summary = eventually(|| async {
        let answer = b()
            .analyze_impact(with_token(summary_request.clone(), &admin))
            .await?
            .into_inner();
        let summary = answer.summary.context("a summary")?;
        Ok((!summary
            .by_class
            .iter()
            .any(|c| c.class == "virtual_machine"))
        .then_some(summary))
    })
    .await
    .context("replica B still walks through the retired VM")?;
    // The shop is still down with the host: the host runs the orders database, which
    // pricing-app needs, which checkout-app needs (the cycle), which checkout-api provides.
    assert!(
        summary
            .business_services
            .iter()
            .any(|s| s.name == "Online shop"),
        "{summary:?}"
    );
    assert_eq!(
        summary.by_class.iter().map(|c| c.count).sum::<u32>(),
        summary.cis_reached
    );

    // and the source precedence set on A is the one B plans with
    let precedence = pb::SourcePrecedence {
        default_order: Some(pb::SourceOrder {
            sources: vec!["sccm".into(), "api".into()],
        }),
        ..Default::default()
    };
    desk.api()
        .set_source_precedence(with_token(
            pb::SetSourcePrecedenceRequest {
                precedence: Some(precedence.clone()),
            },
            &admin,
        ))
        .await?;
    eventually(|| async {
        let on_b = b()
            .get_source_precedence(with_token(
                pb::GetSourcePrecedenceRequest::default(),
                &admin,
            ))
            .await?
            .into_inner()
            .precedence;
        Ok((on_b.as_ref() == Some(&precedence)).then_some(()))
    })
    .await
    .context("replica B never read the new precedence")?;
    Ok(())
}

/// Polls `probe` until it yields `Some` (errors are retried), within the suite's bound.
async fn eventually<T, F, Fut>(mut probe: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + EVENTUALLY;
    loop {
        match probe().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) | Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(10)).await
            }
            Ok(None) => anyhow::bail!("not within {EVENTUALLY:?}"),
            Err(error) => return Err(error.context(format!("not within {EVENTUALLY:?}"))),
        }
    }
}
