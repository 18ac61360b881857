//! The certificate storage contract (ACME orders, issued certificates, accounts), run
//! against whichever store backend the test app uses: which domains are due, the order
//! lease that keeps two replicas from ordering twice, what the proxies are given to
//! serve, and that unverified or deleted domains never get or keep a certificate.

use chrono::{DateTime, Duration, TimeZone, Utc};
use hosting_api::{CertificateStatus, DomainStatus, Role};
use hosting_app::store::{
    CertificateFailure, DomainCheck, IssuedCertificate, NewDomain, SiteRecord, Store,
};

use crate::helpers::TestApp;

const KEY: &[u8] = b"\x00sealed-private-key\xff";
const CHAIN: &str = "-----BEGIN CERTIFICATE-----\nleaf\n-----END CERTIFICATE-----\n";

/// Now, to the millisecond the stores keep.
fn now() -> DateTime<Utc> {
    Utc.timestamp_millis_opt(Utc::now().timestamp_millis())
        .single()
        .expect("time")
}

struct Fixture {
    app: TestApp,
    owner_id: i64,
    site: SiteRecord,
}

/// The app's quota policy, for store calls that need one.
fn quotas(app: &TestApp) -> hosting_app::domain::quota::Quotas {
    hosting_app::domain::quota::Quotas::from_config(&app.config)
}

impl Fixture {
    async fn new() -> Fixture {
        let app = TestApp::spawn().await;
        let owner = app
            .state
            .store
            .create_user("certowner", Role::Member, None)
            .await
            .expect("user");
        let site = app
            .state
            .store
            .create_site(owner.id, "certsite", &quotas(&app))
            .await
            .expect("site");
        Fixture {
            app,
            owner_id: owner.id,
            site,
        }
    }

    fn store(&self) -> &dyn Store {
        self.app.state.store.as_ref()
    }

    /// Claims `name` for the site and records a check with `status`; the next check is
    /// a day away so the app's own checker leaves it alone.
    async fn domain(&self, name: &str, status: DomainStatus) -> i64 {
        self.domain_of(self.site.id, name, status).await
    }

    /// Like [`Fixture::domain`], for the site with id `site_id`.
    async fn domain_of(&self, site_id: i64, name: &str, status: DomainStatus) -> i64 {
        let later = Utc::now() + Duration::days(1);
        let domain = self
            .store()
            .add_domain(NewDomain {
                owner_id: self.owner_id,
                site_id,
                name: name.into(),
                token: "token".into(),
                next_check_at: later,
                replace_unverified_before: Utc::now(),
            })
            .await
            .expect("domain");
        self.store()
            .record_domain_check(
                domain.id,
                &DomainCheck {
                    status,
                    detail: None,
                    failures: 0,
                    next_check_at: later,
                },
            )
            .await
            .expect("check");
        domain.id
    }

    /// The verified domain `id` fails a later ownership check at `now`.
    async fn lapse(&self, id: i64, now: DateTime<Utc>) {
        self.store()
            .record_domain_check(
                id,
                &DomainCheck {
                    status: DomainStatus::Failed,
                    detail: Some("TXT record gone".into()),
                    failures: 1,
                    next_check_at: now + Duration::days(1),
                },
            )
            .await
            .expect("check");
    }

    async fn due(&self, at: DateTime<Utc>) -> Vec<i64> {
        self.store()
            .certificates_due(at, 100)
            .await
            .expect("due")
            .into_iter()
            .map(|d| d.domain_id)
            .collect()
    }

    async fn served(&self) -> Vec<String> {
        self.store()
            .served_certificates()
            .await
            .expect("served")
            .into_iter()
            .map(|c| c.domain)
            .collect()
    }

    async fn issue(&self, domain_id: i64, now: DateTime<Utc>, renew_at: DateTime<Utc>) {
        self.store()
            .record_certificate_issued(domain_id, &issued(now, renew_at))
            .await
            .expect("issued");
    }
}

fn issued(now: DateTime<Utc>, renew_at: DateTime<Utc>) -> IssuedCertificate {
    IssuedCertificate {
        chain_pem: CHAIN.into(),
        key_sealed: KEY.to_vec(),
        serial: "0A1B2C".into(),
        issuer: "Test CA".into(),
        not_before: now - Duration::hours(1),
        not_after: now + Duration::days(90),
        issued_at: now,
        next_attempt_at: renew_at,
    }
}

