//! Talking to the masters (behaviour reference §5.3–5.4, product.md 5 and 7): HTTPS verified
//! against a CA made here (a wrong CA is refused, counted, and the last good records stay),
//! `mesosHTTPSInsecure` for a self-signed master, mTLS client certificates, Basic auth, DC/OS IAM
//! login (JWT checked with the public key, token cached across polls, re-login after a 401),
//! failover past a master answering 503, and certificate files rejected at startup (exit 2).
//!
//! A [`Front`] stands before a [`FakeMaster`]: plain or TLS (rustls with rcgen certificates),
//! it records each request's headers and client certificate, can demand an `Authorization`
//! value (401 otherwise), and forwards the request to the fake master. Leader following and
//! failover past a dead master are covered in `refresh`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hickory_proto::rr::RecordType::A;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};

use crate::fake_master::{Behaviour, FakeMaster};
use crate::harness::{
    BIN, Server, a_values, mini_state, try_metric as metric, wait_until, write_config,
};

/// The log line of a failed poll.
const FAILED: &str = "state refresh failed";

// ---------------------------------------------------------------------------------------------
// Certificates.

/// A CA made for one test, able to issue server and client certificates.
pub(crate) struct TestCa {
    /// The CA certificate, PEM.
    pub(crate) pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate and its key, PEM and DER.
pub(crate) struct Leaf {
    pub(crate) cert_pem: String,
    pub(crate) key_pem: String,
    cert_der: CertificateDer<'static>,
    key_der: Vec<u8>,
}

impl TestCa {
    pub(crate) fn new(name: &str) -> TestCa {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).expect("self-sign CA");
        TestCa {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A v3 certificate for `names` (IPs become IP SANs) signed by this CA.
    pub(crate) fn issue(&self, names: &[&str]) -> Leaf {
        let key = KeyPair::generate().expect("leaf key");
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .expect("params");
        params
            .distinguished_name
            .push(DnType::CommonName, names.first().copied().unwrap_or("leaf"));
        let cert = params.signed_by(&key, &self.issuer).expect("sign leaf");
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().clone(),
            key_der: key.serialize_der(),
        }
    }
}

/// A self-signed certificate for 127.0.0.1 (no CA anyone trusts).
fn self_signed() -> Leaf {
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("cert");
    Leaf {
        cert_pem: ck.cert.pem(),
        key_pem: ck.signing_key.serialize_pem(),
        cert_der: ck.cert.der().clone(),
        key_der: ck.signing_key.serialize_der(),
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A TLS server config presenting `leaf`, requiring a client certificate from `client_ca`
/// when given.
fn server_tls(leaf: &Leaf, client_ca: Option<&TestCa>) -> Arc<rustls::ServerConfig> {
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions");
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            let der = rustls::pki_types::pem::PemObject::from_pem_slice(ca.pem.as_bytes())
                .expect("CA pem");
            roots.add(der).expect("add client CA");
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider(),
            )
            .build()
            .expect("client verifier");
            builder.with_client_cert_verifier(verifier)
        }
    };
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key_der.clone()));
    Arc::new(
        builder
            .with_single_cert(vec![leaf.cert_der.clone()], key)
            .expect("server cert"),
    )
}

// ---------------------------------------------------------------------------------------------
// The front: plain or TLS, header capture, Authorization check, forwarding.

#[derive(Default)]
struct FrontShared {
    tls: Mutex<Option<Arc<rustls::ServerConfig>>>,
    required_auth: Mutex<Option<String>>,
    /// Heads of the requests received (after TLS).
    heads: Mutex<Vec<String>>,
    /// DER of the client certificate of each TLS request that had one.
    client_certs: Mutex<Vec<Vec<u8>>>,
    handshake_failures: AtomicUsize,
    unauthorized: AtomicUsize,
    stop: AtomicBool,
}

/// A front for a fake master; stops on drop.
pub(crate) struct Front {
    addr: SocketAddr,
    shared: Arc<FrontShared>,
    thread: Option<JoinHandle<()>>,
}

