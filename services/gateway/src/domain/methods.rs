//! What the gateway knows about each public gRPC method, read once from the descriptor set every
//! service is built from (`desk_proto::FILE_DESCRIPTOR_SET`): who owns it, its class for rate
//! limits, whether a retry is safe, whether it streams, and which request field names the object
//! it acts on. Nothing here is written per method: a new service or method is known to the
//! gateway as soon as its proto is in the descriptor set.

use std::collections::HashMap;

use prost::Message as _;
use prost_types::{
    DescriptorProto, FileDescriptorSet, MethodDescriptorProto,
    field_descriptor_proto::{Label, Type},
    method_options::IdempotencyLevel,
};

/// The classes of calls that have their own rate limits (settings `gateway.limits.<class>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MethodClass {
    /// `Get*`, `List*`, `Watch*`: one object or one page.
    Reads,
    /// Everything that changes something and is not an import.
    Writes,
    /// `Search*`, `Analyze*`: reads whose cost grows with the data (text search, graph
    /// traversal), limited apart so they cannot starve plain reads.
    Searches,
    /// `StageImport`, `CommitImport`, `DiscardImport`: bulk writes.
    Imports,
}

impl MethodClass {
    pub const ALL: [MethodClass; 4] = [
        MethodClass::Reads,
        MethodClass::Writes,
        MethodClass::Searches,
        MethodClass::Imports,
    ];

    /// The name in settings and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            MethodClass::Reads => "reads",
            MethodClass::Writes => "writes",
            MethodClass::Searches => "searches",
            MethodClass::Imports => "imports",
        }
    }

    /// The class of a method by its name, as the protos name them (Google's API design guide):
    /// the verb comes first. Searches are checked before reads, reads before imports, so
    /// `GetImport` and `ListImports` are reads.
    pub fn of_method(method: &str) -> MethodClass {
        let starts = |verb: &str| {
            method
                .strip_prefix(verb)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(char::is_uppercase))
        };
        if starts("Search") || starts("Analyze") {
            MethodClass::Searches
        } else if starts("Get") || starts("List") || starts("Watch") {
            MethodClass::Reads
        } else if method.contains("Import") {
            MethodClass::Imports
        } else {
            MethodClass::Writes
        }
    }

    /// Reads and searches change nothing: sending one twice is harmless.
    pub fn changes_nothing(self) -> bool {
        matches!(self, MethodClass::Reads | MethodClass::Searches)
    }
}

/// One public method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodInfo {
    /// `desk.tickets.v1.TicketService`.
    pub service: String,
    /// The service that owns it (`tickets`: the `services.<name>` of its address).
    pub owner: String,
    /// `GetTicket`.
    pub name: String,
    pub class: MethodClass,
    /// A retry cannot change anything twice: the method is a read by its name, or its proto
    /// says `option idempotency_level = NO_SIDE_EFFECTS` (or `IDEMPOTENT`).
    pub idempotent: bool,
    pub client_streaming: bool,
    pub server_streaming: bool,
    /// The request field whose value names the object the call acts on (see [`id_field_of`]);
    /// the gateway reads its region to pick the region that answers.
    pub id_field: Option<u32>,
}

impl MethodInfo {
    /// For a path of a public package that the descriptor set does not have (a service built
    /// from newer protos than this gateway): routed by its package, classed by its name, never
    /// retried, its body streamed through untouched.
    pub fn unknown(path: &str) -> Option<MethodInfo> {
        let (service, name) = split_path(path)?;
        let owner = owner_of_service(service)?;
        let class = MethodClass::of_method(name);
        Some(MethodInfo {
            service: service.to_owned(),
            owner: owner.to_owned(),
            name: name.to_owned(),
            class,
            idempotent: false,
            client_streaming: true,
            server_streaming: true,
            id_field: None,
        })
    }

    /// Its request is one message that the gateway may read and send again.
    pub fn is_unary_request(&self) -> bool {
        !self.client_streaming
    }
}

/// A public gRPC service and the service (process) that owns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicService {
    /// `desk.tickets.v1.TicketService`.
    pub name: String,
    /// `tickets`.
    pub owner: String,
}

/// Every public method by its HTTP/2 path (`/desk.tickets.v1.TicketService/GetTicket`).
#[derive(Debug, Clone, Default)]
pub struct MethodTable {
    by_path: HashMap<String, MethodInfo>,
    services: Vec<PublicService>,
}

