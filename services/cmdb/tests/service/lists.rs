//! Lists filtered by class with subclasses, attributes and text, in pages.

use super::*;

on_both_backends!(list_cis_filters_by_class_with_subclasses_attributes_text_and_pages);

async fn list_cis_filters_by_class_with_subclasses_attributes_text_and_pages(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let admin = desk.admin();
    let agent = desk.agent();
    // given servers, a VM (a kind of server), a database in staging and a switch
    let web = desk
        .create_ci(
            &admin,
            new_ci(
                "server",
                "web-01",
                [("os", text("linux")), ("cpu_count", int(4))],
            ),
        )
        .await?;
    let db_host = desk
        .create_ci(
            &admin,
            new_ci(
                "server",
                "db-host-01",
                [("os", text("windows")), ("cpu_count", int(16))],
            ),
        )
        .await?;
    let vm = desk
        .create_ci(
            &admin,
            new_ci("virtual_machine", "web-vm-01", [("os", text("linux"))]),
        )
        .await?;
    let database = desk
        .create_ci(
            &admin,
            pb::CreateCiRequest {
                environment: pb::Environment::Staging as i32,
                ..new_ci("database", "Web orders", [("engine", text("mysql"))])
            },
        )
        .await?;
    let switch = desk
        .create_ci(&admin, new_ci("network_device", "core-sw-1", []))
        .await?;
    let web = desk
        .update_ci(
            &admin,
            pb::UpdateCiRequest {
                id: web.id.clone(),
                expected_version: 1,
                status: CiStatus::InUse as i32,
                ..Default::default()
            },
        )
        .await?;
    let every = [&web, &db_host, &vm, &database, &switch];
    let set =
        |cis: &[&pb::ConfigurationItem]| cis.iter().map(|c| c.id.clone()).collect::<BTreeSet<_>>();

    let list = |request: pb::ListCisRequest| {
        let (desk, agent) = (&desk, &agent);
        async move {
            let response = desk.list_cis(agent, request).await?;
            ensure!(
                response.total_size as usize == response.cis.len(),
                "total_size {} for {} CIs on one page",
                response.total_size,
                response.cis.len()
            );
            Ok::<_, anyhow::Error>(ids_of(&response.cis))
        }
    };

    // when listing a class, then its subclasses come too
    assert_eq!(
        list(pb::ListCisRequest {
            class: "server".into(),
            ..Default::default()
        })
        .await?,
        set(&[&web, &db_host, &vm])
    );
    assert_eq!(
        list(pb::ListCisRequest {
            class: "virtual_machine".into(),
            ..Default::default()
        })
        .await?,
        set(&[&vm])
    );
    assert_eq!(
        list(pb::ListCisRequest {
            class: "configuration_item".into(),
            ..Default::default()
        })
        .await?,
        set(&every)
    );

    // and attribute filters compare for equality, typed values included, combined with the class
    let os = |value: &str| pb::AttributeFilter {
        name: "os".into(),
        equals: Some(text(value)),
    };
    assert_eq!(
        list(pb::ListCisRequest {
            attribute_filters: vec![os("linux")],
            ..Default::default()
        })
        .await?,
        set(&[&web, &vm])
    );
    assert_eq!(
        list(pb::ListCisRequest {
            class: "server".into(),
            attribute_filters: vec![os("windows")],
            ..Default::default()
        })
        .await?,
        set(&[&db_host])
    );
    let cpus = pb::AttributeFilter {
        name: "cpu_count".into(),
        equals: Some(int(4)),
    };
    assert_eq!(
        list(pb::ListCisRequest {
            attribute_filters: vec![cpus],
            ..Default::default()
        })
        .await?,
        set(&[&web])
    );
    assert_eq!(
        list(pb::ListCisRequest {
            class: "virtual_machine".into(),
            attribute_filters: vec![os("windows")],
            ..Default::default()
        })
        .await?,
        BTreeSet::new()
    );

    // and text matches part of the name, whatever the case, with LIKE wildcards taken literally
    assert_eq!(
        list(pb::ListCisRequest {
            text: "web".into(),
            ..Default::default()
        })
        .await?,
        set(&[&web, &vm, &database])
    );
    assert_eq!(
        list(pb::ListCisRequest {
            text: "WEB-0".into(),
            ..Default::default()
        })
        .await?,
        set(&[&web])
    );
    assert_eq!(
        list(pb::ListCisRequest {
            text: "%".into(),
            ..Default::default()
        })
        .await?,
        BTreeSet::new()
    );
    assert_eq!(
        list(pb::ListCisRequest {
            text: "db_host".into(),
            ..Default::default()
        })
        .await?,
        BTreeSet::new()
    );

    // and status and environment filter too
    assert_eq!(
        list(pb::ListCisRequest {
            statuses: vec![CiStatus::InUse as i32],
            ..Default::default()
        })
        .await?,
        set(&[&web])
    );
    assert_eq!(
        list(pb::ListCisRequest {
            environment: pb::Environment::Staging as i32,
            ..Default::default()
        })
        .await?,
        set(&[&database])
    );

    // when paging two at a time, then every CI comes exactly once and each page tells the total
    let mut seen = Vec::new();
    let mut token = String::new();
    for page in 0.. {
        ensure!(page < 5, "paging does not end");
        let response = desk
            .list_cis(
                &agent,
                pb::ListCisRequest {
                    page_size: 2,
                    page_token: token.clone(),
                    ..Default::default()
                },
            )
            .await?;
        assert_eq!(response.total_size, 5, "page {page}");
        assert!(response.cis.len() <= 2);
        seen.extend(response.cis.iter().map(|c| c.id.clone()));
        if response.next_page_token.is_empty() {
            break;
        }
        token = response.next_page_token;
    }
    assert_eq!(seen.len(), 5, "{seen:?}");
    assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), set(&every));

    // and bad filters are refused, naming them
    expect_violations(
        desk.list_cis(
            &agent,
            pb::ListCisRequest {
                class: "mainframe".into(),
                ..Default::default()
            },
        )
        .await,
        &["class"],
    )?;
    expect_violations(
        desk.list_cis(
            &agent,
            pb::ListCisRequest {
                page_size: 501,
                ..Default::default()
            },
        )
        .await,
        &["page_size"],
    )?;
    expect_violations(
        desk.list_cis(
            &agent,
            pb::ListCisRequest {
                page_token: "not-a-token".into(),
                ..Default::default()
            },
        )
        .await,
        &["page_token"],
    )?;
    let empty_filter = pb::AttributeFilter {
        name: "os".into(),
        equals: None,
    };
    let status = expect_code(
        desk.list_cis(
            &agent,
            pb::ListCisRequest {
                attribute_filters: vec![empty_filter],
                ..Default::default()
            },
        )
        .await,
        Code::InvalidArgument,
    )?;
    assert_eq!(
        violated_fields(&status)?,
        vec!["attribute_filters[0].equals".to_owned()]
    );
    Ok(())
}
