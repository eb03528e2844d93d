//! One routing plan for requests served by the shards that own their
//! partitions (Produce, Fetch, ListOffsets, DeleteRecords,
//! OffsetForLeaderEpoch, DescribeProducers).
//!
//! A handler walks its request once, routes each partition the topic table
//! knows to its owner shard with [`Plan::route`] (the place of its answer in
//! the response travels with it), answers the others
//! UNKNOWN_TOPIC_OR_PARTITION itself, and then [`Plan::call`] sends every
//! owner its items in one message, all owners at once. [`fan_out`] is the
//! step underneath, for handlers whose per-shard work is not one answer per
//! item (Produce's acks waits, Fetch's repeated reads).

use std::collections::BTreeMap;
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;

use futures::future::join_all;
use tracing::warn;

use crate::messages::TopicPartition;
use crate::metadata::TopicTable;
use crate::shard::Shard;

/// Items of a request grouped by the shard that owns their partition, each
/// with the (topic index, partition index) of its place in the response.
pub struct Plan<I> {
    per_shard: BTreeMap<usize, Vec<(I, usize, usize)>>,
}

impl<I: Send + 'static> Default for Plan<I> {
    fn default() -> Self {
        Plan {
            per_shard: BTreeMap::new(),
        }
    }
}

impl<I: Send + 'static> Plan<I> {
    /// Routes the item for `topic`'s `partition`, built from its
    /// [`TopicPartition`], to the owner shard, to be answered at
    /// `(topic index, partition index)` of the response. False, with nothing
    /// routed, when `table` does not know the partition: the caller answers
    /// it UNKNOWN_TOPIC_OR_PARTITION.
    pub fn route(
        &mut self,
        shard: &Shard,
        table: &TopicTable,
        topic: &Arc<str>,
        partition: i32,
        place: (usize, usize),
        item: impl FnOnce(TopicPartition) -> I,
    ) -> bool {
        let known = table
            .topics
            .get(&**topic)
            .is_some_and(|meta| partition >= 0 && partition < meta.partitions);
        if !known {
            return false;
        }
        let tp = TopicPartition {
            topic: topic.clone(),
            partition,
        };
        self.per_shard
            .entry(shard.owner_of(&tp))
            .or_default()
            .push((item(tp), place.0, place.1));
        true
    }

    /// Sends every owner shard its items in one message (all shards at
    /// once) and returns each answer with its (topic index, partition
    /// index); `None` where a shard did not answer (it is stopping), logged
    /// under `api`. `work` returns one answer per item, in order.
    pub async fn call<A, F, Fut>(
        self,
        shard: &Rc<Shard>,
        api: &str,
        work: F,
    ) -> Vec<(usize, usize, Option<A>)>
    where
        A: Send + 'static,
        F: FnOnce(Rc<Shard>, Vec<I>) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = Vec<A>> + 'static,
    {
        let mut places = BTreeMap::new();
        let mut items = BTreeMap::new();
        for (owner, list) in self.per_shard {
            let (owned, at): (Vec<I>, Vec<(usize, usize)>) =
                list.into_iter().map(|(item, t, p)| (item, (t, p))).unzip();
            items.insert(owner, owned);
            places.insert(owner, at);
        }
        let mut answers = fan_out(shard, items, api, work).await;
        let mut out = Vec::new();
        for (owner, at) in places {
            let mut answered = answers.remove(&owner).unwrap_or_default().into_iter();
            for (t, p) in at {
                out.push((t, p, answered.next()));
            }
        }
        out
    }
}

/// Runs `work` on every shard of `per_shard` with that shard's input, all at
/// once (on this shard inline when it is one of them) as data work (it must
/// not call other shards: see `runtime::mesh`), and returns each
/// shard's result. A shard that did not answer (it is stopping) is logged
/// under `api` and left out.
pub async fn fan_out<W, R, F, Fut>(
    shard: &Rc<Shard>,
    per_shard: BTreeMap<usize, W>,
    api: &str,
    work: F,
) -> BTreeMap<usize, R>
where
    W: Send + 'static,
    R: Send + 'static,
    F: FnOnce(Rc<Shard>, W) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = R> + 'static,
{
    let calls = per_shard.into_iter().map(|(owner, input)| {
        let shard = shard.clone();
        let work = work.clone();
        async move { (owner, shard.call_data(owner, move |s| work(s, input)).await) }
    });
    let mut out = BTreeMap::new();
    for (owner, answer) in join_all(calls).await {
        match answer {
            Ok(result) => {
                out.insert(owner, result);
            }
            Err(err) => warn!("{api} on shard {owner} failed: {err}"),
        }
    }
    out
}
