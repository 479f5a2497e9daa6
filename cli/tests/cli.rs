//! End-to-end tests of the `lotsa` binary: the real executable, real files, real exit codes.
//!
//! Every expectation here comes from the domain rules (docs/DESIGN.md) or from the example program set,
//! not from the implementation: numbers are composed with `identity::compose` (or, for dates that
//! do not exist, with an independent Luhn in this file), bundles are signed with keys this test
//! makes, and the JSON the binary prints is parsed and checked field by field.

use chrono::{Duration, NaiveDate, Utc};
use lotsa_core::identity::{self, compose};
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

// ---------------------------------------------------------------------------------------------
// Helpers

fn lotsa() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lotsa"))
}

/// Runs `lotsa` with arguments.
fn run(args: &[&str]) -> Output {
    lotsa().args(args).output().expect("the lotsa binary runs")
}

/// Runs `lotsa` with arguments and `input` on stdin.
fn run_stdin(args: &[&str], input: &str) -> Output {
    let mut child = lotsa()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the lotsa binary starts");
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let input = input.to_owned();
    // Write from another thread so a full stdout pipe can never deadlock the test.
    let writer = std::thread::spawn(move || {
        stdin.write_all(input.as_bytes()).expect("stdin accepts");
    });
    let out = child.wait_with_output().expect("the lotsa binary finishes");
    writer.join().expect("the writer thread finishes");
    out
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited normally, not by a signal")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("stdout is UTF-8")
}

/// Every stdout line as a JSON value.
fn json_lines(out: &Output) -> Vec<Value> {
    stdout(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}")))
        .collect()
}

/// The single JSON object on stdout.
fn json_one(out: &Output) -> Value {
    let lines = json_lines(out);
    assert_eq!(
        lines.len(),
        1,
        "expected one JSON line, got {}",
        stdout(out)
    );
    lines.into_iter().next().unwrap()
}

fn error_code(v: &Value) -> &str {
    v["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error.code in {v}"))
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn example_programs_path() -> PathBuf {
    repo_root().join("schemas/examples/programs.example.json")
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// A temporary directory, unique per test and process, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "lotsa-cli-test-{tag}-{}-{n}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir can be made");
        TempDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

/// The Luhn check digit over nine digits (weights 2, 1, 2, … from the left), written here
/// independently of the core so that numbers with impossible dates can be made.
fn luhn_digit(nine: &str) -> u32 {
    let sum: u32 = nine
        .bytes()
        .enumerate()
        .map(|(i, b)| {
            let v = u32::from(b - b'0') * if i % 2 == 0 { 2 } else { 1 };
            v / 10 + v % 10
        })
        .sum();
    (10 - sum % 10) % 10
}

/// `YYMMDDNNN` + its check digit, in the 10-digit form with a hyphen.
fn ten_with_check(nine: &str) -> String {
    format!("{}-{}{}", &nine[..6], &nine[6..], luhn_digit(nine))
}

/// A key pair made by `program keygen` under `dir/name`.
fn keygen(dir: &TempDir, name: &str) -> (PathBuf, PathBuf) {
    let prefix = dir.path(name);
    let out = run(&["program", "keygen", "-o", s(&prefix)]);
    assert_eq!(
        code(&out),
        0,
        "keygen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (prefix.with_extension("key"), prefix.with_extension("pub"))
}

/// The example program set re-dated around now (issued yesterday, expires in a year), so that the
/// bundle verifies whatever day the tests run — the example file's own expiry is a fixed date.
fn example_set_valid_now(dir: &TempDir) -> PathBuf {
    let text = std::fs::read_to_string(example_programs_path()).unwrap();
    let mut set: Value = serde_json::from_str(&text).unwrap();
    let now = Utc::now();
    set["issued_at"] = Value::from((now - Duration::days(1)).to_rfc3339());
    set["expires_at"] = Value::from((now + Duration::days(365)).to_rfc3339());
    for p in set["programs"].as_array_mut().unwrap() {
        for k in p["clinic"]["hpke_keys"].as_array_mut().unwrap() {
            k["not_before"] = Value::from((now - Duration::days(1)).to_rfc3339());
            k["not_after"] = Value::from((now + Duration::days(365)).to_rfc3339());
        }
    }
    let path = dir.path("programs.json");
    std::fs::write(&path, serde_json::to_string_pretty(&set).unwrap()).unwrap();
    path
}

/// A signed bundle of the example programs and the public key that verifies it.
struct SignedExample {
    dir: TempDir,
    bundle: PathBuf,
    public: PathBuf,
}

fn signed_example(tag: &str) -> SignedExample {
    let dir = TempDir::new(tag);
    let (secret, public) = keygen(&dir, "admin");
    let set = example_set_valid_now(&dir);
    let bundle = dir.path("bundle.json");
    let out = run(&[
        "program",
        "sign",
        s(&set),
        "--key",
        s(&secret),
        "-o",
        s(&bundle),
    ]);
    assert_eq!(
        code(&out),
        0,
        "sign: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    SignedExample {
        dir,
        bundle,
        public,
    }
}

// ---------------------------------------------------------------------------------------------
// id check

const ON: &str = "2026-11-23";

fn on() -> NaiveDate {
    date(2026, 11, 23)
}

#[test]
fn id_check_args_json_one_object_per_line_with_fields() {
    let pnr = compose(date(1990, 4, 12), 123, false);
    let snr = compose(date(1985, 7, 3), 228, true);
    let out = run(&["--json", "id", "check", "--on", ON, &pnr, &snr]);
    assert_eq!(code(&out), 0, "all valid → exit 0");
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 2);

    let p = &lines[0];
    assert_eq!(p["input"], pnr.as_str());
    assert_eq!(p["valid"], true);
    assert_eq!(p["kind"], "personnummer");
    assert_eq!(p["normalized"], pnr.as_str());
    assert_eq!(p["birth_date"], "1990-04-12");
    assert_eq!(p["age"], 36);
    assert!(p.get("error").is_none(), "a valid number has no error: {p}");

    let q = &lines[1];
    assert_eq!(q["input"], snr.as_str());
    assert_eq!(q["valid"], true);
    assert_eq!(q["kind"], "samordningsnummer");
    assert_eq!(q["normalized"], snr.as_str());
    assert_eq!(q["birth_date"], "1985-07-03");
    assert_eq!(q["age"], 41);
}

#[test]
fn id_check_accepts_every_written_form_of_the_same_number() {
    let twelve = compose(date(1990, 4, 12), 123, false);
    let ten = &twelve[2..];
    let forms = [
        twelve.clone(),
        format!("{}-{}", &twelve[..8], &twelve[8..]),
        ten.to_string(),
        format!("{}-{}", &ten[..6], &ten[6..]),
        format!("  {ten}  "),
    ];
    let args: Vec<&str> = ["--json", "id", "check", "--on", ON]
        .into_iter()
        .chain(forms.iter().map(String::as_str))
        .collect();
    let out = run(&args);
    assert_eq!(code(&out), 0);
    let lines = json_lines(&out);
    assert_eq!(lines.len(), forms.len());
    for l in &lines {
        assert_eq!(l["valid"], true, "{l}");
        assert_eq!(l["normalized"], twelve.as_str(), "{l}");
    }
}

#[test]
fn id_check_on_changes_the_age() {
    let pnr = compose(date(1990, 4, 12), 123, false);
    let age_on = |day: &str| {
        let out = run(&["--json", "id", "check", "--on", day, &pnr]);
        assert_eq!(code(&out), 0);
        json_one(&out)["age"].as_u64().expect("an exact age")
    };
    assert_eq!(age_on("2008-04-11"), 17, "the day before the 18th birthday");
    assert_eq!(age_on("2008-04-12"), 18, "on the 18th birthday");
    assert_eq!(age_on("2026-11-23"), 36);
}

#[test]
fn id_check_stdin_reads_one_number_per_line() {
    let a = compose(date(1970, 1, 31), 1, false);
    let b = compose(date(2001, 12, 24), 999, false);
    let out = run_stdin(
        &["--json", "id", "check", "--on", ON],
        &format!("{a}\n{b}\n"),
    );
    assert_eq!(code(&out), 0);
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["input"], a.as_str());
    assert_eq!(lines[0]["birth_date"], "1970-01-31");
    assert_eq!(lines[1]["input"], b.as_str());
    assert_eq!(lines[1]["birth_date"], "2001-12-24");
    assert_eq!(lines[1]["age"], 24);
}

#[test]
fn id_check_exit_code_is_1_when_any_is_invalid() {
    let good = compose(date(1990, 4, 12), 123, false);
    let all_good = run(&["id", "check", "--on", ON, &good]);
    assert_eq!(code(&all_good), 0);
    assert!(
        stdout(&all_good).contains(&good),
        "the table shows the input"
    );

    let one_bad = run(&["id", "check", "--on", ON, &good, "12345"]);
    assert_eq!(code(&one_bad), 1);
    // The valid one is still reported: nothing is lost because another line was bad.
    let text = stdout(&one_bad);
    assert!(
        text.contains(&good) && text.contains("wrong_length"),
        "{text}"
    );

    let via_stdin = run_stdin(
        &["--json", "id", "check", "--on", ON],
        &format!("{good}\nx\n"),
    );
    assert_eq!(code(&via_stdin), 1);
    assert_eq!(json_lines(&via_stdin).len(), 2);
}

#[test]
fn id_check_edge_cases_give_their_reason_codes() {
    // 30 February with a correct check digit: the date is the only thing wrong.
    let feb30 = ten_with_check("900230123");
    // A real date, but after --on (12 digits, so no century can be inferred away).
    let future = compose(date(2027, 1, 15), 123, false);
    // Region Stockholm style reserve number: century 99, otherwise well formed.
    let reserve = format!("99{}", &compose(date(1990, 4, 12), 123, false)[2..]);
    // A single-digit typo in the serial.
    let good = compose(date(1990, 4, 12), 123, false);
    let typo = format!("{}{}", &good[..9], (good.as_bytes()[9] - b'0' + 1) % 10) + &good[10..];
    let zero_serial = compose(date(1990, 4, 12), 0, false);
    let cases: Vec<(String, &str)> = vec![
        (String::new(), "empty"),
        ("   ".into(), "empty"),
        ("abcdefghij".into(), "invalid_characters"),
        ("12345678901".into(), "wrong_length"),
        ("900412-12".into(), "wrong_length"),
        (feb30, "invalid_date"),
        (future, "future_birth_date"),
        ("19900101-T123".into(), "interim_number"),
        ("900101-TF12".into(), "interim_number"),
        (reserve, "reserve_number"),
        (typo, "invalid_checksum"),
        (zero_serial, "zero_serial"),
        ("199004121233+".into(), "invalid_separator"),
    ];
    let input: String = cases.iter().map(|(c, _)| format!("{c}\n")).collect();
    let out = run_stdin(&["--json", "id", "check", "--on", ON], &input);
    assert_eq!(code(&out), 1);
    let lines = json_lines(&out);
    assert_eq!(lines.len(), cases.len(), "one output line per input line");
    for ((input, expected), line) in cases.iter().zip(&lines) {
        assert_eq!(line["input"], input.as_str(), "output in input order");
        assert_eq!(line["valid"], false, "{input:?} must be refused: {line}");
        assert_eq!(error_code(line), *expected, "{input:?}: {line}");
        let message = line["error"]["message"].as_str().unwrap();
        assert!(!message.is_empty(), "a readable message for {input:?}");
        if input.trim().len() >= 4 {
            assert!(
                !message.contains(input.trim()),
                "the message never repeats the number: {message}"
            );
        }
        assert!(line.get("kind").is_none() && line.get("normalized").is_none());
    }
    // The same inputs as arguments give the same codes (the empty one included).
    let args: Vec<&str> = ["--json", "id", "check", "--on", ON]
        .into_iter()
        .chain(cases.iter().map(|(c, _)| c.as_str()))
        .collect();
    let by_args = run(&args);
    assert_eq!(code(&by_args), 1);
    let codes: Vec<String> = json_lines(&by_args)
        .iter()
        .map(|l| error_code(l).to_string())
        .collect();
    let expected: Vec<String> = cases.iter().map(|(_, c)| c.to_string()).collect();
    assert_eq!(codes, expected);
}

#[test]
fn id_check_swedish_messages_with_lang_sv() {
    let out = run(&["--json", "--lang", "sv", "id", "check", "--on", ON, "12345"]);
    assert_eq!(code(&out), 1);
    let line = json_one(&out);
    assert_eq!(error_code(&line), "wrong_length");
    let sv = line["error"]["message"].as_str().unwrap().to_string();
    let en_out = run(&["--json", "id", "check", "--on", ON, "12345"]);
    let en = json_one(&en_out)["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(sv, en, "--lang sv changes the message");
    assert!(sv.contains("siffror"), "{sv}");
}

/// A small deterministic generator (xorshift64*), so the 50,000 lines are the same every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Expect {
    Valid,
    Checksum,
    Length,
    ZeroSerial,
    Characters,
}

/// One generated line and what it must give.
fn generate_line(rng: &mut Rng) -> (String, Expect) {
    // Birth dates from 1930-01-01 up to ON: every 10-digit form has one possible century.
    let span = (on() - date(1930, 1, 1)).num_days() as u64;
    let born = date(1930, 1, 1) + Duration::days(rng.below(span + 1) as i64);
    let serial = 1 + rng.below(999) as u16;
    let twelve = compose(born, serial, rng.below(4) == 0);
    let written = match rng.below(4) {
        0 => twelve.clone(),
        1 => format!("{}-{}", &twelve[..8], &twelve[8..]),
        2 => twelve[2..].to_string(),
        _ => format!("{}-{}", &twelve[2..8], &twelve[8..]),
    };
    match rng.below(10) {
        0..=5 => (written, Expect::Valid),
        6 => {
            // Change the check digit: Luhn catches every single-digit change.
            let mut b = written.into_bytes();
            let last = b.len() - 1;
            b[last] = b'0' + (b[last] - b'0' + 1 + rng.below(9) as u8) % 10;
            (String::from_utf8(b).unwrap(), Expect::Checksum)
        }
        7 => {
            // Drop one digit (never the separator).
            let digits: Vec<usize> = written
                .char_indices()
                .filter(|(_, c)| c.is_ascii_digit())
                .map(|(i, _)| i)
                .collect();
            let at = digits[rng.below(digits.len() as u64) as usize];
            let mut w = written;
            w.remove(at);
            (w, Expect::Length)
        }
        8 => (compose(born, 0, false), Expect::ZeroSerial),
        _ => {
            let mut w = written;
            w.insert(2, 'x');
            (w, Expect::Characters)
        }
    }
}

