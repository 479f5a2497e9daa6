//! A full disk on a real file system: a small tmpfs holds the store, a filler file takes every
//! free byte, and then erasing and withdrawing must still work — a withdrawn consent must not stay
//! deliverable — while writing anything new fails with its own typed error, `storage_full`, and
//! loses nothing.
//!
//! `scripts/test-all.sh` mounts the tmpfs and names it in `LOTSA_FULL_DISK_DIR`. Without it the
//! test mounts one itself (this needs root, as on the build machines); if neither works it fails
//! and says how to run it — it never passes without having filled a disk.

mod common;

use common::{clock, consent, fill_stockholm, Programs};
use lotsa_core::crypto::vault::DevFileVault;
use lotsa_core::store::{Store, Withdrawn};
use lotsa_core::text::Reasoned;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

/// A small file system for the test: the one the test script mounted, or one mounted here.
struct SmallDisk {
    dir: PathBuf,
    mounted_here: bool,
}

impl SmallDisk {
    fn get() -> SmallDisk {
        if let Some(dir) = std::env::var_os("LOTSA_FULL_DISK_DIR") {
            let dir = PathBuf::from(dir).join(format!("full-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&dir).expect("LOTSA_FULL_DISK_DIR is not writable");
            return SmallDisk {
                dir,
                mounted_here: false,
            };
        }
        let dir = std::env::temp_dir().join(format!("lotsa-full-disk-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=3m,mode=0700", "tmpfs"])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            mounted,
            "the full-disk test needs a small file system: run it as root (it mounts a tmpfs), or \
             mount one yourself and set LOTSA_FULL_DISK_DIR (scripts/test-all.sh does)"
        );
        SmallDisk {
            dir,
            mounted_here: true,
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        if self.mounted_here {
            let _ = Command::new("umount").arg(&self.dir).status();
            let _ = std::fs::remove_dir(&self.dir);
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Takes every free byte of the file system `dir` is on; returns the filler's path.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0xA5u8; 64 * 1024];
    while f.write_all(&chunk).is_ok() {}
    // The last bytes, one at a time.
    while f.write_all(&[0xA5]).is_ok() {}
    let _ = f.sync_all();
    path
}

#[test]
fn on_a_full_disk_withdrawing_and_erasing_work_and_new_data_is_refused_with_a_reason() {
    let disk = SmallDisk::get();
    let programs = Programs::new();
    let db = disk.dir.join("device.sqlite");
    let vault = Arc::new(DevFileVault::open_with_warning(disk.dir.join("vault"), |_| {}).unwrap());
    let mut store = Store::open(&db, vault.clone(), Arc::new(clock())).unwrap();
    let bundle = &programs.bundle;
    let ready = |store: &mut Store| {
        let id = store.create_draft(bundle, "lots-for-livet").unwrap();
        store.update_draft(&id, fill_stockholm()).unwrap();
        store.record_consent(&id, bundle, &consent()).unwrap();
        id
    };
    let sealed = ready(&mut store);
    store.finalize(&sealed, bundle).unwrap();
    let sealed_too = ready(&mut store);
    store.finalize(&sealed_too, bundle).unwrap();
    let to_delete = ready(&mut store);
    let to_refuse = ready(&mut store);
    let to_withdraw = ready(&mut store);
    let kept = ready(&mut store);

    let filler = fill(&disk.dir);

    // Nothing new can be written, and the officer is told why and what to do.
    let err = store.create_draft(bundle, "kalmar").unwrap_err();
    assert_eq!(err.code(), "storage_full", "{err}");
    assert!(err.message(lotsa_core::text::Lang::Sv).contains("minne"));
    let err = store
        .update_draft(&kept, fill_stockholm())
        .map(drop)
        .unwrap_err();
    assert_eq!(err.code(), "storage_full", "{err}");

    // Withdrawing and erasing go through all the same.
    assert_eq!(
        store.withdraw(&sealed, None).unwrap(),
        Withdrawn::ErasedBeforeDelivery
    );
    store.delete_draft(&to_delete).unwrap();
    store.refuse_draft(&to_refuse).unwrap();
    assert_eq!(
        store.withdraw(&to_withdraw, None).unwrap(),
        Withdrawn::DraftErased
    );
    assert_eq!(
        store.withdraw(&sealed_too, None).unwrap(),
        Withdrawn::ErasedBeforeDelivery
    );
    // The withdrawn referral is no longer deliverable.
    assert!(store.sealed_payload(&sealed).is_err());
    // Nothing else was lost.
    assert!(store.draft(&kept).is_ok());
    drop(store);

    // Room again: everything works, and the store is whole.
    std::fs::remove_file(&filler).unwrap();
    let mut store = Store::open(&db, vault, Arc::new(clock())).unwrap();
    assert!(store.integrity_ok().unwrap());
    assert!(store.verify_audit().is_ok());
    store.create_draft(bundle, "kalmar").unwrap();
    let ids: Vec<String> = store
        .draft_ids()
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert!(ids.contains(&kept) && !ids.contains(&to_delete) && !ids.contains(&to_refuse));
}
