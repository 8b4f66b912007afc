//! Candidate mail through SMTP: a local server that speaks the protocol as a mail relay does,
//! checks the envelope, keeps each message, and can refuse one with a temporary error.
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::helpers::spawn_app_with;
use crate::webhooks::eventually;

/// One message as the server accepted it.
#[derive(Debug, Clone)]
struct Accepted {
    from: String,
    to: Vec<String>,
    data: String,
}

#[derive(Clone, Default)]
struct FakeSmtp {
    accepted: Arc<Mutex<Vec<Accepted>>>,
    /// Messages to refuse with 451 at the end of DATA before accepting.
    refuse: Arc<Mutex<u32>>,
}

impl FakeSmtp {
    async fn start() -> (Self, String) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let me = Self::default();
        let server = me.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let server = server.clone();
                tokio::spawn(async move { server.session(stream).await });
            }
        });
        (me, format!("smtp://{addr}"))
    }

    async fn session(&self, stream: tokio::net::TcpStream) {
        async fn say(w: &mut tokio::net::tcp::OwnedWriteHalf, s: &str) -> bool {
            w.write_all(s.as_bytes()).await.is_ok()
        }
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        if !say(&mut write, "220 fake.local ESMTP ready\r\n").await {
            return;
        }
        let (mut from, mut to) = (String::new(), Vec::new());
        while let Ok(Some(line)) = lines.next_line().await {
            let upper = line.to_ascii_uppercase();
            let reply: &'static str = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                "250-fake.local\r\n250 8BITMIME\r\n"
            } else if upper.starts_with("MAIL FROM:") {
                from = line[10..].trim().to_string();
                "250 OK\r\n"
            } else if upper.starts_with("RCPT TO:") {
                to.push(line[8..].trim().to_string());
                "250 OK\r\n"
            } else if upper == "DATA" {
                if !say(&mut write, "354 end with <CRLF>.<CRLF>\r\n").await {
                    return;
                }
                let mut data = String::new();
                while let Ok(Some(l)) = lines.next_line().await {
                    if l == "." {
                        break;
                    }
                    data.push_str(&l);
                    data.push('\n');
                }
                let refuse = {
                    let mut r = self.refuse.lock().expect("lock");
                    let refuse = *r > 0;
                    *r = r.saturating_sub(1);
                    refuse
                };
                if refuse {
                    "451 4.3.0 try again later\r\n"
                } else {
                    self.accepted.lock().expect("lock").push(Accepted {
                        from: std::mem::take(&mut from),
                        to: std::mem::take(&mut to),
                        data,
                    });
                    "250 2.0.0 queued\r\n"
                }
            } else if upper == "QUIT" {
                let _ = say(&mut write, "221 bye\r\n").await;
                return;
            } else if upper == "RSET" || upper == "NOOP" {
                from.clear();
                to.clear();
                "250 OK\r\n"
            } else {
                "502 command not implemented\r\n"
            };
            if !say(&mut write, reply).await {
                return;
            }
        }
    }

    fn accepted(&self) -> Vec<Accepted> {
        self.accepted.lock().expect("lock").clone()
    }

    /// What the server has accepted, once it has accepted something (within 15 s).
    async fn first_messages(&self) -> Vec<Accepted> {
        eventually("a message at the SMTP server", 15, || async {
            let a = self.accepted();
            (!a.is_empty()).then_some(a)
        })
        .await
    }
}

