//! The notifications service booted as the binary boots it, on real PostgreSQL or SQLite,
//! nats-server, an SMTP sink and a webhook receiver that verifies signatures on its own.

mod notifications {
    pub mod support;

    mod bad_input;
    mod email;
    mod feed;
    mod webhooks;
}
