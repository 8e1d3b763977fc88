//! Per-key order, checked on every delivered call: records with one key
//! (in one partition) must reach the function for the first time in offset
//! order. A record sent again (a retry, a replay after a restart) is not a
//! first delivery and is not judged; a record whose offset is below one of
//! its key already delivered, arriving for the first time, is a violation.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use crate::batch_items;

/// What each key has had delivered, and the violations seen.
#[derive(Debug, Default)]
pub struct KeyOrder {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Per `(topic-partition, key)`: the offsets delivered.
    delivered: HashMap<(String, String), BTreeSet<i64>>,
    violations: Vec<String>,
}

impl KeyOrder {
    /// Checks the keyed records of one delivered call.
    pub fn observe(&self, body: &[u8]) {
        let records = batch_items::keyed_records(body);
        if records.is_empty() {
            return;
        }
        let mut state = self.lock();
        let State {
            delivered,
            violations,
        } = &mut *state;
        for (id, key) in records {
            let offsets = delivered
                .entry((id.partition.clone(), key.clone()))
                .or_default();
            if offsets.contains(&id.offset) {
                continue;
            }
            if let Some(&highest) = offsets.last()
                && highest > id.offset
            {
                violations.push(format!(
                    "{}: key {key:?} offset {} first delivered after offset {highest}",
                    id.partition, id.offset
                ));
            }
            offsets.insert(id.offset);
        }
    }

    /// The violations so far, in the order seen.
    pub fn violations(&self) -> Vec<String> {
        self.lock().violations.clone()
    }

    /// Forgets everything.
    pub fn clear(&self) {
        *self.lock() = State::default();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(records: &[(i64, &str)]) -> Vec<u8> {
        let records: Vec<serde_json::Value> = records
            .iter()
            .map(|(offset, key)| {
                serde_json::json!({"topic": "t", "partition": 0, "offset": offset, "key": key})
            })
            .collect();
        serde_json::to_vec(&records).unwrap()
    }

    #[test]
    fn a_key_overtaken_by_a_later_offset_is_a_violation() {
        let order = KeyOrder::default();
        order.observe(&call(&[(0, "a"), (1, "b"), (3, "a")]));
        order.observe(&call(&[(2, "b"), (4, "a")]));
        assert!(order.violations().is_empty());
        // Offset 5 of "b" went out, then 4 of "b" for the first time.
        order.observe(&call(&[(6, "b")]));
        order.observe(&call(&[(5, "b")]));
        assert_eq!(
            order.violations(),
            ["t-0: key \"b\" offset 5 first delivered after offset 6"]
        );
    }

    #[test]
    fn records_sent_again_are_not_judged() {
        let order = KeyOrder::default();
        order.observe(&call(&[(0, "a"), (1, "a"), (2, "a")]));
        // A replay after a restart starts over from offset 1.
        order.observe(&call(&[(1, "a"), (2, "a"), (3, "a")]));
        assert!(order.violations().is_empty());
        // Records without a key, or calls that are not JSON, are ignored.
        order.observe(br#"[{"topic":"t","partition":0,"offset":0,"key":null}]"#);
        order.observe(b"not json");
        assert!(order.violations().is_empty());
    }
}