impl MethodTable {
    /// The public services of an encoded `FileDescriptorSet`: those of `desk.<owner>.<version>`
    /// packages. Well-known types, health and reflection are not public services.
    pub fn from_descriptor_set(encoded: &[u8]) -> Result<MethodTable, prost::DecodeError> {
        let set = FileDescriptorSet::decode(encoded)?;
        let mut messages: HashMap<String, &DescriptorProto> = HashMap::new();
        for file in &set.file {
            let package = file.package();
            for message in &file.message_type {
                messages.insert(format!(".{package}.{}", message.name()), message);
            }
        }
        let mut table = MethodTable::default();
        for file in &set.file {
            let package = file.package();
            let Some(owner) = owner_of_package(package) else {
                continue;
            };
            for service in &file.service {
                let service_name = format!("{package}.{}", service.name());
                for method in &service.method {
                    let info = method_info(&service_name, owner, method, &messages);
                    table
                        .by_path
                        .insert(format!("/{service_name}/{}", method.name()), info);
                }
                table.services.push(PublicService {
                    name: service_name,
                    owner: owner.to_owned(),
                });
            }
        }
        Ok(table)
    }

    pub fn method(&self, path: &str) -> Option<&MethodInfo> {
        self.by_path.get(path)
    }

    /// Every public service, in descriptor order.
    pub fn services(&self) -> &[PublicService] {
        &self.services
    }

    /// The public services `owner` serves (`tickets` → `desk.tickets.v1.TicketService`).
    pub fn services_of<'a>(&'a self, owner: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.services
            .iter()
            .filter(move |service| service.owner == owner)
            .map(|service| service.name.as_str())
    }
}

fn method_info(
    service: &str,
    owner: &str,
    method: &MethodDescriptorProto,
    messages: &HashMap<String, &DescriptorProto>,
) -> MethodInfo {
    let class = MethodClass::of_method(method.name());
    let marked_idempotent = method.options.as_ref().is_some_and(|options| {
        matches!(
            options.idempotency_level(),
            IdempotencyLevel::NoSideEffects | IdempotencyLevel::Idempotent
        )
    });
    MethodInfo {
        service: service.to_owned(),
        owner: owner.to_owned(),
        name: method.name().to_owned(),
        class,
        idempotent: marked_idempotent || class.changes_nothing(),
        client_streaming: method.client_streaming(),
        server_streaming: method.server_streaming(),
        id_field: messages
            .get(method.input_type())
            .and_then(|m| id_field_of(m)),
    }
}

