//! The staff pages: login, the first password, the worklist and its actions, logout. Plain
//! server-rendered HTML with one stylesheet and no script, in Swedish by default and English on
//! request (`?lang=en`), usable on a phone-sized screen and with the keyboard alone.
//!
//! Served only over the service's TLS. Every state-changing request is a POST that must come
//! from this origin (`Origin`) and, once logged in, carry the session's CSRF token; anything
//! else is refused before it is read. Responses are never cached and allow no framing and no
//! script. The rules are in [`crate::worklist`] and [`crate::sessions`]; this module renders and
//! translates.

use crate::deadline::Urgency;
use crate::intake::{ClinicKeys, Intake};
use crate::sessions::{LoginError, Session, Sessions};
use crate::worklist::{Action, Entry, Worklist, WorklistError};
use axum::extract::{Form, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::Utc;
use lotsa_core::clock::to_stockholm;
use lotsa_core::program::Bundle;
use lotsa_core::text::Lang;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;

/// The session cookie's name (`__Host-`: only over HTTPS, for this host, for every path).
pub const SESSION_COOKIE: &str = "__Host-lotsa-staff";

/// The shortest password staff may choose.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// What the staff pages need.
pub struct StaffSite {
    /// The intake, for its database.
    pub intake: Arc<Intake>,
    /// The keys that open stored referrals.
    pub keys: ClinicKeys,
    /// The verified bundle served.
    pub bundle: Bundle,
    /// The access log's HMAC key.
    pub log_key: [u8; 32],
    /// Who is logged in.
    pub sessions: Sessions,
}

type Site = Arc<StaffSite>;

/// The staff routes, under `/staff`.
pub fn routes(site: Site) -> Router {
    Router::new()
        .route("/staff", get(|| async { see_other("/staff/worklist") }))
        .route("/staff/style.css", get(style))
        .route("/staff/login", get(login_page).post(login))
        .route("/staff/password", get(password_page).post(change_password))
        .route("/staff/worklist", get(worklist_page))
        .route("/staff/outcomes", get(outcomes_page))
        .route("/staff/devices", get(devices_page))
        .route("/staff/referrals/{id}/{verb}", post(act))
        .route("/staff/logout", post(logout))
        .with_state(site)
}

#[derive(Deserialize, Default)]
struct LangQuery {
    lang: Option<String>,
}

fn lang_of(code: Option<&str>) -> Lang {
    match code {
        Some("en") => Lang::En,
        _ => Lang::Sv,
    }
}

/// `?lang=en` kept on a link or a redirect.
fn lang_param(lang: Lang) -> &'static str {
    match lang {
        Lang::En => "?lang=en",
        Lang::Sv => "",
    }
}

/// Escapes text for HTML (element content and quoted attribute values).
fn esc(text: &str) -> String {
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

fn secure(mut response: Response) -> Response {
    let h = response.headers_mut();
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000",
        ),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    response
}

fn see_other(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    secure(r)
}

fn html(status: StatusCode, lang: Lang, title: &str, body: &str) -> Response {
    let code = lang.code();
    let page = format!(
        "<!doctype html>\n<html lang=\"{code}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t}</title><link rel=\"stylesheet\" href=\"/staff/style.css\"></head>\
         <body><main id=\"main\">{body}</main></body></html>\n",
        t = esc(title)
    );
    let mut r = (status, page).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    secure(r)
}

/// A refusal page (no personal data, nothing of the request repeated).
fn refused(status: StatusCode, lang: Lang, sv: &str, en: &str) -> Response {
    let text = lang.pick(sv, en);
    let back = lang.pick("Till arbetslistan", "To the worklist");
    html(
        status,
        lang,
        text,
        &format!(
            "<h1>{}</h1><p><a href=\"/staff/worklist{}\">{back}</a></p>",
            esc(text),
            lang_param(lang)
        ),
    )
}

/// A state-changing request without this origin, a live session or the right CSRF token.
fn forbidden(lang: Lang) -> Response {
    refused(
        StatusCode::FORBIDDEN,
        lang,
        "Begäran vägrades",
        "Request refused",
    )
}

async fn style() -> Response {
    let mut r = STYLE.into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/css"));
    secure(r)
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_string())
}

/// A POST from this origin: its `Origin` is `https://` and the `Host` it was sent to.
fn same_origin(headers: &HeaderMap) -> bool {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    matches!((host, origin), (Some(h), Some(o)) if o == format!("https://{h}"))
}

fn session_of(site: &StaffSite, headers: &HeaderMap) -> Option<(String, Session)> {
    let token = cookie_token(headers)?;
    let session = site
        .sessions
        .get(site.intake.storage(), &token, Utc::now().timestamp())?;
    Some((token, session))
}

