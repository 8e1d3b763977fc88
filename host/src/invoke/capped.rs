//! Answers read up to a limit: a function or an endpoint that answers with
//! more than it may cannot make fcsink hold it whole.

/// Why an answer could not be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The answer is longer than the limit; reading stopped there.
    TooLarge,
    /// The connection failed while reading.
    Network(reqwest::Error),
}

/// The body of `response`, streamed in chunks, or [`ReadError::TooLarge`] as
/// soon as it passes `limit` bytes (or says in `Content-Length` that it will).
pub(crate) async fn read_capped(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, ReadError> {
    let announced = response.content_length().unwrap_or(0);
    if announced > limit as u64 {
        return Err(ReadError::TooLarge);
    }
    let mut body = Vec::with_capacity(announced as usize);
    while let Some(chunk) = response.chunk().await.map_err(ReadError::Network)? {
        if body.len() + chunk.len() > limit {
            return Err(ReadError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(body: Vec<u8>) -> reqwest::Response {
        reqwest::Response::from(http::Response::builder().status(200).body(body).unwrap())
    }

    #[tokio::test]
    async fn answers_up_to_the_limit_are_read_and_one_byte_more_is_refused() {
        // (The streamed case, no length announced, is `hostile::targets`.)
        let limit = 100;
        let under = read_capped(response(vec![b'a'; limit - 1]), limit).await;
        assert_eq!(under.unwrap().len(), limit - 1);
        let at = read_capped(response(vec![b'a'; limit]), limit).await;
        assert_eq!(at.unwrap().len(), limit);
        let over = read_capped(response(vec![b'a'; limit + 1]), limit).await;
        assert!(matches!(over, Err(ReadError::TooLarge)), "{over:?}");
    }
}
