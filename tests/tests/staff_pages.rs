//! The staff pages over real HTTPS on loopback, with a real HTTP client that keeps its cookie
//! by hand: login, the first password, the worklist fed by a phone's real deliveries, claim,
//! "contacted", logout; and every refusal the issue names (wrong password, a cookie after logout,
//! a missing or wrong CSRF token, another origin, an id that does not exist, plain HTTP), each
//! leaving the access log without a read.

use chrono::Utc;
use lotsa_clinic::pages::SESSION_COOKIE;
use lotsa_clinic::storage::AccessFilter;
use lotsa_core::sync::Trigger;
use lotsa_tests::field::{field, trusting, Field};
use reqwest::blocking::{Client, Response};
use std::io::{Read, Write};

struct Browser {
    client: Client,
    base: String,
    cookie: Option<String>,
}

impl Browser {
    fn new(f: &Field) -> Browser {
        let config = trusting(f.clinic.clinic().tls.ca_pem.as_deref().unwrap());
        let client = Client::builder()
            .tls_backend_preconfigured(config)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .unwrap();
        Browser {
            client,
            base: format!("https://{}", f.clinic.addr()),
            cookie: None,
        }
    }

    fn get(&self, path: &str) -> Response {
        let mut r = self.client.get(format!("{}{path}", self.base));
        if let Some(c) = &self.cookie {
            r = r.header("cookie", format!("{SESSION_COOKIE}={c}"));
        }
        r.send().unwrap()
    }

    /// A form POST from `origin` (this site's unless told otherwise).
    fn post_from(&self, origin: Option<&str>, path: &str, form: &[(&str, &str)]) -> Response {
        let mut r = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(
                form.iter()
                    .map(|(k, v)| format!("{k}={}", urlencode(v)))
                    .collect::<Vec<_>>()
                    .join("&"),
            );
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        if let Some(c) = &self.cookie {
            r = r.header("cookie", format!("{SESSION_COOKIE}={c}"));
        }
        r.send().unwrap()
    }

    fn post(&self, path: &str, form: &[(&str, &str)]) -> Response {
        self.post_from(Some(&self.base.clone()), path, form)
    }

    /// Logs in; keeps the cookie; returns where it was sent.
    fn login(&mut self, name: &str, password: &str) -> Response {
        let r = self.post("/staff/login", &[("name", name), ("password", password)]);
        if let Some(set) = r.headers().get("set-cookie") {
            let set = set.to_str().unwrap();
            let value = set
                .split(';')
                .next()
                .unwrap()
                .split_once('=')
                .unwrap()
                .1
                .to_string();
            self.cookie = Some(value);
        }
        r
    }
}