fn worklist(site: &StaffSite) -> Worklist<'_> {
    Worklist {
        storage: site.intake.storage(),
        keys: &site.keys,
        bundle: &site.bundle,
        log_key: &site.log_key,
    }
}

async fn login_page(Query(q): Query<LangQuery>) -> Response {
    let lang = lang_of(q.lang.as_deref());
    login_form(StatusCode::OK, lang, None)
}

fn login_form(status: StatusCode, lang: Lang, error: Option<&str>) -> Response {
    let title = lang.pick("Logga in – Lotsa mottagning", "Log in – Lotsa clinic");
    let error = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", esc(e)))
        .unwrap_or_default();
    let other = match lang {
        Lang::Sv => "<a href=\"/staff/login?lang=en\" lang=\"en\">In English</a>",
        Lang::En => "<a href=\"/staff/login\" lang=\"sv\">På svenska</a>",
    };
    let body = format!(
        "<h1>{h}</h1>{error}<form method=\"post\" action=\"/staff/login\">\
         <input type=\"hidden\" name=\"lang\" value=\"{code}\">\
         <p><label for=\"name\">{n}</label><input id=\"name\" name=\"name\" autocomplete=\"username\" required></p>\
         <p><label for=\"password\">{p}</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required></p>\
         <p><button type=\"submit\">{b}</button></p></form><p>{other}</p>",
        h = esc(lang.pick("Logga in", "Log in")),
        code = lang.code(),
        n = esc(lang.pick("Namn", "Name")),
        p = esc(lang.pick("Lösenord", "Password")),
        b = esc(lang.pick("Logga in", "Log in")),
    );
    html(status, lang, title, &body)
}

#[derive(Deserialize)]
struct LoginForm {
    name: String,
    password: String,
    lang: Option<String>,
}

fn session_cookie(token: &str, max_age: i64) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={token}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={max_age}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

async fn login(State(site): State<Site>, headers: HeaderMap, Form(f): Form<LoginForm>) -> Response {
    let lang = lang_of(f.lang.as_deref());
    if !same_origin(&headers) {
        return refused(StatusCode::FORBIDDEN, lang, "Fel ursprung", "Wrong origin");
    }
    let now = Utc::now().timestamp();
    match site
        .sessions
        .login(site.intake.storage(), &f.name, &f.password, now)
    {
        Ok((token, session)) => {
            let next = if session.must_change_password {
                "/staff/password"
            } else {
                "/staff/worklist"
            };
            let mut r = see_other(&format!("{next}{}", lang_param(lang)));
            r.headers_mut().insert(
                header::SET_COOKIE,
                session_cookie(&token, crate::sessions::IDLE_SECS),
            );
            r
        }
        Err(LoginError::Throttled) => login_form(
            StatusCode::TOO_MANY_REQUESTS,
            lang,
            Some(lang.pick(
                "För många misslyckade inloggningar. Försök igen om en kvart.",
                "Too many failed logins. Try again in a quarter of an hour.",
            )),
        ),
        Err(LoginError::Refused) => login_form(
            StatusCode::UNAUTHORIZED,
            lang,
            Some(lang.pick("Fel namn eller lösenord.", "Wrong name or password.")),
        ),
        Err(_) => refused(
            StatusCode::INTERNAL_SERVER_ERROR,
            lang,
            "Inloggningen misslyckades",
            "The login failed",
        ),
    }
}

async fn password_page(
    State(site): State<Site>,
    headers: HeaderMap,
    Query(q): Query<LangQuery>,
) -> Response {
    let lang = lang_of(q.lang.as_deref());
    let Some((_, session)) = session_of(&site, &headers) else {
        return see_other(&format!("/staff/login{}", lang_param(lang)));
    };
    password_form(StatusCode::OK, lang, &session, None)
}

fn password_form(
    status: StatusCode,
    lang: Lang,
    session: &Session,
    error: Option<&str>,
) -> Response {
    let error = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", esc(e)))
        .unwrap_or_default();
    let body = format!(
        "<h1>{h}</h1><p>{intro}</p>{error}<form method=\"post\" action=\"/staff/password\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input type=\"hidden\" name=\"lang\" value=\"{code}\">\
         <p><label for=\"new\">{n}</label><input id=\"new\" name=\"new\" type=\"password\" autocomplete=\"new-password\" minlength=\"{min}\" required></p>\
         <p><label for=\"again\">{a}</label><input id=\"again\" name=\"again\" type=\"password\" autocomplete=\"new-password\" minlength=\"{min}\" required></p>\
         <p><button type=\"submit\">{b}</button></p></form>",
        h = esc(lang.pick("Välj ett eget lösenord", "Choose your own password")),
        intro = esc(&lang.pick(
            format!("Engångslösenordet gäller bara för första inloggningen. Minst {MIN_PASSWORD_CHARS} tecken."),
            format!("The one-time password is for the first login only. At least {MIN_PASSWORD_CHARS} characters."),
        )),
        csrf = esc(&session.csrf),
        code = lang.code(),
        n = esc(lang.pick("Nytt lösenord", "New password")),
        a = esc(lang.pick("Samma igen", "The same again")),
        b = esc(lang.pick("Spara", "Save")),
        min = MIN_PASSWORD_CHARS,
    );
    html(
        status,
        lang,
        lang.pick("Nytt lösenord", "New password"),
        &body,
    )
}

