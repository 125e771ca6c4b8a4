//! Templates per event type, channel and locale: the variables a template may use, validation
//! when one is saved (it must parse and use no unknown variable), rendering with minijinja, the
//! locale fallback chain, and the built-in templates in English, Swedish, Indonesian, Simplified
//! Chinese, Spanish and Italian.

use std::collections::BTreeSet;

use icu_locale_core::Locale;
use minijinja::{Environment, UndefinedBehavior};
use serde_json::Value;

use super::rules::{
    TICKET_ASSIGNED, TICKET_COMMENTED, TICKET_CREATED, TICKET_ESCALATED, TICKET_RESOLVED,
    TICKET_STATUS_CHANGED,
};

/// What a template may refer to: top-level names and, for objects, their fields. An empty field
/// list means a value used whole (text or a list to loop over).
pub const VARIABLES: &[(&str, &[&str])] = &[
    (
        "ticket",
        &[
            "id",
            "number",
            "title",
            "description",
            "type",
            "status",
            "status_label",
            "priority",
            "priority_label",
            "tier",
            "major_incident",
            "requester_name",
            "assignee_name",
            "group_name",
            "assigned_to",
            "awaiting_you",
            "resolution",
        ],
    ),
    ("actor", &["name", "subject"]),
    ("recipient", &["name"]),
    ("comment", &["author", "body"]),
    ("event", &["type", "id"]),
    ("note", &[]),
    ("changes", &[]),
    ("locale", &[]),
];

/// The locales with built-in templates; the last resort of every fallback chain is English.
pub const BUILT_IN_LOCALES: &[&str] = &["en", "sv", "id", "zh-Hans", "es", "it"];

/// Fuel for one render: a bound on the work a user-written template can make (loops).
const FUEL: u64 = 50_000;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TemplateSource {
    pub subject: String,
    pub text_body: String,
    /// E-mail only; built from the text when absent.
    pub html_body: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// A field of a template that does not parse or names an unknown variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateProblem {
    /// `subject`, `text_body` or `html_body`.
    pub field: &'static str,
    pub message: String,
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            minijinja::AutoEscape::Html
        } else {
            minijinja::AutoEscape::None
        }
    });
    env
}

fn parts(source: &TemplateSource) -> Vec<(&'static str, &'static str, &str)> {
    let mut parts = vec![
        ("subject", "subject.txt", source.subject.as_str()),
        ("text_body", "body.txt", source.text_body.as_str()),
    ];
    if let Some(html) = &source.html_body {
        parts.push(("html_body", "body.html", html.as_str()));
    }
    parts
}

/// Whether `name` (as minijinja reports it, dotted) is a known variable.
fn known(name: &str) -> bool {
    let mut segments = name.split('.');
    let top = segments.next().unwrap_or_default();
    let Some((_, fields)) = VARIABLES.iter().find(|(n, _)| *n == top) else {
        return false;
    };
    match segments.next() {
        None => true,
        Some(field) => fields.contains(&field),
    }
}

/// Every problem of every part: a syntax error, or the unknown variables it uses.
pub fn validate(source: &TemplateSource) -> Vec<TemplateProblem> {
    let mut problems = Vec::new();
    if source.subject.trim().is_empty() {
        problems.push(TemplateProblem {
            field: "subject",
            message: "must not be empty".into(),
        });
    }
    if source.text_body.trim().is_empty() {
        problems.push(TemplateProblem {
            field: "text_body",
            message: "must not be empty".into(),
        });
    }
    let mut env = environment();
    for (field, name, text) in parts(source) {
        // Compile first: `undeclared_variables` reports nothing for a template that does not parse.
        if let Err(e) = env.add_template_owned(name, text.to_owned()) {
            problems.push(TemplateProblem {
                field,
                message: format!("does not parse: {e}"),
            });
            continue;
        }
        let Ok(template) = env.get_template(name) else {
            continue;
        };
        let unknown: BTreeSet<String> = template
            .undeclared_variables(true)
            .into_iter()
            .filter(|v| !known(v))
            .collect();
        if !unknown.is_empty() {
            problems.push(TemplateProblem {
                field,
                message: format!(
                    "unknown variable{}: {}",
                    if unknown.len() == 1 { "" } else { "s" },
                    unknown.into_iter().collect::<Vec<_>>().join(", ")
                ),
            });
        }
    }
    problems
}

