//! The device's HTTPS client against real clinic services on 127.0.0.1, through a real TCP proxy:
//! it reaches the clinic its bundle names, and a server with another CA, or with a key the bundle
//! does not pin, is refused before any request byte is sent.

use chrono::Utc;
use lotsa_clinic::local::LocalClinic;
use lotsa_core::crypto::SigningKey;
use lotsa_core::program::Clinic;
use lotsa_core::sync::{Timeouts, Transport, TransportError};
use lotsa_tests::field::{bundle_for, TempDir};
use lotsa_tests::proxy::Proxy;
use std::time::Duration;

/// A local clinic serving a bundle in which `lots-for-livet` is its program.
fn served(dir: &TempDir, name: &str) -> LocalClinic {
    let mut clinic = LocalClinic::create(&dir.0.join(name), name, "lots-for-livet", Utc::now())
        .expect("a local clinic");
    let admin = SigningKey::generate().unwrap();
    let bundle = bundle_for(clinic.clinic(), &admin, Utc::now());
    clinic.start(&bundle, &admin.public_key()).unwrap();
    clinic
}

/// The clinic as a device reaches it through the proxy (the certificate names 127.0.0.1).
fn via(proxy: &Proxy, clinic: &Clinic) -> Clinic {
    let path = clinic.endpoint.splitn(4, '/').nth(3).unwrap_or("");
    Clinic {
        endpoint: format!("https://127.0.0.1:{}/{path}", proxy.addr().port()),
        ..clinic.clone()
    }
}

fn quick() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(5),
        request: Duration::from_secs(10),
    }
}

#[test]
fn the_device_reaches_the_clinic_its_bundle_names_and_refuses_any_other_before_sending_a_byte() {
    let dir = TempDir::new("transport");
    let ours = served(&dir, "ours");
    let other = served(&dir, "other");

    // Direct, then through the proxy: the bundle's CA and pins, the clinic's own answers.
    let direct = Transport::for_clinic(ours.clinic(), quick()).unwrap();
    let health = direct.get("health").unwrap();
    assert_eq!(
        (health.status, health.body.as_slice()),
        (200, &b"{\"status\":\"ok\"}"[..])
    );
    assert!(health.date.is_some());
    let proxy = Proxy::start(ours.addr());
    let through = Transport::for_clinic(&via(&proxy, ours.clinic()), quick()).unwrap();
    assert_eq!(through.get("health").unwrap().status, 200);
    assert!(proxy.bytes_to_upstream() > 0);

    // Another clinic's server (another CA) where ours should be, on the device's next connection:
    // refused in the handshake.
    let envelope = vec![b'e'; 4000];
    proxy.point_at(other.addr());
    let through = Transport::for_clinic(&via(&proxy, ours.clinic()), quick()).unwrap();
    let before = proxy.bytes_to_upstream();
    let refused = through.post(
        "handovers",
        &[("content-type", "application/json".into())],
        &envelope,
    );
    assert!(
        matches!(refused, Err(TransportError::Untrusted { .. })),
        "{refused:?}"
    );
    let sent = proxy.bytes_to_upstream() - before;
    assert!(
        sent < 1024,
        "only the handshake went out ({sent} bytes), never the 4000-byte body"
    );
    assert_eq!(other.storage().unwrap().handover_count().unwrap(), 0);

    // The other clinic's CA trusted, but its key not pinned: refused just the same.
    let mut unpinned = via(&proxy, other.clinic());
    unpinned.tls.spki_sha256_pins = ours.clinic().tls.spki_sha256_pins.clone();
    let before = proxy.bytes_to_upstream();
    let transport = Transport::for_clinic(&unpinned, quick()).unwrap();
    let refused = transport.post("handovers", &[], &envelope);
    assert!(
        matches!(refused, Err(TransportError::Untrusted { .. })),
        "{refused:?}"
    );
    assert!(proxy.bytes_to_upstream() - before < 1024);
    // With its own pins it is reachable: the pin, not something else, made the difference.
    let pinned = Transport::for_clinic(&via(&proxy, other.clinic()), quick()).unwrap();
    assert_eq!(pinned.get("health").unwrap().status, 200);
}

#[test]
fn an_unreachable_clinic_is_a_network_failure_and_a_bundle_without_ca_or_pins_is_refused() {
    let dir = TempDir::new("unreachable");
    let mut ours = served(&dir, "ours");
    ours.stop();
    let transport = Transport::for_clinic(ours.clinic(), quick()).unwrap();
    assert!(matches!(
        transport.get("health"),
        Err(TransportError::Network { .. })
    ));
    ours.resume().unwrap();
    assert_eq!(transport.get("health").unwrap().status, 200);

    let mut no_ca = ours.clinic().clone();
    no_ca.tls.ca_pem = None;
    assert!(matches!(
        Transport::for_clinic(&no_ca, quick()),
        Err(TransportError::Config { .. })
    ));
    let mut no_pins = ours.clinic().clone();
    no_pins.tls.spki_sha256_pins.clear();
    assert!(matches!(
        Transport::for_clinic(&no_pins, quick()),
        Err(TransportError::Config { .. })
    ));
}

#[test]
fn after_the_clinic_moves_to_its_spare_key_a_phone_with_the_old_bundle_still_reaches_it_and_the_next_move_needs_the_new_bundle(
) {
    let dir = TempDir::new("rotate-tls");
    let now = Utc::now();
    let mut clinic = LocalClinic::create(&dir.0.join("c"), "Mottagningen", "lots-for-livet", now)
        .expect("a local clinic");
    let admin = SigningKey::generate().unwrap();
    let first = bundle_for(clinic.clinic(), &admin, now);
    clinic.start(&first, &admin.public_key()).unwrap();
    // What a phone that never gets another bundle knows of the clinic.
    let old = clinic.clinic().clone();
    let health = |known: &Clinic| Transport::for_clinic(known, quick()).unwrap().get("health");
    assert_eq!(health(&old).unwrap().status, 200);

    clinic.rotate_tls(now).unwrap();
    let moved = clinic.clinic().clone();
    assert_eq!(moved.tls.spki_sha256_pins[0], old.tls.spki_sha256_pins[1]);
    assert_ne!(moved.tls.spki_sha256_pins[1], old.tls.spki_sha256_pins[1]);
    assert_eq!(
        moved.tls.ca_pem, old.tls.ca_pem,
        "the same CA issues the next certificate"
    );
    // The service needs the bundle signed with the new clinic.json…
    assert!(clinic.start(&first, &admin.public_key()).is_err());
    let second = bundle_for(&moved, &admin, now);
    clinic.start(&second, &admin.public_key()).unwrap();
    // …but a phone with the old bundle still trusts the server: its spare pin was in it.
    assert_eq!(health(&old).unwrap().status, 200);
    assert_eq!(health(&moved).unwrap().status, 200);

    // The next move is to a key only the new bundle pins.
    clinic.rotate_tls(now).unwrap();
    let third = bundle_for(clinic.clinic(), &admin, now);
    clinic.start(&third, &admin.public_key()).unwrap();
    assert!(
        matches!(health(&old), Err(TransportError::Untrusted { .. })),
        "{:?}",
        health(&old).map(|a| a.status)
    );
    assert_eq!(health(&moved).unwrap().status, 200);
}