#[test]
fn id_check_fifty_thousand_lines_on_stdin() {
    const N: usize = 50_000;
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let lines: Vec<(String, Expect)> = (0..N).map(|_| generate_line(&mut rng)).collect();
    let input: String = lines.iter().map(|(l, _)| format!("{l}\n")).collect();
    let count = |e: Expect| lines.iter().filter(|(_, x)| *x == e).count();
    let expected_valid = count(Expect::Valid);
    assert!(expected_valid > 0 && expected_valid < N, "the mix has both");

    let started = Instant::now();
    let out = run_stdin(&["--json", "id", "check", "--on", ON], &input);
    let elapsed = started.elapsed();
    eprintln!(
        "id check --json: {N} lines in {:.3} s ({:.0} lines/s)",
        elapsed.as_secs_f64(),
        N as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(code(&out), 1, "some are invalid");

    let results = json_lines(&out);
    assert_eq!(results.len(), N, "every line is answered");
    let mut valid = 0;
    for ((input, expect), r) in lines.iter().zip(&results) {
        assert_eq!(r["input"], input.as_str(), "answers come in input order");
        let is_valid = r["valid"].as_bool().expect("valid is a boolean");
        let wanted = match expect {
            Expect::Valid => None,
            Expect::Checksum => Some("invalid_checksum"),
            Expect::Length => Some("wrong_length"),
            Expect::ZeroSerial => Some("zero_serial"),
            Expect::Characters => Some("invalid_characters"),
        };
        match wanted {
            None => {
                assert!(is_valid, "{input:?} should be valid: {r}");
                valid += 1;
            }
            Some(c) => {
                assert!(!is_valid, "{input:?} should be refused: {r}");
                assert_eq!(error_code(r), c, "{input:?}");
            }
        }
    }
    assert_eq!(valid, expected_valid);
    assert_eq!(
        results.iter().filter(|r| r["valid"] == false).count(),
        N - expected_valid
    );
}

// ---------------------------------------------------------------------------------------------
// geo

#[test]
fn geo_municipality_by_ascii_name_full_name_and_code() {
    for query in ["vasteras", "Västerås kommun", "1980", "VÄSTERÅS"] {
        let out = run(&["--json", "geo", "municipality", query]);
        assert_eq!(code(&out), 0, "{query}");
        let m = json_one(&out);
        assert_eq!(m["kommunkod"], "1980", "{query}: {m}");
        assert_eq!(m["name"], "Västerås", "{query}");
        assert_eq!(m["county_code"], "19", "{query}");
    }
    let text = run(&["geo", "municipality", "vasteras"]);
    assert_eq!(code(&text), 0);
    assert!(stdout(&text).contains("1980"));
}

#[test]
fn geo_unknown_municipality_exits_1_with_a_json_error() {
    let out = run(&["--json", "geo", "municipality", "Atlantis"]);
    assert_eq!(code(&out), 1);
    let e = json_one(&out);
    assert_eq!(error_code(&e), "unknown_municipality");
    assert!(!e["error"]["message"].as_str().unwrap().is_empty());

    let unknown_code = run(&["--json", "geo", "municipality", "9999"]);
    assert_eq!(code(&unknown_code), 1);
    assert_eq!(error_code(&json_one(&unknown_code)), "unknown_municipality");

    // Without --json the refusal goes to stderr, with its code.
    let human = run(&["geo", "municipality", "Atlantis"]);
    assert_eq!(code(&human), 1);
    assert!(String::from_utf8_lossy(&human.stderr).contains("unknown_municipality"));
}

#[test]
fn geo_postal_code_hint() {
    for code_text in ["111 22", "11122", "SE-111 22"] {
        let out = run(&["--json", "geo", "postal", code_text]);
        assert_eq!(code(&out), 0, "{code_text}");
        let h = json_one(&out);
        assert_eq!(h["postal_code"], "11122");
        assert_eq!(h["hint_only"], true);
        let codes: Vec<&str> = h["municipalities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["kommunkod"].as_str().unwrap())
            .collect();
        assert_eq!(codes, ["0180"], "111 22 is central Stockholm");
    }
    let bad = run(&["--json", "geo", "postal", "1234"]);
    assert_eq!(code(&bad), 1);
    assert_eq!(error_code(&json_one(&bad)), "invalid_postal_code");
}

// ---------------------------------------------------------------------------------------------
// program keygen / sign / verify

#[test]
fn program_keygen_sign_verify_round_trip() {
    let dir = TempDir::new("program");
    let (secret, public) = keygen(&dir, "admin");
    assert!(secret.exists() && public.exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secret).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "the secret key is readable by its owner only"
        );
    }

    // The example file as shipped signs (signing does not look at the clock).
    let verbatim = dir.path("verbatim.json");
    let out = run(&[
        "--json",
        "program",
        "sign",
        s(&example_programs_path()),
        "--key",
        s(&secret),
        "-o",
        s(&verbatim),
    ]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let signed = json_one(&out);
    assert_eq!(signed["programs"].as_array().unwrap().len(), 4);
    assert!(verbatim.exists());

    // A bundle that is valid today verifies and lists the four example programs.
    let set = example_set_valid_now(&dir);
    let bundle = dir.path("bundle.json");
    let out = run(&[
        "program",
        "sign",
        s(&set),
        "--key",
        s(&secret),
        "-o",
        s(&bundle),
    ]);
    assert_eq!(code(&out), 0);
    let out = run(&[
        "--json",
        "program",
        "verify",
        s(&bundle),
        "--trust",
        s(&public),
    ]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    let v = json_one(&out);
    assert_eq!(v["valid"], true);
    assert_eq!(v["example"], true);
    assert_eq!(v["signer_key_id"], signed["key_id"]);
    let ids: Vec<&str> = v["programs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "lots-for-livet",
            "snackan-gislaved",
            "snackan-ggvv",
            "kalmar"
        ]
    );

    // The trust key may also be given as the base64 text itself.
    let b64 = std::fs::read_to_string(&public).unwrap();
    let out = run(&[
        "--json",
        "program",
        "verify",
        s(&bundle),
        "--trust",
        b64.trim(),
    ]);
    assert_eq!(code(&out), 0);
}

#[test]
fn program_keygen_refuses_to_overwrite() {
    let dir = TempDir::new("keygen");
    let (secret, public) = keygen(&dir, "admin");
    let before = std::fs::read(&secret).unwrap();
    let before_pub = std::fs::read(&public).unwrap();
    let out = run(&["--json", "program", "keygen", "-o", s(&dir.path("admin"))]);
    assert_eq!(code(&out), 1);
    assert_eq!(error_code(&json_one(&out)), "file_exists");
    assert_eq!(
        std::fs::read(&secret).unwrap(),
        before,
        "the key is untouched"
    );
    assert_eq!(std::fs::read(&public).unwrap(), before_pub);
}

#[test]
fn program_verify_with_another_key_is_unknown_signer() {
    let ex = signed_example("othersigner");
    let (_, other_pub) = keygen(&ex.dir, "other");
    let out = run(&[
        "--json",
        "program",
        "verify",
        s(&ex.bundle),
        "--trust",
        s(&other_pub),
    ]);
    assert_eq!(code(&out), 1);
    assert_eq!(error_code(&json_one(&out)), "bundle_unknown_signer");
}

/// Replaces one character in the middle of the base64 payload with another base64 character, so
/// the file stays well-formed and only the signed bytes change.
fn flip_payload_byte(signed: &str) -> String {
    let mut v: Value = serde_json::from_str(signed).unwrap();
    let payload = v["payload"].as_str().unwrap().to_string();
    let mut bytes = payload.into_bytes();
    let at = bytes.len() / 2;
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    v["payload"] = Value::from(String::from_utf8(bytes).unwrap());
    serde_json::to_string_pretty(&v).unwrap()
}

#[test]
fn program_verify_tampered_payload_is_bad_signature() {
    let ex = signed_example("tamper");
    let original = std::fs::read_to_string(&ex.bundle).unwrap();
    let tampered = flip_payload_byte(&original);
    assert_ne!(tampered, original);
    std::fs::write(&ex.bundle, tampered).unwrap();
    let out = run(&[
        "--json",
        "program",
        "verify",
        s(&ex.bundle),
        "--trust",
        s(&ex.public),
    ]);
    assert_eq!(code(&out), 1);
    assert_eq!(error_code(&json_one(&out)), "bundle_bad_signature");

    // Eligibility refuses to work on it as well.
    let out = run(&[
        "--json",
        "eligibility",
        "--bundle",
        s(&ex.bundle),
        "--trust",
        s(&ex.public),
        "--program",
        "lots-for-livet",
        "--born",
        "1990-04-12",
        "--municipality",
        "Stockholm",
    ]);
    assert_eq!(code(&out), 1);
    assert_eq!(error_code(&json_one(&out)), "bundle_bad_signature");
}

#[test]
fn program_verify_not_json_is_malformed() {
    let ex = signed_example("malformed");
    let junk = ex.dir.path("junk.json");
    std::fs::write(&junk, "this is not a bundle\n").unwrap();
    let out = run(&[
        "--json",
        "program",
        "verify",
        s(&junk),
        "--trust",
        s(&ex.public),
    ]);
    assert_eq!(code(&out), 1);
    assert_eq!(error_code(&json_one(&out)), "bundle_malformed");
}

#[test]
fn program_verify_expired_bundle_is_refused() {
    let dir = TempDir::new("expired");
    let (secret, public) = keygen(&dir, "admin");
    let text = std::fs::read_to_string(example_programs_path()).unwrap();
    let mut set: Value = serde_json::from_str(&text).unwrap();
    set["issued_at"] = Value::from("2020-01-01T00:00:00+01:00");
    set["expires_at"] = Value::from("2021-01-01T00:00:00+01:00");
    // Its clinic keys were valid when it was issued (a bundle whose keys are not is refused).
    for p in set["programs"].as_array_mut().unwrap() {
        p["clinic"]["hpke_keys"][0]["not_before"] = Value::from("2019-12-01T00:00:00+01:00");
    }
    let unsigned = dir.path("old.json");
    std::fs::write(&unsigned, set.to_string()).unwrap();
    let bundle = dir.path("old-bundle.json");
    let out = run(&[
        "program",
        "sign",
        s(&unsigned),
        "--key",
        s(&secret),
        "-o",
        s(&bundle),
    ]);
    assert_eq!(code(&out), 0);
    let out = run(&[
        "--json",
        "program",
        "verify",
        s(&bundle),
        "--trust",
        s(&public),
    ]);
    assert_eq!(code(&out), 1);
    assert_eq!(error_code(&json_one(&out)), "bundle_expired");
}

#[test]
fn program_sign_refuses_an_invalid_set() {
    let dir = TempDir::new("badset");
    let (secret, _) = keygen(&dir, "admin");
    let text = std::fs::read_to_string(example_programs_path()).unwrap();
    let mut set: Value = serde_json::from_str(&text).unwrap();
    set["programs"][0]["eligibility"]["kommunkoder"][0] = Value::from("0000");
    let unsigned = dir.path("bad.json");
    std::fs::write(&unsigned, set.to_string()).unwrap();
    let bundle = dir.path("bad-bundle.json");
    let out = run(&[
        "--json",
        "program",
        "sign",
        s(&unsigned),
        "--key",
        s(&secret),
        "-o",
        s(&bundle),
    ]);
    assert_eq!(code(&out), 1);
    assert_eq!(error_code(&json_one(&out)), "bundle_invalid");
    assert!(!bundle.exists(), "nothing is written for an invalid set");
}

#[test]
fn program_sign_refuses_a_bad_callback_deadline_naming_the_field() {
    let dir = TempDir::new("badcallback");
    let (secret, _) = keygen(&dir, "admin");
    let text = std::fs::read_to_string(example_programs_path()).unwrap();
    let example: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(example["version"], 2, "the example is a version 2 set");
    let bundle = dir.path("bad-bundle.json");
    let sign = |set: &Value, extra: &[&str]| {
        let unsigned = dir.path("bad.json");
        std::fs::write(&unsigned, set.to_string()).unwrap();
        let mut args = extra.to_vec();
        args.extend([
            "program",
            "sign",
            s(&unsigned),
            "--key",
            s(&secret),
            "-o",
            s(&bundle),
        ]);
        run(&args)
    };
    // Out of range: the message names the field and the range, in English and Swedish.
    let mut set = example.clone();
    set["programs"][0]["callback_within"] = serde_json::json!({"hours": 0});
    let out = sign(&set, &["--json"]);
    assert_eq!(code(&out), 1);
    let e = json_one(&out);
    assert_eq!(error_code(&e), "bundle_invalid");
    let message = e["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("programs[0].callback_within.hours")
            && message.contains("between 1 and 720 hours"),
        "{message}"
    );
    assert!(!bundle.exists(), "nothing is written for an invalid set");
    let out = sign(&set, &["--lang", "sv"]);
    assert_eq!(code(&out), 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bundle_invalid") && stderr.contains("programs[0].callback_within.hours"),
        "{stderr}"
    );
    // Missing in a version 2 set.
    let mut set = example.clone();
    set["programs"][2]
        .as_object_mut()
        .unwrap()
        .remove("callback_within");
    let out = sign(&set, &["--json"]);
    assert_eq!(code(&out), 1);
    let e = json_one(&out);
    assert_eq!(error_code(&e), "bundle_invalid");
    let message = e["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("programs[2].callback_within")
            && message.contains("required in bundle version 2"),
        "{message}"
    );
    // Both shapes at once cannot be read at all.
    let mut set = example.clone();
    set["programs"][1]["callback_within"] = serde_json::json!({"hours": 24, "working_days": 1});
    let out = sign(&set, &["--json"]);
    assert_eq!(code(&out), 1);
    assert_eq!(error_code(&json_one(&out)), "bundle_malformed");
    assert!(!bundle.exists(), "nothing is written for an unreadable set");
}

// ---------------------------------------------------------------------------------------------
// eligibility

fn eligibility(ex: &SignedExample, extra: &[&str]) -> Output {
    let mut args = vec![
        "--json",
        "eligibility",
        "--bundle",
        s(&ex.bundle),
        "--trust",
        s(&ex.public),
        "--on",
        ON,
    ];
    args.extend_from_slice(extra);
    run(&args)
}

fn reason_codes(v: &Value) -> Vec<String> {
    v["reasons"]
        .as_array()
        .unwrap_or_else(|| panic!("no reasons in {v}"))
        .iter()
        .map(|r| r["code"].as_str().unwrap().to_string())
        .collect()
}

fn adult() -> String {
    compose(date(1990, 4, 12), 123, false)
}

#[test]
fn eligibility_stockholm_resident_with_document_is_eligible() {
    let ex = signed_example("elig-ok");
    let id = adult();
    let out = eligibility(
        &ex,
        &[
            "--program",
            "lots-for-livet",
            "--id",
            &id,
            "--municipality",
            "Stockholm",
            "--provenance",
            "document",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    let v = json_one(&out);
    assert_eq!(v["program_id"], "lots-for-livet");
    assert_eq!(v["outcome"], "eligible");
    assert_eq!(v["provisional"], false);
    assert_eq!(v["may_refer"], true);
    assert_eq!(reason_codes(&v), ["age_met", "resident"]);
    assert_eq!(v["routing"].as_array().unwrap().len(), 0);
    assert_eq!(v["basis"]["kommunkod"], "0180");
    assert_eq!(v["basis"]["age_min"], 36);
    assert_eq!(v["basis"]["age_source"], "personnummer");
    assert_eq!(v["basis"]["residency_provenance"], "document");
    assert_eq!(v["basis"]["decided_on"], ON);
    assert!(
        !v.to_string().contains(&id[2..]),
        "the verdict never carries the number"
    );
}

#[test]
fn eligibility_stated_residency_is_provisional() {
    let ex = signed_example("elig-stated");
    let out = eligibility(
        &ex,
        &[
            "--program",
            "lots-for-livet",
            "--id",
            &adult(),
            "--municipality",
            "0180",
        ],
    );
    assert_eq!(code(&out), 0);
    let v = json_one(&out);
    assert_eq!(v["outcome"], "eligible");
    assert_eq!(v["provisional"], true, "the default provenance is stated");
    assert!(reason_codes(&v).contains(&"residency_stated".to_string()));
}

#[test]
fn eligibility_gislaved_resident_is_routed_to_snackan() {
    let ex = signed_example("elig-gislaved");
    let out = eligibility(
        &ex,
        &[
            "--program",
            "lots-for-livet",
            "--id",
            &adult(),
            "--municipality",
            "Gislaved",
            "--provenance",
            "document",
        ],
    );
    assert_eq!(code(&out), 0, "a verdict is not a failure");
    let v = json_one(&out);
    assert_eq!(v["outcome"], "not_eligible");
    assert_eq!(v["may_refer"], false);
    assert!(reason_codes(&v).contains(&"not_resident".to_string()));
    let routes: BTreeSet<&str> = v["routing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["program_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        routes,
        BTreeSet::from(["snackan-gislaved", "snackan-ggvv"]),
        "{v}"
    );
    for r in v["routing"].as_array().unwrap() {
        assert!(!r["callback_promise"].as_str().unwrap().is_empty());
        assert_eq!(r["provisional"], false, "residency was shown on a document");
    }
}

#[test]
fn eligibility_municipality_nobody_covers_has_no_routing() {
    let ex = signed_example("elig-nowhere");
    let out = eligibility(
        &ex,
        &[
            "--program",
            "lots-for-livet",
            "--id",
            &adult(),
            "--municipality",
            "Kiruna",
        ],
    );
    assert_eq!(code(&out), 0);
    let v = json_one(&out);
    assert_eq!(v["outcome"], "not_eligible");
    assert_eq!(v["routing"].as_array().unwrap().len(), 0);
}

#[test]
fn eligibility_postal_code_alone_is_undetermined() {
    let ex = signed_example("elig-postal");
    let out = eligibility(
        &ex,
        &[
            "--program",
            "lots-for-livet",
            "--id",
            &adult(),
            "--postal-code",
            "111 22",
            "--provenance",
            "document",
        ],
    );
    assert_eq!(code(&out), 0);
    let v = json_one(&out);
    assert_eq!(v["outcome"], "undetermined");
    assert_eq!(v["may_refer"], false);
    assert!(reason_codes(&v).contains(&"residency_from_postal_code".to_string()));
    assert_eq!(v["basis"]["residency_from_postal_code"], true);
}

#[test]
fn eligibility_by_birth_date() {
    let ex = signed_example("elig-born");
    let run_born = |born: &str| {
        let out = eligibility(
            &ex,
            &[
                "--program",
                "lots-for-livet",
                "--born",
                born,
                "--municipality",
                "Stockholm",
                "--provenance",
                "register",
            ],
        );
        assert_eq!(code(&out), 0, "{}", stdout(&out));
        json_one(&out)
    };
    let adult = run_born("1990-04-12");
    assert_eq!(adult["outcome"], "eligible");
    assert_eq!(adult["basis"]["age_source"], "birth_date");
    assert_eq!(adult["basis"]["age_min"], 36);
    // Turns 18 the day after ON.
    let minor = run_born("2008-11-24");
    assert_eq!(minor["outcome"], "not_eligible");
    assert!(reason_codes(&minor).contains(&"too_young".to_string()));
    let just_18 = run_born("2008-11-23");
    assert_eq!(just_18["outcome"], "eligible");

    let bad = eligibility(
        &ex,
        &[
            "--program",
            "lots-for-livet",
            "--born",
            "1990-02-30",
            "--municipality",
            "Stockholm",
        ],
    );
    assert_eq!(code(&bad), 1);
    let e = json_one(&bad);
    assert_eq!(error_code(&e), "invalid_date");
    assert_eq!(e["error"]["field"], "birth_date");
}

#[test]
fn eligibility_samordningsnummer_cannot_prove_residency() {
    let ex = signed_example("elig-snr");
    let snr = compose(date(1990, 4, 12), 228, true);
    let out = eligibility(
        &ex,
        &[
            "--program",
            "lots-for-livet",
            "--id",
            &snr,
            "--municipality",
            "Stockholm",
            "--provenance",
            "document",
        ],
    );
    assert_eq!(code(&out), 0);
    let v = json_one(&out);
    assert_eq!(v["outcome"], "not_eligible");
    assert!(reason_codes(&v).contains(&"samordningsnummer_not_folkbokford".to_string()));
}

#[test]
fn eligibility_bad_id_exits_1_naming_the_field() {
    let ex = signed_example("elig-badid");
    let good = adult();
    let typo = format!("{}{}", &good[..11], (good.as_bytes()[11] - b'0' + 1) % 10);
    let out = eligibility(
        &ex,
        &[
            "--program",
            "lots-for-livet",
            "--id",
            &typo,
            "--municipality",
            "Stockholm",
        ],
    );
    assert_eq!(code(&out), 1);
    let e = json_one(&out);
    assert_eq!(error_code(&e), "invalid_checksum");
    assert_eq!(e["error"]["field"], "identity_number");

    let out = eligibility(
        &ex,
        &[
            "--program",
            "lots-for-livet",
            "--id",
            &good,
            "--municipality",
            "Atlantis",
        ],
    );
    assert_eq!(code(&out), 1);
    let e = json_one(&out);
    assert_eq!(error_code(&e), "unknown_municipality");
    assert_eq!(e["error"]["field"], "municipality");
}

#[test]
fn eligibility_unknown_program() {
    let ex = signed_example("elig-unknown");
    let out = eligibility(
        &ex,
        &[
            "--program",
            "no-such-program",
            "--id",
            &adult(),
            "--municipality",
            "Stockholm",
        ],
    );
    assert_eq!(code(&out), 1);
    let e = json_one(&out);
    assert_eq!(error_code(&e), "unknown_program");
    assert_eq!(e["error"]["field"], "program_id");
    assert!(e["error"]["message"]
        .as_str()
        .unwrap()
        .contains("lots-for-livet"));
}

#[test]
fn eligibility_without_id_or_born_is_a_usage_error() {
    let ex = signed_example("elig-usage");
    let out = eligibility(
        &ex,
        &["--program", "lots-for-livet", "--municipality", "Stockholm"],
    );
    assert_eq!(code(&out), 2, "clap usage errors exit 2");
}

// ---------------------------------------------------------------------------------------------
// demo

/// Every maximal run of ASCII digits in every string of a JSON value.
fn digit_runs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => {
            let mut run = String::new();
            for c in s.chars().chain(std::iter::once(' ')) {
                if c.is_ascii_digit() {
                    run.push(c);
                } else if !run.is_empty() {
                    out.push(std::mem::take(&mut run));
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| digit_runs(x, out)),
        Value::Object(o) => o.values().for_each(|x| digit_runs(x, out)),
        _ => {}
    }
}

#[test]
fn demo_runs_and_its_json_is_consistent() {
    let human = run(&["demo"]);
    assert_eq!(
        code(&human),
        0,
        "{}",
        String::from_utf8_lossy(&human.stderr)
    );
    let text = stdout(&human);
    for stage in 1..=5 {
        assert!(
            text.contains(&format!("[{stage}/5] ")),
            "stage {stage}: {text}"
        );
    }
    assert!(text.contains("End of shift") && text.contains("Every step did what it should"));

    let out = run(&["--json", "demo"]);
    assert_eq!(code(&out), 0);
    let v = json_one(&out);
    assert_eq!(v["totals"]["offers"], 7);
    assert_eq!(v["totals"]["handovers"], 3);
    let people = v["people"].as_array().unwrap();
    assert_eq!(people.len(), 7);
    let sealed: Vec<&str> = people
        .iter()
        .filter_map(|p| p["handover_id"].as_str())
        .collect();
    assert_eq!(sealed.len(), 3);

    // Offline, nothing went and nothing was lost; with coverage, all three went, once.
    let offline = &v["sync"]["offline"];
    assert_eq!(offline["delivered"].as_array().unwrap().len(), 0);
    assert_eq!(offline["retrying"].as_array().unwrap().len(), 3);
    let restored = &v["sync"]["restored"];
    let mut delivered: Vec<&str> = restored["delivered"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    delivered.sort();
    let mut expected = sealed.clone();
    expected.sort();
    assert_eq!(delivered, expected, "each sealed referral delivered once");

    // What each clinic holds: Stockholm got two and erased the one withdrawn after delivery;
    // Snäckan got the person routed there.
    let clinics = v["clinics"].as_array().unwrap();
    assert_eq!(clinics.len(), 2);
    let ids = |c: &Value, key: &str| -> Vec<String> {
        c[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_string())
            .collect()
    };
    let (stockholm, snackan) = (&clinics[0], &clinics[1]);
    assert_eq!(stockholm["programs"][0], "lots-for-livet");
    assert_eq!(snackan["programs"][0], "snackan-gislaved");
    let withdrawn_id = v["withdrawals"][0]["handover_id"].as_str().unwrap();
    assert_eq!(v["withdrawals"][0]["result"]["result"], "queued_for_clinic");
    assert_eq!(ids(stockholm, "withdrawn"), vec![withdrawn_id.to_string()]);
    assert_eq!(ids(stockholm, "held").len(), 1, "{stockholm}");
    assert!(!ids(stockholm, "held").contains(&withdrawn_id.to_string()));
    assert_eq!(
        ids(stockholm, "held").len() + ids(stockholm, "withdrawn").len(),
        2,
        "two delivered to Stockholm"
    );
    assert_eq!(ids(snackan, "held").len(), 1, "one delivered to Snäckan");
    assert!(ids(snackan, "withdrawn").is_empty());
    let withdrawal_id = v["withdrawals"][0]["result"]["withdrawal_id"]
        .as_str()
        .unwrap();
    assert!(v["sync"]["withdrawal"]["delivered"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d == withdrawal_id));
    for p in people.iter().filter(|p| p["handover_id"] == withdrawn_id) {
        assert_eq!(p["handover"]["contact"]["name"], "Sam");
    }

    // Stockholm exports both of its referrals as FHIR (the withdrawn one with its Consent
    // inactive); Snäckan, which promises anonymity, exports none.
    let fhir = v["fhir"].as_array().unwrap();
    assert_eq!(fhir.len(), 3);
    for export in fhir {
        let in_stockholm = export["clinic"] == stockholm["name"];
        assert_eq!(export["exported"], in_stockholm, "{export}");
        if export["handover_id"] == withdrawn_id {
            let states = [
                &export["consent"],
                &export["service_request"],
                &export["task"],
            ];
            assert_eq!(states, ["inactive", "revoked", "cancelled"]);
        } else if in_stockholm {
            assert_eq!(export["consent"], "active");
        }
    }

    // The phone forgot every payload; its queue is all delivered; the counters and the audit
    // chain hold.
    assert_eq!(v["phone"]["payloads_held"], 0);
    let counts: std::collections::HashMap<String, u64> = v["queue"]["counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c[0].as_str().unwrap().to_string(), c[1].as_u64().unwrap()))
        .collect();
    assert_eq!((counts["pending"], counts["delivered"]), (0, 4));
    let stat = |name: &str| -> u64 {
        v["stats"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["counter"] == name)
            .map(|r| r["count"].as_u64().unwrap())
            .sum()
    };
    assert_eq!(
        (stat("refusals"), stat("consents"), stat("withdrawals")),
        (1, 3, 1)
    );
    assert_eq!(stat("ineligible:too_young"), 1);
    assert_eq!(v["audit"]["ok"], true);
    assert!(v["audit"]["entries"].as_u64().unwrap() >= 12);

    let handovers: Vec<&Value> = people.iter().filter_map(|p| p.get("handover")).collect();
    assert_eq!(handovers.len(), 3, "totals.handovers matches the payloads");
    let today = v["date"].as_str().unwrap().parse::<NaiveDate>().unwrap();
    let mut lots_for_livet = 0;
    for h in &handovers {
        assert_eq!(h["schema"], "lotsa.handover/1");
        assert_eq!(h["eligibility"]["outcome"], "eligible");
        assert_eq!(h["consent"]["subject_ref"], h["handover_id"]);
        if h["program_id"] == "lots-for-livet" {
            lots_for_livet += 1;
            assert!(
                h["person"].get("personnummer").is_none(),
                "lots-for-livet never receives a personnummer: {h}"
            );
            assert!(h["person"].get("birth_date").is_none());
            let mut runs = Vec::new();
            digit_runs(h, &mut runs);
            for r in runs.iter().filter(|r| r.len() == 10 || r.len() == 12) {
                assert!(
                    identity::parse(r, today).is_err(),
                    "an identity number hides in the payload: {h}"
                );
            }
        }
    }
    assert!(lots_for_livet >= 1, "the demo hands over to lots-for-livet");
    // The people who do not end in a handover leave no personal data in the log.
    for p in people.iter().filter(|p| p.get("handover").is_none()) {
        let mut runs = Vec::new();
        digit_runs(p, &mut runs);
        for r in runs.iter().filter(|r| r.len() == 10 || r.len() == 12) {
            assert!(identity::parse(r, today).is_err(), "{p}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// field: the scriptable device

/// A field device: a store and a development vault in the example's temp dir.
struct Device {
    ex: SignedExample,
}

impl Device {
    fn new(tag: &str) -> Device {
        Device {
            ex: signed_example(tag),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        let db = self.ex.dir.path("device.sqlite");
        let vault = self.ex.dir.path("vault");
        let mut all = vec![
            "--json",
            "field",
            "--db",
            s(&db),
            "--vault",
            s(&vault),
            "--bundle",
            s(&self.ex.bundle),
            "--trust",
            s(&self.ex.public),
        ];
        all.extend_from_slice(args);
        run(&all)
    }

    fn ok(&self, args: &[&str]) -> Value {
        let out = self.run(args);
        assert_eq!(
            code(&out),
            0,
            "{args:?}: {} {}",
            stdout(&out),
            String::from_utf8_lossy(&out.stderr)
        );
        json_one(&out)
    }

    /// Every byte of the device's files (database, WAL, SHM, vault).
    fn all_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        for entry in std::fs::read_dir(&self.ex.dir.0).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if name.starts_with("device.sqlite") {
                bytes.extend(std::fs::read(&path).unwrap());
            }
        }
        bytes
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn field_device_runs_the_whole_path_of_a_shift() {
    let dev = Device::new("field-path");
    let number = compose(date(1979, 3, 14), 421, false);
    let draft = dev.ok(&["new", "--program", "lots-for-livet"])["draft_id"]
        .as_str()
        .unwrap()
        .to_string();
    let saved = dev.ok(&[
        "set",
        &draft,
        "--name",
        "Qwzx Field-Canary",
        "--phone",
        "070-765 43 21",
        "--language",
        "sv",
        "--best-time",
        "efter 14",
        "--id",
        &number,
        "--municipality",
        "Stockholm",
        "--provenance",
        "document",
    ]);
    assert_eq!(saved["saved"], true);
    assert!(saved["problem"].is_null());

    let check = dev.ok(&["check", &draft]);
    assert_eq!(check["outcome"], "eligible");
    assert_eq!(check["consent_recorded"], false);
    assert_eq!(check["ready_to_finalize"], false);

    // Finalize without consent is refused and loses nothing.
    let out = dev.run(&["finalize", &draft]);
    assert_eq!(code(&out), 1);
    assert_eq!(error_code(&json_one(&out)), "consent_missing");

    let consent = dev.ok(&[
        "consent",
        &draft,
        "--method",
        "verbal",
        "--witness",
        "P-4711",
        "--officer",
        "P-1234",
        "--unit",
        "Plattan",
        "--told-no-effect",
        "--told-withdrawal",
        "--capacity",
        "adequate",
    ]);
    assert_eq!(consent["script"]["version"], 1);
    assert_eq!(dev.ok(&["check", &draft])["ready_to_finalize"], true);

    dev.ok(&["refuse", "--program", "lots-for-livet"]);
    let handover = dev.ok(&["finalize", &draft])["handover_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        handover, draft,
        "one id follows the referral from draft to handover"
    );

    let status = dev.ok(&["status"]);
    assert_eq!(status["items"][0]["state"], "pending");
    assert_eq!(status["items"][0]["kind"], "referral");
    // Nothing typed is on the device in the clear.
    let bytes = dev.all_bytes();
    for canary in [
        "Qwzx Field-Canary",
        "+46707654321",
        "070-765 43 21",
        number.as_str(),
        &number[2..],
    ] {
        assert!(
            !contains(&bytes, canary.as_bytes()),
            "{canary} found on disk"
        );
    }

    let withdrawn = dev.ok(&["withdraw", &handover]);
    assert_eq!(withdrawn["result"], "erased_before_delivery");
    assert_eq!(dev.ok(&["status"])["items"][0]["state"], "withdrawn");

    let stats = dev.ok(&["stats"]);
    let count = |name: &str| -> u64 {
        stats["stats"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["counter"] == name)
            .map(|r| r["count"].as_u64().unwrap())
            .sum()
    };
    assert_eq!(
        (
            count("offers"),
            count("consents"),
            count("refusals"),
            count("withdrawals")
        ),
        (2, 1, 1, 1)
    );
    let audit = dev.ok(&["audit", "verify"]);
    assert_eq!(audit["ok"], true);
    assert!(audit["entries"].as_u64().unwrap() >= 5);
}

#[test]
fn field_consent_refusals_name_the_field() {
    let dev = Device::new("field-consent");
    let draft = dev.ok(&["new", "--program", "kalmar"])["draft_id"]
        .as_str()
        .unwrap()
        .to_string();
    let base = [
        "consent",
        &draft,
        "--witness",
        "P-4711",
        "--officer",
        "P-1234",
        "--unit",
        "Kalmar",
    ];
    let cases: [(&[&str], &str, &str); 4] = [
        (
            &["--told-withdrawal", "--capacity", "adequate"],
            "consent_disclosure_missing",
            "told_no_effect_on_police_matter",
        ),
        (
            &["--told-no-effect", "--capacity", "adequate"],
            "consent_disclosure_missing",
            "told_can_withdraw",
        ),
        (
            &[
                "--told-no-effect",
                "--told-withdrawal",
                "--capacity",
                "doubtful",
            ],
            "consent_capacity_not_adequate",
            "capacity",
        ),
        (
            &[
                "--told-no-effect",
                "--told-withdrawal",
                "--capacity",
                "adequate",
                "--script-version",
                "7",
            ],
            "consent_script_not_current",
            "script",
        ),
    ];
    for (extra, want_code, want_field) in cases {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        let out = dev.run(&args);
        assert_eq!(code(&out), 1, "{extra:?}");
        let v = json_one(&out);
        assert_eq!(error_code(&v), want_code, "{extra:?}");
        assert_eq!(v["error"]["field"], want_field, "{extra:?}");
    }
    // A bad value typed into a draft is kept, and reported at once.
    let saved = dev.ok(&["set", &draft, "--phone", "070-12"]);
    assert_eq!(saved["problem"]["code"], "phone_too_short");
    let out = dev.run(&["close", &draft]);
    assert_eq!(code(&out), 0);
    let out = dev.run(&["check", &draft]);
    assert_eq!(error_code(&json_one(&out)), "not_found");
}

#[test]
fn field_an_optional_personnummer_goes_only_when_the_person_agrees() {
    let dev = Device::new("field-share");
    let consent_items = |extra: &[&str]| -> Vec<String> {
        let draft = dev.ok(&["new", "--program", "kalmar"])["draft_id"]
            .as_str()
            .unwrap()
            .to_string();
        let mut args = vec![
            "consent",
            &draft,
            "--witness",
            "P-4711",
            "--officer",
            "P-1234",
            "--unit",
            "Kalmar",
            "--told-no-effect",
            "--told-withdrawal",
            "--capacity",
            "adequate",
        ];
        args.extend_from_slice(extra);
        let v = dev.ok(&args);
        v["data_items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_string())
            .collect()
    };
    let default = consent_items(&[]);
    assert!(default.contains(&"phone".to_string()));
    assert!(
        !default.contains(&"personnummer".to_string()),
        "{default:?}"
    );
    let shared = consent_items(&["--share-personnummer"]);
    assert!(shared.contains(&"personnummer".to_string()), "{shared:?}");
}

#[test]
fn field_refusing_a_started_draft_erases_it_and_counts_one_offer() {
    let dev = Device::new("field-refuse");
    let draft = dev.ok(&["new", "--program", "lots-for-livet"])["draft_id"]
        .as_str()
        .unwrap()
        .to_string();
    dev.ok(&["refuse", "--draft", &draft]);
    let out = dev.run(&["check", &draft]);
    assert_eq!(error_code(&json_one(&out)), "not_found");
    let out = dev.run(&["refuse", "--program", "no-such-program"]);
    assert_eq!(code(&out), 1);
    assert_eq!(error_code(&json_one(&out)), "unknown_program");
    let stats = dev.ok(&["stats"]);
    let count = |name: &str| -> u64 {
        stats["stats"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["counter"] == name)
            .map(|r| r["count"].as_u64().unwrap())
            .sum()
    };
    assert_eq!((count("offers"), count("refusals")), (1, 1));
}

// ---------------------------------------------------------------------------------------------
// ages no number can have, and a space for the hyphen

/// The same ten digits with the century typed wrong: the check digit does not cover it.
fn with_century(number: &str, century: &str) -> String {
    format!("{century}{}", &number[2..])
}

#[test]
fn id_check_json_marks_a_century_typo_as_valid_but_not_plausible() {
    // Born 1 June 2009: 17 on ON. Typed 1909: the same check digit, and 117.
    let minor = compose(date(2009, 6, 1), 123, false);
    let typo = with_century(&minor, "19");
    // The 10-digit form of the typo: a `+` from the year the person turns 100.
    let plus = format!("{}+{}", &typo[2..8], &typo[8..]);
    // 110 on ON is taken at face value, 111 is not.
    let age_110 = compose(date(1916, 11, 23), 45, false);
    let age_111 = compose(date(1915, 11, 23), 45, false);
    // A samordningsnummer born 1915 with month and day unknown: 110 or 111, so still plausible.
    let snr_range = format!("19{}", ten_with_check("150060234").replace('-', ""));
    let out = run(&[
        "--json", "id", "check", "--on", ON, &minor, &typo, &plus, &age_110, &age_111, &snr_range,
    ]);
    assert_eq!(code(&out), 0, "a valid number is valid, plausible or not");
    let lines = json_lines(&out);
    let expect = [
        (17, true),
        (117, false),
        (117, false),
        (110, true),
        (111, false),
    ];
    for (line, (age, plausible)) in lines.iter().zip(expect) {
        assert_eq!(line["valid"], true, "{line}");
        assert_eq!(line["age"], age, "{line}");
        assert_eq!(line["plausible"], plausible, "{line}");
    }
    assert_eq!(lines[1]["normalized"], typo.as_str());
    assert_eq!(lines[2]["normalized"], typo.as_str());
    let snr = &lines[5];
    assert_eq!(snr["kind"], "samordningsnummer");
    assert_eq!(
        (snr["age_min"].as_u64(), snr["age_max"].as_u64()),
        (Some(110), Some(111))
    );
    assert_eq!(snr["plausible"], true, "110 is possible: {snr}");

    // The table shows it too.
    let table = stdout(&run(&["id", "check", "--on", ON, &minor, &typo]));
    assert!(table.contains("PLAUSIBLE"), "{table}");
    let typo_row = table.lines().find(|l| l.contains(&typo)).unwrap();
    assert!(
        typo_row.contains("117") && typo_row.contains("no"),
        "{typo_row}"
    );
}

#[test]
fn id_check_a_year_before_1840_is_out_of_range() {
    // Tolvan's check digit fits whatever the century.
    let tolvan = compose(date(1912, 12, 12), 121, false);
    let cases = [
        with_century(&tolvan, "18"),
        format!("{}-{}", &with_century(&tolvan, "18")[..8], &tolvan[8..]),
        with_century(&compose(date(1939, 12, 31), 5, false), "18"),
        with_century(&compose(date(1999, 6, 1), 5, true), "17"),
        // `+` for a hyphen on a number from the 1830s.
        {
            let ten = &compose(date(1935, 3, 1), 77, false)[2..];
            format!("{}+{}", &ten[..6], &ten[6..])
        },
    ];
    let out = run(&[
        "--json", "id", "check", "--on", ON, &cases[0], &cases[1], &cases[2], &cases[4],
    ]);
    assert_eq!(code(&out), 1);
    for (line, input) in json_lines(&out)
        .iter()
        .zip([&cases[0], &cases[1], &cases[2], &cases[4]])
    {
        assert_eq!(line["valid"], false, "{line}");
        assert_eq!(error_code(line), "year_out_of_range", "{input}: {line}");
        let message = line["error"]["message"].as_str().unwrap();
        assert!(message.contains("1840"), "{message}");
        assert!(
            !message.contains(&input[input.len() - 4..]),
            "never the number: {message}"
        );
    }
    // Century 17 is no personnummer century at all: a reserve number, as before.
    let out = run(&["--json", "id", "check", "--on", ON, &cases[3]]);
    assert_eq!(error_code(&json_one(&out)), "reserve_number");
    // 1 January 1840 is a (very old) number: valid, not plausible.
    let first = with_century(&compose(date(1940, 1, 1), 5, false), "18");
    let line = json_one(&run(&["--json", "id", "check", "--on", ON, &first]));
    assert_eq!(
        (line["valid"].clone(), line["plausible"].clone()),
        (true.into(), false.into())
    );
    // In Swedish too, without the number.
    let sv = json_one(&run(&[
        "--json", "--lang", "sv", "id", "check", "--on", ON, &cases[0],
    ]));
    assert!(
        sv["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Födelseåret"),
        "{sv}"
    );
}

#[test]
fn id_check_accepts_a_space_where_the_hyphen_goes() {
    let twelve = compose(date(1990, 4, 12), 123, false);
    let ten = &twelve[2..];
    let spaced = [
        format!("{} {}", &twelve[..8], &twelve[8..]),
        format!("{} {}", &ten[..6], &ten[6..]),
        format!("{}\u{a0}{}", &twelve[..8], &twelve[8..]),
        format!("  {} {}  ", &ten[..6], &ten[6..]),
    ];
    let args: Vec<&str> = ["--json", "id", "check", "--on", ON]
        .into_iter()
        .chain(spaced.iter().map(String::as_str))
        .collect();
    let out = run(&args);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    for l in json_lines(&out) {
        assert_eq!(l["valid"], true, "{l}");
        assert_eq!(l["normalized"], twelve.as_str(), "{l}");
    }
    // Anywhere else, or with another separator, the separator is what is wrong.
    let misplaced = [
        format!(
            "{} {} {}-{}",
            &twelve[..4],
            &twelve[4..6],
            &twelve[6..8],
            &twelve[8..]
        ),
        format!(
            "{} {} {} {}",
            &twelve[..4],
            &twelve[4..6],
            &twelve[6..8],
            &twelve[8..]
        ),
        format!("{}  {}", &twelve[..8], &twelve[8..]),
        format!("{} -{}", &ten[..6], &ten[6..]),
        format!("{} {}", &ten[..5], &ten[5..]),
    ];
    let input: String = misplaced.iter().map(|m| format!("{m}\n")).collect();
    let out = run_stdin(&["--json", "id", "check", "--on", ON], &input);
    assert_eq!(code(&out), 1);
    for (line, m) in json_lines(&out).iter().zip(&misplaced) {
        assert_eq!(error_code(line), "invalid_separator", "{m:?}: {line}");
        let message = line["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("space"),
            "the text names the space: {message}"
        );
    }
}

#[test]
fn eligibility_a_century_typo_is_undetermined_as_age_implausible() {
    let ex = signed_example("elig-implausible");
    let assess = |person: &[&str]| {
        let mut args = vec!["--program", "lots-for-livet"];
        args.extend_from_slice(person);
        args.extend_from_slice(&["--municipality", "Stockholm", "--provenance", "register"]);
        let out = eligibility(&ex, &args);
        assert_eq!(
            code(&out),
            0,
            "a verdict is not a failure: {}",
            stdout(&out)
        );
        json_one(&out)
    };
    let minor = compose(date(2009, 6, 1), 123, false);
    let v = assess(&["--id", &minor]);
    assert_eq!(v["outcome"], "not_eligible");
    assert_eq!(reason_codes(&v), ["too_young", "resident"]);

    let typo = with_century(&minor, "19");
    let plus = format!("{}+{}", &typo[2..8], &typo[8..]);
    let spaced = format!("{} {}", &typo[..8], &typo[8..]);
    for id in [&typo, &plus, &spaced] {
        let v = assess(&["--id", id]);
        assert_eq!(v["outcome"], "undetermined", "{id}: {v}");
        assert_eq!(v["may_refer"], false);
        assert_eq!(reason_codes(&v), ["age_implausible", "resident"], "{id}");
        assert_eq!(v["basis"]["age_min"], 117);
        assert_eq!(
            v["reasons"][0]["message"],
            "The person would be 117: check the century of the number or the year of birth."
        );
        assert_eq!(v["routing"].as_array().unwrap().len(), 0);
        assert!(
            !v.to_string().contains(&typo[2..]),
            "the verdict never carries the number"
        );
    }
    // A typed year of birth behaves the same; 110 is still taken at face value.
    let v = assess(&["--born", "1909-06-01"]);
    assert_eq!(v["outcome"], "undetermined");
    assert_eq!(reason_codes(&v), ["age_implausible", "resident"]);
    assert_eq!(v["basis"]["age_source"], "birth_date");
    let v = assess(&["--born", "1916-11-23"]);
    assert_eq!(v["outcome"], "eligible");
    assert_eq!(
        v["reasons"][0]["message"],
        "The person is 110 (the program requires at least 18)."
    );
    // The age is named in every age reason, in both languages and in the text output.
    let v = assess(&["--id", &adult()]);
    assert_eq!(
        v["reasons"][0]["message"],
        "The person is 36 (the program requires at least 18)."
    );
    let text = |lang: &str, id: &str| {
        let out = run(&[
            "--lang",
            lang,
            "eligibility",
            "--bundle",
            s(&ex.bundle),
            "--trust",
            s(&ex.public),
            "--on",
            ON,
            "--program",
            "lots-for-livet",
            "--id",
            id,
            "--municipality",
            "Stockholm",
            "--provenance",
            "register",
        ]);
        assert_eq!(code(&out), 0);
        stdout(&out)
    };
    let en = text("en", &typo);
    assert!(
        en.contains("UNDETERMINED")
            && en.contains("would be 117")
            && en.contains("[age_implausible]"),
        "{en}"
    );
    let sv = text("sv", &typo);
    assert!(
        sv.contains("KAN INTE AVGÖRAS") && sv.contains("skulle vara 117 år"),
        "{sv}"
    );
    let sv = text("sv", &adult());
    assert!(
        sv.contains("Personen är 36 år (programmet kräver att man har fyllt 18)."),
        "{sv}"
    );
}

#[test]
fn field_a_century_typo_cannot_be_referred() {
    // The device decides on today's date: born 1909 is over 110 on any day from 2020 on.
    let dev = Device::new("field-implausible");
    let typo = compose(date(1909, 6, 1), 123, false);
    let draft = dev.ok(&["new", "--program", "lots-for-livet"])["draft_id"]
        .as_str()
        .unwrap()
        .to_string();
    let spaced = format!("{} {}", &typo[..8], &typo[8..]);
    dev.ok(&[
        "set",
        &draft,
        "--id",
        &spaced,
        "--municipality",
        "Stockholm",
        "--provenance",
        "register",
    ]);
    let check = dev.ok(&["check", &draft]);
    assert_eq!(check["outcome"], "undetermined", "{check}");
    assert_eq!(check["may_refer"], false);
    assert_eq!(check["ready_to_finalize"], false);
    assert_eq!(reason_codes(&check), ["age_implausible", "resident"]);
    // The officer fixes the century: the same draft is now a (too young) minor's.
    let minor = with_century(&typo, "20");
    dev.ok(&["set", &draft, "--id", &minor]);
    let check = dev.ok(&["check", &draft]);
    assert_eq!(check["outcome"], "not_eligible", "{check}");
    assert_eq!(reason_codes(&check)[0], "too_young");
}

// ---------------------------------------------------------------------------------------------
// output that cannot be written: never a panic, and nothing done is lost

/// Runs `lotsa` with stdout on `/dev/full` (every write fails with ENOSPC) and stdin from `stdin`
/// when given.
fn run_to_full(args: &[&str], stdin: Option<&str>) -> Output {
    let full = std::fs::File::create("/dev/full").expect("/dev/full exists");
    let mut child = lotsa()
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::from(full))
        .stderr(Stdio::piped())
        .spawn()
        .expect("the lotsa binary starts");
    if let Some(input) = stdin {
        let mut w = child.stdin.take().unwrap();
        let input = input.to_owned();
        std::thread::spawn(move || {
            let _ = w.write_all(input.as_bytes());
        });
    }
    child.wait_with_output().expect("the lotsa binary finishes")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts a refusal to write: exit 1 (not 101), code `io` on stderr, no panic.
fn assert_io_failure(out: &Output, what: &str) {
    let err = stderr(out);
    assert_eq!(code(out), 1, "{what}: {err}");
    assert!(err.contains("lotsa: io"), "{what}: {err}");
    assert!(!err.contains("panicked"), "{what}: {err}");
}

/// The first UUID in a text.
fn find_uuid(text: &str) -> Option<String> {
    let b = text.as_bytes();
    (0..b.len().saturating_sub(35)).find_map(|i| {
        let cand = &text.get(i..i + 36)?;
        let ok = cand.char_indices().all(|(j, c)| match j {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        });
        ok.then(|| cand.to_string())
    })
}

#[test]
fn a_full_stdout_is_an_io_error_on_stderr_never_a_panic() {
    let ex = signed_example("full-stdout");
    let pnr = adult();
    let bundle = s(&ex.bundle);
    let public = s(&ex.public);
    let keys = ex.dir.path("fresh");
    let db = ex.dir.path("full.sqlite");
    let vault = ex.dir.path("full-vault");
    let field = |rest: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = ["field", "--db", s(&db), "--vault", s(&vault)]
            .iter()
            .map(|x| x.to_string())
            .collect();
        v.extend(rest.iter().map(|x| x.to_string()));
        v
    };
    let cases: Vec<Vec<String>> = vec![
        vec!["--help".into()],
        vec!["field".into(), "set".into(), "--help".into()],
        vec!["id".into(), "check".into(), pnr.clone()],
        vec!["--json".into(), "id".into(), "check".into(), pnr.clone()],
        vec!["geo".into(), "municipality".into(), "Kalmar".into()],
        vec![
            "--json".into(),
            "geo".into(),
            "postal".into(),
            "111 22".into(),
        ],
        vec![
            "program".into(),
            "verify".into(),
            bundle.into(),
            "--trust".into(),
            public.into(),
        ],
        vec![
            "--json".into(),
            "program".into(),
            "verify".into(),
            bundle.into(),
            "--trust".into(),
            public.into(),
        ],
        vec![
            "program".into(),
            "keygen".into(),
            "-o".into(),
            s(&keys).into(),
        ],
        vec![
            "--lang".into(),
            "sv".into(),
            "eligibility".into(),
            "--bundle".into(),
            bundle.into(),
            "--trust".into(),
            public.into(),
            "--program".into(),
            "lots-for-livet".into(),
            "--id".into(),
            pnr.clone(),
            "--municipality".into(),
            "Stockholm".into(),
        ],
        vec!["demo".into()],
        vec!["--json".into(), "demo".into()],
        field(&["status"]),
        field(&["stats"]),
        field(&["--json", "stats"]),
        field(&["audit", "verify"]),
    ];
    for args in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_io_failure(&run_to_full(&args, None), &args.join(" "));
    }
    // The key files were written before the output failed: they are there, and stay.
    assert!(keys.with_extension("key").exists() && keys.with_extension("pub").exists());
    // Streaming from stdin stops at the first failed write, with the same refusal.
    let many: String = (0..5000).map(|_| format!("{pnr}\n")).collect();
    for json in [true, false] {
        let args: &[&str] = if json {
            &["--json", "id", "check"]
        } else {
            &["id", "check"]
        };
        assert_io_failure(&run_to_full(args, Some(&many)), "id check < many");
    }
    // The demo leaves no device behind when its output fails.
    let tmp = TempDir::new("full-demo-tmp");
    let full = std::fs::File::create("/dev/full").unwrap();
    let out = lotsa()
        .arg("demo")
        .env("TMPDIR", &tmp.0)
        .stdout(Stdio::from(full))
        .output()
        .unwrap();
    assert_io_failure(&out, "demo");
    assert_eq!(
        std::fs::read_dir(&tmp.0).unwrap().count(),
        0,
        "the demo cleaned up"
    );
}

#[test]
fn field_new_and_finalize_to_a_full_stdout_still_name_the_id_on_stderr() {
    let dev = Device::new("full-new");
    for json in [false, true] {
        let args = dev_args(&dev, json, &["new", "--program", "lots-for-livet"]);
        let out = run_to_full(&strs(&args), None);
        assert_io_failure(&out, "field new");
        let err = stderr(&out);
        let id = find_uuid(&err).unwrap_or_else(|| panic!("no id in {err}"));
        assert!(err.contains("[draft_id]"), "{err}");
        // The draft is there: the officer goes on with the id from the message.
        dev.ok(&["set", &id, "--name", "Kim"]);
        assert_eq!(dev.ok(&["check", &id])["consent_recorded"], false);
    }
    // In Swedish as well.
    let mut args = dev_args(&dev, false, &["new", "--program", "kalmar"]);
    args.splice(0..0, ["--lang".to_string(), "sv".to_string()]);
    let err = stderr(&run_to_full(&strs(&args), None));
    assert!(
        err.contains("utkastet") && find_uuid(&err).is_some(),
        "{err}"
    );

    // A closed pipe (the reader is gone before the id is written) is the same refusal.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = lotsa()
        .args(dev_args(
            &dev,
            true,
            &["new", "--program", "lots-for-livet"],
        ))
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_io_failure(&out, "field new | closed");
    let id = find_uuid(&stderr(&out)).expect("the id on stderr");
    dev.ok(&["delete", &id]);

    // finalize: the referral is sealed; the message names it.
    let draft = ready_draft(&dev);
    let out = run_to_full(&strs(&dev_args(&dev, false, &["finalize", &draft])), None);
    assert_io_failure(&out, "finalize");
    let err = stderr(&out);
    assert!(err.contains("[handover_id]"), "{err}");
    let handover = find_uuid(&err).expect("the handover id on stderr");
    assert_eq!(dev.ok(&["status"])["items"][0]["id"], handover.as_str());
}

/// The arguments `Device::run` puts before a command, then `rest`; without `--json` unless
/// `json`.
fn dev_args(dev: &Device, json: bool, rest: &[&str]) -> Vec<String> {
    let mut args = vec![
        "field".to_string(),
        "--db".into(),
        s(&dev.ex.dir.path("device.sqlite")).into(),
        "--vault".into(),
        s(&dev.ex.dir.path("vault")).into(),
        "--bundle".into(),
        s(&dev.ex.bundle).into(),
        "--trust".into(),
        s(&dev.ex.public).into(),
    ];
    if json {
        args.insert(0, "--json".into());
    }
    args.extend(rest.iter().map(|r| r.to_string()));
    args
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// A lots-for-livet draft with everything filled in and consent recorded.
fn ready_draft(dev: &Device) -> String {
    let draft = dev.ok(&["new", "--program", "lots-for-livet"])["draft_id"]
        .as_str()
        .unwrap()
        .to_string();
    dev.ok(&[
        "set",
        &draft,
        "--name",
        "Kim",
        "--phone",
        "070-123 45 67",
        "--id",
        &adult(),
        "--municipality",
        "Stockholm",
        "--provenance",
        "document",
    ]);
    dev.ok(&consent_args(&draft));
    draft
}

/// `field consent <draft>` with a complete verbal consent (witness P-4711, officer P-1234).
fn consent_args(draft: &str) -> Vec<&str> {
    vec![
        "consent",
        draft,
        "--witness",
        "P-4711",
        "--officer",
        "P-1234",
        "--unit",
        "Plattan",
        "--told-no-effect",
        "--told-withdrawal",
        "--capacity",
        "adequate",
    ]
}

// ---------------------------------------------------------------------------------------------
// files that exist are never overwritten without --force

#[test]
fn program_sign_never_overwrites_a_file_without_force() {
    let dir = TempDir::new("sign-overwrite");
    let (secret, public) = keygen(&dir, "admin");
    let set = example_set_valid_now(&dir);
    let secret_before = std::fs::read(&secret).unwrap();
    let public_before = std::fs::read(&public).unwrap();
    // The classic slip: -o names the key (or any file that is there).
    for target in [&secret, &public, &set] {
        let before = std::fs::read(target).unwrap();
        let out = run(&[
            "--json",
            "program",
            "sign",
            s(&set),
            "--key",
            s(&secret),
            "-o",
            s(target),
        ]);
        assert_eq!(code(&out), 1, "{}", stdout(&out));
        let e = json_one(&out);
        assert_eq!(error_code(&e), "file_exists");
        assert!(
            e["error"]["message"].as_str().unwrap().contains(s(target)),
            "the message names the path: {e}"
        );
        assert_eq!(std::fs::read(target).unwrap(), before, "untouched");
    }
    assert_eq!(std::fs::read(&secret).unwrap(), secret_before);
    assert_eq!(std::fs::read(&public).unwrap(), public_before);
    // People read it on stderr, in their language.
    let out = run(&[
        "--lang",
        "sv",
        "program",
        "sign",
        s(&set),
        "--key",
        s(&secret),
        "-o",
        s(&secret),
    ]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("file_exists") && stderr(&out).contains("finns redan"),
        "{}",
        stderr(&out)
    );

    // A new path is written; signing to it again is refused; --force replaces it.
    let bundle = dir.path("bundle.json");
    let sign = |extra: &[&str]| {
        let mut args = vec![
            "--json",
            "program",
            "sign",
            s(&set),
            "--key",
            s(&secret),
            "-o",
            s(&bundle),
        ];
        args.extend_from_slice(extra);
        run(&args)
    };
    assert_eq!(code(&sign(&[])), 0);
    std::fs::write(&bundle, "an older bundle").unwrap();
    assert_eq!(error_code(&json_one(&sign(&[]))), "file_exists");
    assert_eq!(std::fs::read_to_string(&bundle).unwrap(), "an older bundle");
    assert_eq!(code(&sign(&["--force"])), 0);
    let out = run(&[
        "--json",
        "program",
        "verify",
        s(&bundle),
        "--trust",
        s(&public),
    ]);
    assert_eq!(
        json_one(&out)["valid"],
        true,
        "the forced bundle is the new one"
    );
    // No temporary file is left beside it.
    let names: Vec<String> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
}

#[test]
fn program_keygen_never_overwrites_either_key_file_without_force() {
    let dir = TempDir::new("keygen-force");
    // Only the public half is there: nothing is written, not even the secret key.
    let prefix = dir.path("half");
    std::fs::write(prefix.with_extension("pub"), "someone's key\n").unwrap();
    let out = run(&["--json", "program", "keygen", "-o", s(&prefix)]);
    assert_eq!(code(&out), 1);
    assert_eq!(error_code(&json_one(&out)), "file_exists");
    assert!(!prefix.with_extension("key").exists());
    assert_eq!(
        std::fs::read_to_string(prefix.with_extension("pub")).unwrap(),
        "someone's key\n"
    );

    // --force replaces both, and the new secret key is still the owner's only.
    let (secret, public) = keygen(&dir, "admin");
    let (old_secret, old_public) = (
        std::fs::read(&secret).unwrap(),
        std::fs::read(&public).unwrap(),
    );
    let out = run(&[
        "--json",
        "program",
        "keygen",
        "-o",
        s(&dir.path("admin")),
        "--force",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v = json_one(&out);
    assert_ne!(std::fs::read(&secret).unwrap(), old_secret);
    assert_ne!(std::fs::read(&public).unwrap(), old_public);
    assert_eq!(
        std::fs::read_to_string(&public).unwrap().trim(),
        v["public_key"]
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secret).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "a forced secret key is readable by its owner only"
        );
    }
    // The new pair signs and verifies.
    let set = example_set_valid_now(&dir);
    let bundle = dir.path("b.json");
    assert_eq!(
        code(&run(&[
            "program",
            "sign",
            s(&set),
            "--key",
            s(&secret),
            "-o",
            s(&bundle)
        ])),
        0
    );
    assert_eq!(
        code(&run(&[
            "program",
            "verify",
            s(&bundle),
            "--trust",
            s(&public)
        ])),
        0
    );
}

// ---------------------------------------------------------------------------------------------
// --lang sv: every human text in Swedish

/// Words that only the English texts of the CLI use (headers, confirmations, labels).
const ENGLISH_ONLY: &[&str] = &[
    "INPUT",
    "VALID",
    "NORMALIZED",
    "BORN",
    "PLAUSIBLE",
    "REASON",
    "NAME",
    "COUNTY",
    "POSTAL CODE",
    "CLINIC",
    "DAY",
    "COUNTER",
    "COUNT",
    "KIND",
    "STATE",
    "ATTEMPTS",
    "LAST ERROR",
    "saved",
    "still to fix",
    "to fix",
    "consent:",
    "recorded",
    "refusal counted",
    "deleted",
    "closed",
    "outbox",
    "pending",
    "withdrawn",
    "audit log",
    "signed",
    "bundle",
    "valid until",
    "secret key",
    "public key",
    "a postal code is a hint",
    "ready to finalize",
    "offers",
    "consents",
    "refusals",
    "cannot",
    "this command needs",
    "WARNING",
    "exists",
    "yes",
];

/// Checks a text for English words, leaving out what is the same in both languages: reason
/// codes (`file_exists`, `[not_resident]`), option names (`--bundle`) and the `lotsa: code`
/// prefix of a refusal.
fn assert_swedish(text: &str, what: &str) {
    let words: String = text
        .lines()
        .map(|l| match l.strip_prefix("lotsa: ") {
            Some(rest) => rest.split_once(": ").map(|(_, m)| m).unwrap_or(""),
            None => l,
        })
        .flat_map(|l| l.split_whitespace().chain(["\n"]))
        .filter(|w| !w.contains('_') && !w.starts_with("--") && !w.starts_with('['))
        .collect::<Vec<_>>()
        .join(" ");
    let text = words.as_str();
    for word in ENGLISH_ONLY {
        assert!(
            !text.contains(word),
            "{what}: English {word:?} in --lang sv output:\n{text}"
        );
    }
}

#[test]
fn lang_sv_gives_every_human_text_in_swedish() {
    let ex = signed_example("lang-sv");
    let sv = |args: &[&str]| -> Output {
        let mut all = vec!["--lang", "sv"];
        all.extend_from_slice(args);
        run(&all)
    };
    // id check, geo, program: tables and lines.
    let out = sv(&["id", "check", "--on", ON, &adult(), "12345"]);
    let text = stdout(&out);
    assert!(
        text.contains("INMATAT")
            && text.contains("GILTIGT")
            && text.contains("ja")
            && text.contains("nej"),
        "{text}"
    );
    assert_swedish(&text, "id check");
    for args in [
        &["geo", "municipality", "Kalmar"][..],
        &["geo", "postal", "111 22"],
        &["program", "verify", s(&ex.bundle), "--trust", s(&ex.public)],
    ] {
        let out = sv(args);
        assert_eq!(code(&out), 0);
        assert_swedish(&stdout(&out), &args.join(" "));
    }
    let keys = ex.dir.path("sv-keys");
    let out = sv(&["program", "keygen", "-o", s(&keys)]);
    assert!(stdout(&out).contains("hemlig nyckel"), "{}", stdout(&out));
    assert_swedish(&stdout(&out), "keygen");
    let out = sv(&["program", "keygen", "-o", s(&keys)]);
    assert_swedish(&stderr(&out), "keygen again");

    // The field device, command by command, including the vault's warning and the refusals.
    let dev = Device::new("lang-sv-field");
    let field = |rest: &[&str]| -> Output {
        let mut args = dev_args(&dev, false, rest);
        args.splice(0..0, ["--lang".to_string(), "sv".to_string()]);
        run(&strs(&args))
    };
    let draft = stdout(&field(&["new", "--program", "lots-for-livet"]))
        .trim()
        .to_string();
    let mut all = String::new();
    let mut errors = String::new();
    let mut step = |out: Output| {
        all.push_str(&stdout(&out));
        errors.push_str(&stderr(&out));
    };
    step(field(&[
        "set",
        &draft,
        "--phone",
        "070-12",
        "--id",
        &adult(),
        "--municipality",
        "Atlantis",
    ]));
    step(field(&["check", &draft]));
    step(field(&[
        "set",
        &draft,
        "--name",
        "Kim",
        "--phone",
        "070-123 45 67",
        "--municipality",
        "Stockholm",
        "--provenance",
        "document",
    ]));
    step(field(&consent_args(&draft)));
    step(field(&["check", &draft]));
    step(field(&["refuse", "--program", "lots-for-livet"]));
    step(field(&["finalize", &draft]));
    step(field(&["status"]));
    step(field(&["withdraw", &draft]));
    step(field(&["status"]));
    step(field(&["stats"]));
    step(field(&["audit", "verify"]));
    let other = stdout(&field(&["new", "--program", "lots-for-livet"]))
        .trim()
        .to_string();
    step(field(&[
        "set",
        &other,
        "--id",
        &adult(),
        "--municipality",
        "Gislaved",
        "--provenance",
        "document",
    ]));
    step(field(&["close", &other]));
    let third = stdout(&field(&["new", "--program", "lots-for-livet"]))
        .trim()
        .to_string();
    step(field(&["delete", &third]));
    // Refusals as people read them.
    step(field(&["check", "no-such-draft"]));
    step(field(&[
        "consent",
        &third,
        "--method",
        "fax",
        "--officer",
        "P-1",
        "--unit",
        "U",
        "--capacity",
        "adequate",
    ]));
    let mut no_bundle = dev_args(&dev, false, &["new", "--program", "kalmar"]);
    no_bundle.retain(|a| a != s(&dev.ex.public));
    no_bundle.retain(|a| a != "--trust");
    no_bundle.splice(0..0, ["--lang".to_string(), "sv".to_string()]);
    step(run(&strs(&no_bundle)));
    for want in [
        "sparat",
        "att åtgärda",
        "samtycke: registrerat",
        "nej tack räknat",
        "utkorg",
        "väntar",
        "återkallad",
        "DAG",
        "RÄKNARE",
        "erbjudanden",
        "händelseloggen är hel",
        "stängt",
        "raderat",
        "klar att skicka: ja",
    ] {
        assert!(all.contains(want), "{want:?} missing from:\n{all}");
    }
    assert_swedish(&all, "field");
    assert!(errors.contains("VARNING"), "{errors}");
    assert!(
        errors.contains("okänd metod") && errors.contains("kommandot behöver"),
        "{errors}"
    );
    assert_swedish(&errors, "field (stderr)");

    // Files that cannot be read, in Swedish.
    let out = sv(&[
        "program",
        "verify",
        s(&ex.dir.path("missing.json")),
        "--trust",
        s(&ex.public),
    ]);
    assert!(
        stderr(&out).contains("går inte att läsa: finns inte"),
        "{}",
        stderr(&out)
    );

    // The demo's story, headings and tables.
    let demo = stdout(&sv(&["demo"]));
    for want in [
        "Passet, utan täckning",
        "Polisen läser samtyckestexten",
        "Passet är slut",
        "Täckningen är tillbaka",
        "Återkallelse efter leverans",
        "Alla steg gjorde det de skulle",
        "Utkorgen",
        "Statistik",
        "Händelseloggen",
        "LÄGE",
        "RÄKNARE",
        "Telefon: en tillfällig lagring",
    ] {
        assert!(
            demo.contains(want),
            "{want:?} missing from the Swedish demo"
        );
    }
    for english in [
        "The shift, offline",
        "The officer reads",
        "End of shift",
        "Coverage returns",
        "Withdrawal after delivery",
        "Every step did",
        "Queue (",
        "Statistics (",
        "Audit log:",
        "STATE",
        "COUNTER",
        "Phone: a temporary",
    ] {
        assert!(!demo.contains(english), "{english:?} in the Swedish demo");
    }
    // And the same commands in English stay English.
    let en = stdout(&run(&["id", "check", "--on", ON, &adult()]));
    assert!(en.contains("INPUT") && en.contains("yes"), "{en}");
}

// ---------------------------------------------------------------------------------------------
// field set --from: personal data off the command line

#[test]
fn field_set_from_stdin_or_a_file_keeps_personal_data_off_the_command_line() {
    let dev = Device::new("set-from");
    let draft = dev.ok(&["new", "--program", "lots-for-livet"])["draft_id"]
        .as_str()
        .unwrap()
        .to_string();
    let number = compose(date(1979, 3, 14), 421, false);
    let change = serde_json::json!({
        "name": "Kim", "phone": "070-765 43 21", "language": "sv", "best_time": "efter 14",
        "note": "", "identity_number": number, "municipality": "Stockholm", "provenance": "document",
    });
    let out = run_stdin(
        &strs(&dev_args(&dev, true, &["set", &draft, "--from", "-"])),
        &change.to_string(),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let saved = json_one(&out);
    assert_eq!(saved["saved"], true);
    assert_eq!(saved["problems"].as_array().unwrap().len(), 0);
    assert!(saved["problem"].is_null());
    let check = dev.ok(&["check", &draft]);
    assert_eq!(check["outcome"], "eligible", "{check}");
    assert_eq!(check["provisional"], false, "provenance came from the JSON");

    // From a file: several problems at once, every one reported, the first also as `problem`.
    let file = dev.ex.dir.path("change.json");
    std::fs::write(
        &file,
        r#"{"phone": "070-12", "identity_number": "19900412-1234", "municipality": "Atlantis", "name": null}"#,
    )
    .unwrap();
    let saved = dev.ok(&["set", &draft, "--from", s(&file)]);
    let codes: Vec<&str> = saved["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        [
            "phone_too_short",
            "invalid_checksum",
            "unknown_municipality"
        ]
    );
    assert_eq!(saved["problem"], saved["problems"][0]);
    let fields: Vec<&str> = saved["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["phone", "identity_number", "municipality"]);
    // People see every problem too, one line each.
    let out = run(&strs(&dev_args(
        &dev,
        false,
        &["set", &draft, "--from", s(&file)],
    )));
    let text = stdout(&out);
    for c in codes {
        assert!(text.contains(&format!("[{c}]")), "{c}: {text}");
    }
    // The same change through options reports the same problems (the two ways are one).
    let opts = dev.ok(&[
        "set",
        &draft,
        "--phone",
        "070-12",
        "--id",
        "19900412-1234",
        "--municipality",
        "Atlantis",
    ]);
    assert_eq!(opts["problems"], saved["problems"]);
}

#[test]
fn field_set_from_refuses_bad_json_without_repeating_it() {
    let dev = Device::new("set-from-bad");
    let draft = dev.ok(&["new", "--program", "kalmar"])["draft_id"]
        .as_str()
        .unwrap()
        .to_string();
    let canary = "19900412-1233";
    let cases: [(String, &str); 8] = [
        (format!(r#"{{"name": "{canary}""#), "from"),
        (format!("{canary} Kim"), "from"),
        (format!(r#"["{canary}"]"#), "from"),
        (format!(r#"{{"{canary}": "x"}}"#), "from"),
        (format!(r#"{{"nmae": "{canary}"}}"#), "from"),
        (r#"{"phone": 46701234567}"#.to_string(), "phone"),
        (format!(r#"{{"provenance": "{canary}"}}"#), "provenance"),
        (format!(r#"{{"name": "{canary}", "name": "Kim"}}"#), "from"),
    ];
    for (input, field) in &cases {
        for lang in ["en", "sv"] {
            let mut args = dev_args(&dev, true, &["set", &draft, "--from", "-"]);
            args.splice(0..0, ["--lang".to_string(), lang.to_string()]);
            let out = run_stdin(&strs(&args), input);
            assert_eq!(code(&out), 1, "{input}");
            let e = json_one(&out);
            assert_eq!(error_code(&e), "invalid_json", "{input}: {e}");
            assert_eq!(e["error"]["field"], *field, "{input}: {e}");
            let text = e.to_string() + &stderr(&out);
            assert!(
                !text.contains(canary) && !text.contains("4670123"),
                "echoed: {text}"
            );
        }
    }
    // Nothing was saved by a refused change.
    let check = dev.ok(&["check", &draft]);
    assert_eq!(check["basis"]["kommunkod"], Value::Null, "{check}");
    // --from and the options do not mix: a usage error.
    let out = run(&strs(&dev_args(
        &dev,
        true,
        &["set", &draft, "--from", "-", "--name", "Kim"],
    )));
    assert_eq!(code(&out), 2);
    assert_eq!(error_code(&json_one(&out)), "usage");
}

// ---------------------------------------------------------------------------------------------
// usage: exit 2, JSON with --json, help for everything

#[test]
fn a_missing_bundle_or_trust_is_a_usage_error_with_exit_2() {
    let dev = Device::new("need-bundle");
    let draft = dev.ok(&["new", "--program", "kalmar"])["draft_id"]
        .as_str()
        .unwrap()
        .to_string();
    let db = dev.ex.dir.path("device.sqlite");
    let vault = dev.ex.dir.path("vault");
    let base = ["field", "--db", s(&db), "--vault", s(&vault)];
    let commands: [&[&str]; 6] = [
        &["new", "--program", "kalmar"],
        &["check", &draft],
        &["finalize", &draft],
        &["close", &draft],
        &["refuse", "--program", "kalmar"],
        &[
            "consent",
            &draft,
            "--witness",
            "P-4711",
            "--officer",
            "P-1",
            "--unit",
            "U",
            "--capacity",
            "adequate",
        ],
    ];
    for command in commands {
        for (only, json) in [
            (None, true),
            (Some("--bundle"), true),
            (Some("--trust"), false),
        ] {
            let mut args: Vec<&str> = Vec::new();
            if json {
                args.push("--json");
            }
            args.extend(base);
            match only {
                Some("--bundle") => args.extend(["--bundle", s(&dev.ex.bundle)]),
                Some(_) => args.extend(["--trust", s(&dev.ex.public)]),
                None => {}
            }
            args.extend_from_slice(command);
            let out = run(&args);
            assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
            if json {
                assert_eq!(error_code(&json_one(&out)), "usage", "{args:?}");
            } else {
                assert!(stderr(&out).contains("lotsa: usage"), "{}", stderr(&out));
            }
        }
    }
    // Commands that need no bundle work without one.
    let out = run(&[&base[..], &["--json", "delete", &draft]].concat());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn usage_errors_with_json_are_one_json_object_and_never_repeat_what_was_typed() {
    let canary = "19900412-1233";
    let ex = signed_example("usage-json");
    let (b, t) = (s(&ex.bundle), s(&ex.public));
    let as_option = format!("--{canary}");
    let name_option = format!("--name={canary}x");
    let cases: Vec<Vec<&str>> = vec![
        vec!["--json", "no-such-command"],
        vec!["--json", canary],
        vec!["--json"],
        vec!["--json", "id"],
        vec!["--json", "id", "check", "--on", canary],
        vec!["--json", "--lang", canary, "id", "check"],
        vec!["--json", "geo", "municipality"],
        vec!["--json", "geo", "municipality", "Kalmar", canary],
        vec!["--json", "program", "verify", b],
        vec![
            "--json",
            "eligibility",
            "--bundle",
            b,
            "--trust",
            t,
            "--program",
            "kalmar",
            "--municipality",
            "Kalmar",
        ],
        vec![
            "--json",
            "eligibility",
            "--bundle",
            b,
            "--trust",
            t,
            "--program",
            "kalmar",
            "--id",
            canary,
            "--municipality",
            "Kalmar",
            "--provenance",
            canary,
        ],
        vec!["id", "check", "--json", "--frobnicate"],
        vec!["id", "check", "--json", &as_option],
        vec!["field", "--db", "x", "--vault", "y", "--json", "refuse"],
        vec![
            "field",
            "--db",
            "x",
            "--vault",
            "y",
            "--json",
            "refuse",
            "--program",
            "a",
            "--draft",
            "b",
        ],
        vec![
            "field",
            "--db",
            "x",
            "--vault",
            "y",
            "--json",
            "set",
            "D",
            &name_option,
            "--nam",
            canary,
        ],
    ];
    for args in &cases {
        for lang in ["en", "sv"] {
            let mut all = vec!["--lang", lang];
            all.extend(args.iter().copied());
            if args.contains(&"--lang") {
                all.drain(..2);
            }
            let out = run(&all);
            assert_eq!(code(&out), 2, "{all:?}: {}", stderr(&out));
            let e = json_one(&out);
            assert_eq!(error_code(&e), "usage", "{all:?}: {e}");
            let message = e["error"]["message"].as_str().unwrap();
            assert!(!message.is_empty());
            assert!(!e.to_string().contains(canary), "{all:?} echoed: {e}");
            assert!(
                !stderr(&out).contains(canary),
                "{all:?} echoed: {}",
                stderr(&out)
            );
        }
    }
    // The texts follow --lang, and name the option (never its value).
    let out = run(&["--json", "--lang", "sv", "id", "check", "--on", canary]);
    let message = json_one(&out)["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("--on") && message.contains("ÅÅÅÅ-MM-DD"),
        "{message}"
    );
    let out = run(&[
        "--json",
        "eligibility",
        "--bundle",
        b,
        "--trust",
        t,
        "--program",
        "kalmar",
        "--id",
        "x",
        "--municipality",
        "Kalmar",
        "--provenance",
        "dokument",
    ]);
    let message = json_one(&out)["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("--provenance") && message.contains("stated, document or register"),
        "{message}"
    );
    assert!(!message.contains("dokument"));
    let out = run(&["--json", "feild"]);
    assert!(
        json_one(&out)["error"]["message"]
            .as_str()
            .unwrap()
            .contains("field"),
        "a suggestion"
    );
    // Without --json: on stderr, with the usage line, and nothing on stdout.
    for args in [
        &["id", "check", "--on", canary][..],
        &["--lang", "sv", "geo", "municipality", "Kalmar", canary],
        &[canary],
    ] {
        let out = run(args);
        assert_eq!(code(&out), 2);
        assert!(out.stdout.is_empty());
        let err = stderr(&out);
        assert!(err.starts_with("lotsa: usage"), "{err}");
        assert!(!err.contains(canary), "echoed: {err}");
    }
    // Help and version are not errors.
    for args in [
        &["--help"][..],
        &["--json", "field", "--help"],
        &["--version"],
    ] {
        let out = run(args);
        assert_eq!(code(&out), 0, "{args:?}");
        assert!(!stdout(&out).is_empty());
    }
}

#[test]
fn stats_and_status_json_are_one_object_on_one_line() {
    let dev = Device::new("stats-json");
    // Empty, then with counters: always exactly one object.
    for _ in 0..2 {
        let stats = dev.ok(&["stats"]);
        assert!(stats["stats"].is_array(), "{stats}");
        let status = dev.ok(&["status"]);
        assert!(
            status["counts"].is_array() && status["items"].is_array(),
            "{status}"
        );
        dev.ok(&["refuse", "--program", "kalmar"]);
        dev.ok(&["new", "--program", "kalmar"]);
    }
    let stats = dev.ok(&["stats"]);
    let rows = stats["stats"].as_array().unwrap();
    assert!(rows.len() >= 2, "{stats}");
    for r in rows {
        assert!(
            r["day"].is_string() && r["program_id"] == "kalmar" && r["count"].is_u64(),
            "{r}"
        );
    }
    // The demo's JSON carries the same rows under the same name.
    let demo = json_one(&run(&["--json", "demo"]));
    assert!(demo["stats"].is_array());
}

/// Every (sub)command path below `path`, found in the help's "Commands:" sections.
fn command_paths(path: Vec<String>, out: &mut Vec<Vec<String>>) {
    let mut args = path.clone();
    args.push("-h".into());
    let help = stdout(&run(&strs(&args)));
    out.push(path.clone());
    let mut in_commands = false;
    for line in help.lines() {
        if !line.starts_with(' ') {
            in_commands = line == "Commands:";
            continue;
        }
        if in_commands {
            let name = line.split_whitespace().next().unwrap_or_default();
            if !name.is_empty() && name != "help" {
                let mut sub = path.clone();
                sub.push(name.to_string());
                command_paths(sub, out);
            }
        }
    }
}

#[test]
fn every_command_argument_and_option_has_help_text() {
    let mut paths = Vec::new();
    command_paths(Vec::new(), &mut paths);
    assert!(paths.len() >= 25, "all commands found: {paths:?}");
    for path in &paths {
        let mut args = path.clone();
        args.push("-h".into());
        let help = stdout(&run(&strs(&args)));
        let lines: Vec<&str> = help.lines().collect();
        let mut section = "";
        for (i, line) in lines.iter().enumerate() {
            if !line.starts_with(' ') {
                section = line;
                continue;
            }
            if !matches!(section, "Commands:" | "Arguments:" | "Options:") {
                continue;
            }
            let entry = line.trim_start();
            if line.len() - entry.len() > 6 || entry.is_empty() {
                continue; // a help text on its own line
            }
            let described = entry
                .split_once("  ")
                .is_some_and(|(_, rest)| !rest.trim().is_empty());
            let next_is_text = lines.get(i + 1).is_some_and(|n| {
                let t = n.trim_start();
                n.len() - t.len() > 6 && !t.is_empty()
            });
            assert!(
                described || next_is_text,
                "`lotsa {}`: no help for {entry:?}\n{help}",
                path.join(" ")
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// input that never ends, is too long, or should not reach the terminal

/// Runs `lotsa` with stdin from a file (or device) and fails the test if it takes longer than
/// `limit`.
fn run_bounded(args: &[&str], stdin: Option<&Path>, limit: std::time::Duration) -> Output {
    let mut child = lotsa()
        .args(args)
        .stdin(match stdin {
            Some(p) => Stdio::from(std::fs::File::open(p).unwrap()),
            None => Stdio::null(),
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read both pipes on threads so a chatty child never blocks on them.
    let mut out_pipe = child.stdout.take().unwrap();
    let mut err_pipe = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut out_pipe, &mut v);
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut err_pipe, &mut v);
        v
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{args:?} did not finish within {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out_reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    }
}

const LIMIT: std::time::Duration = std::time::Duration::from_secs(20);

#[test]
fn files_larger_than_a_mebibyte_are_refused_without_hanging() {
    let dev = Device::new("too-large");
    let zero = Path::new("/dev/zero");
    let big = dev.ex.dir.path("big.json");
    std::fs::write(&big, vec![b' '; (1 << 20) + 1]).unwrap();
    let just_fits = dev.ex.dir.path("fits.json");
    std::fs::write(&just_fits, format!("{{}}{}", " ".repeat((1 << 20) - 2))).unwrap();
    let (b, t) = (s(&dev.ex.bundle), s(&dev.ex.public));
    let draft = dev.ok(&["new", "--program", "kalmar"])["draft_id"]
        .as_str()
        .unwrap()
        .to_string();
    let secret = dev.ex.dir.path("admin.key");
    let out_path = dev.ex.dir.path("never.json");
    let cases: Vec<(Vec<String>, Option<&Path>, &str, &str)> = vec![
        (
            strs_owned(&["--json", "program", "verify", b, "--trust", "/dev/zero"]),
            None,
            "/dev/zero",
            "trust",
        ),
        (
            strs_owned(&["--json", "program", "verify", "/dev/zero", "--trust", t]),
            None,
            "/dev/zero",
            "bundle",
        ),
        (
            strs_owned(&["--json", "program", "verify", s(&big), "--trust", t]),
            None,
            s(&big),
            "bundle",
        ),
        (
            strs_owned(&[
                "--json",
                "eligibility",
                "--bundle",
                "/dev/zero",
                "--trust",
                t,
                "--program",
                "kalmar",
                "--born",
                "1990-01-01",
                "--municipality",
                "Kalmar",
            ]),
            None,
            "/dev/zero",
            "bundle",
        ),
        (
            strs_owned(&[
                "--json",
                "program",
                "sign",
                "/dev/zero",
                "--key",
                s(&secret),
                "-o",
                s(&out_path),
            ]),
            None,
            "/dev/zero",
            "unsigned",
        ),
        (
            strs_owned(&[
                "--json",
                "program",
                "sign",
                s(&big),
                "--key",
                "/dev/zero",
                "-o",
                s(&out_path),
            ]),
            None,
            "/dev/zero",
            "key",
        ),
        (
            dev_args(&dev, true, &["check", &draft])
                .into_iter()
                .map(|a| if a == t { "/dev/zero".to_string() } else { a })
                .collect(),
            None,
            "/dev/zero",
            "trust",
        ),
        (
            dev_args(&dev, true, &["set", &draft, "--from", "/dev/zero"]),
            None,
            "/dev/zero",
            "from",
        ),
        (
            dev_args(&dev, true, &["set", &draft, "--from", s(&big)]),
            None,
            s(&big),
            "from",
        ),
        (
            dev_args(&dev, true, &["set", &draft, "--from", "-"]),
            Some(zero),
            "",
            "from",
        ),
    ];
    for (args, stdin, path, field) in &cases {
        let out = run_bounded(&strs(args), *stdin, LIMIT);
        assert_eq!(code(&out), 1, "{args:?}: {}", stderr(&out));
        let e = json_one(&out);
        assert_eq!(error_code(&e), "file_too_large", "{args:?}: {e}");
        assert_eq!(e["error"]["field"], *field, "{args:?}: {e}");
        assert!(
            e["error"]["message"].as_str().unwrap().contains(path),
            "names the path: {e}"
        );
    }
    assert!(!out_path.exists());
    // 1 MiB itself is read (and here is an empty change).
    let saved = dev.ok(&["set", &draft, "--from", s(&just_fits)]);
    assert_eq!(saved["saved"], true);
}

fn strs_owned(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[test]
fn id_check_reads_endless_or_overlong_input_in_bounded_memory_and_goes_on() {
    // /dev/zero has no newline: reading stops, with a reason, and exit 1.
    for json in [true, false] {
        let args: &[&str] = if json {
            &["--json", "id", "check"]
        } else {
            &["id", "check"]
        };
        let out = run_bounded(args, Some(Path::new("/dev/zero")), LIMIT);
        assert_eq!(code(&out), 1, "{}", stderr(&out));
        if json {
            assert_eq!(error_code(&json_one(&out)), "input_too_large");
        } else {
            assert!(stderr(&out).contains("input_too_large"), "{}", stderr(&out));
        }
    }
    // An over-long line is refused on its own row; the lines before and after are answered.
    let dir = TempDir::new("long-lines");
    let good = adult();
    let input = dir.path("in.txt");
    let long_digits = "1".repeat(100_000);
    let just_257 = format!("{}{good}", " ".repeat(257 - good.len()));
    let just_256 = format!("{}{good}", " ".repeat(256 - good.len()));
    std::fs::write(
        &input,
        format!(
            "{good}\n{long_digits}\n{just_257}\n{just_256}\n{}\n{good}",
            "\0".repeat(300)
        ),
    )
    .unwrap();
    let out = run_bounded(&["--json", "id", "check", "--on", ON], Some(&input), LIMIT);
    assert_eq!(code(&out), 1);
    let lines = json_lines(&out);
    let codes: Vec<&str> = lines
        .iter()
        .map(|l| l["error"]["code"].as_str().unwrap_or("valid"))
        .collect();
    assert_eq!(
        codes,
        [
            "valid",
            "line_too_long",
            "line_too_long",
            "valid",
            "line_too_long",
            "valid"
        ],
        "the last line has no newline and is still read"
    );
    assert!(
        lines[1]["input"].as_str().unwrap().chars().count() <= 25,
        "shortened: {}",
        lines[1]
    );
    // A long run of newline-free input far past the line limit but under the stop still goes on.
    let table = run_bounded(&["id", "check", "--on", ON], Some(&input), LIMIT);
    let text = stdout(&table);
    assert_eq!(text.lines().count(), 7, "header + 6 rows:\n{text}");
    assert!(!text.contains(&long_digits[..300]), "never printed whole");
}

#[test]
fn control_characters_never_reach_the_terminal() {
    let esc = "\u{1b}[2J\u{1b}]0;owned\u{7}";
    let bidi = "\u{202e}3321-21409910";
    let out = run_stdin(
        &["id", "check", "--on", ON],
        &format!("{esc}\n{bidi}\n\u{9b}31m\n"),
    );
    assert_eq!(code(&out), 1);
    let shown = stdout(&out) + &stderr(&out);
    for bad in ['\u{1b}', '\u{7}', '\u{202e}', '\u{9b}'] {
        assert!(
            !shown.contains(bad),
            "{bad:?} reached the terminal:\n{shown}"
        );
    }
    assert!(
        shown.contains("\\u{001b}") && shown.contains("\\u{202e}"),
        "{shown}"
    );
    // Ids typed into the field device come back printable in every human line and error.
    let dev = Device::new("printable");
    let weird = format!("id{esc}");
    for command in [
        &["check", weird.as_str()][..],
        &["delete", &weird],
        &["withdraw", &weird],
        &["set", &weird, "--name", "x"],
    ] {
        let out = run(&strs(&dev_args(&dev, false, command)));
        let shown = stdout(&out) + &stderr(&out);
        assert!(!shown.contains('\u{1b}'), "{command:?}: {shown:?}");
    }
    // A control character in a path, in an error.
    let out = run(&[
        "program",
        "verify",
        &format!("/nonexistent/{esc}"),
        "--trust",
        s(&dev.ex.public),
    ]);
    assert!(!stderr(&out).contains('\u{1b}'), "{:?}", stderr(&out));
}

#[test]
fn error_texts_never_repeat_what_was_typed() {
    let canary = "19900412-1233";
    let dev = Device::new("no-echo");
    let draft = dev.ok(&["new", "--program", "kalmar"])["draft_id"]
        .as_str()
        .unwrap()
        .to_string();
    let consent = |extra: &[&str]| -> Vec<String> {
        let mut rest = vec![
            "consent",
            &draft,
            "--witness",
            "P-4711",
            "--officer",
            "P-1234",
            "--unit",
            "Kalmar",
            "--told-no-effect",
            "--told-withdrawal",
        ];
        rest.extend_from_slice(extra);
        dev_args(&dev, true, &rest)
    };
    let cases: Vec<(Vec<String>, &str, &str)> = vec![
        (
            consent(&["--capacity", "adequate", "--method", canary]),
            "invalid_method",
            "method",
        ),
        (
            consent(&["--capacity", "adequate", "--role", canary]),
            "invalid_role",
            "role",
        ),
        (
            consent(&["--capacity", canary]),
            "invalid_capacity",
            "capacity",
        ),
        (
            dev_args(&dev, true, &["new", "--program", canary]),
            "unknown_program",
            "program_id",
        ),
        (
            dev_args(&dev, true, &["refuse", "--program", canary]),
            "unknown_program",
            "program_id",
        ),
        (
            dev_args(&dev, true, &["check", canary]),
            "not_found",
            "draft_id",
        ),
        (
            dev_args(&dev, true, &["set", canary, "--name", "x"]),
            "not_found",
            "draft_id",
        ),
        (
            dev_args(&dev, true, &["withdraw", canary]),
            "not_found",
            "handover_id",
        ),
    ];
    for (args, want_code, want_field) in &cases {
        for lang in ["en", "sv"] {
            let mut all = args.clone();
            all.splice(0..0, ["--lang".to_string(), lang.to_string()]);
            let out = run(&strs(&all));
            assert_eq!(code(&out), 1, "{all:?}");
            let e = json_one(&out);
            assert_eq!(error_code(&e), *want_code, "{all:?}: {e}");
            assert_eq!(e["error"]["field"], *want_field, "{all:?}: {e}");
            assert!(!e.to_string().contains(canary), "echoed: {e}");
            // And for people, on stderr.
            all.retain(|a| a != "--json");
            let out = run(&strs(&all));
            assert!(!stderr(&out).contains(canary), "echoed: {}", stderr(&out));
        }
    }
    // A trust key that is neither a file nor a key: the decoder's own words, which name the
    // offending character and where it is, are left out.
    for lang in ["en", "sv"] {
        let out = run(&[
            "--json",
            "--lang",
            lang,
            "program",
            "verify",
            s(&dev.ex.bundle),
            "--trust",
            canary,
        ]);
        let e = json_one(&out);
        assert_eq!(error_code(&e), "bundle_key", "{e}");
        assert_eq!(e["error"]["field"], "trust");
        let m = e["error"]["message"].as_str().unwrap();
        assert!(
            !m.contains(canary) && !m.contains("symbol") && !m.contains("offset"),
            "{m}"
        );
    }
    // Lookups name their field and not the query.
    for (args, field) in [
        (["--json", "geo", "municipality", canary], "municipality"),
        (["--json", "geo", "postal", canary], "postal_code"),
    ] {
        let e = json_one(&run(&args));
        assert_eq!(e["error"]["field"], field, "{e}");
        assert!(!e.to_string().contains(canary), "{e}");
    }
}

// ---------------------------------------------------------------------------------------------
// the demo's temporary device never outlives it

/// A `lotsa-demo-<uuid>` folder in `tmp` with a file inside, its owner file when given, and the
/// given age.
fn demo_folder(tmp: &Path, n: u32, owner: Option<u32>, age_secs: u64) -> PathBuf {
    let dir = tmp.join(format!("lotsa-demo-0000{n:04}-1111-4222-8333-444455556666"));
    std::fs::create_dir_all(dir.join("vault")).unwrap();
    std::fs::write(dir.join("device.sqlite"), b"left behind").unwrap();
    if let Some(pid) = owner {
        std::fs::write(dir.join("owner.pid"), format!("{pid}\n")).unwrap();
    }
    let when = std::time::SystemTime::now() - std::time::Duration::from_secs(age_secs);
    std::fs::File::open(&dir)
        .unwrap()
        .set_modified(when)
        .expect("a folder's mtime can be set");
    dir
}

#[test]
fn the_demo_sweeps_devices_left_by_killed_runs() {
    let tmp = TempDir::new("demo-sweep");
    // A process that has ended: its pid names no process now.
    let mut gone = Command::new("true").spawn().unwrap();
    let gone_pid = gone.id();
    gone.wait().unwrap();
    let me = std::process::id();
    let two_hours = 2 * 60 * 60;
    let old_unowned = demo_folder(&tmp.0, 1, None, two_hours);
    let dead_owner = demo_folder(&tmp.0, 2, Some(gone_pid), 0);
    let live_old = demo_folder(&tmp.0, 3, Some(me), two_hours);
    let fresh_unowned = demo_folder(&tmp.0, 4, None, 60);
    let not_ours = tmp.path("lotsa-demo-notes");
    std::fs::create_dir_all(&not_ours).unwrap();
    std::fs::File::open(&not_ours)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(two_hours))
        .unwrap();
    let a_file = tmp.path("lotsa-demo-00000005-1111-4222-8333-444455556666");
    std::fs::write(&a_file, b"a file, not a device").unwrap();

    let out = lotsa()
        .args(["--json", "demo"])
        .env("TMPDIR", &tmp.0)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        !old_unowned.exists(),
        "an old folder without owner is swept"
    );
    assert!(
        !dead_owner.exists(),
        "a folder whose owner is gone is swept"
    );
    assert!(
        live_old.exists(),
        "a running demo's folder stays, however old"
    );
    assert!(
        fresh_unowned.exists(),
        "a young folder without owner may be starting: it stays"
    );
    assert!(
        not_ours.exists() && a_file.exists(),
        "only demo device folders are touched"
    );
    // And the run itself left nothing new.
    let left: BTreeSet<String> = std::fs::read_dir(&tmp.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left.len(), 4, "{left:?}");
}

/// Starts a human-output demo whose stdout is a one-page pipe nobody reads, so it blocks after
/// its first lines with its folder (both clinics and the phone) made; returns the child, the
/// pipe's reader and the folder.
#[cfg(target_os = "linux")]
fn blocked_demo(tmp: &Path) -> (std::process::Child, std::io::PipeReader, PathBuf) {
    use std::os::fd::AsRawFd;
    let (reader, writer) = std::io::pipe().unwrap();
    // SAFETY: F_SETPIPE_SZ on a pipe this test owns; the kernel rounds up to one page.
    let size = unsafe { libc::fcntl(writer.as_raw_fd(), libc::F_SETPIPE_SZ, 4096) };
    assert!(size > 0 && size < 10_000, "the pipe is one page ({size})");
    let child = lotsa()
        .arg("demo")
        .env("TMPDIR", tmp)
        .stdout(Stdio::from(writer))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The demo's output is longer than a page: it stops, with its device made.
    let started = Instant::now();
    let dir = loop {
        let found = std::fs::read_dir(tmp)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.join("phone.sqlite").exists());
        if let Some(dir) = found {
            break dir;
        }
        assert!(started.elapsed() < LIMIT, "the demo made no device");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    std::thread::sleep(std::time::Duration::from_millis(200));
    (child, reader, dir)
}

#[test]
#[cfg(target_os = "linux")]
fn the_demo_removes_its_device_when_it_is_interrupted_or_terminated() {
    for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        let tmp = TempDir::new("demo-signal");
        let (mut child, reader, dir) = blocked_demo(&tmp.0);
        assert!(dir.exists());
        assert!(
            child.try_wait().unwrap().is_none(),
            "the demo is blocked on its output"
        );
        // SAFETY: signals a child this test started and has not reaped.
        assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, signal) }, 0);
        let started = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(
                started.elapsed() < LIMIT,
                "signal {signal} did not end the demo"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        drop(reader);
        assert_eq!(status.code(), Some(130), "signal {signal}: {status:?}");
        assert!(!dir.exists(), "signal {signal}: the device is removed");
        assert_eq!(std::fs::read_dir(&tmp.0).unwrap().count(), 0);
    }
}

// ---------------------------------------------------------------------------------------------
// an id that names nothing now: what became of it

#[test]
fn a_draft_that_is_gone_names_its_field_and_the_core_says_what_became_of_it() {
    let dev = Device::new("gone-text");
    let message = |id: &str| -> (String, Value) {
        let out = dev.run(&["check", id]);
        assert_eq!(code(&out), 1);
        let e = json_one(&out);
        (
            e["error"]["message"].as_str().unwrap().to_string(),
            e["error"]["field"].clone(),
        )
    };
    let draft = ready_draft(&dev);
    dev.ok(&["finalize", &draft]);
    let deleted = dev.ok(&["new", "--program", "kalmar"])["draft_id"]
        .as_str()
        .unwrap()
        .to_string();
    dev.ok(&["delete", &deleted]);
    let texts: BTreeSet<String> = [
        draft.as_str(),
        &deleted,
        "00000000-0000-4000-8000-000000000000",
    ]
    .into_iter()
    .map(|id| {
        let (m, field) = message(id);
        assert_eq!(field, "draft_id");
        assert!(!m.contains(id), "the id is not repeated: {m}");
        m
    })
    .collect();
    assert_eq!(
        texts.len(),
        3,
        "finalized, erased and never there read differently: {texts:?}"
    );
}

#[test]
fn a_draft_that_is_gone_says_whether_it_was_finalized_erased_or_never_there() {
    let dev = Device::new("gone");
    let refuse = |out: Output| -> Value {
        assert_eq!(code(&out), 1, "{}", stdout(&out));
        json_one(&out)
    };
    // Never there.
    let never = "00000000-0000-4000-8000-000000000000";
    for args in [
        &["check", never][..],
        &["set", never, "--name", "x"],
        &["delete", never],
    ] {
        let e = refuse(dev.run(args));
        assert_eq!(error_code(&e), "not_found", "{args:?}: {e}");
        assert_eq!(e["error"]["field"], "draft_id");
    }
    let e = refuse(dev.run(&["withdraw", never]));
    assert_eq!(
        (error_code(&e), &e["error"]["field"]),
        ("not_found", &Value::from("handover_id"))
    );
    // Finalized: a sealed referral now, under the same id.
    let draft = ready_draft(&dev);
    dev.ok(&["finalize", &draft]);
    let mut messages = BTreeSet::new();
    for args in [
        &["check", &draft][..],
        &["set", &draft, "--name", "x"],
        &["finalize", &draft],
    ] {
        let e = refuse(dev.run(args));
        // The code stays `not_found`; the text says what became of the draft.
        assert_eq!(error_code(&e), "not_found", "{args:?}: {e}");
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap()
                .contains("finalized"),
            "{e}"
        );
        assert_eq!(e["error"]["field"], "draft_id");
        messages.insert(e["error"]["message"].as_str().unwrap().to_string());
    }
    // Erased: deleted, refused or closed.
    for end in ["delete", "refuse", "close"] {
        let d = dev.ok(&["new", "--program", "kalmar"])["draft_id"]
            .as_str()
            .unwrap()
            .to_string();
        match end {
            "refuse" => dev.ok(&["refuse", "--draft", &d]),
            "close" => {
                dev.ok(&[
                    "set",
                    &d,
                    "--id",
                    &adult(),
                    "--municipality",
                    "Kiruna",
                    "--provenance",
                    "register",
                ]);
                dev.ok(&["close", &d])
            }
            _ => dev.ok(&["delete", &d]),
        };
        let e = refuse(dev.run(&["check", &d]));
        assert_eq!(error_code(&e), "not_found", "{end}: {e}");
        assert!(
            e["error"]["message"].as_str().unwrap().contains("erased"),
            "{e}"
        );
        assert_eq!(e["error"]["field"], "draft_id");
        messages.insert(e["error"]["message"].as_str().unwrap().to_string());
    }
    assert_eq!(
        messages.len(),
        2,
        "one text for finalized, one for erased: {messages:?}"
    );
    // People read the same on stderr, in Swedish too; never the id.
    let out = run(&strs(&dev_args(&dev, false, &["check", &draft])));
    assert!(
        stderr(&out).contains("not_found [draft_id]"),
        "{}",
        stderr(&out)
    );
    let mut sv = dev_args(&dev, false, &["check", &draft]);
    sv.splice(0..0, ["--lang".to_string(), "sv".to_string()]);
    let err = stderr(&run(&strs(&sv)));
    assert!(
        err.contains("not_found") && err.contains("Utkastet"),
        "{err}"
    );
    assert!(!err.contains(&draft), "{err}");
}