#[tokio::test]
async fn a_verified_domain_without_a_certificate_is_due_and_one_of_two_racing_leases_wins() {
    // Arrange
    let f = Fixture::new().await;
    let id = f.domain("shop.example.test", DomainStatus::Verified).await;
    let now = now();
    let until = now + Duration::minutes(10);

    // Act
    let due = f.store().certificates_due(now, 10).await.expect("due");
    let (a, b) = tokio::join!(
        f.store().lease_certificate(id, now, until),
        f.store().lease_certificate(id, now, until),
    );

    // Assert
    assert_eq!(due.len(), 1);
    assert_eq!(
        (due[0].domain_id, due[0].domain.as_str(), due[0].failures),
        (id, "shop.example.test", 0)
    );
    let (a, b) = (a.expect("lease"), b.expect("lease"));
    assert!(a ^ b, "exactly one racing lease wins: {a} {b}");
    let record = f.store().certificate(id).await.expect("read").expect("row");
    assert_eq!(record.status, CertificateStatus::Pending);
    assert_eq!(record.next_attempt_at, now);
    assert_eq!(record.domain, "shop.example.test");
    assert!(record.chain_pem.is_none() && record.key_sealed.is_none());
    // Leased: not due, and nobody else gets it while the lease runs.
    assert!(f.due(now + Duration::minutes(1)).await.is_empty());
    let during = f
        .store()
        .lease_certificate(id, until - Duration::milliseconds(1), until);
    assert!(!during.await.expect("lease"));
    // Once the lease ran out, the order is due and can be leased again.
    let after = until + Duration::milliseconds(1);
    assert_eq!(f.due(after).await, vec![id]);
    let again = f
        .store()
        .lease_certificate(id, after, after + Duration::minutes(10));
    assert!(again.await.expect("lease"));
}

#[tokio::test]
async fn a_released_lease_makes_the_order_due_again_but_only_the_holders_release_counts() {
    // Arrange: one replica holds the lease.
    let f = Fixture::new().await;
    let id = f.domain("shop.example.test", DomainStatus::Verified).await;
    let now = now();
    let until = now + Duration::minutes(10);
    assert!(f
        .store()
        .lease_certificate(id, now, until)
        .await
        .expect("lease"));

    // Act: someone with another lease time releases; then the holder does.
    f.store()
        .release_certificate_lease(id, until + Duration::seconds(1))
        .await
        .expect("release");
    let after_stranger = f.due(now).await;
    f.store()
        .release_certificate_lease(id, until)
        .await
        .expect("release");

    // Assert
    assert!(
        after_stranger.is_empty(),
        "a release of another lease counts for nothing"
    );
    assert_eq!(f.due(now).await, vec![id]);
    let again = f.store().lease_certificate(id, now, until);
    assert!(
        again.await.expect("lease"),
        "another replica may take it at once"
    );
}

#[tokio::test]
async fn an_issued_certificate_is_served_with_its_key_and_not_due_until_renewal() {
    // Arrange
    let f = Fixture::new().await;
    let id = f.domain("shop.example.test", DomainStatus::Verified).await;
    let now = now();
    let renew_at = now + Duration::days(60);
    assert!(f
        .store()
        .lease_certificate(id, now, now + Duration::minutes(10))
        .await
        .expect("lease"));

    // Act
    f.issue(id, now, renew_at).await;

    // Assert
    let record = f.store().certificate(id).await.expect("read").expect("row");
    assert_eq!(record.status, CertificateStatus::Issued);
    assert_eq!(record.chain_pem.as_deref(), Some(CHAIN));
    assert_eq!(record.key_sealed.as_deref(), Some(KEY));
    assert_eq!(record.serial.as_deref(), Some("0A1B2C"));
    assert_eq!(record.issuer.as_deref(), Some("Test CA"));
    assert_eq!(record.not_before, Some(now - Duration::hours(1)));
    assert_eq!(record.not_after, Some(now + Duration::days(90)));
    assert_eq!(record.issued_at, Some(now));
    assert_eq!((record.failures, record.last_error.as_deref()), (0, None));
    assert_eq!(record.next_attempt_at, renew_at);
    assert!(f.due(now + Duration::days(59)).await.is_empty());
    assert_eq!(f.due(renew_at).await, vec![id]);
    let served = f.store().served_certificates().await.expect("served");
    assert_eq!(served.len(), 1);
    assert_eq!(served[0].domain_id, id);
    assert_eq!(served[0].key_sealed.as_deref(), Some(KEY));
    // The key is never printed, only its length.
    let printed = format!("{:?} {:?}", served[0], issued(now, renew_at));
    assert!(
        printed.contains(&format!("<{} bytes>", KEY.len())),
        "{printed}"
    );
    assert!(!printed.contains("115, 101, 97, 108"), "{printed}");
    // Issuing cleared the lease.
    let lease = f
        .store()
        .lease_certificate(id, now, now + Duration::minutes(10));
    assert!(lease.await.expect("lease"));
}

