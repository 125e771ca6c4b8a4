//! Long computations inside async handlers, without stalling the calls that share the worker.

use tokio::runtime::{Handle, RuntimeFlavor};

/// Runs `work` where it is called, first handing the async worker's other tasks to another
/// thread when the runtime is tokio's multi-thread one.
///
/// For work that reads borrowed state (an in-memory index behind a lock) for milliseconds: a
/// CMDB impact closure over 40,000 CIs walks and writes for 5-10 ms. Run on the worker as it
/// is, every other call queued on that worker (health checks among them) waits that long, and
/// a burst of such calls can hold all workers at once. `spawn_blocking` would need the state
/// owned and cloned; `block_in_place` borrows it. On a current-thread runtime (tests) there is
/// no other worker to hand tasks to, and `block_in_place` would panic: there `work` just runs.
pub fn in_place<R>(work: impl FnOnce() -> R) -> R {
    match Handle::try_current().map(|handle| handle.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_other_tasks_of_a_blocked_worker_still_run() {
        // One worker: a task that blocks on it while another task on the same runtime must
        // run before the block ends. Without handing the worker's tasks over this waits out.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .expect("runtime");
        let answered = runtime.block_on(async {
            let (tx, rx) = mpsc::channel();
            let blocked =
                tokio::spawn(async move { in_place(|| rx.recv_timeout(Duration::from_secs(10))) });
            // Spawned after the blocking task, so queued behind it on the one worker.
            tokio::spawn(async move {
                tokio::task::yield_now().await;
                let _ = tx.send("answered");
            });
            blocked.await.expect("joins")
        });
        assert_eq!(answered, Ok("answered"));
    }

    #[tokio::test]
    async fn on_a_current_thread_runtime_it_just_runs() {
        assert_eq!(in_place(|| 41 + 1), 42);
    }

    #[test]
    fn outside_a_runtime_it_just_runs() {
        assert_eq!(in_place(|| "ran"), "ran");
    }
}