#[derive(Deserialize)]
struct PasswordForm {
    csrf: String,
    new: String,
    again: String,
    lang: Option<String>,
}

async fn change_password(
    State(site): State<Site>,
    headers: HeaderMap,
    Form(f): Form<PasswordForm>,
) -> Response {
    let lang = lang_of(f.lang.as_deref());
    let Some((token, session)) = checked(&site, &headers, &f.csrf) else {
        return forbidden(lang);
    };
    if f.new != f.again {
        let e = lang.pick("Lösenorden är inte lika.", "The passwords differ.");
        return password_form(StatusCode::BAD_REQUEST, lang, &session, Some(e));
    }
    if f.new.chars().count() < MIN_PASSWORD_CHARS {
        let e = lang.pick("Lösenordet är för kort.", "The password is too short.");
        return password_form(StatusCode::BAD_REQUEST, lang, &session, Some(e));
    }
    let saved = crate::staff::hash_password(&f.new)
        .ok()
        .and_then(|hash| {
            site.intake
                .storage()
                .set_password(&session.staff, &hash)
                .ok()
        })
        .unwrap_or(false);
    if !saved {
        return refused(
            StatusCode::INTERNAL_SERVER_ERROR,
            lang,
            "Lösenordet gick inte att spara",
            "The password could not be saved",
        );
    }
    site.sessions.password_changed(&token);
    see_other(&format!("/staff/worklist{}", lang_param(lang)))
}

/// The session of a state-changing request: same origin, live session, right CSRF token.
fn checked(site: &StaffSite, headers: &HeaderMap, csrf: &str) -> Option<(String, Session)> {
    if !same_origin(headers) {
        return None;
    }
    let (token, session) = session_of(site, headers)?;
    // Compared as digests: how long the comparison takes says nothing about the token.
    let same = lotsa_core::crypto::sha256(session.csrf.as_bytes())
        == lotsa_core::crypto::sha256(csrf.as_bytes());
    same.then_some((token, session))
}

async fn worklist_page(
    State(site): State<Site>,
    headers: HeaderMap,
    Query(q): Query<LangQuery>,
) -> Response {
    let lang = lang_of(q.lang.as_deref());
    let Some((_, session)) = session_of(&site, &headers) else {
        return see_other(&format!("/staff/login{}", lang_param(lang)));
    };
    if session.must_change_password {
        return see_other(&format!("/staff/password{}", lang_param(lang)));
    }
    let now = Utc::now();
    let entries = match worklist(&site).waiting(&session.staff, now) {
        Ok(e) => e,
        Err(_) => {
            return refused(
                StatusCode::INTERNAL_SERVER_ERROR,
                lang,
                "Arbetslistan gick inte att läsa",
                "The worklist could not be read",
            )
        }
    };
    let mut body = format!(
        "{nav}<header><h1>{h}</h1><p>{who}</p><form method=\"post\" action=\"/staff/logout\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input type=\"hidden\" name=\"lang\" value=\"{code}\">\
         <button type=\"submit\">{out}</button></form></header>",
        nav = nav(lang),
        h = esc(lang.pick("Väntar på första samtal", "Waiting for a first call")),
        who = esc(&lang.pick(
            format!("Inloggad: {} · {} att ringa", session.staff, entries.len()),
            format!("Logged in: {} · {} to call", session.staff, entries.len()),
        )),
        csrf = esc(&session.csrf),
        code = lang.code(),
        out = esc(lang.pick("Logga ut", "Log out")),
    );
    let colleagues: Vec<String> = site
        .intake
        .storage()
        .staff()
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m.disabled_at.is_none() && m.name != session.staff)
        .map(|m| m.name)
        .collect();
    if entries.is_empty() {
        body.push_str(&format!(
            "<p>{}</p>",
            esc(lang.pick("Ingen väntar just nu.", "Nobody is waiting right now."))
        ));
    } else {
        body.push_str("<ol class=\"worklist\">");
        for e in &entries {
            body.push_str(&entry_html(e, &session, &colleagues, lang));
        }
        body.push_str("</ol>");
    }
    html(
        StatusCode::OK,
        lang,
        lang.pick("Arbetslista – Lotsa mottagning", "Worklist – Lotsa clinic"),
        &body,
    )
}