fn urlencode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn location(r: &Response) -> String {
    r.headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// The CSRF token a page's forms carry.
fn csrf(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    page[at..].split('"').next().unwrap().to_string()
}

#[test]
fn a_nurse_logs_in_claims_a_referral_records_the_call_and_logs_out_and_every_forgery_is_refused() {
    let mut f = field("staff-pages");
    f.enrol();
    let ids: Vec<String> = (0..2).map(|_| f.referral()).collect();
    assert_eq!(f.sync(Trigger::Manual).delivered.len(), 2);
    let storage = f.clinic.storage().unwrap();
    let (_, initial) = lotsa_clinic::staff::add(&storage, "anna", Utc::now().timestamp()).unwrap();
    let mut anna = Browser::new(&f);

    // Not logged in: sent to the login page, which is Swedish unless asked.
    let r = anna.get("/staff/worklist");
    assert_eq!(
        (r.status().as_u16(), location(&r)),
        (303, "/staff/login".into())
    );
    let page = anna.get("/staff/login").text().unwrap();
    assert!(page.contains("<html lang=\"sv\"") && page.contains("Lösenord"));
    assert!(anna
        .get("/staff/login?lang=en")
        .text()
        .unwrap()
        .contains("Password"));

    // A wrong password, and a login from another origin, are refused.
    let r = anna.login("anna", "wrong-password");
    assert_eq!(r.status().as_u16(), 401);
    assert!(anna.cookie.is_none());
    let r = anna.post_from(
        Some("https://evil.example"),
        "/staff/login",
        &[("name", "anna"), ("password", &initial)],
    );
    assert_eq!(r.status().as_u16(), 403);

    // The first login must choose a password.
    let r = anna.login("anna", &initial);
    assert_eq!(
        (r.status().as_u16(), location(&r)),
        (303, "/staff/password".into())
    );
    let set = r
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    for attr in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attr), "{set}");
    }
    assert!(set.starts_with("__Host-"));
    let r = anna.get("/staff/worklist");
    assert_eq!(location(&r), "/staff/password");
    let page = anna.get("/staff/password").text().unwrap();
    let token = csrf(&page);
    let r = anna.post(
        "/staff/password",
        &[("csrf", &token), ("new", "short"), ("again", "short")],
    );
    assert_eq!(r.status().as_u16(), 400);
    let chosen = "sommar-kvall-2026";
    let r = anna.post(
        "/staff/password",
        &[("csrf", &token), ("new", chosen), ("again", chosen)],
    );
    assert_eq!(
        (r.status().as_u16(), location(&r)),
        (303, "/staff/worklist".into())
    );

    // The worklist: both referrals, with what a nurse needs to call.
    let r = anna.get("/staff/worklist");
    assert_eq!(r.status().as_u16(), 200);
    for (name, value) in [
        ("cache-control", "no-store"),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        // Not `no-referrer`: under it a browser sends `Origin: null` on every form POST, and the
        // same-origin check refuses them all (the browser tests found this).
        ("referrer-policy", "same-origin"),
    ] {
        assert_eq!(r.headers().get(name).unwrap(), value);
    }
    assert!(r
        .headers()
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));
    let page = r.text().unwrap();
    assert!(page.contains("Kim Testsson") && page.contains("href=\"tel:+46701234567\""));
    assert!(page.contains("Ring senast") && page.contains("Lots för livet"));
    assert!(page.contains("lfl-samtycke v1"));
    for id in &ids {
        assert!(page.contains(id.as_str()));
    }
    let token = csrf(&page);
    let claim = format!("/staff/referrals/{}/claim", ids[0]);

    // Forged actions: no token, a wrong one, another origin, no origin. Nothing is claimed
    // and nothing but the page views is in the access log.
    let views_before = storage.access_log(&AccessFilter::default()).unwrap().len();
    for r in [
        anna.post(&claim, &[]),
        anna.post(&claim, &[("csrf", "0000")]),
        anna.post_from(Some("https://evil.example"), &claim, &[("csrf", &token)]),
        anna.post_from(None, &claim, &[("csrf", &token)]),
    ] {
        assert!(matches!(r.status().as_u16(), 403 | 422), "{}", r.status());
    }
    let log = storage.access_log(&AccessFilter::default()).unwrap();
    assert_eq!(log.len(), views_before);
    assert!(log.iter().all(|l| l.action == "view"));
    // An id that does not exist: refused, and not in the log.
    let missing = "00000000-0000-4000-8000-000000000000";
    let r = anna.post(
        &format!("/staff/referrals/{missing}/claim"),
        &[("csrf", &token)],
    );
    assert_eq!(r.status().as_u16(), 404);
    assert!(storage
        .access_log(&AccessFilter {
            handover_id: Some(missing.into()),
            ..AccessFilter::default()
        })
        .unwrap()
        .is_empty());

    // Claim, then "contacted": the referral leaves the list.
    let r = anna.post(&claim, &[("csrf", &token)]);
    assert_eq!(
        (r.status().as_u16(), location(&r)),
        (303, "/staff/worklist".into())
    );
    let page = anna.get("/staff/worklist").text().unwrap();
    assert!(page.contains("Du ringer"));
    let r = anna.post(
        &format!("/staff/referrals/{}/record", ids[0]),
        &[("csrf", &token), ("outcome", "contacted:talked")],
    );
    assert_eq!(r.status().as_u16(), 303);
    let page = anna.get("/staff/worklist").text().unwrap();
    assert!(!page.contains(ids[0].as_str()) && page.contains(ids[1].as_str()));

    // Logout: the same cookie, replayed, opens nothing.
    let stolen = anna.cookie.clone();
    let r = anna.post("/staff/logout", &[("csrf", &token)]);
    assert_eq!(
        (r.status().as_u16(), location(&r)),
        (303, "/staff/login".into())
    );
    anna.cookie = stolen;
    let r = anna.get("/staff/worklist");
    assert_eq!(
        (r.status().as_u16(), location(&r)),
        (303, "/staff/login".into())
    );
    let r = anna.post(
        &format!("/staff/referrals/{}/claim", ids[1]),
        &[("csrf", &token)],
    );
    assert_eq!(r.status().as_u16(), 403);
}

#[test]
fn failed_logins_lock_the_name_for_a_while_and_a_disabled_account_cannot_log_in() {
    let f = field("staff-throttle");
    let storage = f.clinic.storage().unwrap();
    let now = Utc::now().timestamp();
    let (_, bertil) = lotsa_clinic::staff::add(&storage, "bertil", now).unwrap();
    let (_, cecilia) = lotsa_clinic::staff::add(&storage, "cecilia", now).unwrap();
    let mut b = Browser::new(&f);
    for _ in 0..lotsa_clinic::sessions::MAX_FAILURES {
        assert_eq!(
            b.login("bertil", "guess-guess-guess").status().as_u16(),
            401
        );
    }
    // Now even the right password waits.
    assert_eq!(b.login("bertil", &bertil).status().as_u16(), 429);
    assert!(b.cookie.is_none());

    lotsa_clinic::staff::disable(&storage, "cecilia", now).unwrap();
    let mut c = Browser::new(&f);
    assert_eq!(c.login("cecilia", &cecilia).status().as_u16(), 401);
    assert!(c.cookie.is_none());
}

