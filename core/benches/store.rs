//! The store's two latency targets, measured with a plain `Instant` loop (percentiles, not just a
//! mean) and printed as a table and one JSON line:
//!
//! (a) finalize — read and decrypt the draft, validate, assess, build the payload, HPKE-seal it,
//!     commit the outbox item, its audit entry and the draft's deletion durably, and checkpoint
//!     the WAL so that no openable copy of the draft is left in it — against
//! (b) a bare rusqlite `INSERT` of a row with the same number of payload bytes (random bytes, the
//!     size of the sealed payload) into a file database with the same pragmas (WAL,
//!     `synchronous=FULL`, `secure_delete=ON`, `foreign_keys=ON`), interleaved in the same run;
//!     target p50 ratio ≤ 1.3×;
//! (b') the same bare `INSERT` followed by `PRAGMA wal_checkpoint(TRUNCATE)`: the like-for-like
//!     baseline for a write that must also erase (finalize checkpoints so that the finalized
//!     draft's key and ciphertext do not stay in the `-wal` file, see `tests/store_plaintext.rs`);
//! (c) `Store::open` of a store holding 10,000 queued items, built through the real API (create,
//!     fill, consent, finalize 10,000 times); target p50 ≤ 20 ms. The OS page cache is warm (the
//!     files were just written): this is a fresh connection and store, not a cold disk.
//!
//! All files live in the system temp directory. The vault is the in-memory test vault (a real
//! platform keystore adds its own unwrap time to every open).
//!
//! Run: `cargo bench -p lotsa-core --bench store` (`LOTSA_BENCH_ITERS`, `LOTSA_BENCH_QUEUED`,
//! `LOTSA_BENCH_OPENS` change the sizes).

#[path = "../tests/common/mod.rs"]
mod common;

use common::{clock, ready_draft, Programs, TempDir};
use lotsa_core::clock::Clock;
use lotsa_core::crypto::seal::{seal_to_clinic_b64, SealBinding};
use lotsa_core::crypto::vault::{KeyVault, MemoryVault};
use lotsa_core::store::Store;
use rusqlite::{params, Connection};
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// A file database set up as `store::schema::configure` sets the store's up.
fn open_bare(path: &Path) -> Connection {
    let conn = Connection::open(path).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    conn.execute_batch(
        "PRAGMA synchronous = FULL;
         PRAGMA secure_delete = ON;
         PRAGMA foreign_keys = ON;
         CREATE TABLE bare (id TEXT PRIMARY KEY NOT NULL, payload BLOB NOT NULL) WITHOUT ROWID;",
    )
    .unwrap();
    conn
}

/// Checks a connection has the pragmas the comparison relies on.
fn pragmas(conn: &Connection) -> (String, i64, i64) {
    (
        conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap(),
        conn.query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap(),
        conn.query_row("PRAGMA secure_delete", [], |r| r.get(0))
            .unwrap(),
    )
}

/// The stored size of an outbox item's sealed payload.
fn payload_len(store: &Store, id: &str) -> usize {
    let n: i64 = store
        .connection()
        .query_row(
            "SELECT length(payload) FROM outbox WHERE id = ?1",
            [id],
            |r| r.get(0),
        )
        .unwrap();
    usize::try_from(n).unwrap()
}

/// xorshift64*, to fill payloads with incompressible bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// p50, p99, mean and max in milliseconds.
#[derive(Clone, Copy)]
struct Summary {
    p50: f64,
    p99: f64,
    mean: f64,
    max: f64,
    n: usize,
}

fn summarise(samples: &[Duration]) -> Summary {
    let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let at = |p: f64| ms[((p / 100.0) * (ms.len() - 1) as f64).round() as usize];
    Summary {
        p50: at(50.0),
        p99: at(99.0),
        mean: ms.iter().sum::<f64>() / ms.len() as f64,
        max: *ms.last().unwrap(),
        n: ms.len(),
    }
}

fn json(s: &Summary) -> String {
    format!(
        "{{\"p50_ms\":{:.3},\"p99_ms\":{:.3},\"mean_ms\":{:.3},\"max_ms\":{:.3},\"n\":{}}}",
        s.p50, s.p99, s.mean, s.max, s.n
    )
}

