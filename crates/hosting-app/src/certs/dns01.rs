//! DNS-01 answers (RFC 8555 8.4) published by RFC 2136 dynamic updates, signed with a
//! TSIG key (RFC 8945): what BIND, Knot, PowerDNS and most self-hosted DNS servers accept
//! from an ACME client, so the platform can order its wildcard `*.<base-domain>`.
//!
//! Each update is one signed UDP message to the zone's primary server; the reply must be
//! NOERROR and carry a valid TSIG of the same key (a forged "ok" would make the order
//! wait for a record that was never published).

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hickory_proto::dnssec::rdata::tsig::TsigAlgorithm;
use hickory_proto::dnssec::tsig::TSigner;
use hickory_proto::op::{update_message, Message, ResponseCode};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{Name, RData, Record, RecordSet, RecordType};
use tokio::net::UdpSocket;

/// How long the server may take to answer an update.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// TTL of the challenge records: short, since they change on every order.
const TXT_TTL: u32 = 60;

/// Allowed clock difference between us and the server (RFC 8945 recommends 300 s).
const FUDGE: u16 = 300;

#[derive(Debug, thiserror::Error)]
pub enum Dns01Error {
    #[error("the DNS update settings: {0}")]
    Settings(String),
    #[error("building the DNS update: {0}")]
    Build(String),
    #[error("sending the DNS update to {0}: {1}")]
    Io(SocketAddr, std::io::Error),
    #[error("the DNS server {0} did not answer the update within {1:?}")]
    Timeout(SocketAddr, Duration),
    #[error("the DNS server {0}'s reply to the update is not valid (TSIG or format): {1}")]
    Reply(SocketAddr, String),
    #[error("the DNS server {0} refused the update: {1}")]
    Refused(SocketAddr, ResponseCode),
}

/// Publishes and removes TXT records in one zone, through its primary server.
pub struct DnsUpdater {
    server: SocketAddr,
    zone: Name,
    signer: TSigner,
}

impl std::fmt::Debug for DnsUpdater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsUpdater")
            .field("server", &self.server)
            .field("zone", &self.zone)
            .field("key", &self.signer.signer_name())
            .finish_non_exhaustive()
    }
}

impl DnsUpdater {
    /// `algorithm` as BIND and Knot write it (`hmac-sha256`, `hmac-sha384`,
    /// `hmac-sha512`); `secret` is the key's bytes.
    pub fn new(
        server: SocketAddr,
        zone: &str,
        key_name: &str,
        algorithm: &str,
        secret: Vec<u8>,
    ) -> Result<DnsUpdater, Dns01Error> {
        let name = |text: &str| {
            Name::from_ascii(text)
                .map(|mut name| {
                    name.set_fqdn(true);
                    name
                })
                .map_err(|e| Dns01Error::Settings(format!("{text:?}: {e}")))
        };
        // Matched by its relative, lower-case spelling (hickory's table has no dots).
        let algorithm = TsigAlgorithm::from_name(
            Name::from_ascii(algorithm.trim_end_matches('.').to_ascii_lowercase())
                .map_err(|e| Dns01Error::Settings(format!("{algorithm:?}: {e}")))?,
        );
        let signer = TSigner::new(secret, algorithm, name(key_name)?, FUDGE)
            .map_err(|e| Dns01Error::Settings(format!("TSIG key: {e}")))?;
        Ok(DnsUpdater {
            server,
            zone: name(zone)?,
            signer,
        })
    }

    /// The record name of a domain's DNS-01 answer (`*.a.example` -> `_acme-challenge.a.example.`).
    pub fn challenge_name(domain: &str) -> String {
        format!(
            "_acme-challenge.{}.",
            domain.trim_start_matches("*.").trim_end_matches('.')
        )
    }

    /// Adds `value` to the TXT records of `name` (a wildcard and its base domain answer at
    /// the same name, with two values at once).
    pub async fn add_txt(&self, name: &str, value: &str) -> Result<(), Dns01Error> {
        let record = Record::from_rdata(
            self.record_name(name)?,
            TXT_TTL,
            RData::TXT(TXT::new(vec![value.to_owned()])),
        );
        let rrset = RecordSet::from(record);
        self.send(update_message::append(
            rrset,
            self.zone.clone(),
            false,
            false,
        ))
        .await
    }