/// The links between the staff pages.
fn nav(lang: Lang) -> String {
    let q = lang_param(lang);
    format!(
        "<nav aria-label=\"{label}\"><ul class=\"nav\"><li><a href=\"/staff/worklist{q}\">{w}</a></li>\
         <li><a href=\"/staff/outcomes{q}\">{o}</a></li><li><a href=\"/staff/devices{q}\">{d}</a></li></ul></nav>",
        label = esc(lang.pick("Sidor", "Pages")),
        w = esc(lang.pick("Arbetslista", "Worklist")),
        o = esc(lang.pick("Utfall", "Outcomes")),
        d = esc(lang.pick("Telefoner", "Phones")),
    )
}

/// The session of a page view (not a change): logged in, password chosen; else where to go.
fn viewer(site: &StaffSite, headers: &HeaderMap, lang: Lang) -> Result<Session, Box<Response>> {
    let Some((_, session)) = session_of(site, headers) else {
        return Err(Box::new(see_other(&format!(
            "/staff/login{}",
            lang_param(lang)
        ))));
    };
    if session.must_change_password {
        return Err(Box::new(see_other(&format!(
            "/staff/password{}",
            lang_param(lang)
        ))));
    }
    Ok(session)
}

fn outcome_label(code: &str, lang: Lang) -> &'static str {
    match code {
        "contacted_in_time" => lang.pick("nådda i tid", "contacted in time"),
        "contacted_late" => lang.pick("nådda för sent", "contacted late"),
        "never_reached" => lang.pick("aldrig nådda", "never reached"),
        "declined" => lang.pick("tackade nej", "declined"),
        "called_first" => lang.pick("ringde själva", "called first"),
        "withdrawn" => lang.pick("återkallade", "withdrawn"),
        _ => lang.pick("annat", "other"),
    }
}

async fn outcomes_page(
    State(site): State<Site>,
    headers: HeaderMap,
    Query(q): Query<LangQuery>,
) -> Response {
    use crate::figures::{rows, Cell, OUTCOMES, SUPPRESS_BELOW};
    let lang = lang_of(q.lang.as_deref());
    if let Err(go) = viewer(&site, &headers, lang) {
        return *go;
    }
    let Ok(counts) = site.intake.storage().outcomes() else {
        return refused(
            StatusCode::INTERNAL_SERVER_ERROR,
            lang,
            "Utfallen gick inte att läsa",
            "The outcomes could not be read",
        );
    };
    let table = rows(&counts, None, None, None);
    let mut head = format!(
        "<th scope=\"col\">{}</th><th scope=\"col\">{}</th>",
        esc(lang.pick("Vecka", "Week")),
        esc(lang.pick("Program", "Program"))
    );
    for o in OUTCOMES {
        head.push_str(&format!(
            "<th scope=\"col\">{}</th>",
            esc(outcome_label(o, lang))
        ));
    }
    let mut body_rows = String::new();
    let mut chart = String::new();
    let widest = table
        .iter()
        .flat_map(|r| r.cells)
        .filter_map(|c| match c {
            Cell::Count(n) => Some(n),
            Cell::Suppressed => None,
        })
        .max()
        .unwrap_or(0)
        .max(1);
    for (i, r) in table.iter().enumerate() {
        body_rows.push_str(&format!(
            "<tr><th scope=\"row\">{}</th><td>{}</td>",
            esc(&r.week),
            esc(&r.program_id)
        ));
        for c in r.cells {
            body_rows.push_str(&format!("<td>{}</td>", esc(&c.text())));
        }
        body_rows.push_str("</tr>");
        // The chart: contacted in time against all shown, one bar per row (suppressed cells
        // draw nothing).
        let in_time = match r.cells[0] {
            Cell::Count(n) => n,
            Cell::Suppressed => 0,
        };
        let y = i * 28;
        chart.push_str(&format!(
            "<text x=\"0\" y=\"{ty}\">{label}</text><rect x=\"180\" y=\"{y}\" height=\"20\" width=\"{w}\" class=\"bar\"></rect>\
             <text x=\"{tx}\" y=\"{ty}\">{n}</text>",
            ty = y + 15,
            label = esc(&format!("{} {}", r.week, r.program_id)),
            w = 300 * in_time / widest,
            tx = 186 + 300 * in_time / widest,
            n = esc(&r.cells[0].text()),
        ));
    }
    let note = lang.pick(
        format!(
            "Celler med 1–{} döljs (<{SUPPRESS_BELOW}), som i officiell statistik.",
            SUPPRESS_BELOW - 1
        ),
        format!(
            "Cells of 1–{} are suppressed (<{SUPPRESS_BELOW}), as official statistics do.",
            SUPPRESS_BELOW - 1
        ),
    );
    let body = if table.is_empty() {
        format!(
            "{}<h1>{}</h1><p>{}</p>",
            nav(lang),
            esc(lang.pick("Utfall per vecka", "Outcomes per week")),
            esc(lang.pick("Inga utfall ännu.", "No outcomes yet."))
        )
    } else {
        format!(
            "{nav}<h1>{h}</h1><p>{note}</p><div class=\"scroll\"><table><caption>{cap}</caption><thead><tr>{head}</tr></thead><tbody>{body_rows}</tbody></table></div>\
             <h2>{ch}</h2><svg role=\"img\" aria-labelledby=\"chart-title\" viewBox=\"0 0 560 {height}\" class=\"chart\"><title id=\"chart-title\">{ch}</title>{chart}</svg>",
            nav = nav(lang),
            h = esc(lang.pick("Utfall per vecka", "Outcomes per week")),
            note = esc(&note),
            cap = esc(lang.pick("Första kontakten per program och vecka", "First contact per program and week")),
            ch = esc(lang.pick("Nådda i tid", "Contacted in time")),
            height = table.len() * 28,
        )
    };
    html(
        StatusCode::OK,
        lang,
        lang.pick("Utfall – Lotsa mottagning", "Outcomes – Lotsa clinic"),
        &body,
    )
}

