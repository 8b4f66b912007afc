//! Candidate mail through an SMTP server (lettre): the [`Mailer`] the service hands messages to
//! when `CLEARHIRE_SMTP_URL` is set.
use std::time::Duration;

use entity::email;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use service::mail::Mailer;
use service::screening::provider::BoxFut;

pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpMailer {
    /// `url` as lettre reads it: `smtps://user:pass@host` (TLS), `smtp://user:pass@host:587?tls=required`
    /// (STARTTLS), or `smtp://host:port` (plain, for a relay on the same host).
    pub fn new(url: &str, from: &str) -> anyhow::Result<Self> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| anyhow::anyhow!("CLEARHIRE_SMTP_URL: {e}"))?
            .timeout(Some(Duration::from_secs(15)))
            .build();
        let from = from
            .parse()
            .map_err(|e| anyhow::anyhow!("CLEARHIRE_MAIL_FROM: {e}"))?;
        Ok(Self { transport, from })
    }
}

impl Mailer for SmtpMailer {
    fn send<'a>(&'a self, email: &'a email::Model) -> BoxFut<'a, ()> {
        Box::pin(async move {
            let to: Mailbox = email
                .to_address
                .parse()
                .map_err(|e| anyhow::anyhow!("recipient {}: {e}", email.to_address))?;
            let message = Message::builder()
                .from(self.from.clone())
                .to(to)
                .subject(&email.subject)
                // Stable across retries, so a server that saw a send fail late can tell.
                .message_id(Some(format!("<{}@clearhire>", email.id)))
                .header(ContentType::TEXT_PLAIN)
                .body(email.body.clone())?;
            self.transport.send(message).await?;
            Ok(())
        })
    }
}
