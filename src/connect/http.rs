//! Blocks of HTTP services (Elasticsearch, Qdrant, ...; a type with an `http` section,
//! such as the built-in `http-service`): `block test` makes a real request with the API
//! key in the header the type names and classifies failures; `block url`, `block env`
//! and `exec` export `<PREFIX>_URL` and `<PREFIX>_API_KEY`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use super::probe::scrub_secret;
use crate::document::{MASK, parse_url_field};
use crate::error::{ConnectFailure, Error, Result};
use crate::types::HttpSpec;

/// An HTTP service block's connection details, read from its document.
#[derive(Clone)]
pub struct HttpService {
    pub url: url::Url,
    pub api_key: Option<String>,
    pub api_key_header: String,
    pub api_key_prefix: String,
    pub health_path: Option<String>,
    pub headers: Vec<(String, String)>,
    pub verify_tls: bool,
    pub timeout: Option<Duration>,
}

impl std::fmt::Debug for HttpService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpService")
            .field("url", &self.display_url(false))
            .field("api_key", &self.api_key.as_ref().map(|_| MASK))
            .finish_non_exhaustive()
    }
}

/// What `block test` reports for an HTTP service.
#[derive(Clone, Debug, Serialize)]
pub struct HttpTestReport {
    pub name: String,
    /// The URL requested, any password in it masked.
    pub url: String,
    pub status: u16,
    /// The `Server` header, if the service sends one.
    pub server: Option<String>,
    pub latency_ms: f64,
}

