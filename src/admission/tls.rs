//! The webhook's TLS listener: rustls (ring) with a certificate reloaded when its files change.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;

/// Loads a PEM certificate chain and private key into a rustls server config (ring provider).
fn tls_config(cert: &Path, key: &Path) -> std::io::Result<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let io = |what: &str, path: &Path, e: &dyn std::fmt::Display| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{what} {}: {e}", path.display()),
        )
    };
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(|e| io("reading certificate", cert, &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| io("reading certificate", cert, &e))?;
    if certs.is_empty() {
        return Err(io(
            "reading certificate",
            cert,
            &"no certificate in the file",
        ));
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| io("reading key", key, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| io("configuring TLS for", cert, &e))?
        .with_no_client_auth()
        .with_single_cert(certs, private)
        .map_err(|e| io("configuring TLS with", cert, &e))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(cfg)
}

fn modified(paths: &[PathBuf]) -> Vec<Option<SystemTime>> {
    paths
        .iter()
        .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .collect()
}

/// Serves `router` over TLS (rustls, ring) until `shutdown` resolves. The certificate and key
/// are reloaded when their files change (cert-manager rotation, mounted Secret updates).
pub async fn serve_tls(
    addr: SocketAddr,
    cert: &Path,
    key: &Path,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let config =
        axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(tls_config(cert, key)?));
    let handle = axum_server::Handle::new();
    let paths = vec![cert.to_path_buf(), key.to_path_buf()];
    let reloader = {
        let config = config.clone();
        tokio::spawn(async move {
            let mut seen = modified(&paths);
            loop {
                tokio::time::sleep(Duration::from_secs(30)).await;
                let now = modified(&paths);
                if now == seen {
                    continue;
                }
                match tls_config(&paths[0], &paths[1]) {
                    Ok(c) => {
                        config.reload_from_config(Arc::new(c));
                        seen = now;
                        tracing::info!("reloaded the webhook's serving certificate");
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "could not reload the webhook's serving certificate")
                    }
                }
            }
        })
    };
    {
        let handle = handle.clone();
        tokio::spawn(async move {
            shutdown.await;
            handle.graceful_shutdown(Some(Duration::from_secs(10)));
        });
    }
    tracing::info!(%addr, "serving the admission webhook (/mutate, /validate) over TLS");
    let result = axum_server::bind_rustls(addr, config)
        .handle(handle)
        .serve(router.into_make_service())
        .await;
    reloader.abort();
    result
}
