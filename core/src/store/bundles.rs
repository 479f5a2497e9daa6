//! Which program bundle the store trusts: the newest one it has accepted. A validly signed but
//! older bundle is a rollback — to a consent script that was superseded, or to a clinic key that
//! was rotated because it leaked — and is refused; so is one issued more than
//! [`FUTURE_TOLERANCE`] after the phone's clock (which also keeps the remembered floor from ever
//! passing now plus that tolerance, so one mis-dated bundle cannot lock a device out). Every
//! workflow call that takes a bundle checks it here first.

use super::{Store, StoreError};
use crate::program::{Bundle, BundleError, FUTURE_TOLERANCE};
use rusqlite::{params, OptionalExtension};

impl Store {
    /// Accepts a verified bundle for use, or refuses it: older than the newest accepted
    /// ([`StoreError::BundleSuperseded`]), the same issue time with other content
    /// ([`StoreError::BundleConflict`]), or issued too far ahead of the phone's clock
    /// (`bundle_from_future`). A newer bundle becomes the floor. Apps call it when a bundle
    /// arrives; every call that takes a bundle calls it too.
    pub fn accept_bundle(&mut self, bundle: &Bundle) -> Result<(), StoreError> {
        let set = bundle.set();
        if set.issued_at > self.clock.now() + FUTURE_TOLERANCE {
            return Err(StoreError::Bundle(BundleError::FromFuture {
                issued_at: set.issued_at.to_rfc3339(),
            }));
        }
        let issued = set.issued_at.timestamp();
        let floor: Option<(i64, String, String)> = self
            .conn
            .query_row(
                "SELECT issued_at, payload_sha256, bundle_id FROM bundle_floor WHERE id = 1",
                [],
                |r| {
                    Ok((
                        r.get("issued_at")?,
                        r.get("payload_sha256")?,
                        r.get("bundle_id")?,
                    ))
                },
            )
            .optional()?;
        match floor {
            Some((at, _, newest)) if issued < at => Err(StoreError::BundleSuperseded {
                bundle_id: set.bundle_id.clone(),
                newest,
            }),
            Some((at, sha, _)) if issued == at && sha != bundle.payload_sha256() => {
                Err(StoreError::BundleConflict {
                    bundle_id: set.bundle_id.clone(),
                })
            }
            Some((at, _, _)) if issued == at => Ok(()),
            _ => self.write(|c| {
                c.execute(
                    "INSERT INTO bundle_floor (id, issued_at, payload_sha256, bundle_id)
                     VALUES (1, ?1, ?2, ?3)
                     ON CONFLICT (id) DO UPDATE SET issued_at = excluded.issued_at,
                         payload_sha256 = excluded.payload_sha256, bundle_id = excluded.bundle_id
                     WHERE excluded.issued_at > bundle_floor.issued_at",
                    params![issued, bundle.payload_sha256(), set.bundle_id],
                )?;
                Ok(())
            }),
        }
    }
}