fn row(label: &str, s: &Summary) {
    println!(
        "{label:<46} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>6}",
        s.p50, s.p99, s.mean, s.max, s.n
    );
}

fn main() {
    let iters = env_usize("LOTSA_BENCH_ITERS", 300);
    let warm_up = 20;
    let queued = env_usize("LOTSA_BENCH_QUEUED", 10_000);
    let opens = env_usize("LOTSA_BENCH_OPENS", 30);

    let programs = Programs::new();
    let clock: Arc<dyn Clock> = Arc::new(clock());
    let vault: Arc<dyn KeyVault> = Arc::new(MemoryVault::new());
    let dir = TempDir::new("bench-store");

    // (a), (b) and (b'), interleaved so that disk and machine noise hit all three alike.
    let mut store = Store::open(
        &dir.path().join("finalize.sqlite"),
        vault.clone(),
        clock.clone(),
    )
    .unwrap();
    let bare = open_bare(&dir.path().join("bare.sqlite"));
    let bare_ck = open_bare(&dir.path().join("bare-checkpoint.sqlite"));
    assert_eq!(pragmas(store.connection()), pragmas(&bare));
    assert_eq!(pragmas(&bare), ("wal".to_string(), 2, 1));

    let probe = ready_draft(&mut store, &programs);
    store.finalize(&probe, &programs.bundle).unwrap();
    let sealed_len = payload_len(&store, &probe);

    let mut rng = Rng(0x5EED_0FF1_A115_E500);
    let mut finalize = Vec::with_capacity(iters);
    let mut insert_ck = Vec::with_capacity(iters);
    let mut insert = Vec::with_capacity(iters);
    let mut sizes = Vec::with_capacity(iters);
    for i in 0..warm_up + iters {
        let id = ready_draft(&mut store, &programs);
        let t = Instant::now();
        store.finalize(&id, &programs.bundle).unwrap();
        let a = t.elapsed();

        let row_id = uuid::Uuid::new_v4().to_string();
        let payload = rng.bytes(sealed_len);
        let t = Instant::now();
        bare.execute(
            "INSERT INTO bare (id, payload) VALUES (?1, ?2)",
            params![row_id, payload],
        )
        .unwrap();
        let b = t.elapsed();

        let payload = rng.bytes(sealed_len);
        let t = Instant::now();
        bare_ck
            .execute(
                "INSERT INTO bare (id, payload) VALUES (?1, ?2)",
                params![uuid::Uuid::new_v4().to_string(), payload],
            )
            .unwrap();
        bare_ck
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
        let c = t.elapsed();

        if i >= warm_up {
            finalize.push(a);
            insert.push(b);
            insert_ck.push(c);
            sizes.push(payload_len(&store, &id));
        }
    }
    sizes.sort_unstable();
    assert_eq!(
        sizes.first(),
        sizes.last(),
        "every sealed payload has the same size"
    );

    // HPKE sealing alone, on a plaintext of the payload's size (enc 32 B + tag 16 B taken off).
    let key = programs
        .program("lots-for-livet")
        .current_hpke_key(clock.now())
        .unwrap()
        .public_key
        .clone();
    let plain = vec![b'x'; sealed_len.saturating_sub(48)];
    let binding = SealBinding {
        handover_id: "00000000-0000-4000-8000-000000000000",
        program_id: "lots-for-livet",
        clinic_key_id: common::CLINIC_KEY_ID,
        schema_version: common::PAYLOAD_SCHEMA_VERSION,
    };
    let mut seal = Vec::with_capacity(iters);
    for i in 0..warm_up + iters {
        let t = Instant::now();
        black_box(seal_to_clinic_b64(&key, &binding, black_box(&plain)).unwrap());
        if i >= warm_up {
            seal.push(t.elapsed());
        }
    }
    drop(store);
    drop(bare_ck);
    drop(bare);

    // (c) A store with `queued` items in the outbox, built through the real API.
    let dir10k = TempDir::new("bench-store-queued");
    let path = dir10k.path().join("device.sqlite");
    let built = Instant::now();
    {
        let mut s = Store::open(&path, vault.clone(), clock.clone()).unwrap();
        for _ in 0..queued {
            let id = ready_draft(&mut s, &programs);
            s.finalize(&id, &programs.bundle).unwrap();
        }
        let n: i64 = s
            .connection()
            .query_row(
                "SELECT count(*) FROM outbox WHERE state = 'pending'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n as usize, queued);
    }
    let build_secs = built.elapsed().as_secs_f64();
    let db_bytes = std::fs::metadata(&path).unwrap().len();
    let mut open = Vec::with_capacity(opens);
    let mut status = Vec::with_capacity(opens);
    let mut first_open = Duration::ZERO;
    for i in 0..opens + 3 {
        let t = Instant::now();
        let s = Store::open(&path, vault.clone(), clock.clone()).unwrap();
        let o = t.elapsed();
        let t = Instant::now();
        let q = s.queue_status().unwrap();
        let st = t.elapsed();
        assert_eq!(q.items.len(), queued);
        drop(s);
        if i == 0 {
            first_open = o;
        }
        if i >= 3 {
            open.push(o);
            status.push(st);
        }
    }

    let fin = summarise(&finalize);
    let ins = summarise(&insert);
    let fck = summarise(&insert_ck);
    let sl = summarise(&seal);
    let op = summarise(&open);
    let qs = summarise(&status);
    let ratio50 = fin.p50 / ins.p50;
    let ratio99 = fin.p99 / ins.p99;
    let ratio50_ck = fin.p50 / fck.p50;

    println!();
    println!(
        "store benchmark — file databases in {} (WAL, synchronous=FULL, secure_delete=ON), \
         sealed payload {sealed_len} B, {iters} iterations after {warm_up} warm-up",
        std::env::temp_dir().display()
    );
    println!(
        "{:<46} {:>9} {:>9} {:>9} {:>9} {:>6}",
        "", "p50 ms", "p99 ms", "mean ms", "max ms", "n"
    );
    row("(a) finalize (validate + seal + commit)", &fin);
    row(&format!("(b) bare INSERT of {sealed_len} B"), &ins);
    println!(
        "{:<46} {:>8.2}x {:>8.2}x   (target p50 <= 1.3x)",
        "    ratio (a)/(b)", ratio50, ratio99
    );
    row("(b') bare INSERT + wal_checkpoint(TRUNCATE)", &fck);
    println!(
        "{:<46} {:>8.2}x {:>8.2}x",
        "    ratio (a)/(b')",
        ratio50_ck,
        fin.p99 / fck.p99
    );
    row("    HPKE seal alone (same size)", &sl);
    row(&format!("(c) Store::open with {queued} queued"), &op);
    println!(
        "{:<46} {:>9.3}   (first open after the build; target p50 <= 20 ms)",
        "    first open",
        first_open.as_secs_f64() * 1e3
    );
    row(&format!("    queue_status with {queued} items"), &qs);
    println!(
        "    ({queued} items built through create/fill/consent/finalize in {build_secs:.1} s; \
         database {:.1} MiB)",
        db_bytes as f64 / (1024.0 * 1024.0)
    );
    println!(
        "{{\"bench\":\"store\",\"sealed_bytes\":{sealed_len},\"finalize\":{},\"bare_insert\":{},\
         \"ratio_p50\":{ratio50:.3},\"ratio_p99\":{ratio99:.3},\"bare_insert_checkpoint\":{},\
         \"ratio_vs_insert_checkpoint_p50\":{ratio50_ck:.3},\
         \"hpke_seal\":{},\"queued\":{queued},\
         \"open\":{},\"first_open_ms\":{:.3},\"queue_status\":{},\"build_s\":{build_secs:.1},\
         \"db_bytes\":{db_bytes}}}",
        json(&fin),
        json(&ins),
        json(&fck),
        json(&sl),
        json(&op),
        first_open.as_secs_f64() * 1e3,
        json(&qs)
    );
}
