//! WriteTxnMarkers: markers another broker's transaction coordinator sends for
//! partitions this broker leads.

use crate::errors::KafkaCode;
use crate::messages::TopicPartition;
use crate::shard::Shard;
use crate::txn::service::MarkerItem;
use kafka_protocol::messages::{
    write_txn_markers_response, WriteTxnMarkersRequest, WriteTxnMarkersResponse,
};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

/// WriteTxnMarkers (from another broker's coordinator): each marker to the
/// owner shard of its partition; answered once the in-sync replicas have
/// it.
pub async fn handle(shard: &Rc<Shard>, request: WriteTxnMarkersRequest) -> WriteTxnMarkersResponse {
    // Per owner shard: each marker with its (marker, topic, partition) place
    // in the response.
    type Place = (usize, usize, usize);
    let mut routed: BTreeMap<usize, Vec<(MarkerItem, Place)>> = BTreeMap::new();
    let mut response = WriteTxnMarkersResponse::default();
    for (m, marker) in request.markers.iter().enumerate() {
        let mut result = write_txn_markers_response::WritableTxnMarkerResult::default();
        result.producer_id = marker.producer_id;
        for (t, topic) in marker.topics.iter().enumerate() {
            let mut topic_result =
                write_txn_markers_response::WritableTxnMarkerTopicResult::default();
            topic_result.name = topic.name.clone();
            let name: Arc<str> = Arc::from(topic.name.0.as_str());
            for (p, partition) in topic.partition_indexes.iter().enumerate() {
                let mut r = write_txn_markers_response::WritableTxnMarkerPartitionResult::default();
                r.partition_index = *partition;
                r.error_code = KafkaCode::UNKNOWN_SERVER_ERROR.0;
                topic_result.partitions.push(r);
                let tp = TopicPartition {
                    topic: name.clone(),
                    partition: *partition,
                };
                let item = MarkerItem {
                    tp: tp.clone(),
                    producer_id: marker.producer_id.0,
                    epoch: marker.producer_epoch,
                    commit: marker.transaction_result,
                    coordinator_epoch: marker.coordinator_epoch,
                };
                routed
                    .entry(shard.owner_of(&tp))
                    .or_default()
                    .push((item, (m, t, p)));
            }
            result.topics.push(topic_result);
        }
        response.markers.push(result);
    }
    let calls = routed.into_iter().map(|(owner, list)| {
        let shard = shard.clone();
        async move {
            let (items, places): (Vec<MarkerItem>, Vec<Place>) = list.into_iter().unzip();
            let codes = shard
                .call_detached(owner, move |s| async move {
                    crate::txn::service::write_markers_local(&s, items).await
                })
                .await
                .unwrap_or_default();
            (places, codes)
        }
    });
    for (places, codes) in futures::future::join_all(calls).await {
        for ((m, t, p), code) in places.into_iter().zip(codes) {
            response.markers[m].topics[t].partitions[p].error_code = code.0;
        }
    }
    response
}