async fn devices_page(
    State(site): State<Site>,
    headers: HeaderMap,
    Query(q): Query<LangQuery>,
) -> Response {
    let lang = lang_of(q.lang.as_deref());
    if let Err(go) = viewer(&site, &headers, lang) {
        return *go;
    }
    let endpoint = site
        .bundle
        .programs()
        .iter()
        .find(|p| site.intake.serves(&p.id))
        .map(|p| p.clinic.endpoint.clone())
        .unwrap_or_default();
    let Ok(devices) = site.intake.storage().devices() else {
        return refused(
            StatusCode::INTERNAL_SERVER_ERROR,
            lang,
            "Telefonerna gick inte att läsa",
            "The phones could not be read",
        );
    };
    let devices = crate::backlog::view(devices, Some(&site.bundle), &endpoint, Utc::now());
    let mut rows = String::new();
    for d in &devices {
        let waiting = d.backlog.as_ref().map_or_else(
            || "—".to_string(),
            |b| crate::backlog::waiting(b).to_string(),
        );
        let flag = if d.silent_with_backlog {
            format!(
                "<strong class=\"flag\">{}</strong>",
                esc(lang.pick(
                    "Tyst med väntande remisser",
                    "Silent with referrals waiting"
                ))
            )
        } else if d.revoked_at.is_some() {
            esc(lang.pick("spärrad", "revoked"))
        } else {
            String::new()
        };
        let seen = d
            .last_seen_at
            .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
            .map_or_else(|| "—".to_string(), local);
        rows.push_str(&format!(
            "<tr><th scope=\"row\"><code>{}</code></th><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&d.device_id),
            esc(&seen),
            esc(&waiting),
            d.held,
            flag
        ));
    }
    let body = format!(
        "{nav}<h1>{h}</h1><p>{intro}</p><div class=\"scroll\"><table><caption>{h}</caption><thead><tr>\
         <th scope=\"col\">{c1}</th><th scope=\"col\">{c2}</th><th scope=\"col\">{c3}</th><th scope=\"col\">{c4}</th><th scope=\"col\">{c5}</th>\
         </tr></thead><tbody>{rows}</tbody></table></div>",
        nav = nav(lang),
        h = esc(lang.pick("Registrerade telefoner", "Enrolled phones")),
        intro = esc(lang.pick(
            "Vad varje telefon senast sa att den har kvar att skicka hit. Inga personuppgifter.",
            "What each phone last said it still has to send here. No personal data.",
        )),
        c1 = esc(lang.pick("Telefon", "Phone")),
        c2 = esc(lang.pick("Senast hörd", "Last heard")),
        c3 = esc(lang.pick("Väntar i telefonen", "Waiting on the phone")),
        c4 = esc(lang.pick("Remisser här", "Referrals held")),
        c5 = esc(lang.pick("Flagga", "Flag")),
    );
    html(
        StatusCode::OK,
        lang,
        lang.pick("Telefoner – Lotsa mottagning", "Phones – Lotsa clinic"),
        &body,
    )
}

fn local(t: chrono::DateTime<Utc>) -> String {
    to_stockholm(t).format("%Y-%m-%d %H:%M").to_string()
}