    /// Removes every TXT record of `name` (left-overs of an earlier order included).
    pub async fn clear_txt(&self, name: &str) -> Result<(), Dns01Error> {
        let record = Record::update0(self.record_name(name)?, 0, RecordType::TXT);
        self.send(update_message::delete_rrset(
            record,
            self.zone.clone(),
            false,
        ))
        .await
    }

    fn record_name(&self, name: &str) -> Result<Name, Dns01Error> {
        let name =
            Name::from_ascii(name).map_err(|e| Dns01Error::Build(format!("{name:?}: {e}")))?;
        if !self.zone.zone_of(&name) {
            return Err(Dns01Error::Build(format!(
                "{name} is not in the zone {} (HOSTING_DNS_UPDATE_ZONE)",
                self.zone
            )));
        }
        Ok(name)
    }

    async fn send(&self, mut message: Message) -> Result<(), Dns01Error> {
        let server = self.server;
        message.set_id(rand::random());
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs() as u32);
        let mut verify = message
            .finalize(&self.signer, now)
            .map_err(|e| Dns01Error::Build(e.to_string()))?
            .ok_or_else(|| Dns01Error::Build("TSIG signing gave no verifier".into()))?;
        let bytes = message
            .to_vec()
            .map_err(|e| Dns01Error::Build(e.to_string()))?;
        let local: SocketAddr = if server.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(local)
            .await
            .map_err(|e| Dns01Error::Io(server, e))?;
        socket
            .connect(server)
            .await
            .map_err(|e| Dns01Error::Io(server, e))?;
        socket
            .send(&bytes)
            .await
            .map_err(|e| Dns01Error::Io(server, e))?;
        let mut reply = vec![0u8; 4096];
        let deadline = tokio::time::Instant::now() + REPLY_TIMEOUT;
        loop {
            let received = tokio::time::timeout_at(deadline, socket.recv(&mut reply))
                .await
                .map_err(|_| Dns01Error::Timeout(server, REPLY_TIMEOUT))?
                .map_err(|e| Dns01Error::Io(server, e))?;
            let bytes = &reply[..received];
            // A stray datagram with another id is not our reply: keep waiting.
            if bytes.len() < 2 || u16::from_be_bytes([bytes[0], bytes[1]]) != message.id() {
                continue;
            }
            // A refusal is reported as it is: it is unsigned, or signed with an empty MAC
            // (BADKEY, BADSIG, RFC 8945 5.3.2), and a forged one can only make us fail.
            // Only a success must prove it comes from the key's holder.
            if let Ok(unverified) = Message::from_vec(bytes) {
                if unverified.response_code() != ResponseCode::NoError {
                    return Err(Dns01Error::Refused(server, unverified.response_code()));
                }
            }
            let response = verify(bytes).map_err(|e| Dns01Error::Reply(server, e.to_string()))?;
            return match response.response_code() {
                ResponseCode::NoError => Ok(()),
                code => Err(Dns01Error::Refused(server, code)),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_answers_at_its_base_domains_challenge_name() {
        assert_eq!(
            DnsUpdater::challenge_name("*.hosting.test"),
            "_acme-challenge.hosting.test."
        );
        assert_eq!(
            DnsUpdater::challenge_name("hosting.test"),
            "_acme-challenge.hosting.test."
        );
    }

    #[test]
    fn an_unsupported_algorithm_or_a_name_outside_the_zone_is_refused() {
        let server = SocketAddr::from(([127, 0, 0, 1], 53));
        let md5 = DnsUpdater::new(
            server,
            "hosting.test",
            "k",
            "hmac-md5.sig-alg.reg.int",
            vec![1; 32],
        );
        assert!(matches!(md5, Err(Dns01Error::Settings(_))), "{md5:?}");
        let updater = DnsUpdater::new(server, "hosting.test", "k", "hmac-sha256", vec![1; 32])
            .expect("updater");
        let outside = updater.record_name("_acme-challenge.other.test.");
        assert!(matches!(outside, Err(Dns01Error::Build(_))), "{outside:?}");
    }
}
