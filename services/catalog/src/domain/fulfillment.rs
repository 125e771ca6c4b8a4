//! Fulfillment plans: stages run one after another, the tasks of a stage in parallel. A task is
//! done by a team, or — automated — by a provisioning robot that takes it from `task.created`
//! and claims and completes it through the API.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Violations;

/// The most tasks one plan holds.
pub const MAX_TASKS: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskTemplate {
    pub key: String,
    pub name: String,
    pub group: String,
    pub automated: bool,
    pub automation: String,
}

impl TaskTemplate {
    pub fn manual(key: &str, group: &str) -> Self {
        Self {
            key: key.to_owned(),
            name: key.replace('_', " "),
            group: group.to_owned(),
            automated: false,
            automation: String::new(),
        }
    }

    pub fn automated(key: &str, automation: &str) -> Self {
        Self {
            key: key.to_owned(),
            name: key.replace('_', " "),
            group: String::new(),
            automated: true,
            automation: automation.to_owned(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FulfillmentPlan {
    pub stages: Vec<Vec<TaskTemplate>>,
}

impl FulfillmentPlan {
    pub fn check(&self, path: &str, found: &mut Violations) {
        let mut keys = std::collections::HashSet::new();
        let total: usize = self.stages.iter().map(Vec::len).sum();
        if total > MAX_TASKS {
            found.push(
                format!("{path}.stages"),
                format!("at most {MAX_TASKS} tasks"),
            );
        }
        for (s, stage) in self.stages.iter().enumerate() {
            if stage.is_empty() {
                found.push(format!("{path}.stages[{s}].tasks"), "a stage has tasks");
            }
            for (t, task) in stage.iter().enumerate() {
                let at = format!("{path}.stages[{s}].tasks[{t}]");
                let key_ok = !task.key.is_empty()
                    && task.key.len() <= 64
                    && task
                        .key
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
                if !key_ok {
                    found.push(
                        format!("{at}.key"),
                        "a key of [a-z0-9_], at most 64 characters",
                    );
                } else if !keys.insert(task.key.as_str()) {
                    found.push(format!("{at}.key"), "another task has this key");
                }
                found.line(&format!("{at}.name"), &task.name, 200, true);
                if task.automated {
                    found.line(&format!("{at}.automation"), &task.automation, 100, true);
                } else {
                    found.line(&format!("{at}.group_id"), &task.group, 200, true);
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    Waiting,
    Open,
    Claimed,
    Done,
    Cancelled,
}

impl TaskState {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Waiting => "waiting",
            TaskState::Open => "open",
            TaskState::Claimed => "claimed",
            TaskState::Done => "done",
            TaskState::Cancelled => "cancelled",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    pub key: String,
    pub name: String,
    pub stage: u32,
    pub group: String,
    pub automated: bool,
    pub automation: String,
    pub state: TaskState,
    pub claimed_by: String,
    pub result: String,
    pub updated_at: DateTime<Utc>,
}

impl Task {
    pub fn planned(stage: u32, template: &TaskTemplate, now: DateTime<Utc>) -> Self {
        Self {
            key: template.key.clone(),
            name: template.name.clone(),
            stage,
            group: template.group.clone(),
            automated: template.automated,
            automation: template.automation.clone(),
            state: TaskState::Waiting,
            claimed_by: String::new(),
            result: String::new(),
            updated_at: now,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskRefused {
    #[error("no such task")]
    Unknown,
    #[error("the task is {0}: it cannot be claimed")]
    NotClaimable(&'static str),
    #[error("the task is {0}: it cannot be completed")]
    NotCompletable(&'static str),
    #[error("the task is claimed by someone else")]
    ClaimedByAnother,
}