#[tokio::test]
async fn a_failed_order_keeps_the_earlier_certificate_and_is_retried_later() {
    // Arrange
    let f = Fixture::new().await;
    let id = f.domain("shop.example.test", DomainStatus::Verified).await;
    let now = now();
    f.issue(id, now, now).await;
    let lease = f
        .store()
        .lease_certificate(id, now, now + Duration::minutes(10));
    assert!(lease.await.expect("lease"));
    let retry_at = now + Duration::hours(1);

    // Act
    f.store()
        .record_certificate_failure(
            id,
            &CertificateFailure {
                error: "challenge failed: connection refused".into(),
                failures: 1,
                next_attempt_at: retry_at,
            },
        )
        .await
        .expect("failure");

    // Assert
    let record = f.store().certificate(id).await.expect("read").expect("row");
    assert_eq!(record.status, CertificateStatus::Failed);
    assert_eq!(record.failures, 1);
    assert_eq!(
        record.last_error.as_deref(),
        Some("challenge failed: connection refused")
    );
    assert_eq!(record.next_attempt_at, retry_at);
    assert_eq!(record.chain_pem.as_deref(), Some(CHAIN));
    assert_eq!(record.key_sealed.as_deref(), Some(KEY));
    assert_eq!(record.serial.as_deref(), Some("0A1B2C"));
    assert_eq!(record.issued_at, Some(now));
    // The earlier certificate is still served until it expires.
    assert_eq!(f.served().await, vec!["shop.example.test"]);
    // The failure cleared the lease; the retry is due at its time, with the count.
    assert!(f.due(retry_at - Duration::milliseconds(1)).await.is_empty());
    let due = f.store().certificates_due(retry_at, 10).await.expect("due");
    assert_eq!(
        due.iter()
            .map(|d| (d.domain_id, d.failures))
            .collect::<Vec<_>>(),
        vec![(id, 1)]
    );
    // A later success resets the failure count and error.
    f.issue(id, retry_at, retry_at + Duration::days(60)).await;
    let record = f.store().certificate(id).await.expect("read").expect("row");
    assert_eq!(record.status, CertificateStatus::Issued);
    assert_eq!((record.failures, record.last_error), (0, None));
}

#[tokio::test]
async fn requesting_a_certificate_makes_it_due_without_changing_its_status() {
    // Arrange
    let f = Fixture::new().await;
    let issued_id = f
        .domain("issued.example.test", DomainStatus::Verified)
        .await;
    let new_id = f.domain("new.example.test", DomainStatus::Verified).await;
    let now = now();
    f.issue(issued_id, now, now + Duration::days(60)).await;

    // Act
    f.store()
        .request_certificate(issued_id, now)
        .await
        .expect("request");
    f.store()
        .request_certificate(new_id, now)
        .await
        .expect("request");

    // Assert
    let renewed = f.store().certificate(issued_id).await.expect("read");
    let renewed = renewed.expect("row");
    assert_eq!(renewed.status, CertificateStatus::Issued);
    assert_eq!(renewed.next_attempt_at, now);
    assert_eq!(renewed.chain_pem.as_deref(), Some(CHAIN));
    let created = f.store().certificate(new_id).await.expect("read");
    let created = created.expect("row created");
    assert_eq!(created.status, CertificateStatus::Pending);
    assert_eq!(created.next_attempt_at, now);
    let mut due = f.due(now).await;
    due.sort_unstable();
    assert_eq!(due, vec![issued_id, new_id]);
}