impl HttpService {
    /// Reads the block's `url`, `api_key`, `headers`, `verify_tls`, `timeout_seconds`,
    /// and `api_key_header` / `health_path`, which override the type's defaults.
    pub fn from_document(spec: &HttpSpec, doc: &Value) -> Result<HttpService> {
        let text = |key: &str| doc.get(key).and_then(Value::as_str).map(str::to_owned);
        let url = parse_url_field(
            "url",
            &text("url").ok_or_else(|| Error::InvalidBlockData("url: missing".into()))?,
        )?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::InvalidBlockData(
                "url: must start with http:// or https://".into(),
            ));
        }
        let headers = doc
            .get("headers")
            .and_then(Value::as_object)
            .map(|h| {
                h.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        Ok(HttpService {
            api_key: text("api_key").filter(|k| !k.is_empty() && k != MASK),
            api_key_header: text("api_key_header").unwrap_or_else(|| spec.api_key_header.clone()),
            api_key_prefix: match text("api_key_header") {
                Some(_) => String::new(),
                None => spec.api_key_prefix.clone(),
            },
            health_path: text("health_path").or_else(|| spec.health_path.clone()),
            headers,
            verify_tls: doc
                .get("verify_tls")
                .and_then(Value::as_bool)
                .unwrap_or(true),
            timeout: doc
                .get("timeout_seconds")
                .and_then(Value::as_f64)
                .filter(|s| s.is_finite() && *s > 0.0 && *s <= 86_400.0)
                .map(Duration::from_secs_f64),
            url,
        })
    }

    /// The service URL, a password in it masked unless `reveal`.
    pub fn display_url(&self, reveal: bool) -> String {
        match reveal {
            true => self.url.to_string(),
            false => masked(&self.url),
        }
    }

    /// The URL `block test` requests: the service URL, or its health path.
    fn health_url(&self) -> Result<url::Url> {
        match &self.health_path {
            None => Ok(self.url.clone()),
            Some(path) => crate::types::path_under(&self.url, path).ok_or_else(|| {
                Error::InvalidBlockData("health_path: must be a path under url".into())
            }),
        }
    }

    /// `<PREFIX>_URL` and `<PREFIX>_API_KEY` (the key only when the block has one).
    pub fn variables(&self, prefix: &str) -> Vec<(String, String)> {
        let mut vars = vec![(format!("{prefix}_URL"), self.display_url(true))];
        if let Some(key) = &self.api_key {
            vars.push((format!("{prefix}_API_KEY"), key.clone()));
        }
        vars
    }

    /// Requests the service (its health path, if any) with the API key and reports the
    /// status and latency, or a classified failure: `HOST_UNREACHABLE`, `TLS_ERROR`,
    /// `CONNECTION_TIMEOUT`, `AUTHENTICATION_FAILED` (401/403), `HTTP_ERROR` (other
    /// non-2xx). Messages never contain the API key.
    pub fn test(&self, name: &str, timeout: Duration) -> Result<HttpTestReport> {
        let timeout = self.timeout.unwrap_or(timeout);
        let target = self.health_url()?;
        let shown = masked(&target);
        let started = Instant::now();
        let response = self.request(&target, timeout).call().map_err(|err| {
            let message = match err {
                ureq::Error::Status(status, response) => {
                    return self.refused(&shown, status, response.status_text());
                }
                ureq::Error::Transport(err) => err,
            };
            let kind = transport_failure(&message);
            let what = match kind {
                ConnectFailure::HostUnreachable => format!("cannot reach {shown}"),
                ConnectFailure::Tls => format!(
                    "TLS with {shown} failed (set verify_tls to false only for a service \
                     whose certificate you trust)"
                ),
                ConnectFailure::Timeout => format!(
                    "{shown} did not answer within {}",
                    humantime::format_duration(timeout)
                ),
                _ => format!("requesting {shown} failed"),
            };
            Error::Connect {
                kind,
                message: self.scrub(format!("{what}: {}", one_line(&message))),
            }
        })?;
        Ok(HttpTestReport {
            name: name.to_owned(),
            url: shown,
            status: response.status(),
            server: response.header("server").map(str::to_owned),
            latency_ms: started.elapsed().as_secs_f64() * 1e3,
        })
    }

    /// A GET of `target` with the block's headers and API key.
    fn request(&self, target: &url::Url, timeout: Duration) -> ureq::Request {
        let mut builder = ureq::AgentBuilder::new()
            .timeout(timeout)
            .redirects(0)
            .user_agent(concat!("blockyard/", env!("CARGO_PKG_VERSION")));
        if !self.verify_tls {
            builder = builder.tls_config(Arc::new(insecure_tls()));
        }
        let mut request = builder.build().request_url("GET", target);
        for (k, v) in &self.headers {
            request = request.set(k, v);
        }
        if let Some(key) = &self.api_key {
            let value = format!("{}{key}", self.api_key_prefix);
            request = request.set(&self.api_key_header, &value);
        }
        request
    }

    /// A non-2xx answer: `AUTHENTICATION_FAILED` for 401/403, `HTTP_ERROR` otherwise.
    fn refused(&self, shown: &str, status: u16, reason: &str) -> Error {
        let message = format!("{shown}: HTTP {status} {reason}");
        match status {
            401 | 403 => Error::Connect {
                kind: ConnectFailure::AuthenticationFailed,
                message: self.scrub(format!(
                    "{message}; the service refused the API key ({} header)",
                    self.api_key_header
                )),
            },
            _ => Error::HttpStatus {
                status,
                message: self.scrub(format!("{message}; the service answered with an error")),
            },
        }
    }

    /// A message without the API key or a password in the URL.
    fn scrub(&self, text: String) -> String {
        let text = scrub_secret(&text, self.api_key.as_deref().unwrap_or_default());
        scrub_secret(&text, self.url.password().unwrap_or_default())
    }
}

/// A URL with any password in it masked.
fn masked(url: &url::Url) -> String {
    let mut url = url.clone();
    if url.password().is_some() {
        let _ = url.set_password(Some(MASK));
    }
    url.to_string()
}

/// ureq's error and its causes on one line.
fn one_line(err: &ureq::Transport) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let line = cause.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = cause.source();
    }
    text.replace('\n', " ")
}

fn transport_failure(err: &ureq::Transport) -> ConnectFailure {
    let text = one_line(err).to_ascii_lowercase();
    match err.kind() {
        _ if text.contains("timed out") || text.contains("timeout") => ConnectFailure::Timeout,
        _ if text.contains("tls") || text.contains("certificate") => ConnectFailure::Tls,
        ureq::ErrorKind::Dns | ureq::ErrorKind::ConnectionFailed => ConnectFailure::HostUnreachable,
        _ => ConnectFailure::Other,
    }
}

/// A TLS configuration that accepts any certificate (`verify_tls: false`); the
/// handshake's signatures are still checked, so the peer holds the certificate's key.
fn insecure_tls() -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth()
}

#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