#[tokio::test]
async fn candidate_mail_goes_through_smtp_and_a_refusal_is_retried() {
    let (smtp, url) = FakeSmtp::start().await;
    *smtp.refuse.lock().expect("lock") = 1;
    let app = spawn_app_with(|c| {
        c.smtp_url = Some(url.parse().expect("url"));
        c.mail_from = "Acme Screening <screening@acme.example.com>".into();
    })
    .await;
    let cand = app.candidate("merry@example.com").await;
    let check = app.start_check(&cand, true).await;
    // The first try is refused with 451; the task retries after its backoff.
    let got = smtp.first_messages().await;
    assert_eq!(got.len(), 1, "one message, however often it was tried");
    let m = &got[0];
    assert_eq!(m.from, "<screening@acme.example.com>");
    assert_eq!(m.to, vec!["<merry@example.com>".to_string()]);
    assert!(m.data.contains("Subject: "), "{}", m.data);
    assert!(m.data.contains("needs your consent"), "{}", m.data);
    assert!(
        m.data.contains("/consent/"),
        "the link is in the body: {}",
        m.data
    );
    let sent = eventually("sentAt", 5, || async {
        let r = app
            .gql(
                "query($c: ID) { emails(checkId: $c) { kind sentAt } }",
                json!({"c": check}),
            )
            .await;
        let e = r.data()["emails"][0].clone();
        e["sentAt"].is_string().then_some(e)
    })
    .await;
    assert_eq!(sent["kind"], "invitation");
    // Mail really goes out, so the partner's copy does not carry the candidate's credential.
    let listed = app
        .gql(
            "query($c: ID) { emails(checkId: $c) { body } }",
            json!({"c": check}),
        )
        .await;
    let body = listed.data()["emails"][0]["body"]
        .as_str()
        .expect("body")
        .to_string();
    let token = m
        .data
        .split("/consent/")
        .nth(1)
        .and_then(|t| t.split(|c: char| c.is_whitespace()).next())
        .expect("the token in the sent mail")
        .to_string();
    assert!(
        body.contains("/consent/…") && !body.contains(&token),
        "{body}"
    );
    let tasks = app
        .gql(
            "query($c: ID!) { check(id: $c) { tasks { kind status attempts lastError } } }",
            json!({"c": check}),
        )
        .await;
    let mail_task = tasks.data()["check"]["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .find(|t| t["kind"] == "mail.send")
        .cloned()
        .expect("a mail task");
    assert_eq!(mail_task["status"], "done");
    assert_eq!(
        mail_task["attempts"], 2,
        "refused once, then accepted: {mail_task}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(smtp.accepted().len(), 1, "not sent twice");
}

/// A request for consent that waited for the mail server (refused, retried) is not sent once
/// it asks for nothing: the check was withdrawn meanwhile, and its link no longer opens.
#[tokio::test]
async fn a_consent_request_overtaken_while_it_waits_for_the_mail_server_is_not_sent() {
    let (smtp, url) = FakeSmtp::start().await;
    *smtp.refuse.lock().expect("lock") = 1;
    let app = spawn_app_with(|c| {
        c.smtp_url = Some(url.parse().expect("url"));
    })
    .await;
    let cand = app.candidate("pippin@example.com").await;
    let check = app.start_check(&cand, true).await;
    let mail_task = || async {
        app.tasks_of_kind(&check, "mail.send")
            .await
            .into_iter()
            .next()
            .expect("a mail task")
    };
    eventually("the refused first try", 10, || async {
        let t = mail_task().await;
        (t["attempts"].as_i64() >= Some(1)).then_some(())
    })
    .await;
    app.transition(&check, "withdrawn").await.data();
    let done = eventually("the retry", 20, || async {
        let t = mail_task().await;
        (t["status"] == "done").then_some(t)
    })
    .await;
    assert_eq!(done["attempts"], 2, "{done}");
    assert!(smtp.accepted().is_empty(), "nothing reached the candidate");
    let sent = app
        .gql(
            "query($c: ID) { emails(checkId: $c) { kind sentAt } }",
            json!({"c": check}),
        )
        .await;
    assert_eq!(
        sent.data()["emails"],
        json!([{"kind": "invitation", "sentAt": null}])
    );
}

/// A name holding the link's path ("Sam/consent/x": names are the partner's free text, and come
/// before the link in the body) does not stop the invitation: the link that names a real one
/// decides whether it is still worth sending.
#[tokio::test]
async fn a_name_holding_the_links_path_does_not_stop_the_invitation() {
    let (smtp, url) = FakeSmtp::start().await;
    let app = spawn_app_with(|c| c.smtp_url = Some(url.parse().expect("url"))).await;
    let cand = app
        .candidate_with(json!({"firstName": "Sam/consent/x", "lastName": "Path", "email": "sam.path@example.com"}))
        .await;
    app.start_check(&cand, true).await;
    let got = smtp.first_messages().await;
    assert!(got[0].data.contains("Sam/consent/x"), "{}", got[0].data);
    assert_eq!(got[0].to, vec!["<sam.path@example.com>".to_string()]);
}
