//! [`Encoded`]: a response a server writes straight in protobuf wire format.

use std::fmt;

use prost::bytes::{Buf, BufMut};
use prost::encoding::{DecodeContext, WireType};
use prost::{DecodeError, Message};

/// A message of type `M` that may be encoded already: what the server stubs of the methods in
/// `build.rs`'s `PRE_ENCODED` return instead of `M`, while clients decode `M` as usual.
///
/// A server builds such an answer straight from its own data when building `M` first would
/// cost more than the rest of the call: a CMDB impact closure can report 40,000 CIs, and as
/// generated messages those are 120,000 small strings allocated, copied into the wire format
/// and freed again, on the path of the call.
pub struct Encoded<M> {
    form: Form<M>,
}

enum Form<M> {
    /// The encoding of an `M`, vouched for by whoever wrote it, in parts that are sent one
    /// after the other: parts written at once by several threads are not copied together first.
    Bytes(Vec<Vec<u8>>),
    /// Decoded, once something merged a field into it.
    Message(M),
}

impl<M: Message + Default> Encoded<M> {
    /// `parts`, one after the other, must be the encoding of an `M` (without a length prefix);
    /// each may end anywhere, and they are sent as they are. Tests of the writer decode them as
    /// `M`, as a client will.
    pub fn from_parts(parts: Vec<Vec<u8>>) -> Self {
        Self {
            form: Form::Bytes(parts),
        }
    }

    /// The message, decoded if it is held encoded.
    pub fn to_message(&self) -> Result<M, DecodeError>
    where
        M: Clone,
    {
        match &self.form {
            Form::Bytes(parts) => decode_parts(parts),
            Form::Message(message) => Ok(message.clone()),
        }
    }
}

fn decode_parts<M: Message + Default>(parts: &[Vec<u8>]) -> Result<M, DecodeError> {
    match parts {
        [one] => M::decode(one.as_slice()),
        parts => M::decode(parts.concat().as_slice()),
    }
}

impl<M> From<M> for Encoded<M> {
    fn from(message: M) -> Self {
        Self {
            form: Form::Message(message),
        }
    }
}

impl<M> Default for Encoded<M> {
    fn default() -> Self {
        Self {
            form: Form::Bytes(Vec::new()),
        }
    }
}

impl<M> fmt::Debug for Encoded<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.form {
            Form::Bytes(parts) => write!(
                f,
                "Encoded({} bytes)",
                parts.iter().map(Vec::len).sum::<usize>()
            ),
            Form::Message(_) => f.write_str("Encoded(decoded)"),
        }
    }
}

impl<M: Message + Default> Message for Encoded<M> {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        match &self.form {
            Form::Bytes(parts) => parts.iter().for_each(|part| buf.put_slice(part)),
            Form::Message(message) => message.encode_raw(buf),
        }
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        if let Form::Bytes(parts) = &self.form {
            self.form = Form::Message(decode_parts(parts)?);
        }
        match &mut self.form {
            Form::Message(message) => message.merge_field(tag, wire_type, buf, ctx),
            Form::Bytes(_) => unreachable!("decoded just above"),
        }
    }

    fn encoded_len(&self) -> usize {
        match &self.form {
            Form::Bytes(parts) => parts.iter().map(Vec::len).sum(),
            Form::Message(message) => message.encoded_len(),
        }
    }

    fn clear(&mut self) {
        self.form = Form::Bytes(Vec::new());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmdb::v1::{AnalyzeImpactResponse, ImpactedCi};

    fn sample() -> AnalyzeImpactResponse {
        AnalyzeImpactResponse {
            cis: vec![ImpactedCi {
                id: "emea-1".into(),
                name: "db-01".into(),
                depth: 2,
                reached_from: Some(0),
                ..Default::default()
            }],
            business_service_indexes: vec![0, 3],
            truncated_by: "depth".into(),
            max_depth: 3,
            ..Default::default()
        }
    }

    #[test]
    fn bytes_are_sent_as_they_are() {
        let message = sample();
        let encoded = Encoded::<AnalyzeImpactResponse>::from_parts(vec![message.encode_to_vec()]);
        assert_eq!(encoded.encoded_len(), message.encoded_len());
        assert_eq!(encoded.encode_to_vec(), message.encode_to_vec());
        assert_eq!(encoded.to_message(), Ok(message));
    }

    #[test]
    fn parts_are_sent_one_after_the_other() {
        let bytes = sample().encode_to_vec();
        let (head, tail) = bytes.split_at(bytes.len() / 2 + 1);
        let encoded =
            Encoded::<AnalyzeImpactResponse>::from_parts(vec![head.to_vec(), tail.to_vec()]);
        assert_eq!(encoded.encoded_len(), bytes.len());
        assert_eq!(encoded.encode_to_vec(), bytes);
        assert_eq!(encoded.to_message(), Ok(sample()));
    }

    #[test]
    fn decoding_one_keeps_every_field() {
        let message = sample();
        let decoded = Encoded::<AnalyzeImpactResponse>::decode(message.encode_to_vec().as_slice())
            .expect("decodes");
        assert_eq!(decoded.to_message(), Ok(message.clone()));
        assert_eq!(
            AnalyzeImpactResponse::decode(decoded.encode_to_vec().as_slice()),
            Ok(message)
        );
    }

    #[test]
    fn merging_into_encoded_bytes_keeps_both() {
        let mut encoded =
            Encoded::<AnalyzeImpactResponse>::from_parts(vec![sample().encode_to_vec()]);
        let more = AnalyzeImpactResponse {
            visited: 9,
            ..Default::default()
        };
        encoded
            .merge(more.encode_to_vec().as_slice())
            .expect("merges");
        let merged = encoded.to_message().expect("decodes");
        assert_eq!(merged.visited, 9);
        assert_eq!(merged.cis, sample().cis);
    }
}