#[tokio::test]
async fn the_most_overdue_order_comes_first() {
    // Arrange
    let f = Fixture::new().await;
    let now = now();
    let fresh = f.domain("fresh.example.test", DomainStatus::Verified).await;
    let overdue = f
        .domain("overdue.example.test", DomainStatus::Verified)
        .await;
    let later = f.domain("later.example.test", DomainStatus::Verified).await;
    // `fresh` has no row (due since it was verified, just now).
    f.issue(overdue, now, now - Duration::days(2)).await;
    f.issue(later, now, now + Duration::days(2)).await;

    // Act
    let at_now = f.due(now + Duration::minutes(1)).await;
    let limited = f.store().certificates_due(now, 1).await.expect("due");

    // Assert
    assert_eq!(at_now, vec![overdue, fresh]);
    assert_eq!(
        limited.iter().map(|d| d.domain_id).collect::<Vec<_>>(),
        vec![overdue]
    );
}

#[tokio::test]
async fn a_domain_that_is_not_verified_is_neither_due_nor_served() {
    // Arrange
    let f = Fixture::new().await;
    let pending = f
        .domain("pending.example.test", DomainStatus::Pending)
        .await;
    let failed = f.domain("failed.example.test", DomainStatus::Failed).await;
    let lapsed = f
        .domain("lapsed.example.test", DomainStatus::Verified)
        .await;
    let now = now();
    for id in [pending, failed, lapsed] {
        f.issue(id, now, now).await;
    }
    assert_eq!(f.served().await, vec!["lapsed.example.test"]);

    // Act: the verified domain fails a later check.
    f.lapse(lapsed, now).await;

    // Assert
    assert!(f.due(now + Duration::days(1)).await.is_empty());
    assert!(f.served().await.is_empty());
    // The rows are still there (and counted) for when the domain is verified again.
    assert!(f
        .store()
        .certificate(pending)
        .await
        .expect("read")
        .is_some());
}

#[tokio::test]
async fn deleting_a_domain_deletes_its_certificate() {
    // Arrange
    let f = Fixture::new().await;
    let id = f.domain("shop.example.test", DomainStatus::Verified).await;
    let now = now();
    f.issue(id, now, now + Duration::days(60)).await;

    // Act
    let deleted = f
        .store()
        .delete_domain(f.owner_id, f.site.id, "shop.example.test")
        .await
        .expect("delete");

    // Assert
    assert!(deleted);
    assert!(f.store().certificate(id).await.expect("read").is_none());
    assert!(f.served().await.is_empty());
    assert!(f
        .store()
        .certificate_counts()
        .await
        .expect("counts")
        .is_empty());
    // Late writes of a worker that was ordering for it store nothing.
    let lease = f
        .store()
        .lease_certificate(id, now, now + Duration::minutes(10));
    assert!(!lease.await.expect("lease"));
    f.issue(id, now, now + Duration::days(60)).await;
    f.store()
        .request_certificate(id, now)
        .await
        .expect("request");
    assert!(f.store().certificate(id).await.expect("read").is_none());
}

#[tokio::test]
async fn certificates_are_counted_per_status() {
    // Arrange
    let f = Fixture::new().await;
    let now = now();
    let mut ids = Vec::new();
    for name in ["a", "b", "c", "d"] {
        let id = f
            .domain(&format!("{name}.example.test"), DomainStatus::Verified)
            .await;
        ids.push(id);
    }
    f.store()
        .request_certificate(ids[0], now)
        .await
        .expect("pending");
    f.issue(ids[1], now, now + Duration::days(60)).await;
    f.issue(ids[2], now, now + Duration::days(60)).await;
    let failure = CertificateFailure {
        error: "rate limited".into(),
        failures: 3,
        next_attempt_at: now + Duration::hours(8),
    };
    f.store()
        .record_certificate_failure(ids[3], &failure)
        .await
        .expect("failure");

    // Act
    let mut counts = f.store().certificate_counts().await.expect("counts");

    // Assert
    counts.sort_by_key(|(status, _)| format!("{status:?}"));
    assert_eq!(
        counts,
        vec![
            (CertificateStatus::Failed, 1),
            (CertificateStatus::Issued, 2),
            (CertificateStatus::Pending, 1),
        ]
    );
    // A first failure without an earlier certificate has nothing to serve.
    let failed = f.store().certificate(ids[3]).await.expect("read");
    let failed = failed.expect("row");
    assert_eq!(
        (failed.status, failed.failures),
        (CertificateStatus::Failed, 3)
    );
    assert!(failed.chain_pem.is_none());
    assert_eq!(f.served().await, vec!["b.example.test", "c.example.test"]);
}