/// Renders every part; a template validated when saved fails only on missing data (a variable
/// the event did not carry) or when it runs out of fuel.
pub fn render(source: &TemplateSource, variables: &Value) -> Result<Rendered, String> {
    let mut env = environment();
    let mut out = Vec::new();
    for (field, name, text) in parts(source) {
        env.add_template_owned(name, text.to_owned())
            .map_err(|e| format!("{field}: {e}"))?;
        let template = env
            .get_template(name)
            .map_err(|e| format!("{field}: {e}"))?;
        let rendered = template
            .render(minijinja::value::Serde(variables))
            .map_err(|e| format!("{field}: {e}"))?;
        out.push(rendered);
    }
    let mut out = out.into_iter();
    let subject = out.next().unwrap_or_default();
    // One line: a template's stray newline must not break the header.
    let subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
    let text = out.next().unwrap_or_default();
    let html = match out.next() {
        Some(html) => html,
        None => html_from_text(&subject, &text),
    };
    Ok(Rendered {
        subject,
        text,
        html,
    })
}

/// Escapes text for HTML; five characters, not worth a dependency.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The HTML part of a template without one: the text's paragraphs, escaped.
fn html_from_text(subject: &str, text: &str) -> String {
    let mut html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title></head><body>\n",
        escape_html(subject)
    );
    for paragraph in text.split("\n\n").filter(|p| !p.trim().is_empty()) {
        let lines: Vec<String> = paragraph.lines().map(escape_html).collect();
        html.push_str("<p>");
        html.push_str(&lines.join("<br>\n"));
        html.push_str("</p>\n");
    }
    html.push_str("</body></html>\n");
    html
}

/// The canonical form of a BCP 47 tag, or `None` when it is not one.
pub fn canonical_locale(tag: &str) -> Option<String> {
    if tag.trim().is_empty() {
        return None;
    }
    Locale::try_from_str(tag).ok().map(|l| l.to_string())
}

/// The locales to look for, most specific first: the tag itself, without its region, its
/// language alone; then the same for the tenant's default; English last. Chinese without a
/// script reads as Simplified unless its region writes Traditional.
pub fn fallback_chain(requested: &str, tenant_default: &str) -> Vec<String> {
    let mut chain: Vec<String> = Vec::new();
    let mut push = |tag: String| {
        if !chain.contains(&tag) {
            chain.push(tag);
        }
    };
    for tag in [requested, tenant_default, "en"] {
        let Ok(locale) = Locale::try_from_str(tag) else {
            continue;
        };
        let id = &locale.id;
        let language = id.language.to_string();
        let script = id.script.map(|s| s.to_string()).or_else(|| {
            (language == "zh").then(|| match id.region.map(|r| r.to_string()).as_deref() {
                Some("TW" | "HK" | "MO") => "Hant".to_owned(),
                _ => "Hans".to_owned(),
            })
        });
        push(id.to_string());
        if let Some(script) = &script {
            push(format!("{language}-{script}"));
        }
        push(language);
    }
    chain
}

/// The first of `available` (locale, template) in the chain's order.
pub fn select<'a, T>(available: &'a [(String, T)], chain: &[String]) -> Option<(&'a str, &'a T)> {
    chain.iter().find_map(|want| {
        available
            .iter()
            .find(|(locale, _)| locale.eq_ignore_ascii_case(want))
            .map(|(locale, t)| (locale.as_str(), t))
    })
}

/// The built-in template of an event type in a built-in locale.
pub fn built_in(event_type: &str, locale: &str) -> Option<TemplateSource> {
    BUILT_IN
        .iter()
        .find(|(t, l, _, _)| *t == event_type && *l == locale)
        .map(|(_, _, subject, text)| TemplateSource {
            subject: (*subject).to_owned(),
            text_body: (*text).to_owned(),
            html_body: None,
        })
}

/// Every built-in template of an event type, by locale.
pub fn built_ins(event_type: &str) -> Vec<(String, TemplateSource)> {
    BUILT_IN_LOCALES
        .iter()
        .filter_map(|l| built_in(event_type, l).map(|t| ((*l).to_owned(), t)))
        .collect()
}

