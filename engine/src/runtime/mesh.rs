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
//! while the destination's queue is full.

use futures::future::LocalBoxFuture;
use std::future::Future;
use std::rc::Rc;

/// Work for shard state `C`, run on the shard that receives it.
pub type Task<C> = Box<dyn FnOnce(Rc<C>) -> LocalBoxFuture<'static, ()> + Send>;

/// Wraps `work` as a [`Task`] whose result goes to `reply` (dropped when the
/// caller no longer waits).
pub fn task<C, R, F, Fut>(work: F, reply: futures::channel::oneshot::Sender<R>) -> Task<C>
where
    C: 'static,
    R: Send + 'static,
    F: FnOnce(Rc<C>) -> Fut + Send + 'static,
    Fut: Future<Output = R> + 'static,
{
    Box::new(move |state| {
        Box::pin(async move {
            let _ = reply.send(work(state).await);
        })
    })
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
            move |base: Rc<u64>| async move { items.iter().map(|i| i + *base).sum::<u64>() },
            reply,
        );
        futures::executor::block_on(work(Rc::new(10)));
        assert_eq!(futures::executor::block_on(answer), Ok(36));
    }

    #[test]
    fn a_task_whose_caller_left_still_runs() {
        let (reply, answer) = oneshot::channel::<()>();
        drop(answer);
        let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = ran.clone();
        let work: Task<()> = task(
            move |_| async move { seen.store(true, std::sync::atomic::Ordering::SeqCst) },
            reply,
        );
        futures::executor::block_on(work(Rc::new(())));
        assert!(ran.load(std::sync::atomic::Ordering::SeqCst));
    }
}