impl Front {
    /// Listens on 127.0.0.1 and forwards to `backend`; TLS with `tls` if given.
    fn start(backend: SocketAddr, tls: Option<Arc<rustls::ServerConfig>>) -> Front {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind front");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let shared = Arc::new(FrontShared::default());
        *shared.tls.lock().expect("lock") = tls;
        let s = shared.clone();
        let thread = std::thread::spawn(move || {
            while !s.stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let s = s.clone();
                        std::thread::spawn(move || serve_front(stream, backend, &s));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Front {
            addr,
            shared,
            thread: Some(thread),
        }
    }

    fn hostport(&self) -> String {
        self.addr.to_string()
    }

    fn set_tls(&self, tls: Arc<rustls::ServerConfig>) {
        *self.shared.tls.lock().expect("lock") = Some(tls);
    }

    fn require_auth(&self, value: Option<String>) {
        *self.shared.required_auth.lock().expect("lock") = value;
    }

    fn heads(&self) -> Vec<String> {
        self.shared.heads.lock().expect("lock").clone()
    }

    fn requests(&self) -> usize {
        self.shared.heads.lock().expect("lock").len()
    }

    fn client_certs(&self) -> Vec<Vec<u8>> {
        self.shared.client_certs.lock().expect("lock").clone()
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads a request head (through `\r\n\r\n`) from `s`.
fn read_head(s: &mut impl Read) -> Option<Vec<u8>> {
    let mut req = Vec::new();
    let mut buf = [0u8; 4096];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
        if req.len() > 64 * 1024 {
            return None;
        }
    }
    Some(req)
}

fn header_of<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n").find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn serve_front(stream: TcpStream, backend: SocketAddr, shared: &FrontShared) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(3)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(3)));
    let tls = shared.tls.lock().expect("lock").clone();
    match tls {
        None => {
            let mut s = stream;
            exchange(&mut s, None, backend, shared);
        }
        Some(cfg) => {
            let conn = rustls::ServerConnection::new(cfg).expect("server conn");
            let mut s = rustls::StreamOwned::new(conn, stream);
            // Drive the handshake before reading, so its failure is counted as such.
            while s.conn.is_handshaking() {
                if s.conn.complete_io(&mut s.sock).is_err() {
                    shared.handshake_failures.fetch_add(1, Ordering::SeqCst);
                    return;
                }
            }
            let cert = s
                .conn
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| c.as_ref().to_vec());
            exchange(&mut s, cert, backend, shared);
            s.conn.send_close_notify();
            let _ = s.flush();
        }
    }
}

fn exchange(
    s: &mut (impl Read + Write),
    client_cert: Option<Vec<u8>>,
    backend: SocketAddr,
    shared: &FrontShared,
) {
    let Some(req) = read_head(s) else { return };
    let head = String::from_utf8_lossy(&req).into_owned();
    shared.heads.lock().expect("lock").push(head.clone());
    if let Some(c) = client_cert {
        shared.client_certs.lock().expect("lock").push(c);
    }
    let required = shared.required_auth.lock().expect("lock").clone();
    if let Some(want) = required
        && header_of(&head, "Authorization") != Some(want.as_str())
    {
        shared.unauthorized.fetch_add(1, Ordering::SeqCst);
        let _ = s.write_all(
            b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        let _ = s.flush();
        return;
    }
    let Ok(mut up) = TcpStream::connect_timeout(&backend, Duration::from_secs(2)) else {
        return;
    };
    let _ = up.set_read_timeout(Some(Duration::from_secs(5)));
    if up.write_all(&req).is_err() {
        return;
    }
    let mut reply = Vec::new();
    let _ = up.read_to_end(&mut reply);
    let _ = s.write_all(&reply);
    let _ = s.flush();
}

// ---------------------------------------------------------------------------------------------
// Helpers.

fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write file");
    p
}

fn a_of(server: &Server, name: &str) -> Vec<String> {
    a_values(&server.query_udp(name, A))
}

fn base_config(front: &Front, extra: Value) -> Value {
    let mut c = json!({
        "masters": [front.hostport()],
        "refreshSeconds": 1,
        "stateTimeoutSeconds": 3,
    });
    for (k, v) in extra.as_object().expect("object") {
        c[k] = v.clone();
    }
    c
}

// ---------------------------------------------------------------------------------------------
// HTTPS.

#[test]
fn https_master_verified_against_ca_cert_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new("test CA");
    let master = FakeMaster::start(Behaviour::Ok(mini_state(&[("secure", "10.3.0.1")])));
    let front = Front::start(
        master.addr(),
        Some(server_tls(&ca.issue(&["127.0.0.1"]), None)),
    );
    let server = Server::start(base_config(
        &front,
        json!({
            "mesosHTTPSOn": true,
            "caCertFile": write_file(dir.path(), "ca.pem", &ca.pem),
        }),
    ));
    server.wait_ready("mesos");
    assert_eq!(a_of(&server, "secure.marathon.mesos."), ["10.3.0.1"]);
    let heads = front.heads();
    assert!(
        heads[0].starts_with("GET /master/state HTTP/1.1\r\n"),
        "{heads:?}"
    );
    assert_eq!(header_of(&heads[0], "User-Agent"), Some("Mesos-DNS"));
    assert_eq!(
        header_of(&heads[0], "Content-Type"),
        Some("application/json")
    );
    assert_eq!(front.shared.handshake_failures.load(Ordering::SeqCst), 0);
}

