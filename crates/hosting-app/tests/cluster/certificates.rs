//! Certificates across replicas: the CA's HTTP-01 validation request may reach any
//! replica, so the answer an ordering replica publishes must be known to the others.

use hosting_api::CertificateStatus;

use crate::helpers::TestApp;
use crate::pebble::{issue_from, verified_site, wait_for, Pebble};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_answers_the_challenge_of_an_order_another_replica_placed() {
    // Arrange: A orders; B does not issue (no ACME directory) and is the only replica
    // the CA can reach for validation.
    let mut pebble = Pebble::prepare();
    let a = TestApp::spawn_with(|config| issue_from(config, &pebble)).await;
    let b = a
        .another_instance(|config| config.acme_directory = None)
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
