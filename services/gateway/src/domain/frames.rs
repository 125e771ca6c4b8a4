//! gRPC's length-prefixed messages, as an HTTP/2 request body carries them: a 1-byte
//! compressed flag, a 4-byte big-endian length, then the message. The gateway reads only the
//! prefixes, to refuse messages over the size limit before they are forwarded, and the one
//! message of a unary request, to find the id it names.

/// The prefix before each message.
pub const PREFIX_BYTES: usize = 5;

/// The message of a unary request body: exactly one uncompressed message. `None` for a
/// compressed one (the gateway does not decompress to route; such a call is answered in its
/// own region), several messages or a truncated body.
pub fn single_message(body: &[u8]) -> Option<&[u8]> {
    let (prefix, message) = body.split_at_checked(PREFIX_BYTES)?;
    let length = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]);
    (prefix[0] == 0 && usize::try_from(length).ok()? == message.len()).then_some(message)
}

/// A message whose prefix announced more than the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge {
    pub announced: u64,
    pub limit: u64,
}

/// Follows the prefixes through a body that arrives in chunks of any size.
#[derive(Debug, Clone)]
pub struct FrameScanner {
    limit: u64,
    /// Prefix bytes seen of the current prefix.
    prefix: [u8; PREFIX_BYTES],
    prefix_seen: usize,
    /// Message bytes still to skip before the next prefix.
    message_left: u64,
}

impl FrameScanner {
    pub fn new(limit: u64) -> FrameScanner {
        FrameScanner {
            limit,
            prefix: [0; PREFIX_BYTES],
            prefix_seen: 0,
            message_left: 0,
        }
    }

    /// Reads the next chunk; an error as soon as a prefix announces a message over the limit.
    pub fn scan(&mut self, mut chunk: &[u8]) -> Result<(), TooLarge> {
        while !chunk.is_empty() {
            if self.message_left > 0 {
                let skipped = self
                    .message_left
                    .min(u64::try_from(chunk.len()).unwrap_or(u64::MAX));
                self.message_left -= skipped;
                chunk = &chunk[usize::try_from(skipped).unwrap_or(chunk.len())..];
                continue;
            }
            let wanted = PREFIX_BYTES - self.prefix_seen;
            let taken = wanted.min(chunk.len());
            self.prefix[self.prefix_seen..self.prefix_seen + taken]
                .copy_from_slice(&chunk[..taken]);
            self.prefix_seen += taken;
            chunk = &chunk[taken..];
            if self.prefix_seen == PREFIX_BYTES {
                self.prefix_seen = 0;
                let p = self.prefix;
                let announced = u64::from(u32::from_be_bytes([p[1], p[2], p[3], p[4]]));
                if announced > self.limit {
                    return Err(TooLarge {
                        announced,
                        limit: self.limit,
                    });
                }
                self.message_left = announced;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(message: &[u8]) -> Vec<u8> {
        let mut framed = vec![0];
        framed.extend_from_slice(&u32::try_from(message.len()).expect("small").to_be_bytes());
        framed.extend_from_slice(message);
        framed
    }

    #[test]
    fn the_message_of_a_unary_body_is_its_one_frame() {
        assert_eq!(single_message(&frame(b"hello")), Some(&b"hello"[..]));
        assert_eq!(single_message(&frame(b"")), Some(&b""[..]));
        let mut two = frame(b"a");
        two.extend(frame(b"b"));
        assert_eq!(single_message(&two), None);
        let mut compressed = frame(b"zz");
        compressed[0] = 1;
        assert_eq!(single_message(&compressed), None);
        assert_eq!(single_message(&frame(b"hello")[..7]), None);
        assert_eq!(single_message(&[0, 0]), None);
    }

    #[test]
    fn messages_within_the_limit_pass_in_chunks_of_any_size() {
        let mut body = frame(&[7; 10]);
        body.extend(frame(&[8; 3]));
        body.extend(frame(&[]));
        for chunk_size in 1..body.len() {
            let mut scanner = FrameScanner::new(10);
            for chunk in body.chunks(chunk_size) {
                assert_eq!(scanner.scan(chunk), Ok(()), "chunks of {chunk_size}");
            }
        }
    }

    #[test]
    fn a_message_over_the_limit_is_refused_at_its_prefix() {
        let mut body = frame(&[1; 4]);
        body.extend(frame(&[2; 11]));
        for chunk_size in 1..=body.len() {
            let mut scanner = FrameScanner::new(10);
            let outcome = body
                .chunks(chunk_size)
                .try_for_each(|chunk| scanner.scan(chunk));
            assert_eq!(
                outcome,
                Err(TooLarge {
                    announced: 11,
                    limit: 10
                }),
                "chunks of {chunk_size}"
            );
        }
    }
}