#[test]
fn https_with_a_wrong_ca_is_refused_counted_and_the_last_good_records_stay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new("right CA");
    let other = TestCa::new("other CA");
    let master = FakeMaster::start(Behaviour::Ok(mini_state(&[("web", "10.3.0.2")])));
    let front = Front::start(
        master.addr(),
        Some(server_tls(&ca.issue(&["127.0.0.1"]), None)),
    );
    let server = Server::start(base_config(
        &front,
        json!({
            "mesosHTTPSOn": true,
            "caCertFile": write_file(dir.path(), "ca.pem", &ca.pem),
        }),
    ));
    server.wait_ready("mesos");
    assert_eq!(a_of(&server, "web.marathon.mesos."), ["10.3.0.2"]);

    // The master now presents a certificate from a CA we do not trust.
    front.set_tls(server_tls(&other.issue(&["127.0.0.1"]), None));
    master.set(Behaviour::Ok(mini_state(&[("web", "10.3.0.99")])));
    assert!(
        wait_until(Duration::from_secs(6), || server.count_stderr(FAILED) >= 1),
        "no failed refresh logged; stderr:\n{}",
        server.stderr_lines().join("\n")
    );
    assert!(
        server.count_stderr("state refresh failed (tls)") >= 1,
        "failure kind must be tls: {}",
        server.stderr_lines().join("\n")
    );
    assert!(front.shared.handshake_failures.load(Ordering::SeqCst) >= 1);
    assert!(
        metric(&server, "mesos_dns_refresh_failures_total{kind=\"tls\"}").unwrap_or(0.0) >= 1.0
    );
    // The untrusted master's new state was never used.
    assert_eq!(a_of(&server, "web.marathon.mesos."), ["10.3.0.2"]);
}

#[test]
fn self_signed_master_needs_mesos_https_insecure() {
    let leaf = self_signed();
    let master = FakeMaster::start(Behaviour::Ok(mini_state(&[("lax", "10.3.0.3")])));
    let front = Front::start(master.addr(), Some(server_tls(&leaf, None)));

    // Default: verified against the system roots, which do not know this certificate.
    let strict = Server::start(base_config(&front, json!({"mesosHTTPSOn": true})));
    assert!(
        wait_until(Duration::from_secs(6), || strict
            .count_stderr("state refresh failed (tls)")
            >= 1),
        "a self-signed master must be refused by default; stderr:\n{}",
        strict.stderr_lines().join("\n")
    );
    drop(strict);

    let lax = Server::start(base_config(
        &front,
        json!({"mesosHTTPSOn": true, "mesosHTTPSInsecure": true}),
    ));
    lax.wait_ready("mesos");
    assert_eq!(a_of(&lax, "lax.marathon.mesos."), ["10.3.0.3"]);
    assert!(
        lax.count_stderr("NOT verified") >= 1,
        "insecure mode is logged"
    );
}

#[test]
fn client_certificate_is_presented_to_a_master_that_requires_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server_ca = TestCa::new("server CA");
    let client_ca = TestCa::new("client CA");
    let client = client_ca.issue(&["mesos-dns-client"]);
    let master = FakeMaster::start(Behaviour::Ok(mini_state(&[("mtls", "10.3.0.4")])));
    let front = Front::start(
        master.addr(),
        Some(server_tls(
            &server_ca.issue(&["127.0.0.1"]),
            Some(&client_ca),
        )),
    );
    let server = Server::start(base_config(
        &front,
        json!({
            "mesosHTTPSOn": true,
            "caCertFile": write_file(dir.path(), "ca.pem", &server_ca.pem),
            "certFile": write_file(dir.path(), "client.pem", &client.cert_pem),
            "keyFile": write_file(dir.path(), "client.key", &client.key_pem),
        }),
    ));
    server.wait_ready("mesos");
    assert_eq!(a_of(&server, "mtls.marathon.mesos."), ["10.3.0.4"]);
    let certs = front.client_certs();
    assert!(!certs.is_empty(), "no client certificate seen");
    assert_eq!(
        certs[0],
        client.cert_der.as_ref(),
        "our certificate was sent"
    );
}

