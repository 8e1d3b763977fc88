//! Payload formats: how a batch of records becomes request bodies, each
//! within the request size limit.

pub mod fc;

use std::ops::Range;

/// One request body and the records it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The body.
    pub body: Vec<u8>,
    /// Which of the encoded records it carries (indices, in order).
    pub records: Range<usize>,
    /// Records in it that were too large and went without their content.
    pub overflowed: usize,
}

/// One record's JSON element, and whether it lost its content to fit.
pub(crate) struct Element {
    pub json: Vec<u8>,
    pub overflow: bool,
}

/// Splits elements into JSON-array requests of at most `max_records`
/// elements and `max_bytes` bytes, keeping their order. An overflowed
/// element always travels alone.
pub(crate) fn json_arrays(
    elements: Vec<Element>,
    max_records: usize,
    max_bytes: usize,
) -> Vec<Request> {
    let mut requests = Vec::new();
    let mut body: Vec<u8> = Vec::new();
    let mut start = 0;
    let mut overflowed = 0;
    let total = elements.len();
    for (index, element) in elements.into_iter().enumerate() {
        let count = index - start;
        // The body so far, a comma, the element and the closing bracket.
        let would_be = body.len() + 1 + element.json.len() + 1;
        let alone = element.overflow || overflowed > 0;
        if count > 0 && (count == max_records || would_be > max_bytes || alone) {
            body.push(b']');
            requests.push(Request {
                body: std::mem::take(&mut body),
                records: start..index,
                overflowed,
            });
            start = index;
            overflowed = 0;
        }
        body.push(if index == start { b'[' } else { b',' });
        body.extend_from_slice(&element.json);
        overflowed += usize::from(element.overflow);
    }
    if total > start {
        body.push(b']');
        requests.push(Request {
            body,
            records: start..total,
            overflowed,
        });
    }
    requests
}

/// Appends `bytes` as a JSON string.
pub(crate) fn push_json_str(out: &mut Vec<u8>, text: &str) {
    serde_json::to_writer(&mut *out, text).expect("writing to a Vec cannot fail");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elements(sizes: &[usize]) -> Vec<Element> {
        sizes
            .iter()
            .map(|&n| Element {
                json: vec![b'1'; n],
                overflow: false,
            })
            .collect()
    }

    fn ranges(requests: &[Request]) -> Vec<Range<usize>> {
        requests.iter().map(|r| r.records.clone()).collect()
    }

    #[test]
    fn bodies_never_pass_the_byte_limit() {
        // [a,b] is 2 + 3 + 1 + 3 = 9 bytes.
        let requests = json_arrays(elements(&[3, 3, 3]), 10, 9);
        assert_eq!(ranges(&requests), vec![0..2, 2..3]);
        assert_eq!(requests[0].body, b"[111,111]");
        assert_eq!(requests[1].body, b"[111]");
        // One byte less and every element travels alone.
        let requests = json_arrays(elements(&[3, 3, 3]), 10, 8);
        assert_eq!(ranges(&requests), vec![0..1, 1..2, 2..3]);
    }

    #[test]
    fn bodies_never_pass_the_record_limit() {
        let requests = json_arrays(elements(&[1; 5]), 2, 1 << 20);
        assert_eq!(ranges(&requests), vec![0..2, 2..4, 4..5]);
    }

    #[test]
    fn overflowed_elements_travel_alone() {
        let mut elements = elements(&[1, 1, 1]);
        elements[1].overflow = true;
        let requests = json_arrays(elements, 10, 100);
        assert_eq!(ranges(&requests), vec![0..1, 1..2, 2..3]);
        assert_eq!(
            requests.iter().map(|r| r.overflowed).collect::<Vec<_>>(),
            vec![0, 1, 0]
        );
    }

    #[test]
    fn no_elements_no_requests() {
        assert!(json_arrays(Vec::new(), 20, 100).is_empty());
    }
}