/// A ticket status in words, for `ticket.status_label`.
pub fn status_label(locale: &str, status: &str) -> String {
    let row = match status {
        "new" => ["New", "Ny", "Baru", "新建", "Nuevo", "Nuovo"],
        "assigned" => [
            "Assigned",
            "Tilldelad",
            "Ditugaskan",
            "已分派",
            "Asignado",
            "Assegnato",
        ],
        "in_progress" => [
            "In progress",
            "Pågår",
            "Sedang dikerjakan",
            "处理中",
            "En curso",
            "In lavorazione",
        ],
        "pending" => [
            "Waiting",
            "Väntar",
            "Menunggu",
            "等待中",
            "En espera",
            "In attesa",
        ],
        "resolved" => [
            "Resolved",
            "Löst",
            "Selesai",
            "已解决",
            "Resuelto",
            "Risolto",
        ],
        "closed" => ["Closed", "Stängd", "Ditutup", "已关闭", "Cerrado", "Chiuso"],
        other => return other.to_owned(),
    };
    row[locale_index(locale)].to_owned()
}

/// A priority (1 most urgent) in words, for `ticket.priority_label`.
pub fn priority_label(locale: &str, priority: i64) -> String {
    let row = match priority {
        1 => [
            "Critical", "Kritisk", "Kritis", "紧急", "Crítica", "Critica",
        ],
        2 => ["High", "Hög", "Tinggi", "高", "Alta", "Alta"],
        3 => ["Moderate", "Medel", "Sedang", "中", "Media", "Media"],
        4 => ["Low", "Låg", "Rendah", "低", "Baja", "Bassa"],
        5 => [
            "Planning",
            "Planering",
            "Perencanaan",
            "计划",
            "Planificación",
            "Pianificazione",
        ],
        other => return other.to_string(),
    };
    row[locale_index(locale)].to_owned()
}

/// The position of the first built-in locale in `locale`'s fallback chain (English otherwise).
fn locale_index(locale: &str) -> usize {
    fallback_chain(locale, "en")
        .iter()
        .find_map(|l| BUILT_IN_LOCALES.iter().position(|b| b == l))
        .unwrap_or(0)
}