#[test]
fn unusable_certificate_files_are_config_errors_naming_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new("CA");
    let a = ca.issue(&["a"]);
    let b = ca.issue(&["b"]);
    let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    let cases = [
        (
            json!({"caCertFile": write_file(dir.path(), "bad-ca.pem", garbage)}),
            "caCertFile",
        ),
        (
            json!({
                "certFile": write_file(dir.path(), "a.pem", &a.cert_pem),
                "keyFile": write_file(dir.path(), "b.key", &b.key_pem),
            }),
            "certFile",
        ),
    ];
    for (extra, key) in cases {
        let mut config = json!({"masters": ["127.0.0.1:5050"], "mesosHTTPSOn": true});
        for (k, v) in extra.as_object().expect("object") {
            config[k] = v.clone();
        }
        let run = tempfile::tempdir().expect("tempdir");
        let path = write_config(run.path(), config);
        let out = std::process::Command::new(BIN)
            .args(["-config", &path.display().to_string()])
            .env_remove("RUST_LOG")
            .output()
            .expect("run mesos-dns");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{key}: {stderr}");
        assert!(stderr.contains(key), "{key} not named: {stderr}");
        assert!(!stderr.contains("listening"), "must not start: {stderr}");
    }
}

// ---------------------------------------------------------------------------------------------
// Authentication and status handling.

#[test]
fn basic_auth_header_is_sent_on_every_poll() {
    let master = FakeMaster::start(Behaviour::Ok(mini_state(&[("auth", "10.3.0.5")])));
    let front = Front::start(master.addr(), None);
    let want = format!("Basic {}", STANDARD.encode("dns:s3cr:et"));
    front.require_auth(Some(want.clone()));
    let server = Server::start(base_config(
        &front,
        json!({
            "mesosAuthentication": "basic",
            "mesosCredentials": {"principal": "dns", "secret": "s3cr:et"},
        }),
    ));
    server.wait_ready("mesos");
    assert_eq!(a_of(&server, "auth.marathon.mesos."), ["10.3.0.5"]);
    assert!(wait_until(Duration::from_secs(4), || front.requests() >= 2));
    for h in front.heads() {
        assert_eq!(header_of(&h, "Authorization"), Some(want.as_str()));
    }
    assert_eq!(front.shared.unauthorized.load(Ordering::SeqCst), 0);
    assert!(
        !server.stderr_lines().join("\n").contains("s3cr:et"),
        "the secret is never logged"
    );
}

#[test]
fn a_master_answering_503_fails_over_to_the_next_master() {
    let sick = FakeMaster::start(Behaviour::Status(503, "electing".into()));
    let good = FakeMaster::start(Behaviour::Ok(mini_state(&[("next", "10.3.0.6")])));
    let server = Server::start(json!({
        "masters": [sick.hostport(), good.hostport()],
        "refreshSeconds": 60,
        "stateTimeoutSeconds": 2,
    }));
    server.wait_ready("mesos");
    assert_eq!(a_of(&server, "next.marathon.mesos."), ["10.3.0.6"]);
    assert_eq!(sick.requests(), 1, "the presumed leader is asked first");
    assert_eq!(good.requests(), 1);
    assert_eq!(server.count_stderr(FAILED), 0);
}

// ---------------------------------------------------------------------------------------------
// IAM.