#[tokio::test]
async fn a_sites_certificates_are_listed_together_without_other_sites() {
    // Arrange: two domains of the site (one issued, one pending, one with no row) and an
    // issued one of another site of the same owner.
    let f = Fixture::new().await;
    let now = now();
    let other = f
        .store()
        .create_site(f.owner_id, "othersite", &quotas(&f.app))
        .await
        .expect("site");
    let shop = f.domain("shop.example.test", DomainStatus::Verified).await;
    let blog = f.domain("blog.example.test", DomainStatus::Verified).await;
    f.domain("new.example.test", DomainStatus::Pending).await;
    let elsewhere = f
        .domain_of(other.id, "elsewhere.example.test", DomainStatus::Verified)
        .await;
    f.issue(shop, now, now + Duration::days(60)).await;
    f.store()
        .request_certificate(blog, now)
        .await
        .expect("pending");
    f.issue(elsewhere, now, now + Duration::days(60)).await;

    // Act
    let listed = f.store().site_certificates(f.site.id).await.expect("list");

    // Assert: the site's rows by domain name, each as `certificate` reads it.
    let summary: Vec<(&str, CertificateStatus)> = listed
        .iter()
        .map(|c| (c.domain.as_str(), c.status))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("blog.example.test", CertificateStatus::Pending),
            ("shop.example.test", CertificateStatus::Issued),
        ]
    );
    let one = f
        .store()
        .certificate(shop)
        .await
        .expect("read")
        .expect("row");
    let fields = |c: &hosting_app::store::CertificateRecord| {
        (
            c.domain_id,
            c.serial.clone(),
            c.not_after,
            c.chain_pem.clone(),
            c.key_sealed.clone(),
        )
    };
    assert_eq!(fields(&listed[1]), fields(&one));
}

#[tokio::test]
async fn expiries_are_the_soonest_served_certificates_first_up_to_the_limit() {
    // Arrange: three served certificates expiring in 30, 10 and 20 days; one of a domain
    // that failed its re-check (not served) expiring sooner still; one order pending.
    let f = Fixture::new().await;
    let now = now();
    let expiring = |days| IssuedCertificate {
        not_after: now + Duration::days(days),
        ..issued(now, now + Duration::days(days - 5))
    };
    for (name, days) in [
        ("c.example.test", 30),
        ("a.example.test", 10),
        ("b.example.test", 20),
    ] {
        let id = f.domain(name, DomainStatus::Verified).await;
        f.store()
            .record_certificate_issued(id, &expiring(days))
            .await
            .expect("issued");
    }
    let lapsed = f
        .domain("lapsed.example.test", DomainStatus::Verified)
        .await;
    f.store()
        .record_certificate_issued(lapsed, &expiring(6))
        .await
        .expect("issued");
    f.lapse(lapsed, now).await;
    let pending = f
        .domain("pending.example.test", DomainStatus::Verified)
        .await;
    f.store()
        .request_certificate(pending, now)
        .await
        .expect("pending");

    // Act
    let first_two = f.store().certificate_expiries(2).await.expect("expiries");
    let all = f.store().certificate_expiries(100).await.expect("expiries");

    // Assert
    assert_eq!(
        first_two,
        vec![
            ("a.example.test".to_owned(), now + Duration::days(10)),
            ("b.example.test".to_owned(), now + Duration::days(20)),
        ]
    );
    let names: Vec<&str> = all.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        vec!["a.example.test", "b.example.test", "c.example.test"]
    );
}

#[tokio::test]
async fn the_first_acme_account_saved_for_a_directory_wins() {
    // Arrange
    let f = Fixture::new().await;
    let directory = "https://acme.example.test/directory";
    let now = now();
    assert!(f
        .store()
        .acme_account(directory)
        .await
        .expect("read")
        .is_none());

    // Act
    let (a, b) = tokio::join!(
        f.store().save_acme_account(directory, b"account-a", now),
        f.store().save_acme_account(directory, b"account-b", now),
    );
    let later = f
        .store()
        .save_acme_account(directory, b"account-c", now)
        .await
        .expect("save");
    let other = f
        .store()
        .save_acme_account("https://other.example.test/dir", b"other", now)
        .await
        .expect("save");

    // Assert
    let (a, b) = (a.expect("save"), b.expect("save"));
    assert_eq!(a, b, "racing writers end up with one account");
    assert!(a == b"account-a" || a == b"account-b");
    assert_eq!(later, a);
    assert_eq!(
        f.store().acme_account(directory).await.expect("read"),
        Some(a)
    );
    assert_eq!(other, b"other");
}