/// (event type, locale, subject, text body). Written per language, not translated word by word:
/// requesters are addressed as each language addresses a customer (Swedish "du", as Swedish
/// service writing does; Spanish and Italian formal "usted"/"Lei", Indonesian "Anda", Chinese
/// "您"); agents, where the
/// tone is collegial, less formally.
const BUILT_IN: &[(&str, &str, &str, &str)] = &[
    // ticket.created → requester
    (
        TICKET_CREATED,
        "en",
        "[{{ ticket.number }}] We have received your request: {{ ticket.title }}",
        "Hello {{ recipient.name }},\n\nThank you for contacting us. We have logged your request as {{ ticket.number }} and will get back to you as soon as we can.\n\nTitle: {{ ticket.title }}\nPriority: {{ ticket.priority_label }}\n\nYou can reply to this e-mail to add anything.\n\nKind regards,\nThe service desk",
    ),
    (
        TICKET_CREATED,
        "sv",
        "[{{ ticket.number }}] Vi har tagit emot ditt ärende: {{ ticket.title }}",
        "Hej {{ recipient.name }}!\n\nTack för att du hör av dig. Vi har registrerat ditt ärende som {{ ticket.number }} och återkommer så snart vi kan.\n\nRubrik: {{ ticket.title }}\nPrioritet: {{ ticket.priority_label }}\n\nDu kan svara på det här mejlet om du vill lägga till något.\n\nVänliga hälsningar\nServicedesken",
    ),
    (
        TICKET_CREATED,
        "id",
        "[{{ ticket.number }}] Permintaan Anda sudah kami terima: {{ ticket.title }}",
        "Halo {{ recipient.name }},\n\nTerima kasih telah menghubungi kami. Permintaan Anda sudah kami catat dengan nomor {{ ticket.number }} dan akan segera kami tindak lanjuti.\n\nJudul: {{ ticket.title }}\nPrioritas: {{ ticket.priority_label }}\n\nAnda dapat membalas email ini untuk menambahkan informasi.\n\nSalam,\nTim Service Desk",
    ),
    (
        TICKET_CREATED,
        "zh-Hans",
        "[{{ ticket.number }}] 我们已收到您的请求：{{ ticket.title }}",
        "{{ recipient.name }}，您好：\n\n感谢您联系我们。您的请求已登记，编号为 {{ ticket.number }}，我们会尽快处理。\n\n标题：{{ ticket.title }}\n优先级：{{ ticket.priority_label }}\n\n如需补充信息，请直接回复此邮件。\n\n此致\n服务台",
    ),
    (
        TICKET_CREATED,
        "es",
        "[{{ ticket.number }}] Hemos recibido su solicitud: {{ ticket.title }}",
        "Hola, {{ recipient.name }}:\n\nGracias por ponerse en contacto con nosotros. Hemos registrado su solicitud con el número {{ ticket.number }} y le responderemos lo antes posible.\n\nTítulo: {{ ticket.title }}\nPrioridad: {{ ticket.priority_label }}\n\nPuede responder a este correo para añadir cualquier información.\n\nUn saludo,\nEl equipo de soporte",
    ),
    (
        TICKET_CREATED,
        "it",
        "[{{ ticket.number }}] Abbiamo ricevuto la sua richiesta: {{ ticket.title }}",
        "Gentile {{ recipient.name }},\n\ngrazie per averci contattato. Abbiamo registrato la sua richiesta con il numero {{ ticket.number }} e le risponderemo il prima possibile.\n\nTitolo: {{ ticket.title }}\nPriorità: {{ ticket.priority_label }}\n\nPuò rispondere a questa e-mail per aggiungere informazioni.\n\nCordiali saluti,\nIl team di assistenza",
    ),
    // ticket.assigned → assignee, assignment group
    (
        TICKET_ASSIGNED,
        "en",
        "[{{ ticket.number }}] New work: {{ ticket.title }}",
        "Hi {{ recipient.name }},\n\n{{ ticket.number }} \"{{ ticket.title }}\" has been assigned to {{ ticket.assigned_to }}.\n\nPriority: {{ ticket.priority_label }}\nStatus: {{ ticket.status_label }}{% if note %}\nNote: {{ note }}{% endif %}",
    ),
    (
        TICKET_ASSIGNED,
        "sv",
        "[{{ ticket.number }}] Nytt ärende att hantera: {{ ticket.title }}",
        "Hej {{ recipient.name }}!\n\nÄrendet {{ ticket.number }} ”{{ ticket.title }}” har tilldelats {{ ticket.assigned_to }}.\n\nPrioritet: {{ ticket.priority_label }}\nStatus: {{ ticket.status_label }}{% if note %}\nAnteckning: {{ note }}{% endif %}",
    ),
    (
        TICKET_ASSIGNED,
        "id",
        "[{{ ticket.number }}] Tugas baru: {{ ticket.title }}",
        "Halo {{ recipient.name }},\n\nTiket {{ ticket.number }} \"{{ ticket.title }}\" telah ditugaskan kepada {{ ticket.assigned_to }}.\n\nPrioritas: {{ ticket.priority_label }}\nStatus: {{ ticket.status_label }}{% if note %}\nCatatan: {{ note }}{% endif %}",
    ),
    (
        TICKET_ASSIGNED,
        "zh-Hans",
        "[{{ ticket.number }}] 新工单：{{ ticket.title }}",
        "{{ recipient.name }}，你好：\n\n工单 {{ ticket.number }}“{{ ticket.title }}”已分派给{{ ticket.assigned_to }}。\n\n优先级：{{ ticket.priority_label }}\n状态：{{ ticket.status_label }}{% if note %}\n备注：{{ note }}{% endif %}",
    ),
    (
        TICKET_ASSIGNED,
        "es",
        "[{{ ticket.number }}] Nuevo trabajo asignado: {{ ticket.title }}",
        "Hola, {{ recipient.name }}:\n\nEl ticket {{ ticket.number }} «{{ ticket.title }}» se ha asignado a {{ ticket.assigned_to }}.\n\nPrioridad: {{ ticket.priority_label }}\nEstado: {{ ticket.status_label }}{% if note %}\nNota: {{ note }}{% endif %}",
    ),
    (
        TICKET_ASSIGNED,
        "it",
        "[{{ ticket.number }}] Nuova attività: {{ ticket.title }}",
        "Ciao {{ recipient.name }},\n\nil ticket {{ ticket.number }} «{{ ticket.title }}» è stato assegnato a {{ ticket.assigned_to }}.\n\nPriorità: {{ ticket.priority_label }}\nStato: {{ ticket.status_label }}{% if note %}\nNota: {{ note }}{% endif %}",
    ),
    // ticket.status_changed → requester (and, when it waits for them, a request for an answer)
    (
        TICKET_STATUS_CHANGED,
        "en",
        "[{{ ticket.number }}] Status update: {{ ticket.status_label }}",
        "Hello {{ recipient.name }},\n\nYour request {{ ticket.number }} \"{{ ticket.title }}\" is now: {{ ticket.status_label }}.{% if ticket.awaiting_you %}\n\nWe need a little more information from you. Please reply to this e-mail.{% endif %}{% if note %}\n\n{{ note }}{% endif %}",
    ),
    (
        TICKET_STATUS_CHANGED,
        "sv",
        "[{{ ticket.number }}] Ny status: {{ ticket.status_label }}",
        "Hej {{ recipient.name }}!\n\nDitt ärende {{ ticket.number }} ”{{ ticket.title }}” har nu status: {{ ticket.status_label }}.{% if ticket.awaiting_you %}\n\nVi behöver lite mer information från dig. Svara gärna på det här mejlet.{% endif %}{% if note %}\n\n{{ note }}{% endif %}",
    ),
    (
        TICKET_STATUS_CHANGED,
        "id",
        "[{{ ticket.number }}] Pembaruan status: {{ ticket.status_label }}",
        "Halo {{ recipient.name }},\n\nStatus permintaan Anda {{ ticket.number }} \"{{ ticket.title }}\" sekarang: {{ ticket.status_label }}.{% if ticket.awaiting_you %}\n\nKami memerlukan sedikit informasi tambahan dari Anda. Silakan balas email ini.{% endif %}{% if note %}\n\n{{ note }}{% endif %}",
    ),
    (
        TICKET_STATUS_CHANGED,
        "zh-Hans",
        "[{{ ticket.number }}] 状态更新：{{ ticket.status_label }}",
        "{{ recipient.name }}，您好：\n\n您的请求 {{ ticket.number }}“{{ ticket.title }}”当前状态为：{{ ticket.status_label }}。{% if ticket.awaiting_you %}\n\n我们需要您补充一些信息，请直接回复此邮件。{% endif %}{% if note %}\n\n{{ note }}{% endif %}",
    ),
    (
        TICKET_STATUS_CHANGED,
        "es",
        "[{{ ticket.number }}] Actualización de estado: {{ ticket.status_label }}",
        "Hola, {{ recipient.name }}:\n\nSu solicitud {{ ticket.number }} «{{ ticket.title }}» tiene ahora el estado: {{ ticket.status_label }}.{% if ticket.awaiting_you %}\n\nNecesitamos algo más de información por su parte. Por favor, responda a este correo.{% endif %}{% if note %}\n\n{{ note }}{% endif %}",
    ),
    (
        TICKET_STATUS_CHANGED,
        "it",
        "[{{ ticket.number }}] Aggiornamento di stato: {{ ticket.status_label }}",
        "Gentile {{ recipient.name }},\n\nla sua richiesta {{ ticket.number }} «{{ ticket.title }}» è ora nello stato: {{ ticket.status_label }}.{% if ticket.awaiting_you %}\n\nAbbiamo bisogno di qualche informazione in più da parte sua: la preghiamo di rispondere a questa e-mail.{% endif %}{% if note %}\n\n{{ note }}{% endif %}",
    ),
    // ticket.commented → requester, watchers
    (
        TICKET_COMMENTED,
        "en",
        "[{{ ticket.number }}] New comment: {{ ticket.title }}",
        "Hello {{ recipient.name }},\n\n{{ comment.author }} wrote:\n\n{{ comment.body }}\n\nReply to this e-mail to answer.",
    ),
    (
        TICKET_COMMENTED,
        "sv",
        "[{{ ticket.number }}] Ny kommentar: {{ ticket.title }}",
        "Hej {{ recipient.name }}!\n\n{{ comment.author }} skrev:\n\n{{ comment.body }}\n\nSvara på det här mejlet om du vill svara.",
    ),
    (
        TICKET_COMMENTED,
        "id",
        "[{{ ticket.number }}] Komentar baru: {{ ticket.title }}",
        "Halo {{ recipient.name }},\n\n{{ comment.author }} menulis:\n\n{{ comment.body }}\n\nBalas email ini untuk menanggapi.",
    ),
    (
        TICKET_COMMENTED,
        "zh-Hans",
        "[{{ ticket.number }}] 新回复：{{ ticket.title }}",
        "{{ recipient.name }}，您好：\n\n{{ comment.author }} 写道：\n\n{{ comment.body }}\n\n如需答复，请直接回复此邮件。",
    ),
    (
        TICKET_COMMENTED,
        "es",
        "[{{ ticket.number }}] Nuevo comentario: {{ ticket.title }}",
        "Hola, {{ recipient.name }}:\n\n{{ comment.author }} escribió:\n\n{{ comment.body }}\n\nPuede contestar respondiendo a este correo.",
    ),
    (
        TICKET_COMMENTED,
        "it",
        "[{{ ticket.number }}] Nuovo commento: {{ ticket.title }}",
        "Gentile {{ recipient.name }},\n\n{{ comment.author }} ha scritto:\n\n{{ comment.body }}\n\nPer rispondere, risponda a questa e-mail.",
    ),
    // ticket.resolved → requester
    (
        TICKET_RESOLVED,
        "en",
        "[{{ ticket.number }}] Resolved: {{ ticket.title }}",
        "Hello {{ recipient.name }},\n\nYour request {{ ticket.number }} \"{{ ticket.title }}\" has been resolved.{% if ticket.resolution %}\n\nResolution: {{ ticket.resolution }}{% endif %}\n\nIf the problem is still there, just reply to this e-mail and we will reopen it.",
    ),
    (
        TICKET_RESOLVED,
        "sv",
        "[{{ ticket.number }}] Löst: {{ ticket.title }}",
        "Hej {{ recipient.name }}!\n\nDitt ärende {{ ticket.number }} ”{{ ticket.title }}” är nu löst.{% if ticket.resolution %}\n\nLösning: {{ ticket.resolution }}{% endif %}\n\nOm problemet finns kvar kan du svara på det här mejlet, så öppnar vi ärendet igen.",
    ),
    (
        TICKET_RESOLVED,
        "id",
        "[{{ ticket.number }}] Selesai: {{ ticket.title }}",
        "Halo {{ recipient.name }},\n\nPermintaan Anda {{ ticket.number }} \"{{ ticket.title }}\" telah diselesaikan.{% if ticket.resolution %}\n\nPenyelesaian: {{ ticket.resolution }}{% endif %}\n\nJika masalahnya masih terjadi, cukup balas email ini dan kami akan membukanya kembali.",
    ),
    (
        TICKET_RESOLVED,
        "zh-Hans",
        "[{{ ticket.number }}] 已解决：{{ ticket.title }}",
        "{{ recipient.name }}，您好：\n\n您的请求 {{ ticket.number }}“{{ ticket.title }}”已解决。{% if ticket.resolution %}\n\n解决方案：{{ ticket.resolution }}{% endif %}\n\n如果问题仍然存在，请直接回复此邮件，我们会重新处理。",
    ),
    (
        TICKET_RESOLVED,
        "es",
        "[{{ ticket.number }}] Resuelta: {{ ticket.title }}",
        "Hola, {{ recipient.name }}:\n\nSu solicitud {{ ticket.number }} «{{ ticket.title }}» se ha resuelto.{% if ticket.resolution %}\n\nSolución: {{ ticket.resolution }}{% endif %}\n\nSi el problema continúa, responda a este correo y la volveremos a abrir.",
    ),
    (
        TICKET_RESOLVED,
        "it",
        "[{{ ticket.number }}] Risolta: {{ ticket.title }}",
        "Gentile {{ recipient.name }},\n\nla sua richiesta {{ ticket.number }} «{{ ticket.title }}» è stata risolta.{% if ticket.resolution %}\n\nSoluzione: {{ ticket.resolution }}{% endif %}\n\nSe il problema persiste, risponda a questa e-mail e la riapriremo.",
    ),
    // ticket.escalated → group manager
    (
        TICKET_ESCALATED,
        "en",
        "[{{ ticket.number }}] Escalated: {{ ticket.title }}",
        "Hi {{ recipient.name }},\n\n{{ ticket.number }} \"{{ ticket.title }}\" has been escalated to tier {{ ticket.tier }}.\n\nPriority: {{ ticket.priority_label }}{% if ticket.major_incident %}\nMajor incident{% endif %}{% if note %}\nNote: {{ note }}{% endif %}",
    ),
    (
        TICKET_ESCALATED,
        "sv",
        "[{{ ticket.number }}] Eskalerat: {{ ticket.title }}",
        "Hej {{ recipient.name }}!\n\nÄrendet {{ ticket.number }} ”{{ ticket.title }}” har eskalerats till nivå {{ ticket.tier }}.\n\nPrioritet: {{ ticket.priority_label }}{% if ticket.major_incident %}\nStörre incident{% endif %}{% if note %}\nAnteckning: {{ note }}{% endif %}",
    ),
    (
        TICKET_ESCALATED,
        "id",
        "[{{ ticket.number }}] Dieskalasi: {{ ticket.title }}",
        "Halo {{ recipient.name }},\n\nTiket {{ ticket.number }} \"{{ ticket.title }}\" telah dieskalasi ke tier {{ ticket.tier }}.\n\nPrioritas: {{ ticket.priority_label }}{% if ticket.major_incident %}\nInsiden besar{% endif %}{% if note %}\nCatatan: {{ note }}{% endif %}",
    ),
    (
        TICKET_ESCALATED,
        "zh-Hans",
        "[{{ ticket.number }}] 已升级：{{ ticket.title }}",
        "{{ recipient.name }}，你好：\n\n工单 {{ ticket.number }}“{{ ticket.title }}”已升级至 {{ ticket.tier }} 线支持。\n\n优先级：{{ ticket.priority_label }}{% if ticket.major_incident %}\n重大事件{% endif %}{% if note %}\n备注：{{ note }}{% endif %}",
    ),
    (
        TICKET_ESCALATED,
        "es",
        "[{{ ticket.number }}] Escalado: {{ ticket.title }}",
        "Hola, {{ recipient.name }}:\n\nEl ticket {{ ticket.number }} «{{ ticket.title }}» se ha escalado al nivel {{ ticket.tier }}.\n\nPrioridad: {{ ticket.priority_label }}{% if ticket.major_incident %}\nIncidente grave{% endif %}{% if note %}\nNota: {{ note }}{% endif %}",
    ),
    (
        TICKET_ESCALATED,
        "it",
        "[{{ ticket.number }}] Escalation: {{ ticket.title }}",
        "Ciao {{ recipient.name }},\n\nil ticket {{ ticket.number }} «{{ ticket.title }}» è stato passato al livello {{ ticket.tier }}.\n\nPriorità: {{ ticket.priority_label }}{% if ticket.major_incident %}\nIncidente grave{% endif %}{% if note %}\nNota: {{ note }}{% endif %}",
    ),
];

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::rules::BUILT_IN_TYPES;

    fn sample(locale: &str) -> Value {
        json!({
            "ticket": {
                "id": "emea-1", "number": "INC-000042", "title": "Printer <jammed>",
                "description": "", "type": "incident", "status": "pending",
                "status_label": status_label(locale, "pending"), "priority": 2,
                "priority_label": priority_label(locale, 2), "tier": 2, "major_incident": false,
                "requester_name": "Anna", "assignee_name": "Budi", "group_name": "Printers",
                "assigned_to": "Budi", "awaiting_you": true, "resolution": "",
            },
            "actor": {"name": "Budi", "subject": "budi"},
            "recipient": {"name": "Anna"},
            "comment": {"author": "Budi", "body": "Could you send a photo?"},
            "event": {"type": TICKET_CREATED, "id": "e1"},
            "note": "",
            "changes": [],
            "locale": locale,
        })
    }

    fn source(subject: &str, text: &str) -> TemplateSource {
        TemplateSource {
            subject: subject.into(),
            text_body: text.into(),
            html_body: None,
        }
    }

    #[test]
    fn every_built_in_template_is_valid_and_renders_in_every_locale() {
        for event_type in BUILT_IN_TYPES {
            for locale in BUILT_IN_LOCALES {
                let template = built_in(event_type, locale)
                    .unwrap_or_else(|| panic!("{event_type} has a {locale} template"));
                assert_eq!(validate(&template), vec![], "{event_type} {locale}");
                let rendered = render(&template, &sample(locale)).expect("renders");
                assert!(
                    rendered.subject.contains("INC-000042"),
                    "{event_type} {locale}"
                );
                assert!(!rendered.subject.contains('\n'));
                assert!(rendered.html.contains("<p>"));
            }
        }
    }

    #[test]
    fn built_in_templates_speak_the_recipients_language() {
        let subject = |l: &str| {
            render(
                &built_in(TICKET_STATUS_CHANGED, l).expect("exists"),
                &sample(l),
            )
            .expect("renders")
        };
        assert!(subject("sv").subject.contains("Väntar"));
        assert!(subject("sv").text.contains("Svara gärna"));
        assert!(subject("zh-Hans").subject.contains("等待中"));
        assert!(subject("it").text.contains("la preghiamo di rispondere"));
        assert!(subject("id").text.contains("Silakan balas"));
        assert!(subject("es").text.contains("responda a este correo"));
    }

    #[test]
    fn an_unknown_variable_is_refused_naming_it() {
        let problems = validate(&source(
            "{{ ticket.number }}",
            "{{ ticket.colour }} {{ wat }}",
        ));
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].field, "text_body");
        assert!(problems[0].message.contains("ticket.colour"));
        assert!(problems[0].message.contains("wat"));
    }

    #[test]
    fn a_template_that_does_not_parse_is_refused() {
        let problems = validate(&source("{{ ticket.number ", "fine"));
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].field, "subject");
        assert!(problems[0].message.starts_with("does not parse"));
        let mut html = source("s", "t");
        html.html_body = Some("{% if %}".into());
        assert_eq!(validate(&html)[0].field, "html_body");
    }

    #[test]
    fn empty_parts_are_refused() {
        let fields: Vec<_> = validate(&source(" ", "")).iter().map(|p| p.field).collect();
        assert_eq!(fields, vec!["subject", "text_body"]);
    }

    #[test]
    fn loop_variables_are_not_unknown() {
        let t = source(
            "{{ ticket.number }}",
            "{% for c in changes %}{{ c.field }}: {{ c.new_value }}\n{% endfor %}",
        );
        assert_eq!(validate(&t), vec![]);
    }

    #[test]
    fn html_parts_are_escaped_and_text_parts_are_not() {
        let mut t = source("{{ ticket.title }}", "{{ ticket.title }}");
        t.html_body = Some("<b>{{ ticket.title }}</b>".into());
        let r = render(&t, &sample("en")).expect("renders");
        assert_eq!(r.text, "Printer <jammed>");
        assert_eq!(r.html, "<b>Printer &lt;jammed&gt;</b>");
        let derived = render(&source("s", "a <b>\n\nc"), &sample("en")).expect("renders");
        assert!(derived.html.contains("<p>a &lt;b&gt;</p>"));
    }

    #[test]
    fn a_runaway_template_runs_out_of_fuel() {
        let t = source(
            "s",
            "{% for a in range(1000) %}{% for b in range(1000) %}x{% endfor %}{% endfor %}",
        );
        assert!(render(&t, &sample("en")).is_err());
    }

    #[test]
    fn fallback_goes_from_the_specific_to_the_tenant_default_to_english() {
        assert_eq!(
            fallback_chain("sv-SE", "it"),
            vec!["sv-SE", "sv", "it", "en"]
        );
        assert_eq!(
            fallback_chain("zh-CN", "en"),
            vec!["zh-CN", "zh-Hans", "zh", "en"]
        );
        assert_eq!(fallback_chain("zh-TW", "en")[1], "zh-Hant");
        assert_eq!(fallback_chain("not a locale!", "es"), vec!["es", "en"]);
    }

    #[test]
    fn selection_takes_the_first_available_in_the_chain() {
        let available = vec![
            ("en".to_owned(), 1),
            ("zh-Hans".to_owned(), 2),
            ("sv".to_owned(), 3),
        ];
        assert_eq!(
            select(&available, &fallback_chain("zh-CN", "en")),
            Some(("zh-Hans", &2))
        );
        assert_eq!(
            select(&available, &fallback_chain("sv-FI", "en")),
            Some(("sv", &3))
        );
        assert_eq!(
            select(&available, &fallback_chain("fr", "de")),
            Some(("en", &1))
        );
        assert_eq!(select::<i32>(&[], &fallback_chain("fr", "de")), None);
    }

    #[test]
    fn labels_follow_the_locale_and_fall_back_to_english() {
        assert_eq!(status_label("sv-SE", "resolved"), "Löst");
        assert_eq!(status_label("zh-CN", "closed"), "已关闭");
        assert_eq!(status_label("fr", "new"), "New");
        assert_eq!(status_label("en", "odd"), "odd");
        assert_eq!(priority_label("it", 1), "Critica");
        assert_eq!(priority_label("id", 9), "9");
    }

    #[test]
    fn locales_are_canonicalized_or_refused() {
        assert_eq!(canonical_locale("sv-se").as_deref(), Some("sv-SE"));
        assert_eq!(canonical_locale("zh-hans").as_deref(), Some("zh-Hans"));
        assert_eq!(canonical_locale("klingon-language"), None);
        assert_eq!(canonical_locale(""), None);
    }
}