/// A fake DC/OS login endpoint: checks the RS256 JWT with the public key and hands out the
/// current token (or a fixed error status).
struct LoginEndpoint {
    addr: SocketAddr,
    token: Arc<Mutex<String>>,
    status: Arc<Mutex<u16>>,
    logins: Arc<AtomicUsize>,
    bad: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl Drop for LoginEndpoint {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Verifies `jwt` (RS256, claims uid and exp ≈ now + 1 h) with `public_der`; Err says why not.
fn check_jwt(jwt: &str, uid: &str, public_der: &[u8]) -> Result<(), String> {
    let parts: Vec<&str> = jwt.split('.').collect();
    if parts.len() != 3 {
        return Err(format!("not three parts: {jwt}"));
    }
    let dec = |p: &str| URL_SAFE_NO_PAD.decode(p).map_err(|e| e.to_string());
    let header: Value = serde_json::from_slice(&dec(parts[0])?).map_err(|e| e.to_string())?;
    if header["alg"] != "RS256" {
        return Err(format!("alg {header}"));
    }
    let claims: Value = serde_json::from_slice(&dec(parts[1])?).map_err(|e| e.to_string())?;
    if claims["uid"] != uid {
        return Err(format!("uid {claims}"));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let exp = claims["exp"].as_u64().ok_or("no exp")?;
    if !(now + 3500..=now + 3700).contains(&exp) {
        return Err(format!("exp {exp} is not now + 1 h ({now})"));
    }
    let key = ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        public_der,
    );
    key.verify(
        format!("{}.{}", parts[0], parts[1]).as_bytes(),
        &dec(parts[2])?,
    )
    .map_err(|_| "bad signature".to_string())
}

/// DER of a `-----BEGIN RSA PUBLIC KEY-----` PEM.
fn pem_body(pem: &str) -> Vec<u8> {
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(b64).expect("base64")
}

impl LoginEndpoint {
    fn start(uid: &'static str) -> LoginEndpoint {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind login");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let ep = LoginEndpoint {
            addr,
            token: Arc::new(Mutex::new("tok-1".into())),
            status: Arc::new(Mutex::new(200)),
            logins: Arc::new(AtomicUsize::new(0)),
            bad: Arc::new(Mutex::new(Vec::new())),
            stop: Arc::new(AtomicBool::new(false)),
        };
        let (token, status, logins, bad, stop) = (
            ep.token.clone(),
            ep.status.clone(),
            ep.logins.clone(),
            ep.bad.clone(),
            ep.stop.clone(),
        );
        let public = pem_body(IAM_PUBLIC_PKCS1);
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let Ok((mut s, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let _ = s.set_nonblocking(false);
                let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
                let Some(mut req) = read_head(&mut s) else {
                    continue;
                };
                let end = req.windows(4).position(|w| w == b"\r\n\r\n").expect("head") + 4;
                let head = String::from_utf8_lossy(&req[..end]).into_owned();
                let len: usize = header_of(&head, "Content-Length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let mut buf = [0u8; 4096];
                while req.len() < end + len {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                logins.fetch_add(1, Ordering::SeqCst);
                let body: Value = serde_json::from_slice(&req[end..]).unwrap_or(Value::Null);
                let verdict = if !head.starts_with("POST ") {
                    Err("not a POST".to_owned())
                } else if header_of(&head, "Content-Type") != Some("application/json") {
                    Err("no JSON content type".to_owned())
                } else if body["uid"] != uid {
                    Err(format!("body uid {body}"))
                } else {
                    check_jwt(body["token"].as_str().unwrap_or(""), uid, &public)
                };
                if let Err(why) = verdict {
                    bad.lock().expect("lock").push(why);
                }
                let code = *status.lock().expect("lock");
                let reply = json!({"token": token.lock().expect("lock").clone()}).to_string();
                let _ = s.write_all(
                    format!(
                        "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                        reply.len()
                    )
                    .as_bytes(),
                );
            }
        });
        ep
    }

    fn iam_file(&self, dir: &Path, uid: &str, key: &str) -> PathBuf {
        write_file(
            dir,
            "iam.json",
            &json!({
                "uid": uid,
                "private_key": key,
                "login_endpoint": format!("http://{}/acs/api/v1/auth/login", self.addr),
            })
            .to_string(),
        )
    }
}

#[test]
fn iam_login_jwt_verifies_token_is_cached_and_a_401_logs_in_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let login = LoginEndpoint::start("dns-svc");
    let master = FakeMaster::start(Behaviour::Ok(mini_state(&[("iam", "10.3.0.7")])));
    let front = Front::start(master.addr(), None);
    front.require_auth(Some("token=tok-1".into()));
    let server = Server::start(base_config(
        &front,
        json!({
            "mesosAuthentication": "iam",
            "IAMConfigFile": login.iam_file(dir.path(), "dns-svc", IAM_KEY_PKCS1),
        }),
    ));
    server.wait_ready("mesos");
    assert_eq!(a_of(&server, "iam.marathon.mesos."), ["10.3.0.7"]);
    // Several polls, one login.
    let polls = front.requests();
    assert!(
        wait_until(Duration::from_secs(6), || front.requests() >= polls + 3),
        "polls stopped"
    );
    assert_eq!(
        login.logins.load(Ordering::SeqCst),
        1,
        "the token is cached"
    );
    assert!(
        login.bad.lock().expect("lock").is_empty(),
        "{:?}",
        login.bad.lock().expect("lock")
    );
    assert_eq!(front.shared.unauthorized.load(Ordering::SeqCst), 0);

    // The master stops accepting the token: the next poll gets 401, logs in again and retries.
    *login.token.lock().expect("lock") = "tok-2".into();
    front.require_auth(Some("token=tok-2".into()));
    // Change the state only once a poll has met the 401: a poll that passed the old token
    // check just before the switch could otherwise fetch the new state without a re-login.
    assert!(
        wait_until(Duration::from_secs(6), || front
            .shared
            .unauthorized
            .load(Ordering::SeqCst)
            >= 1),
        "no poll met the 401"
    );
    master.set(Behaviour::Ok(mini_state(&[("iam", "10.3.0.8")])));
    assert!(
        wait_until(Duration::from_secs(6), || a_of(
            &server,
            "iam.marathon.mesos."
        ) == ["10.3.0.8"]),
        "no re-login after 401; stderr:\n{}",
        server.stderr_lines().join("\n")
    );
    assert_eq!(login.logins.load(Ordering::SeqCst), 2);
    assert!(front.shared.unauthorized.load(Ordering::SeqCst) >= 1);
    assert_eq!(server.count_stderr(FAILED), 0, "the retry hides the 401");
    let log = server.stderr_lines().join("\n");
    assert!(
        !log.contains("tok-1") && !log.contains("tok-2"),
        "tokens are never logged"
    );
}

#[test]
fn iam_login_refused_is_an_iam_auth_failure() {
    let dir = tempfile::tempdir().expect("tempdir");
    let login = LoginEndpoint::start("dns-svc");
    *login.status.lock().expect("lock") = 401;
    let master = FakeMaster::start(Behaviour::Ok(mini_state(&[("iam", "10.3.0.9")])));
    let front = Front::start(master.addr(), None);
    let server = Server::start(base_config(
        &front,
        json!({
            "mesosAuthentication": "iam",
            "IAMConfigFile": login.iam_file(dir.path(), "dns-svc", IAM_KEY_PKCS8),
        }),
    ));
    assert!(
        wait_until(Duration::from_secs(6), || server
            .count_stderr("IAM authentication failed")
            >= 1),
        "stderr:\n{}",
        server.stderr_lines().join("\n")
    );
    assert!(server.count_stderr("state refresh failed (iam_auth)") >= 1);
    assert_eq!(front.requests(), 0, "no state request without a token");
    assert!(
        metric(
            &server,
            "mesos_dns_refresh_failures_total{kind=\"iam_auth\"}"
        )
        .unwrap_or(0.0)
            >= 1.0
    );
}

#[test]
fn iam_keys_in_pkcs1_and_pkcs8_sign_verifiable_jwts() {
    let public = pem_body(IAM_PUBLIC_PKCS1);
    for pem in [IAM_KEY_PKCS1, IAM_KEY_PKCS8] {
        let key = mesos_dns::mesos::auth::parse_rsa_key(pem).expect("RSA key");
        let jwt = mesos_dns::mesos::auth::login_jwt(&key, "svc", SystemTime::now()).expect("sign");
        check_jwt(&jwt, "svc", &public).expect("verifies with the public key");
    }
}

// A 2048-bit RSA key made with openssl for these tests only (PKCS#8, PKCS#1 and the public key).
const IAM_KEY_PKCS8: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQCNOEYcpRo/iAjK\n\
ywsIwfcsuCC6n8A6y2Fpi8pUrqUtaacXLTs5j9RGn/fxaTi3TjqvRIJwM1RsDeOK\n\
Ax6cz9PlGyYbAwIbhb4sdSyAZcQ6jFruRlk5rLGUupD7dRT21hEhMnI5QYf7CgCq\n\
70M9OuThbUSO+dxKv39uQ3HagWdHQDvtwvmLLs/zFQm6P5L5apgmOccE1OiYhr2/\n\
HGGjmjWFWueYLOAFFDx+/1aGeDPD/xoyLAawvpQiQkgywkXN8Zbuwwr8yOnb9Wa1\n\
iC4eBOjsK5dRx0Y8Ny8K8WYxY48hW+No7qjHvNXWBkCUOC70sFuP0Oibx+xlinX8\n\
mVjZtVX3AgMBAAECggEAGDx5r+3X8OJYW/F33dNoJ9kb6NuE4rJH8BTJLzpf58jT\n\
n+Mn4GuiS1Kl+10LGk6HPNA9sKLmkLrbe7KoXNJAM/gyVH1yLaYI6tlbP1f30vKG\n\
opEZPBA60+MnAbjo1aoMe42MU+4+t6NSVQPGHuqOIHAfzYftOjjeVl6l2hHOV0ha\n\
HQz7CPQhrK4/u6VgHus2mzmyh5mGuDMZRaH/QTUpohI9Ngeme43a/V+oJfB7JguT\n\
PPK/S2KSTzH0xi7wushYAbFBesvzqhs6f36pX2XIXq3fNQEgqtx53+IVWD/ApUDm\n\
8ezp9D4OhJuGsNqzcB0D7/ZquJ27BcCyR0VdCb34IQKBgQC+VQEJoIKVEY4ADOch\n\
4CSlbCRtkBPAUNjwF8A7cguMP2GFGVsVwCgbCp07ficBYRPU3qLT4mGMBai5wvqp\n\
yQ09F1AUXpIvldN4Yx+fIiqh1venDrcW0vOD9iEuM0XdCRarN29ll67f8psGNxSW\n\
arqhpnNsDoJOdI/RSmFH0xHmlwKBgQC98XQa9WC66ee3KTHj/71Wn+ba5noF7djP\n\
ZqsNKeOKB3E5bdrHv+D/7zUhT+41ezMS98nJnWt1Hht8bgidoUo1oO5yd/0n0chg\n\
ftVhSl+L3cOPgmjm8/nCW3OuJZSoC71ViSPby0gbohJ3V5xVke1ZYmL9i/+aJu2Z\n\
zlM8U1pXoQKBgQC8FM/zrXOczz4deqKkbRSJi3Xr9uYtszbM+wtxMt+Kdc9ucYH6\n\
2mpHXpPFiIIO8NliD6ej7h8q+SSkfLKrOQwmBHWTy2h2MX5JhtpmrKKoTv9nTDlN\n\
CqStEHn1Z6FwLV0DUMJ6CAw9LUZYO/HSOiG3P/7rFuNZmAHOdcvv5/nWfQKBgFGI\n\
p/I6in8xkMnK4SOhz8CzewFUFeUdqAe/ZoWMCaRidXPVeChucULrh7749KP4coAd\n\
5XyqGkp31gyfnwsrBRPoNPLmFsFVB9KEH0xYBJOhaiTcMfORnxCS+SEz+I/6Ghfx\n\
encK17Uk6RBZhz4kGeJYnW2A/wNI2o0/R/OJRCqBAoGBALatNx2aIzBTmGG9WEAS\n\
nhVP4bypCLV8p74aTHYFAh6hjleF3Z6o6JNFk3j9qP6oYIPXY/Bg/eKLlFOXckpF\n\
cq0MqauzMwc8MemxbzoyA1p35pTMnJdujTIvwfpzTyidQC6mPRAmxYwObUHjddjK\n\
4CP+y+GLJwnnmG6Fy5Dli387\n\
-----END PRIVATE KEY-----\n";
const IAM_KEY_PKCS1: &str = "\
-----BEGIN RSA PRIVATE KEY-----\n\
MIIEpAIBAAKCAQEAjThGHKUaP4gIyssLCMH3LLggup/AOsthaYvKVK6lLWmnFy07\n\
OY/URp/38Wk4t046r0SCcDNUbA3jigMenM/T5RsmGwMCG4W+LHUsgGXEOoxa7kZZ\n\
OayxlLqQ+3UU9tYRITJyOUGH+woAqu9DPTrk4W1EjvncSr9/bkNx2oFnR0A77cL5\n\
iy7P8xUJuj+S+WqYJjnHBNTomIa9vxxho5o1hVrnmCzgBRQ8fv9Whngzw/8aMiwG\n\
sL6UIkJIMsJFzfGW7sMK/Mjp2/VmtYguHgTo7CuXUcdGPDcvCvFmMWOPIVvjaO6o\n\
x7zV1gZAlDgu9LBbj9Dom8fsZYp1/JlY2bVV9wIDAQABAoIBABg8ea/t1/DiWFvx\n\
d93TaCfZG+jbhOKyR/AUyS86X+fI05/jJ+BroktSpftdCxpOhzzQPbCi5pC623uy\n\
qFzSQDP4MlR9ci2mCOrZWz9X99LyhqKRGTwQOtPjJwG46NWqDHuNjFPuPrejUlUD\n\
xh7qjiBwH82H7To43lZepdoRzldIWh0M+wj0IayuP7ulYB7rNps5soeZhrgzGUWh\n\
/0E1KaISPTYHpnuN2v1fqCXweyYLkzzyv0tikk8x9MYu8LrIWAGxQXrL86obOn9+\n\
qV9lyF6t3zUBIKrced/iFVg/wKVA5vHs6fQ+DoSbhrDas3AdA+/2ariduwXAskdF\n\
XQm9+CECgYEAvlUBCaCClRGOAAznIeAkpWwkbZATwFDY8BfAO3ILjD9hhRlbFcAo\n\
GwqdO34nAWET1N6i0+JhjAWoucL6qckNPRdQFF6SL5XTeGMfnyIqodb3pw63FtLz\n\
g/YhLjNF3QkWqzdvZZeu3/KbBjcUlmq6oaZzbA6CTnSP0UphR9MR5pcCgYEAvfF0\n\
GvVguunntykx4/+9Vp/m2uZ6Be3Yz2arDSnjigdxOW3ax7/g/+81IU/uNXszEvfJ\n\
yZ1rdR4bfG4InaFKNaDucnf9J9HIYH7VYUpfi93Dj4Jo5vP5wltzriWUqAu9VYkj\n\
28tIG6ISd1ecVZHtWWJi/Yv/mibtmc5TPFNaV6ECgYEAvBTP861znM8+HXqipG0U\n\
iYt16/bmLbM2zPsLcTLfinXPbnGB+tpqR16TxYiCDvDZYg+no+4fKvkkpHyyqzkM\n\
JgR1k8todjF+SYbaZqyiqE7/Z0w5TQqkrRB59WehcC1dA1DCeggMPS1GWDvx0joh\n\
tz/+6xbjWZgBznXL7+f51n0CgYBRiKfyOop/MZDJyuEjoc/As3sBVBXlHagHv2aF\n\
jAmkYnVz1XgobnFC64e++PSj+HKAHeV8qhpKd9YMn58LKwUT6DTy5hbBVQfShB9M\n\
WASToWok3DHzkZ8QkvkhM/iP+hoX8Xp3Cte1JOkQWYc+JBniWJ1tgP8DSNqNP0fz\n\
iUQqgQKBgQC2rTcdmiMwU5hhvVhAEp4VT+G8qQi1fKe+Gkx2BQIeoY5Xhd2eqOiT\n\
RZN4/aj+qGCD12PwYP3ii5RTl3JKRXKtDKmrszMHPDHpsW86MgNad+aUzJyXbo0y\n\
L8H6c08onUAupj0QJsWMDm1B43XYyuAj/svhiycJ55huhcuQ5Yt/Ow==\n\
-----END RSA PRIVATE KEY-----\n";
const IAM_PUBLIC_PKCS1: &str = "\
-----BEGIN RSA PUBLIC KEY-----\n\
MIIBCgKCAQEAjThGHKUaP4gIyssLCMH3LLggup/AOsthaYvKVK6lLWmnFy07OY/U\n\
Rp/38Wk4t046r0SCcDNUbA3jigMenM/T5RsmGwMCG4W+LHUsgGXEOoxa7kZZOayx\n\
lLqQ+3UU9tYRITJyOUGH+woAqu9DPTrk4W1EjvncSr9/bkNx2oFnR0A77cL5iy7P\n\
8xUJuj+S+WqYJjnHBNTomIa9vxxho5o1hVrnmCzgBRQ8fv9Whngzw/8aMiwGsL6U\n\
IkJIMsJFzfGW7sMK/Mjp2/VmtYguHgTo7CuXUcdGPDcvCvFmMWOPIVvjaO6ox7zV\n\
1gZAlDgu9LBbj9Dom8fsZYp1/JlY2bVV9wIDAQAB\n\
-----END RSA PUBLIC KEY-----\n";
