//! Fulfillment: a pre-approved item straight to its tasks, parallel tasks completed in any order
//! before the next stage, and an automated task an integrator takes from `task.created` and
//! claims and completes through the API.

use desk_proto::catalog::v1 as pb;
use tonic::Code;

use crate::support::{
    TestDesk, answer, automated, expect_code, laptop, manual, state, text, with_token,
};

on_both_backends!(
    a_pre_approved_item_goes_straight_to_fulfillment_and_parallel_tasks_finish_in_any_order
);

async fn a_pre_approved_item_goes_straight_to_fulfillment_and_parallel_tasks_finish_in_any_order(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let offering = desk
        .create(laptop(
            vec![],
            vec![
                vec![
                    manual("order", "team-procurement"),
                    manual("image", "team-desktop"),
                ],
                vec![manual("deliver", "team-desktop")],
            ],
        ))
        .await?;
    let requester = desk.requester("rita");
    let request = desk
        .submit_as(
            &requester,
            &offering.id,
            vec![answer("model", text("standard"))],
        )
        .await?;
    assert_eq!(state(&request), pb::RequestState::Fulfilling);
    let submitted: Vec<pb::RequestEvent> = desk
        .events_of("request", "submitted", &request.id, 1)
        .await?;
    assert_eq!(submitted[0].target_fulfillment_minutes, 480);
    desk.events_of::<pb::RequestEvent>("request", "approved", &request.id, 1)
        .await?;
    let created: Vec<pb::TaskEvent> = desk.events_of("task", "created", &request.id, 2).await?;
    let mut keys: Vec<String> = created
        .iter()
        .filter_map(|e| e.task.as_ref().map(|t| t.key.clone()))
        .collect();
    keys.sort();
    assert_eq!(keys, ["image", "order"]);

    let desktop = desk.member_of("dave", &["agent"], &["team-desktop"]);
    let procurement = desk.member_of("pia", &["agent"], &["team-procurement"]);
    let tasks = desk
        .api()
        .list_tasks(with_token(
            pb::ListTasksRequest {
                group_id: "team-desktop".into(),
                ..Default::default()
            },
            &desktop,
        ))
        .await?
        .into_inner()
        .tasks;
    assert_eq!(
        tasks.iter().map(|t| t.key.as_str()).collect::<Vec<_>>(),
        ["image"]
    );
    let id_of = |key: &str| format!("{}/{key}", request.id);
    let complete = |token: String, key: &str| {
        let api = desk.api();
        let body = pb::CompleteTaskRequest {
            task_id: id_of(key),
            result: format!("{key} done"),
        };
        async move { api.clone().complete_task(with_token(body, &token)).await }
    };
    // Someone outside the team cannot work it; a task of a later stage is not open yet.
    expect_code(complete(procurement.clone(), "image").await, Code::NotFound)?;
    expect_code(
        complete(desktop.clone(), "deliver").await,
        Code::FailedPrecondition,
    )?;
    // The second task of the stage first, then the first.
    complete(desktop.clone(), "image").await?;
    let after = complete(procurement, "order").await?.into_inner();
    let request_now = after.request.ok_or_else(|| anyhow::anyhow!("no request"))?;
    assert_eq!(state(&request_now), pb::RequestState::Fulfilling);
    let deliver = request_now.tasks.iter().find(|t| t.key == "deliver");
    assert_eq!(deliver.map(|t| t.state), Some(pb::TaskState::Open as i32));
    let done = complete(desktop, "deliver").await?.into_inner();
    assert_eq!(
        done.request.map(|r| r.state),
        Some(pb::RequestState::Fulfilled as i32)
    );
    desk.events_of::<pb::RequestEvent>("request", "fulfilled", &request.id, 1)
        .await?;
    let completed: Vec<pb::TaskEvent> = desk.events_of("task", "completed", &request.id, 3).await?;
    assert_eq!(completed.len(), 3);
    Ok(())
}

on_both_backends!(an_integrator_claims_and_completes_an_automated_task_it_took_from_the_events);

async fn an_integrator_claims_and_completes_an_automated_task_it_took_from_the_events(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let mut reset = laptop(vec![], vec![vec![automated("reset", "password_reset")]]);
    reset.name = crate::support::en("Password reset");
    let offering = desk.create(reset).await?;
    let request = desk
        .submit_as(
            &desk.requester("rita"),
            &offering.id,
            vec![answer("model", text("standard"))],
        )
        .await?;
    // The robot learns of the task from the event only.
    let created: Vec<pb::TaskEvent> = desk.events_of("task", "created", &request.id, 1).await?;
    let task = created[0]
        .task
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no task in the event"))?;
    assert!(task.automated);
    assert_eq!(task.automation, "password_reset");

    let robot = desk
        .catalog
        .token("robot-1", crate::support::TENANT, &["integrator"]);
    let agent = desk.member_of("dave", &["agent"], &["team-desktop"]);
    // An agent does not take a robot's task.
    expect_code(
        desk.api()
            .claim_task(with_token(
                pb::ClaimTaskRequest {
                    task_id: task.id.clone(),
                },
                &agent,
            ))
            .await,
        Code::NotFound,
    )?;
    let claimed = desk
        .api()
        .claim_task(with_token(
            pb::ClaimTaskRequest {
                task_id: task.id.clone(),
            },
            &robot,
        ))
        .await?
        .into_inner()
        .task
        .ok_or_else(|| anyhow::anyhow!("no task answered"))?;
    assert_eq!(claimed.claimed_by, "robot-1");
    // Another robot cannot complete what robot-1 claimed.
    let other = desk
        .catalog
        .token("robot-2", crate::support::TENANT, &["integrator"]);
    expect_code(
        desk.api()
            .complete_task(with_token(
                pb::CompleteTaskRequest {
                    task_id: task.id.clone(),
                    result: "x".into(),
                },
                &other,
            ))
            .await,
        Code::PermissionDenied,
    )?;
    let done = desk
        .api()
        .complete_task(with_token(
            pb::CompleteTaskRequest {
                task_id: task.id.clone(),
                result: "temporary password sent by SMS".into(),
            },
            &robot,
        ))
        .await?
        .into_inner();
    assert_eq!(
        done.request.as_ref().map(|r| r.state),
        Some(pb::RequestState::Fulfilled as i32)
    );
    let claimed: Vec<pb::TaskEvent> = desk.events_of("task", "claimed", &request.id, 1).await?;
    assert_eq!(
        claimed[0].actor.as_ref().map(|a| a.subject.as_str()),
        Some("robot-1")
    );
    let completed: Vec<pb::TaskEvent> = desk.events_of("task", "completed", &request.id, 1).await?;
    assert_eq!(
        completed[0].task.as_ref().map(|t| t.result.as_str()),
        Some("temporary password sent by SMS")
    );
    Ok(())
}
