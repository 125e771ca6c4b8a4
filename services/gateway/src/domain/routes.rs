//! Where a call goes: to the service that owns its package, to this process, or to the gateway
//! of the region its object lives in.
//!
//! A public id is `<region>-<uuid>` (`desk_kit::ids`). For a method whose request names its
//! object in field 1 (see [`super::methods::id_field_of`]), the gateway reads that field from the
//! request's one message — without decoding the message type, only the protobuf wire format —
//! and sends the call to the peer gateway of the id's region when that is another region it
//! knows. Anything else (no id, an id of this region or of a region without a peer, a message
//! it cannot read) is answered here, by the owning service, which answers `NOT_FOUND` for ids it
//! does not have.

use std::collections::BTreeSet;

/// Where one call is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// By this process's own routes (monolithic mode, a service in the same process, health,
    /// reflection).
    Local,
    /// By the service `owner` at its `services.<owner>.url`.
    Upstream(String),
    /// By the gateway of another region (`gateway.peers.<region>.url`).
    Peer(String),
}

/// The header a gateway sets on a call it forwards to a peer: the peer answers it itself
/// whatever the id says, so two gateways that disagree about a region cannot bounce a call
/// between them.
pub const FORWARDED_FROM_HEADER: &str = "desk-forwarded-from";

/// The gateway's view of the deployment, from settings.
#[derive(Debug, Clone, Default)]
pub struct RoutingTable {
    /// This gateway's region (`settings.region`).
    pub own_region: String,
    /// Services with an address of their own (`services.<name>.url`); the others are in this
    /// process.
    pub upstreams: BTreeSet<String>,
    /// Regions with a peer gateway.
    pub peers: BTreeSet<String>,
}

impl RoutingTable {
    /// Where a call to a method owned by `owner` goes, given the region named by its id (if it
    /// has one) and whether a peer already forwarded it.
    pub fn destination(
        &self,
        owner: &str,
        id_region: Option<&str>,
        forwarded_by_peer: bool,
    ) -> Destination {
        if let Some(region) = id_region
            && !forwarded_by_peer
            && region != self.own_region
            && self.peers.contains(region)
        {
            return Destination::Peer(region.to_owned());
        }
        if self.upstreams.contains(owner) {
            Destination::Upstream(owner.to_owned())
        } else {
            Destination::Local
        }
    }
}

/// The region named by the id in `field` of an encoded protobuf `message`, when that field is
/// a string holding a public id. Later occurrences of a field win, as protobuf decoding has it.
pub fn id_region(message: &[u8], field: u32) -> Option<String> {
    let text = last_string_field(message, field)?;
    desk_kit::ids::parse_id(text).map(|id| id.region)
}

/// The last value of length-delimited `field` in `message` as UTF-8; `None` when it is absent,
/// not valid UTF-8 or the message is not well-formed up to it.
pub fn last_string_field(mut message: &[u8], field: u32) -> Option<&str> {
    let mut found = None;
    while !message.is_empty() {
        let key = read_varint(&mut message)?;
        let number = u32::try_from(key >> 3).ok()?;
        match key & 0b111 {
            // varint
            0 => {
                read_varint(&mut message)?;
            }
            // 64-bit
            1 => message = message.get(8..)?,
            // length-delimited
            2 => {
                let length = usize::try_from(read_varint(&mut message)?).ok()?;
                let value = message.get(..length)?;
                message = &message[length..];
                if number == field {
                    found = Some(value);
                }
            }
            // 32-bit
            5 => message = message.get(4..)?,
            // groups (deprecated) and invalid wire types: stop reading.
            _ => return None,
        }
    }
    std::str::from_utf8(found?).ok()
}

fn read_varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value: u64 = 0;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    fn routing() -> RoutingTable {
        RoutingTable {
            own_region: "emea".into(),
            upstreams: ["tickets".to_owned()].into(),
            peers: ["amer".to_owned()].into(),
        }
    }

    #[test]
    fn a_call_goes_to_its_owner_or_stays_in_the_process() {
        let routing = routing();
        assert_eq!(
            routing.destination("tickets", None, false),
            Destination::Upstream("tickets".into())
        );
        assert_eq!(routing.destination("cmdb", None, false), Destination::Local);
    }

    #[test]
    fn an_id_of_a_peer_region_goes_to_that_peer_once() {
        let routing = routing();
        assert_eq!(
            routing.destination("tickets", Some("amer"), false),
            Destination::Peer("amer".into())
        );
        // The peer answers what it is sent, whatever the id says.
        assert_eq!(
            routing.destination("tickets", Some("amer"), true),
            Destination::Upstream("tickets".into())
        );
        // Own region and regions without a peer are answered here (NOT_FOUND by the owner).
        for region in ["emea", "apac"] {
            assert_eq!(
                routing.destination("tickets", Some(region), false),
                Destination::Upstream("tickets".into()),
                "{region}"
            );
        }
    }

    #[test]
    fn the_id_is_read_from_field_one_of_any_request() {
        let id = "amer-0192f3c4-0000-7000-8000-000000000000";
        let get = desk_proto::tickets::v1::GetTicketRequest { id: id.into() }.encode_to_vec();
        assert_eq!(id_region(&get, 1).as_deref(), Some("amer"));
        let comment = desk_proto::tickets::v1::AddCommentRequest {
            ticket_id: id.into(),
            body: "printer is on fire".into(),
            visibility: 2,
        }
        .encode_to_vec();
        assert_eq!(id_region(&comment, 1).as_deref(), Some("amer"));
        let update = desk_proto::tickets::v1::UpdateTicketRequest {
            id: id.into(),
            expected_version: 7,
            title: Some("x".into()),
            ..Default::default()
        }
        .encode_to_vec();
        assert_eq!(id_region(&update, 1).as_deref(), Some("amer"));
    }

    #[test]
    fn other_fields_numbers_and_bad_input_name_no_region() {
        let number = desk_proto::tickets::v1::GetTicketRequest {
            id: "INC-000123".into(),
        }
        .encode_to_vec();
        assert_eq!(id_region(&number, 1), None);
        assert_eq!(id_region(&[], 1), None);
        // A truncated message, a bad wire type, an over-long varint.
        let id = desk_proto::tickets::v1::GetTicketRequest {
            id: "amer-0192f3c4-0000-7000-8000-000000000000".into(),
        }
        .encode_to_vec();
        assert_eq!(id_region(&id[..id.len() - 1], 1), None);
        assert_eq!(last_string_field(&[0x0b], 1), None);
        assert_eq!(
            last_string_field(
                &[
                    0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01
                ],
                1
            ),
            None
        );
        // The last occurrence wins.
        assert_eq!(
            last_string_field(&[0x0a, 1, b'a', 0x0a, 1, b'b'], 1),
            Some("b")
        );
        assert_eq!(last_string_field(&[0x12, 1, b'a'], 1), None);
    }
}
