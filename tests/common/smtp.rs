//! A small SMTP server for the tests: real TCP on 127.0.0.1, STARTTLS required before mail, with
//! a certificate for `localhost` made here (rcgen). It keeps what it receives, and can refuse
//! (`421` at the next command, `554` at greeting) or drop connections until told otherwise.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls;

/// How the server treats the next command or connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Takes mail.
    Accept = 0,
    /// Answers `421`/`554` and closes.
    Refuse = 1,
    /// Closes the connection without a word.
    Drop = 2,
}

/// One message received.
#[derive(Debug, Clone)]
pub struct Received {
    /// `MAIL FROM`.
    pub from: String,
    /// `RCPT TO`s.
    pub to: Vec<String>,
    /// The message as sent (headers and body, dot-unstuffed).
    pub data: String,
    /// Whether it came over TLS.
    pub tls: bool,
}

impl Received {
    /// A header's value (first occurrence, unfolded).
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next()?;
        let mut lines = head.split("\r\n").peekable();
        while let Some(line) = lines.next() {
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case(name) {
                    let mut v = v.trim().to_owned();
                    while lines.peek().is_some_and(|l| l.starts_with([' ', '\t'])) {
                        v.push(' ');
                        v.push_str(lines.next().unwrap().trim());
                    }
                    return Some(v);
                }
            }
        }
        None
    }

    /// The first verification code (`XXXXX-XXXXX`) in the message.
    pub fn code(&self) -> Option<String> {
        let re = regex::Regex::new(r"\b[0-9A-Z]{5}-[0-9A-Z]{5}\b").unwrap();
        re.find(&self.data).map(|m| m.as_str().to_owned())
    }
}

struct State {
    acceptor: tokio_rustls::TlsAcceptor,
    mode: AtomicU8,
    inbox: Mutex<Vec<Received>>,
}

/// A running server; it stops when dropped.
pub struct SmtpServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The PEM file of its certificate, to trust as the mail settings' `ca_file`.
    pub ca_file: std::path::PathBuf,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpServer {
    /// Starts a server on a free port of 127.0.0.1.
    pub async fn start() -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("smtp-ca.pem");
        std::fs::write(&ca_file, ck.cert.pem()).unwrap();
        let cert = rustls::pki_types::CertificateDer::from(ck.cert.der().to_vec());
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
        let state = Arc::new(State {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            mode: AtomicU8::new(Mode::Accept as u8),
            inbox: Mutex::new(Vec::new()),
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let st = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let st = st.clone();
                tokio::spawn(async move {
                    let _ = session(tcp, st).await;
                });
            }
        });
        Self {
            addr,
            ca_file,
            state,
            task,
            _dir: dir,
        }
    }

    /// Changes how it treats what comes next.
    pub fn set_mode(&self, mode: Mode) {
        self.state.mode.store(mode as u8, Ordering::SeqCst);
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.inbox.lock().unwrap().clone()
    }

    /// The mail settings that reach this server over STARTTLS.
    pub fn config(&self) -> vigil::config::MailConfig {
        vigil::config::MailConfig {
            host: Some("localhost".into()),
            port: self.addr.port(),
            security: vigil::config::MailSecurity::Starttls,
            from: Some("Vigil <vigil@vigil.example>".into()),
            reply_to: Some("privacy@vigil.example".into()),
            username: None,
            ca_file: Some(self.ca_file.clone()),
        }
    }
}

fn mode(st: &State) -> Mode {
    match st.mode.load(Ordering::SeqCst) {
        0 => Mode::Accept,
        1 => Mode::Refuse,
        _ => Mode::Drop,
    }
}

enum Next {
    Close,
    StartTls,
}

async fn session(tcp: TcpStream, st: Arc<State>) -> std::io::Result<()> {
    // Each reply is one write; without Nagle's algorithm it leaves at once rather than
    // waiting for the client to acknowledge the previous one.
    tcp.set_nodelay(true)?;
    let mut r = BufReader::new(tcp);
    match mode(&st) {
        Mode::Drop => return Ok(()),
        Mode::Refuse => {
            r.write_all(b"554 5.3.2 not taking mail now\r\n").await?;
            return Ok(());
        }
        Mode::Accept => r.write_all(b"220 localhost ESMTP vigil-test\r\n").await?,
    }
    if let Next::StartTls = converse(&mut r, false, &st).await? {
        let tls = st.acceptor.accept(r.into_inner()).await?;
        let mut r = BufReader::new(tls);
        converse(&mut r, true, &st).await?;
    }
    Ok(())
}

async fn converse<S: AsyncRead + AsyncWrite + Unpin>(
    r: &mut BufReader<S>,
    tls: bool,
    st: &State,
) -> std::io::Result<Next> {
    let mut from = String::new();
    let mut to = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await? == 0 {
            return Ok(Next::Close);
        }
        match mode(st) {
            Mode::Accept => {}
            Mode::Drop => return Ok(Next::Close),
            Mode::Refuse => {
                r.write_all(b"421 4.3.2 service not available, closing\r\n")
                    .await?;
                return Ok(Next::Close);
            }
        }
        let cmd = line.trim_end().to_owned();
        let upper = cmd.to_ascii_uppercase();
        if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            if tls {
                r.write_all(b"250-localhost\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")
                    .await?;
            } else {
                r.write_all(b"250-localhost\r\n250-8BITMIME\r\n250 STARTTLS\r\n")
                    .await?;
            }
        } else if upper == "STARTTLS" && !tls {
            r.write_all(b"220 2.0.0 ready to start TLS\r\n").await?;
            r.flush().await?;
            return Ok(Next::StartTls);
        } else if upper.starts_with("MAIL FROM:") {
            if !tls {
                r.write_all(b"530 5.7.0 must issue STARTTLS first\r\n")
                    .await?;
                continue;
            }
            from = cmd[10..].trim().trim_matches(['<', '>']).to_owned();
            to.clear();
            r.write_all(b"250 2.1.0 ok\r\n").await?;
        } else if upper.starts_with("RCPT TO:") {
            to.push(cmd[8..].trim().trim_matches(['<', '>']).to_owned());
            r.write_all(b"250 2.1.5 ok\r\n").await?;
        } else if upper == "DATA" {
            r.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
            let mut data = String::new();
            loop {
                let mut l = String::new();
                if r.read_line(&mut l).await? == 0 {
                    return Ok(Next::Close);
                }
                if l == ".\r\n" || l == ".\n" {
                    break;
                }
                data.push_str(l.strip_prefix('.').unwrap_or(&l));
            }
            st.inbox.lock().unwrap().push(Received {
                from: from.clone(),
                to: std::mem::take(&mut to),
                data,
                tls,
            });
            r.write_all(b"250 2.0.0 queued as test\r\n").await?;
        } else if upper == "RSET" || upper == "NOOP" {
            r.write_all(b"250 2.0.0 ok\r\n").await?;
        } else if upper == "QUIT" {
            r.write_all(b"221 2.0.0 bye\r\n").await?;
            return Ok(Next::Close);
        } else {
            r.write_all(b"502 5.5.2 command not recognised\r\n").await?;
        }
        r.flush().await?;
    }
}