fn urgency_label(u: Urgency, lang: Lang) -> &'static str {
    match u {
        Urgency::InTime => lang.pick("i tid", "in time"),
        Urgency::DueSoon => lang.pick("snart försenad", "due soon"),
        Urgency::Overdue => lang.pick("försenad", "overdue"),
    }
}

fn action_label(a: Action, lang: Lang) -> &'static str {
    match a {
        Action::Contacted => lang.pick("Nådd", "Contacted"),
        Action::NotReached => lang.pick("Inte nådd, försök igen", "Not reached, try again"),
        Action::Declined => lang.pick("Tackade nej", "Declined"),
        Action::CalledUsFirst => lang.pick("Ringde oss själv", "Called us first"),
        Action::WithdrewByPhone => lang.pick("Återkallade per telefon", "Withdrew by phone"),
    }
}

/// What a consent's data item is called on the page.
fn field_label(f: lotsa_core::program::Field, lang: Lang) -> &'static str {
    use lotsa_core::program::Field;
    match f {
        Field::Name => lang.pick("namn", "name"),
        Field::Phone => lang.pick("telefon", "phone"),
        Field::Language => lang.pick("språk", "language"),
        Field::BestTime => lang.pick("bästa tid", "best time"),
        Field::Note => lang.pick("anteckning", "note"),
        Field::Personnummer => lang.pick("personnummer", "personnummer"),
        Field::BirthDate => lang.pick("födelsedatum", "date of birth"),
        Field::Kommunkod => lang.pick("kommun", "municipality"),
    }
}

/// What a reason code is called on the page (the code is what is stored).
fn reason_label(code: &str, lang: Lang) -> &'static str {
    match code {
        "talked" => lang.pick("pratade", "talked"),
        "appointment_booked" => lang.pick("tid bokad", "appointment booked"),
        "referred_on" => lang.pick("hänvisad vidare", "referred on"),
        "no_answer" => lang.pick("inget svar", "no answer"),
        "voicemail" => lang.pick("röstbrevlåda", "voicemail"),
        "phone_off" => lang.pick("telefonen avstängd", "phone off"),
        "wrong_number" => lang.pick("fel nummer", "wrong number"),
        "not_now" => lang.pick("inte nu", "not now"),
        "not_interested" => lang.pick("inte intresserad", "not interested"),
        "other_help" => lang.pick("får hjälp på annat håll", "gets help elsewhere"),
        "called_us" => lang.pick("ringde oss", "called us"),
        "withdrew" => lang.pick("återkallade", "withdrew"),
        _ => lang.pick("annat", "other"),
    }
}

