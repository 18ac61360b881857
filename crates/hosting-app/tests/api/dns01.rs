//! DNS-01 answers published by RFC 2136 updates signed with TSIG, against a real Knot.

use hosting_app::certs::dns01::{Dns01Error, DnsUpdater};

use crate::knot::{Knot, ALGORITHM, KEY_NAME, ZONE};

#[tokio::test]
async fn signed_updates_publish_and_clear_challenge_records_and_a_wrong_key_is_refused() {
    // Arrange
    let knot = Knot::start().await;
    let updater = DnsUpdater::new(knot.addr, ZONE, KEY_NAME, ALGORITHM, knot.secret.clone())
        .expect("updater");
    let name = DnsUpdater::challenge_name(&format!("*.{ZONE}"));

    // Act: two values at one name (a wildcard and its base domain), then cleared.
    updater
        .add_txt(&name, "value-one")
        .await
        .expect("first update");
    updater
        .add_txt(&name, "value-two")
        .await
        .expect("second update");
    let published = knot.txt("_acme-challenge").await;
    updater.clear_txt(&name).await.expect("clearing");
    let cleared = knot.txt("_acme-challenge").await;
    let forged = DnsUpdater::new(knot.addr, ZONE, KEY_NAME, ALGORITHM, vec![7; 32])
        .expect("updater")
        .add_txt(&name, "forged")
        .await;

    // Assert
    assert_eq!(
        published,
        Some(vec!["value-one".to_owned(), "value-two".to_owned()]),
        "knot log:\n{}",
        knot.log()
    );
    assert_eq!(cleared, Some(Vec::new()));
    assert!(matches!(forged, Err(Dns01Error::Refused(..))), "{forged:?}");
    assert_eq!(knot.txt("_acme-challenge").await, Some(Vec::new()));
}