/// The field that names the object a request acts on: field number 1, a single `string`,
/// named `id` or `<something>_id` (`GetTicketRequest.id`, `AddCommentRequest.ticket_id`,
/// `ListRelationshipsRequest.ci_id`). Requests that create something or list by filters have
/// none (their field 1 is a type, a name or a filter), and are answered in the gateway's own
/// region. This is the protos' convention: the object a call is about is its first field.
pub fn id_field_of(message: &DescriptorProto) -> Option<u32> {
    let field = message.field.iter().find(|f| f.number() == 1)?;
    let named_as_id = field.name() == "id" || field.name().ends_with("_id");
    (named_as_id && field.r#type() == Type::String && field.label() != Label::Repeated).then_some(1)
}

/// `desk.tickets.v1` → `tickets`; `None` for packages that are not a desk service's
/// (`google.protobuf`, `grpc.health.v1`, `desk.common.v1` has no services and owns none).
pub fn owner_of_package(package: &str) -> Option<&str> {
    let mut parts = package.split('.');
    let (Some("desk"), Some(owner), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let is_version = version.strip_prefix('v').is_some_and(|rest| {
        rest.starts_with(|c: char| c.is_ascii_digit())
            && rest.chars().all(|c| c.is_ascii_alphanumeric())
    });
    (is_version && !owner.is_empty()).then_some(owner)
}

/// `desk.tickets.v1.TicketService` → `tickets`.
pub fn owner_of_service(service: &str) -> Option<&str> {
    let (package, _) = service.rsplit_once('.')?;
    owner_of_package(package)
}

/// `/desk.tickets.v1.TicketService/GetTicket` → (`desk.tickets.v1.TicketService`, `GetTicket`).
pub fn split_path(path: &str) -> Option<(&str, &str)> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    (!service.is_empty() && !method.is_empty() && !method.contains('/'))
        .then_some((service, method))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> MethodTable {
        MethodTable::from_descriptor_set(desk_proto::FILE_DESCRIPTOR_SET).expect("decodes")
    }

    #[test]
    fn methods_are_classed_by_their_verb() {
        for (method, class) in [
            ("GetTicket", MethodClass::Reads),
            ("ListTickets", MethodClass::Reads),
            ("WatchMyUpdates", MethodClass::Reads),
            ("GetImport", MethodClass::Reads),
            ("ListImports", MethodClass::Reads),
            ("AnalyzeImpact", MethodClass::Searches),
            ("SearchArticles", MethodClass::Searches),
            ("StageImport", MethodClass::Imports),
            ("CommitImport", MethodClass::Imports),
            ("DiscardImport", MethodClass::Imports),
            ("CreateTicket", MethodClass::Writes),
            ("UpdateTicketSettings", MethodClass::Writes),
            // A verb is a whole word: `Getaway` is not a read, `Listen` not a list.
            ("Getaway", MethodClass::Writes),
            ("Listen", MethodClass::Writes),
        ] {
            assert_eq!(MethodClass::of_method(method), class, "{method}");
        }
    }

    #[test]
    fn the_table_has_every_public_service_and_no_other() {
        let table = table();
        let names: Vec<&str> = table.services().iter().map(|s| s.name.as_str()).collect();
        assert!(
            names.contains(&"desk.tickets.v1.TicketService"),
            "{names:?}"
        );
        assert!(names.contains(&"desk.cmdb.v1.CmdbService"), "{names:?}");
        assert!(names.iter().all(|n| n.starts_with("desk.")), "{names:?}");
        assert_eq!(
            table.services_of("tickets").collect::<Vec<_>>(),
            ["desk.tickets.v1.TicketService"]
        );
    }

    #[test]
    fn reads_are_idempotent_and_writes_are_not() {
        let table = table();
        let get = table
            .method("/desk.tickets.v1.TicketService/GetTicket")
            .expect("known");
        assert!(get.idempotent && get.is_unary_request());
        assert_eq!(get.owner, "tickets");
        let create = table
            .method("/desk.tickets.v1.TicketService/CreateTicket")
            .expect("known");
        assert!(!create.idempotent);
        let impact = table
            .method("/desk.cmdb.v1.CmdbService/AnalyzeImpact")
            .expect("known");
        assert_eq!(impact.class, MethodClass::Searches);
        assert!(impact.idempotent);
    }

    #[test]
    fn the_id_field_is_a_first_field_named_as_an_id() {
        let table = table();
        let id_field = |path: &str| table.method(path).expect(path).id_field;
        assert_eq!(
            id_field("/desk.tickets.v1.TicketService/GetTicket"),
            Some(1)
        );
        assert_eq!(
            id_field("/desk.tickets.v1.TicketService/AddComment"),
            Some(1)
        );
        assert_eq!(
            id_field("/desk.cmdb.v1.CmdbService/ListRelationships"),
            Some(1)
        );
        assert_eq!(id_field("/desk.cmdb.v1.CmdbService/GetImport"), Some(1));
        // Creates and filtered lists are answered where they are made.
        assert_eq!(
            id_field("/desk.tickets.v1.TicketService/CreateTicket"),
            None
        );
        assert_eq!(id_field("/desk.cmdb.v1.CmdbService/CreateCi"), None);
        assert_eq!(id_field("/desk.cmdb.v1.CmdbService/ListCis"), None);
        // A repeated field of ids names several objects, possibly of several regions.
        assert_eq!(id_field("/desk.cmdb.v1.CmdbService/AnalyzeImpact"), None);
    }

    #[test]
    fn owners_come_from_versioned_desk_packages_only() {
        assert_eq!(owner_of_package("desk.tickets.v1"), Some("tickets"));
        assert_eq!(owner_of_package("desk.cmdb.v2beta1"), Some("cmdb"));
        for package in [
            "grpc.health.v1",
            "google.protobuf",
            "desk.tickets",
            "desk..v1",
            "desk.a.b.v1",
            "desk.x.version",
        ] {
            assert_eq!(owner_of_package(package), None, "{package}");
        }
        assert_eq!(owner_of_service("desk.cmdb.v1.CmdbService"), Some("cmdb"));
    }

    #[test]
    fn an_unknown_method_of_a_public_package_is_routed_but_never_retried() {
        let info = MethodInfo::unknown("/desk.knowledge.v1.KnowledgeService/GetArticle")
            .expect("public package");
        assert_eq!(info.owner, "knowledge");
        assert_eq!(info.class, MethodClass::Reads);
        assert!(!info.idempotent && !info.is_unary_request());
        assert_eq!(MethodInfo::unknown("/grpc.health.v1.Health/Check"), None);
        assert_eq!(MethodInfo::unknown("/nonsense"), None);
    }
}