fn entry_html(e: &Entry, session: &Session, colleagues: &[String], lang: Lang) -> String {
    let c = &e.payload.contact;
    let dash = "—".to_string();
    let name = c
        .name
        .clone()
        .unwrap_or_else(|| lang.pick("(inget namn)", "(no name)").into());
    let phone = c
        .phone
        .as_ref()
        .map(|p| format!("<a href=\"tel:{0}\">{0}</a>", esc(p)))
        .unwrap_or_else(|| dash.clone());
    let items: Vec<&str> = e
        .payload
        .consent
        .data_items
        .iter()
        .map(|f| field_label(*f, lang))
        .collect();
    let script = &e.payload.consent.script;
    let provisional = if e.payload.eligibility.provisional {
        format!(
            "<p class=\"flag\">{}</p>",
            esc(lang.pick("Bekräfta folkbokföring", "Confirm folkbokföring"))
        )
    } else {
        String::new()
    };
    let id = esc(&e.handover_id);
    let hidden = format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"lang\" value=\"{}\">",
        esc(&session.csrf),
        lang.code()
    );
    let claim = match &e.claimed_by {
        Some((who, until)) if *who == session.staff => {
            let mut options = String::new();
            for a in Action::ALL {
                options.push_str(&format!("<optgroup label=\"{}\">", esc(action_label(a, lang))));
                for r in a.reasons() {
                    options.push_str(&format!(
                        "<option value=\"{}:{}\">{}: {}</option>",
                        a.code(),
                        r,
                        esc(action_label(a, lang)),
                        esc(reason_label(r, lang))
                    ));
                }
                options.push_str("</optgroup>");
            }
            format!(
                "<p>{mine}</p><form method=\"post\" action=\"/staff/referrals/{id}/record\">{hidden}\
                 <label for=\"outcome-{id}\">{what}</label><select id=\"outcome-{id}\" name=\"outcome\">{options}</select>\
                 <button type=\"submit\">{save}</button></form>\
                 <form method=\"post\" action=\"/staff/referrals/{id}/release\">{hidden}<button type=\"submit\">{release}</button></form>{handover}",
                mine = esc(&lang.pick(
                    format!("Du ringer (till {})", local(*until)),
                    format!("You are calling (until {})", local(*until)),
                )),
                what = esc(lang.pick("Hur gick samtalet?", "How did the call go?")),
                save = esc(lang.pick("Spara", "Save")),
                release = esc(lang.pick("Släpp", "Release")),
                handover = reassign_form(&id, &hidden, colleagues, lang),
            )
        }
        Some((who, _)) => format!(
            "<p>{}</p>",
            esc(&lang.pick(format!("{who} ringer"), format!("{who} is calling")))
        ),
        None => format!(
            "<form method=\"post\" action=\"/staff/referrals/{id}/claim\">{hidden}<button type=\"submit\">{}</button></form>",
            esc(lang.pick("Jag ringer", "I will call"))
        ),
    };
    let attempts = if e.attempts.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = e
            .attempts
            .iter()
            .map(|a| {
                let when = chrono::DateTime::from_timestamp(a.at, 0)
                    .map(local)
                    .unwrap_or_default();
                let action = Action::from_code(&a.outcome).map_or("", |x| action_label(x, lang));
                format!(
                    "<li>{} {} {}: {}</li>",
                    esc(&when),
                    esc(&a.staff),
                    esc(action),
                    esc(reason_label(&a.reason, lang))
                )
            })
            .collect();
        format!(
            "<h3>{}</h3><ul>{}</ul>",
            esc(lang.pick("Tidigare försök", "Earlier attempts")),
            list.join("")
        )
    };
    format!(
        "<li class=\"{urgency_code}\"><article aria-labelledby=\"h-{id}\"><h2 id=\"h-{id}\">{name}</h2>\
         <p class=\"due\">{due_l}: {due} ({urgency})</p>{provisional}\
         <dl><dt>{phone_l}</dt><dd>{phone}</dd><dt>{lang_l}</dt><dd>{language}</dd>\
         <dt>{best_l}</dt><dd>{best}</dd><dt>{note_l}</dt><dd>{note}</dd>\
         <dt>{program_l}</dt><dd>{program}</dd>\
         <dt>{consent_l}</dt><dd>{items} · {script_id} v{version} ({script_lang})</dd>\
         <dt>{received_l}</dt><dd>{received}</dd></dl>{claim}{attempts}</article></li>",
        urgency_code = e.urgency.code(),
        name = esc(&name),
        due_l = esc(lang.pick("Ring senast", "Call by")),
        due = esc(&local(e.deadline)),
        urgency = esc(urgency_label(e.urgency, lang)),
        phone_l = esc(lang.pick("Telefon", "Phone")),
        lang_l = esc(lang.pick("Språk", "Language")),
        language = esc(c.language.as_ref().unwrap_or(&dash)),
        best_l = esc(lang.pick("Bäst att ringa", "Best time to call")),
        best = esc(c.best_time.as_ref().unwrap_or(&dash)),
        note_l = esc(lang.pick("Anteckning", "Note")),
        note = esc(c.note.as_ref().unwrap_or(&dash)),
        program_l = esc(lang.pick("Program", "Program")),
        program = esc(&e.program_name),
        consent_l = esc(lang.pick("Samtycket omfattar", "The consent covers")),
        items = esc(&items.join(", ")),
        script_id = esc(&script.id),
        version = script.version,
        script_lang = esc(script.language.code()),
        received_l = esc(lang.pick("Mottagen", "Received")),
        received = esc(&local(e.received_at)),
    )
}

/// Hands one's claim to a colleague (only when there is one).
fn reassign_form(id: &str, hidden: &str, colleagues: &[String], lang: Lang) -> String {
    if colleagues.is_empty() {
        return String::new();
    }
    let options: String = colleagues
        .iter()
        .map(|c| format!("<option value=\"{0}\">{0}</option>", esc(c)))
        .collect();
    format!(
        "<form method=\"post\" action=\"/staff/referrals/{id}/reassign\">{hidden}\
         <label for=\"to-{id}\">{l}</label><select id=\"to-{id}\" name=\"to\">{options}</select>\
         <button type=\"submit\">{b}</button></form>",
        l = esc(lang.pick("Lämna över till", "Hand over to")),
        b = esc(lang.pick("Lämna över", "Hand over")),
    )
}

#[derive(Deserialize)]
struct ActForm {
    csrf: String,
    lang: Option<String>,
    outcome: Option<String>,
    to: Option<String>,
}

