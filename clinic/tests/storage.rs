//! The clinic database's upgrade path: a file at every earlier schema version opens, is brought up
//! to date in place, and keeps what it held; a file from a newer service is refused untouched.

mod support;

use lotsa_clinic::storage::{
    create_at_version, Storage, StorageError, StoredHandover, SCHEMA_VERSION,
};
use support::TempDir;

fn user_version(path: &std::path::Path) -> i64 {
    rusqlite::Connection::open(path)
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap()
}

fn referral(n: u8) -> StoredHandover {
    StoredHandover {
        device_id: "af4fec1fd70d4f87".into(),
        program_id: "lots-for-livet".into(),
        clinic_key_id: "hpke-1".into(),
        payload_schema_version: 1,
        sealed: vec![n; 300],
        receipt: vec![b'r'; 100],
    }
}

#[test]
fn a_database_at_every_earlier_schema_version_is_upgraded_in_place_and_keeps_its_referrals() {
    for version in 0..SCHEMA_VERSION {
        let dir = TempDir::new();
        let db = dir.0.join("clinic.db");
        create_at_version(&db, version).unwrap();
        assert_eq!(user_version(&db), version);
        if version >= 1 {
            // A referral held before the upgrade, written with that version's own columns
            // (v1's here; a migration that changes `handovers` adds its version's row).
            rusqlite::Connection::open(&db)
                .unwrap()
                .execute(
                    "INSERT INTO handovers (handover_id, device_id, program_id, clinic_key_id,
                         payload_schema_version, sealed, receipt, received_at)
                     VALUES ('0b6c1f5e-3d2a-4c8e-9f10-2a3b4c5d6e7f', 'af4fec1fd70d4f87',
                         'lots-for-livet', 'hpke-1', 1, x'07', x'72', 1)",
                    [],
                )
                .unwrap();
        }
        let storage = Storage::open(&db).unwrap();
        assert_eq!(user_version(&db), SCHEMA_VERSION, "from version {version}");
        storage
            .store_handover(
                "1b6c1f5e-3d2a-4c8e-9f10-2a3b4c5d6e7f".into(),
                referral(8),
                2,
            )
            .unwrap();
        let expected = if version >= 1 { 2 } else { 1 };
        assert_eq!(
            storage.handover_count().unwrap(),
            expected,
            "from version {version}"
        );
        drop(storage);
        // Opening again changes nothing.
        let again = Storage::open(&db).unwrap();
        assert_eq!(again.handover_count().unwrap(), expected);
    }
}

#[test]
fn a_database_from_a_newer_service_is_refused_and_left_as_it_is() {
    let dir = TempDir::new();
    let db = dir.0.join("clinic.db");
    drop(Storage::open(&db).unwrap());
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    drop(conn);
    assert!(matches!(Storage::open(&db), Err(StorageError::TooNew(v)) if v == SCHEMA_VERSION + 1));
    assert_eq!(user_version(&db), SCHEMA_VERSION + 1);
}

#[test]
fn writes_of_concurrent_callers_commit_together_and_a_failing_one_undoes_only_itself() {
    let dir = TempDir::new();
    let storage = Storage::open(&dir.0.join("clinic.db")).unwrap();
    std::thread::scope(|scope| {
        for n in 0..32u8 {
            let storage = &storage;
            scope.spawn(move || {
                let id = format!("{n:08}-3d2a-4c8e-9f10-2a3b4c5d6e7f");
                storage.store_handover(id, referral(n), 1).unwrap();
            });
        }
    });
    assert_eq!(storage.handover_count().unwrap(), 32);
    // A write that inserts and then fails leaves nothing of itself behind.
    let failed = storage.write(|c| {
        c.execute(
            "INSERT INTO tombstones (handover_id, device_id, at) VALUES ('x', 'y', 1)",
            [],
        )?;
        c.execute("INSERT INTO no_such_table VALUES (1)", [])?;
        Ok(())
    });
    assert!(failed.is_err());
    assert_eq!(storage.tombstone("x").unwrap(), None);
    assert_eq!(storage.handover_count().unwrap(), 32);
}
