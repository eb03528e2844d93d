//! Cross-shard calls: work for another core, sent as a closure over glommio's
//! bounded channel mesh (seastar's `submit_to`).
//!
//! A [`Task`] is a `Send` closure; its captures are the call's arguments and
//! the sender of its reply. The destination shard runs it with its own
//! per-core state (`Rc<C>`) and the future it returns runs there, so shard
//! state never leaves its thread. The mesh knows nothing of what the closures
//! do: each module that offers work to other shards writes its calls itself,
//! with named arguments, and this layer imports nothing of the engine.
//!
//! The channels are bounded (`CROSS_SHARD_CHANNEL_DEPTH`): a sender waits
//! while the destination's queue is full. Received work runs in tasks of its
//! own, in two classes ([`Class`]):
//!
//! - **Data** work (a request's share of partitions: append, read, offsets)
//!   never calls other shards. At most `MESH_DATA_TASKS_PER_SHARD_MAX` run
//!   at once on a shard; while that many run, [`serve`] stops taking work
//!   off the channels, the channels fill, and senders wait: the limit pushes
//!   back to the connections that produce the load.
//! - **Control** work (coordinators, admin changes, metadata) may call other
//!   shards, which may call back. Bounding it could deadlock (every permit
//!   held by calls waiting for calls that need one), so it is not; its
//!   volume is bounded by its callers (one per coordinator request, one per
//!   metadata change). A fetch's long-poll wait goes as control work too: it
//!   holds for up to the request's `max_wait_ms`, and is bounded by the
//!   connections' in-flight request limit.

use futures::future::LocalBoxFuture;
use glommio::channels::channel_mesh::Receivers;
use glommio::sync::Semaphore;
use std::future::Future;
use std::rc::Rc;

/// Which limit received work runs under (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Leaf work on partitions: bounded per shard, pushes back.
    Data,
    /// Work that may call other shards: not bounded.
    Control,
}

/// Work for shard state `C`, run on the shard that receives it.
pub struct Task<C> {
    class: Class,
    run: Box<dyn FnOnce(Rc<C>) -> LocalBoxFuture<'static, ()> + Send>,
}

impl<C> Task<C> {
    /// The work, to run here with this shard's state.
    pub fn run(self, state: Rc<C>) -> LocalBoxFuture<'static, ()> {
        (self.run)(state)
    }
}

/// Wraps `work` as a [`Task`] of `class` whose result goes to `reply`
/// (dropped when the caller no longer waits).
pub fn task<C, R, F, Fut>(
    class: Class,
    work: F,
    reply: futures::channel::oneshot::Sender<R>,
) -> Task<C>
where
    C: 'static,
    R: Send + 'static,
    F: FnOnce(Rc<C>) -> Fut + Send + 'static,
    Fut: Future<Output = R> + 'static,
{
    Task {
        class,
        run: Box::new(move |state| {
            Box::pin(async move {
                let _ = reply.send(work(state).await);
            })
        }),
    }
}

