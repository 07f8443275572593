//! TLS over pinwheel's `TcpStream`: tokio-rustls through the `tokio-io` traits and
//! futures-rustls through the futures-io traits, with a self-signed certificate made at test
//! time (rcgen); a client that does not trust the certificate gets a clear error, and its
//! failed session does not disturb the others.

use std::sync::Arc;

use pinwheel::net::{TcpListener, TcpStream};
use pinwheel_tests::rt;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A self-signed certificate for "localhost", and the server config presenting it.
fn server_config() -> (CertificateDer<'static>, Arc<ServerConfig>) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert = ck.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.key_pair.serialize_der()));
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    (cert, Arc::new(config))
}

fn client_config(trusted: CertificateDer<'static>) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(trusted).unwrap();
    Arc::new(
        ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// A TLS echo server on `net::serve` with tokio-rustls; returns its address and a counter of
/// sessions whose handshake failed.
async fn tokio_rustls_echo_server(
    config: Arc<ServerConfig>,
) -> (std::net::SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let failed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let f2 = failed.clone();
    drop(pinwheel::spawn(pinwheel::net::serve(
        listener,
        move |stream: TcpStream, _peer| {
            let (acceptor, failed) = (acceptor.clone(), f2.clone());
            async move {
                let mut tls = match acceptor.accept(stream).await {
                    Ok(t) => t,
                    Err(_) => {
                        failed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        return;
                    }
                };
                let mut buf = [0u8; 4096];
                loop {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if tls.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = tls.shutdown().await;
            }
        },
    )));
    (addr, failed)
}

#[test]
fn tokio_rustls_handshake_and_echo() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = rt(2);
    rt.block_on(async {
        let (cert, server) = server_config();
        let (addr, failed) = tokio_rustls_echo_server(server).await;
        let connector = tokio_rustls::TlsConnector::from(client_config(cert));
        for _ in 0..4 {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let name = ServerName::try_from("localhost").unwrap();
            let mut tls = connector.connect(name, tcp).await.unwrap();
            let msg = vec![0x5a; 1024];
            tls.write_all(&msg).await.unwrap();
            let mut back = vec![0; 1024];
            tls.read_exact(&mut back).await.unwrap();
            assert_eq!(back, msg);
        }
        assert_eq!(failed.load(std::sync::atomic::Ordering::SeqCst), 0);
    });
}

#[test]
fn futures_rustls_handshake_and_echo() {
    use futures::io::{AsyncReadExt, AsyncWriteExt};
    let rt = rt(2);
    rt.block_on(async {
        let (cert, server) = server_config();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = futures_rustls::TlsAcceptor::from(server);
        drop(pinwheel::spawn(pinwheel::net::serve(
            listener,
            move |stream: TcpStream, _peer| {
                let acceptor = acceptor.clone();
                async move {
                    let Ok(mut tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = tls.read(&mut buf).await {
                        if n == 0 || tls.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                }
            },
        )));
        let connector = futures_rustls::TlsConnector::from(client_config(cert));
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let mut tls = connector.connect(name, tcp).await.unwrap();
        tls.write_all(b"hello over futures-rustls").await.unwrap();
        let mut back = [0u8; 25];
        tls.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"hello over futures-rustls");
    });
}

#[test]
fn an_untrusted_certificate_fails_clearly_and_alone() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = rt(2);
    rt.block_on(async {
        let (cert, server) = server_config();
        let (addr, failed) = tokio_rustls_echo_server(server).await;
        // A good session, open across the bad one.
        let good = tokio_rustls::TlsConnector::from(client_config(cert));
        let tcp = TcpStream::connect(addr).await.unwrap();
        let mut good = good
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap();
        good.write_all(b"before").await.unwrap();

        // A client that trusts another certificate only.
        let (other, _) = server_config();
        let bad = tokio_rustls::TlsConnector::from(client_config(other));
        let tcp = TcpStream::connect(addr).await.unwrap();
        let err = bad
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("invalid peer certificate") || text.contains("UnknownIssuer"),
            "{text}"
        );

        // The server saw the failed handshake end its session (bounded wait).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while failed.load(std::sync::atomic::Ordering::SeqCst) == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the bad session never ended"
            );
            pinwheel::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        // The good session goes on.
        good.write_all(b" and after").await.unwrap();
        let mut back = [0u8; 16];
        good.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"before and after");
    });
}
