//! E-mail threading: every message about a ticket carries `In-Reply-To` and `References` naming
//! the ticket's stable thread root, so mail clients keep one conversation per ticket and the
//! e-mail intake can find the ticket a reply belongs to from either header.

/// The thread root of a ticket: the same for every message about it, never sent as a message's
/// own id (so it is never the id of a message someone could not have received).
pub fn thread_root(ticket_id: &str, domain: &str) -> String {
    format!("<ticket.{}@{}>", sanitize(ticket_id), domain)
}

/// A message's own id: one per delivery, so a retried delivery keeps its id and receivers can
/// discard a duplicate.
pub fn message_id(delivery_id: &str, domain: &str) -> String {
    format!("<{}@{}>", sanitize(delivery_id), domain)
}

/// The ticket id in a `References`/`In-Reply-To` value this service wrote, if any: what the
/// e-mail intake reads from a reply.
pub fn ticket_of(header: &str, domain: &str) -> Option<String> {
    let suffix = format!("@{domain}>");
    header.split_whitespace().find_map(|id| {
        id.strip_prefix("<ticket.")
            .and_then(|rest| rest.strip_suffix(&suffix))
            .map(str::to_owned)
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Threading {
    pub message_id: String,
    pub in_reply_to: Option<String>,
    pub references: Option<String>,
}

/// The headers of one message: about a ticket it replies to the ticket's thread; otherwise it
/// stands alone.
pub fn threading(delivery_id: &str, ticket_id: Option<&str>, domain: &str) -> Threading {
    let root = ticket_id
        .filter(|t| !t.is_empty())
        .map(|t| thread_root(t, domain));
    Threading {
        message_id: message_id(delivery_id, domain),
        in_reply_to: root.clone(),
        references: root,
    }
}

/// Ids go inside `<…@…>`: only the characters RFC 5322's dot-atom allows survive.
fn sanitize(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.+=".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Whether `address` is one mailbox (`local@domain`) SMTP can take: a conservative check, the
/// SMTP client parses it again.
pub fn valid_address(address: &str) -> bool {
    let Some((local, domain)) = address.rsplit_once('@') else {
        return false;
    };
    let atom = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c);
    !local.is_empty()
        && local.len() <= 64
        && local.chars().all(atom)
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && domain.len() <= 253
        && domain.contains('.')
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_about_one_ticket_share_a_thread_and_have_their_own_ids() {
        let first = threading("d1", Some("emea-0192"), "desk.example");
        let second = threading("d2", Some("emea-0192"), "desk.example");
        assert_eq!(first.in_reply_to, second.in_reply_to);
        assert_eq!(
            first.references.as_deref(),
            Some("<ticket.emea-0192@desk.example>")
        );
        assert_ne!(first.message_id, second.message_id);
        assert_eq!(first.message_id, "<d1@desk.example>");
        let alone = threading("d3", None, "desk.example");
        assert_eq!(alone.in_reply_to, None);
        assert_eq!(alone.references, None);
    }

    #[test]
    fn the_ticket_is_read_back_from_a_reply() {
        let refs = "<abc@elsewhere> <ticket.emea-0192@desk.example>";
        assert_eq!(
            ticket_of(refs, "desk.example").as_deref(),
            Some("emea-0192")
        );
        assert_eq!(ticket_of("<ticket.x@other>", "desk.example"), None);
    }

    #[test]
    fn odd_characters_cannot_break_the_header() {
        assert_eq!(message_id("a b>c", "d.x"), "<a-b-c@d.x>");
    }

    #[test]
    fn addresses_are_checked() {
        for good in ["anna@example.com", "a.b+tag@sub.example.co", "x_y@e-x.se"] {
            assert!(valid_address(good), "{good}");
        }
        for bad in [
            "",
            "anna",
            "anna@",
            "@example.com",
            "anna@localhost",
            "an na@example.com",
            "anna@exa_mple.com",
            ".anna@example.com",
            "an..na@example.com",
            "anna@-x.com",
            "anna@example..com",
            "a@b@example.com",
        ] {
            assert!(!valid_address(bad), "{bad}");
        }
    }
}
