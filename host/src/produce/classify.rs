//! What a failed write to Kafka means: worth retrying, or final.
//!
//! librdkafka has already retried what it considers retriable (up to
//! `message.timeout.ms`) before an error reaches fcsink, so the list of
//! transient codes is explicit and every other code is final: a write that
//! cannot succeed stops its partition visibly instead of retrying for ever.

use rdkafka::types::RDKafkaErrorCode;

/// What a failed write means for the records it carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// The broker or the network is momentarily unable: retry with backoff.
    Transient,
    /// Writing the same record again cannot succeed (authorization, a
    /// missing or invalid topic, a record the topic refuses): stop.
    Permanent,
}

/// How fcsink treats a write that failed with `code`.
///
/// A record refused as too large (`MessageSizeTooLarge`) is permanent here;
/// the writer first retries it alone, then without its value (see
/// [`super::Writer::write`]).
pub fn classify(code: RDKafkaErrorCode) -> Class {
    use RDKafkaErrorCode as C;
    match code {
        // Queues and timeouts.
        C::QueueFull
        | C::MessageTimedOut
        | C::RequestTimedOut
        | C::OperationTimedOut
        | C::TimedOutQueue
        // Leadership moving, replicas missing.
        | C::LeaderNotAvailable
        | C::NotLeaderForPartition
        | C::PreferredLeaderNotAvailable
        | C::EligibleLeadersNotAvailable
        | C::BrokerNotAvailable
        | C::ReplicaNotAvailable
        | C::NotEnoughReplicas
        | C::NotEnoughReplicasAfterAppend
        | C::ISRInsufficient
        | C::FencedLeaderEpoch
        | C::UnknownLeaderEpoch
        | C::KafkaStorageError
        | C::ReassignmentInProgress
        | C::NotController
        | C::ThrottlingQuotaExceeded
        // The network.
        | C::NetworkException
        | C::BrokerTransportFailure
        | C::AllBrokersDown
        | C::Resolve
        | C::RebootstrapRequired
        // librdkafka asked for it, or purged its queue at shutdown.
        | C::Retry
        | C::PurgeQueue
        | C::PurgeInflight => Class::Transient,
        _ => Class::Permanent,
    }
}

/// Whether `code` says the record (or the produce batch that carried it) is
/// too large for the producer, the broker or the topic.
pub(super) fn too_large(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::MessageBatchTooLarge
    )
}

/// Whether `code` says the topic does not exist.
pub(super) fn unknown_topic(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use RDKafkaErrorCode as C;

    #[test]
    fn a_busy_or_unreachable_broker_is_transient() {
        for code in [
            C::QueueFull,
            C::MessageTimedOut,
            C::RequestTimedOut,
            C::LeaderNotAvailable,
            C::NotLeaderForPartition,
            C::NotEnoughReplicas,
            C::NotEnoughReplicasAfterAppend,
            C::NetworkException,
            C::BrokerTransportFailure,
            C::AllBrokersDown,
        ] {
            assert_eq!(classify(code), Class::Transient, "{code:?}");
        }
    }

    #[test]
    fn what_a_retry_cannot_change_is_permanent() {
        for code in [
            C::TopicAuthorizationFailed,
            C::ClusterAuthorizationFailed,
            C::SaslAuthenticationFailed,
            C::Authentication,
            C::UnknownTopicOrPartition,
            C::UnknownTopic,
            C::InvalidTopic,
            C::InvalidRecord,
            // CORRUPT_MESSAGE: what older brokers answer to a null key on a compacted topic.
            C::InvalidMessage,
            C::MessageSizeTooLarge,
            C::MessageBatchTooLarge,
            C::PolicyViolation,
            C::UnsupportedForMessageFormat,
        ] {
            assert_eq!(classify(code), Class::Permanent, "{code:?}");
        }
    }

    #[test]
    fn an_unknown_code_is_permanent_so_it_stops_visibly() {
        assert_eq!(classify(C::Fail), Class::Permanent);
        assert_eq!(classify(C::Unknown), Class::Permanent);
    }
}