async fn act(
    State(site): State<Site>,
    headers: HeaderMap,
    Path(params): Path<HashMap<String, String>>,
    Form(f): Form<ActForm>,
) -> Response {
    let lang = lang_of(f.lang.as_deref());
    let Some((_, session)) = checked(&site, &headers, &f.csrf) else {
        return forbidden(lang);
    };
    if session.must_change_password {
        return see_other(&format!("/staff/password{}", lang_param(lang)));
    }
    let (Some(id), Some(verb)) = (params.get("id"), params.get("verb")) else {
        return refused(StatusCode::NOT_FOUND, lang, "Finns inte", "Not found");
    };
    let list = worklist(&site);
    let now = Utc::now();
    let done = match verb.as_str() {
        "claim" => list.claim(&session.staff, id, now).map(|_| ()),
        "release" => list.release(&session.staff, id, now),
        "reassign" => match f.to.as_deref().map(crate::staff::normalize_name) {
            Some(Ok(to)) => list.reassign(&session.staff, id, &to, now),
            _ => Err(WorklistError::BadReason),
        },
        "record" => {
            let parsed = f
                .outcome
                .as_deref()
                .and_then(|o| o.split_once(':'))
                .and_then(|(a, r)| Some((Action::from_code(a)?, r.to_string())));
            match parsed {
                Some((action, reason)) => list.record(&session.staff, id, action, &reason, now),
                None => Err(WorklistError::BadReason),
            }
        }
        _ => return refused(StatusCode::NOT_FOUND, lang, "Finns inte", "Not found"),
    };
    match done {
        Ok(()) => see_other(&format!("/staff/worklist{}", lang_param(lang))),
        Err(WorklistError::NotWaiting) => refused(
            StatusCode::NOT_FOUND,
            lang,
            "Ingen väntande remiss har det id:t",
            "No waiting referral has that id",
        ),
        Err(WorklistError::ClaimedBy(_)) => refused(
            StatusCode::CONFLICT,
            lang,
            "En kollega ringer redan den här personen",
            "A colleague is already calling this person",
        ),
        Err(WorklistError::NotClaimed) => refused(
            StatusCode::CONFLICT,
            lang,
            "Ta remissen först (eller ditt anspråk har gått ut)",
            "Claim the referral first (or your claim ran out)",
        ),
        Err(WorklistError::NoSuchColleague) => refused(
            StatusCode::BAD_REQUEST,
            lang,
            "Ingen aktiv kollega har det namnet",
            "No active colleague has that name",
        ),
        Err(WorklistError::BadReason) => refused(
            StatusCode::BAD_REQUEST,
            lang,
            "Välj ett utfall ur listan",
            "Choose an outcome from the list",
        ),
        Err(_) => refused(
            StatusCode::INTERNAL_SERVER_ERROR,
            lang,
            "Det gick inte att spara",
            "It could not be saved",
        ),
    }
}

#[derive(Deserialize)]
struct LogoutForm {
    csrf: String,
    lang: Option<String>,
}

async fn logout(
    State(site): State<Site>,
    headers: HeaderMap,
    Form(f): Form<LogoutForm>,
) -> Response {
    let lang = lang_of(f.lang.as_deref());
    let Some((token, _)) = checked(&site, &headers, &f.csrf) else {
        return forbidden(lang);
    };
    site.sessions.logout(&token);
    let mut r = see_other(&format!("/staff/login{}", lang_param(lang)));
    r.headers_mut()
        .insert(header::SET_COOKIE, session_cookie("", 0));
    r
}

/// The one stylesheet: readable on a phone, a visible keyboard focus, colours with AA contrast.
const STYLE: &str = "\
:root{color:#1a1a1a;background:#fff;font:16px/1.5 system-ui,sans-serif}\
body{margin:0 auto;max-width:48rem;padding:1rem}\
h1{font-size:1.5rem}h2{font-size:1.25rem;margin:.25rem 0}h3{font-size:1rem}\
label{display:block;font-weight:600}\
input,select,button{font:inherit;padding:.5rem;margin:.25rem 0;max-width:100%}\
button{background:#0b4f8a;color:#fff;border:0;border-radius:.25rem;cursor:pointer}\
a{color:#0b4f8a}\
:focus-visible{outline:3px solid #b35900;outline-offset:2px}\
.error{color:#a40000;font-weight:600}\
.worklist{list-style:none;padding:0}\
.worklist>li{border:1px solid #767676;border-radius:.25rem;padding:.75rem;margin:.75rem 0}\
.worklist>li.due_soon{border-left:.5rem solid #b35900}\
.worklist>li.overdue{border-left:.5rem solid #a40000}\
.flag{font-weight:600;color:#7a3e00}\
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem .75rem}dt{font-weight:600}dd{margin:0}\
header form{display:inline}\
.nav{list-style:none;padding:0;display:flex;gap:1rem;flex-wrap:wrap}\
.scroll{overflow-x:auto}table{border-collapse:collapse}th,td{border:1px solid #767676;padding:.25rem .5rem;text-align:left}\
.chart{width:100%;max-width:40rem}.chart text{font-size:14px;fill:#1a1a1a}.bar{fill:#0b4f8a}\
";
