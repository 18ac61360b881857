//! Certificates across replicas: the CA's HTTP-01 validation request may reach any
//! replica, so the answer an ordering replica publishes must be known to the others.

use std::time::{Duration, Instant};

use hosting_api::CertificateStatus;

use crate::helpers::TestApp;
use crate::pebble::{issue_from, verified_site, wait_for, Pebble, DOMAIN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_answers_the_challenge_of_an_order_another_replica_placed() {
    // Arrange: A orders; B does not issue (no ACME directory) and is the only replica
    // the CA can reach for validation.
    let mut pebble = Pebble::prepare();
    let a = TestApp::spawn_with(|config| issue_from(config, &pebble)).await;
    let b = a
        .another_instance(|config| config.acme.acme_directory = None)
        .await;
    pebble.start(b.addr.port()).await;

    // Act
    verified_site(&a, &pebble).await;
    let issued = wait_for(&a, &pebble, "a certificate validated on B", |c| {
        c.status == CertificateStatus::Issued
    })
    .await;

    // Assert: the order could only complete through B answering from Redis.
    assert!(issued.serial.is_some(), "{issued:?}");
    assert_eq!(issued.failures, 0, "{issued:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_replica_finishes_an_order_the_ca_completes_within_its_grace() {
    // Arrange: A orders and B answers the validation, as above; the CA is frozen, so A's
    // order hangs once A has taken the lease.
    let mut pebble = Pebble::prepare();
    let mut a = TestApp::spawn_with(|config| issue_from(config, &pebble)).await;
    let b = a
        .another_instance(|config| config.acme.acme_directory = None)
        .await;
    pebble.start(b.addr.port()).await;
    pebble.freeze(true);
    verified_site(&a, &pebble).await;
    let started = Instant::now();
    loop {
        let rows = b.state.store.certificate_counts().await.expect("counts");
        let due = b.state.store.certificates_due(chrono::Utc::now(), 10);
        if !rows.is_empty() && due.await.expect("due").is_empty() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "A never took the lease"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Act: A is told to stop; the CA answers again half a second later.
    let thaw = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        pebble.freeze(false);
    };
    tokio::join!(a.shut_down(), thaw);

    // Assert: A finished the order before it stopped (validated through B).
    let served = b.state.store.served_certificates().await.expect("served");
    let domains: Vec<&str> = served.iter().map(|c| c.domain.as_str()).collect();
    assert_eq!(domains, vec![DOMAIN], "{}", pebble.log());
}