#[test]
fn the_staff_pages_are_never_served_over_plain_http() {
    let f = field("staff-plain");
    let mut tcp = std::net::TcpStream::connect(f.clinic.addr()).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    tcp.write_all(b"GET /staff/login HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = tcp.read_to_end(&mut answer);
    assert!(
        !answer.starts_with(b"HTTP/"),
        "a plain HTTP answer: {:?}",
        String::from_utf8_lossy(&answer)
    );
    assert!(!String::from_utf8_lossy(&answer).contains("<html"));
}

#[test]
fn a_claim_is_handed_over_to_a_colleague_from_the_page() {
    let mut f = field("staff-handover");
    f.enrol();
    let id = f.referral();
    assert_eq!(f.sync(Trigger::Manual).delivered.len(), 1);
    let storage = f.clinic.storage().unwrap();
    let now = Utc::now().timestamp();
    let mut ready = Vec::new();
    for name in ["anna", "bertil"] {
        let (_, initial) = lotsa_clinic::staff::add(&storage, name, now).unwrap();
        let mut b = Browser::new(&f);
        b.login(name, &initial);
        let token = csrf(&b.get("/staff/password").text().unwrap());
        let chosen = format!("{name}-eget-losenord");
        b.post(
            "/staff/password",
            &[("csrf", &token), ("new", &chosen), ("again", &chosen)],
        );
        ready.push(b);
    }
    let (anna, bertil) = (&ready[0], &ready[1]);
    let token = csrf(&anna.get("/staff/worklist").text().unwrap());
    anna.post(&format!("/staff/referrals/{id}/claim"), &[("csrf", &token)]);
    let page = anna.get("/staff/worklist").text().unwrap();
    assert!(page.contains("Lämna över till") && page.contains("<option value=\"bertil\">"));
    let r = anna.post(
        &format!("/staff/referrals/{id}/reassign"),
        &[("csrf", &token), ("to", "nobody")],
    );
    assert_eq!(r.status().as_u16(), 400);
    let r = anna.post(
        &format!("/staff/referrals/{id}/reassign"),
        &[("csrf", &token), ("to", "bertil")],
    );
    assert_eq!(r.status().as_u16(), 303);
    assert!(anna
        .get("/staff/worklist")
        .text()
        .unwrap()
        .contains("bertil ringer"));
    assert!(bertil
        .get("/staff/worklist")
        .text()
        .unwrap()
        .contains("Du ringer"));
}

#[test]
fn the_outcome_figures_and_the_phones_pages_are_for_logged_in_staff_and_show_no_person() {
    let mut f = field("staff-figures");
    f.enrol();
    let id = f.referral();
    assert_eq!(f.sync(Trigger::Manual).delivered.len(), 1);
    let storage = f.clinic.storage().unwrap();
    let (_, initial) = lotsa_clinic::staff::add(&storage, "anna", Utc::now().timestamp()).unwrap();
    let mut anna = Browser::new(&f);
    for page in ["/staff/outcomes", "/staff/devices"] {
        let r = anna.get(page);
        assert_eq!(
            (r.status().as_u16(), location(&r)),
            (303, "/staff/login".into())
        );
    }
    anna.login("anna", &initial);
    let token = csrf(&anna.get("/staff/password").text().unwrap());
    let chosen = "anna-eget-losenord";
    anna.post(
        "/staff/password",
        &[("csrf", &token), ("new", chosen), ("again", chosen)],
    );
    let token = csrf(&anna.get("/staff/worklist").text().unwrap());
    anna.post(&format!("/staff/referrals/{id}/claim"), &[("csrf", &token)]);
    anna.post(
        &format!("/staff/referrals/{id}/record"),
        &[("csrf", &token), ("outcome", "contacted:talked")],
    );
    let figures = anna.get("/staff/outcomes").text().unwrap();
    assert!(
        figures.contains("nådda i tid") && figures.contains("&lt;5"),
        "{figures}"
    );
    assert!(figures.contains("<svg role=\"img\""));
    let phones = anna.get("/staff/devices").text().unwrap();
    let device = storage.devices().unwrap()[0].device_id.clone();
    assert!(phones.contains(&device) && phones.contains("Senast hörd"));
    for page in [&figures, &phones] {
        assert!(!page.contains("Kim Testsson") && !page.contains("+46701234567"));
    }
}