/// Runs the work other shards send, each in a task of its own, with at most
/// `data_permits` data tasks at once (each holds one permit while it runs).
pub fn serve<C: 'static>(
    state: Rc<C>,
    mut receivers: Receivers<Task<C>>,
    data_permits: Rc<Semaphore>,
) {
    for (_peer, receiver) in receivers.streams() {
        let state = state.clone();
        let permits = data_permits.clone();
        glommio::spawn_local(async move {
            while let Some(task) = receiver.recv().await {
                let permit = match task.class {
                    Class::Control => None,
                    // Waits here, so this peer's channel stops draining.
                    Class::Data => match permits.acquire_static_permit(1).await {
                        Ok(permit) => Some(permit),
                        Err(_) => return,
                    },
                };
                let work = task.run(state.clone());
                glommio::spawn_local(async move {
                    work.await;
                    drop(permit);
                })
                .detach();
            }
        })
        .detach();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::channel::oneshot;

    #[test]
    fn a_task_runs_with_the_receivers_state_and_replies() {
        let (reply, answer) = oneshot::channel();
        let items = [1u64, 2, 3];
        let work: Task<u64> = task(
            Class::Data,
            move |base: Rc<u64>| async move { items.iter().map(|i| i + *base).sum::<u64>() },
            reply,
        );
        futures::executor::block_on(work.run(Rc::new(10)));
        assert_eq!(futures::executor::block_on(answer), Ok(36));
    }

    #[test]
    fn a_task_whose_caller_left_still_runs() {
        let (reply, answer) = oneshot::channel::<()>();
        drop(answer);
        let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = ran.clone();
        let work: Task<()> = task(
            Class::Control,
            move |_| async move { seen.store(true, std::sync::atomic::Ordering::SeqCst) },
            reply,
        );
        futures::executor::block_on(work.run(Rc::new(())));
        assert!(ran.load(std::sync::atomic::Ordering::SeqCst));
    }

    /// Runs `body` on executor 0 of a pool of two (`serve`d with `permits`
    /// data permits) and `drive` on executor 1, which gets the senders.
    fn two_shards(
        permits: u64,
        drive: impl FnOnce(
                glommio::channels::channel_mesh::Senders<Task<Probe>>,
            ) -> LocalBoxFuture<'static, ()>
            + Send
            + Clone
            + 'static,
        probe: Probe,
    ) {
        use glommio::channels::channel_mesh::MeshBuilder;
        use glommio::{LocalExecutorPoolBuilder, PoolPlacement};
        let mesh = MeshBuilder::<Task<Probe>, _>::full(2, 4);
        LocalExecutorPoolBuilder::new(PoolPlacement::Unbound(2))
            .on_all_shards(move || {
                let drive = drive.clone();
                let probe = probe.clone();
                async move {
                    let (senders, receivers) = mesh.join().await.unwrap();
                    if senders.peer_id() == 0 {
                        serve(
                            Rc::new(probe.clone()),
                            receivers,
                            Rc::new(Semaphore::new(permits)),
                        );
                        while !probe.done.load(SeqCst) {
                            glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
                        }
                    } else {
                        drive(senders).await;
                        probe.done.store(true, SeqCst);
                    }
                }
            })
            .unwrap()
            .join_all();
    }

    use std::sync::atomic::Ordering::SeqCst;
    use std::sync::atomic::{AtomicBool, AtomicUsize};
    use std::sync::Arc;

    /// What the test's work sees and changes on the receiving shard.
    #[derive(Clone, Default)]
    struct Probe {
        running: Arc<AtomicUsize>,
        most: Arc<AtomicUsize>,
        release: Arc<AtomicBool>,
        done: Arc<AtomicBool>,
    }

    /// Work that counts itself running until the test releases it.
    fn held(class: Class, reply: oneshot::Sender<()>) -> Task<Probe> {
        task(
            class,
            |probe: Rc<Probe>| async move {
                let now = probe.running.fetch_add(1, SeqCst) + 1;
                probe.most.fetch_max(now, SeqCst);
                while !probe.release.load(SeqCst) {
                    glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
                }
                probe.running.fetch_sub(1, SeqCst);
            },
            reply,
        )
    }

    async fn until(what: impl Fn() -> bool) {
        for _ in 0..10_000 {
            if what() {
                return;
            }
            glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
        }
        panic!("condition not reached in 10 s");
    }

    #[test]
    fn a_shard_runs_at_most_its_permits_of_data_work_and_the_rest_waits() {
        let probe = Probe::default();
        let seen = probe.clone();
        two_shards(
            2,
            move |senders| {
                let probe = seen.clone();
                Box::pin(async move {
                    let mut answers = Vec::new();
                    // 2 run, 4 wait in the channel, the 7th and 8th wait to be sent.
                    let sending = async {
                        for _ in 0..8 {
                            let (tx, rx) = oneshot::channel();
                            senders.send_to(0, held(Class::Data, tx)).await.unwrap();
                            answers.push(rx);
                        }
                    };
                    let watching = async {
                        until(|| probe.running.load(SeqCst) == 2).await;
                        glommio::timer::sleep(std::time::Duration::from_millis(50)).await;
                        assert_eq!(
                            probe.running.load(SeqCst),
                            2,
                            "more data work ran than permits"
                        );
                        probe.release.store(true, SeqCst);
                    };
                    futures::join!(sending, watching);
                    for answer in answers {
                        answer.await.unwrap();
                    }
                    assert_eq!(probe.most.load(SeqCst), 2);
                })
            },
            probe,
        );
    }

    #[test]
    fn control_work_runs_while_data_work_holds_every_permit() {
        let probe = Probe::default();
        let seen = probe.clone();
        two_shards(
            1,
            move |senders| {
                let probe = seen.clone();
                Box::pin(async move {
                    let (tx, data) = oneshot::channel();
                    senders.send_to(0, held(Class::Data, tx)).await.unwrap();
                    until(|| probe.running.load(SeqCst) == 1).await;
                    let (tx, control) = oneshot::channel();
                    senders
                        .send_to(0, task(Class::Control, |_: Rc<Probe>| async { 7 }, tx))
                        .await
                        .unwrap();
                    assert_eq!(control.await, Ok(7));
                    assert_eq!(probe.running.load(SeqCst), 1, "the data work is still held");
                    probe.release.store(true, SeqCst);
                    data.await.unwrap();
                })
            },
            probe,
        );
    }
}
