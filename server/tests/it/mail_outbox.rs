//! The mail outbox against a real SMTP server (aiosmtpd) that refuses some recipients, on
//! SQLite and PostgreSQL: recipients the server refuses for good (anyone can make such
//! mail through the public request form) fail at once with their bodies blanked and do not
//! hold up newer mail; a recipient refused for now is tried again later with backoff, up to
//! a cap; and a message a crashed sender left claimed is sent after all.

use crate::common;

use common::smtp::SmtpSink;
use services::mail::{Mail, Mailer};
use test_kit::TestDb;

const DOMAIN: &str = "vendor.example";

async fn queue(db: &services::Database, mailer: &Mailer, to: &str, subject: &str) {
    let mut tx = db.begin_write().await.unwrap();
    mailer
        .queue(
            &mut tx.tx,
            &Mail {
                to: to.to_string(),
                subject: subject.to_string(),
                body: format!("Hello,\n\nYour one-time code is 424242 ({subject}).\n"),
            },
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

async fn row(db: &services::Database, to: &str) -> (String, String, Option<String>) {
    sqlx::query_as("SELECT delivery, body, error FROM mail_outbox WHERE recipient = $1")
        .bind(to)
        .fetch_one(db.pool())
        .await
        .unwrap()
}

test_kit::both_databases!(refused_recipients_and_crashes_do_not_block_mail, |engine| {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    let Some(t) = TestDb::new(engine).await else {
        return;
    };
    let db = &t.db;
    let metrics = services::metrics::detached();
    let mailer = Mailer::smtp(
        &format!("smtp://127.0.0.1:{}", sink.port),
        "Portcullis <portcullis@localhost>",
    )
    .unwrap()
    .with_metrics(metrics.clone());

    // 60 requests from the public form with addresses the server refuses for good.
    for i in 0..60 {
        queue(
            db,
            &mailer,
            &format!("refuse.{i}@{DOMAIN}"),
            "Confirm your email",
        )
        .await;
    }
    // A message a sender claimed and then crashed on.
    let stuck = format!("stuck@{DOMAIN}");
    queue(db, &mailer, &stuck, "Stuck in sending").await;
    sqlx::query("UPDATE mail_outbox SET delivery = 'sending' WHERE recipient = $1")
        .bind(&stuck)
        .execute(db.pool())
        .await
        .unwrap();
    // A recipient whose server says "later", and a newer message to a good address.
    let later = format!("later@{DOMAIN}");
    queue(db, &mailer, &later, "Try later").await;
    let fresh = format!("fresh@{DOMAIN}");
    queue(db, &mailer, &fresh, "Newest mail").await;

    for _ in 0..3 {
        mailer.deliver_pending(db).await.unwrap();
    }
    assert!(
        sink.wait_for(|m| m.contains(&format!("To: {fresh}")))
            .await
            .is_some(),
        "the newer mail was delivered despite 60 refused ones before it"
    );
    assert!(
        sink.wait_for(|m| m.contains(&format!("To: {stuck}")))
            .await
            .is_some(),
        "the mail a crashed sender left claimed was delivered"
    );
    let (delivery, body, _) = row(db, &fresh).await;
    assert_eq!((delivery.as_str(), body.as_str()), ("sent", ""));

    // Refused for good: failed after one try, with the server's answer, and the body (codes,
    // links) blanked.
    for i in [0, 59] {
        let to = format!("refuse.{i}@{DOMAIN}");
        let (delivery, body, error) = row(db, &to).await;
        assert_eq!(delivery, "failed", "{to}");
        assert_eq!(body, "", "{to}: the body is blanked");
        assert!(error.unwrap_or_default().contains("550"), "{to}");
        assert_eq!(sink.recipient_attempts(&to), 1, "{to} tried once");
    }

    // Refused for now: pending, tried once (not on every run), the next try later.
    assert_eq!(sink.recipient_attempts(&later), 1);
    let (attempts, next_attempt_at): (i64, i64) =
        sqlx::query_as("SELECT attempts, next_attempt_at FROM mail_outbox WHERE recipient = $1")
            .bind(&later)
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert_eq!(attempts, 1);
    assert!(next_attempt_at > services::clock::now_ms());
    let (delivery, body, error) = row(db, &later).await;
    assert_eq!(delivery, "pending");
    assert!(!body.is_empty(), "kept for the next try");
    assert!(error.unwrap_or_default().contains("451"));

    // Due again, it is tried again; at the last allowed attempt it fails for good.
    sqlx::query("UPDATE mail_outbox SET next_attempt_at = 0 WHERE recipient = $1")
        .bind(&later)
        .execute(db.pool())
        .await
        .unwrap();
    mailer.deliver_pending(db).await.unwrap();
    assert_eq!(sink.recipient_attempts(&later), 2);
    sqlx::query("UPDATE mail_outbox SET next_attempt_at = 0, attempts = $1 WHERE recipient = $2")
        .bind(services::mail::MAX_ATTEMPTS - 1)
        .bind(&later)
        .execute(db.pool())
        .await
        .unwrap();
    mailer.deliver_pending(db).await.unwrap();
    assert_eq!(sink.recipient_attempts(&later), 3);
    let (delivery, body, _) = row(db, &later).await;
    assert_eq!((delivery.as_str(), body.as_str()), ("failed", ""));

    // A claim that has not run out is another sender's: left alone. One that ran out is
    // taken up again.
    let claimed = format!("claimed@{DOMAIN}");
    queue(db, &mailer, &claimed, "Claimed elsewhere").await;
    sqlx::query(
        "UPDATE mail_outbox SET delivery = 'sending', claimed_until = $1 WHERE recipient = $2",
    )
    .bind(services::clock::now_ms() + 60_000)
    .bind(&claimed)
    .execute(db.pool())
    .await
    .unwrap();
    assert_eq!(mailer.deliver_pending(db).await.unwrap(), 0);
    assert_eq!(sink.recipient_attempts(&claimed), 0);
    sqlx::query("UPDATE mail_outbox SET claimed_until = $1 WHERE recipient = $2")
        .bind(services::clock::now_ms() - 1)
        .bind(&claimed)
        .execute(db.pool())
        .await
        .unwrap();
    assert_eq!(mailer.deliver_pending(db).await.unwrap(), 1);
    assert_eq!(row(db, &claimed).await.0, "sent");
    // Nothing is left to send, and nothing was sent twice.
    assert_eq!(mailer.deliver_pending(db).await.unwrap(), 0);
    assert_eq!(sink.recipient_attempts(&fresh), 1);
    assert_eq!(sink.recipient_attempts(&stuck), 1);

    // The metrics saw every attempt: three sent (fresh, stuck, claimed), the 60 refused
    // and the "later" one given up, two tries of "later" put back; the outbox holds the 61
    // failed messages and nothing waiting.
    let text = metrics.encode().unwrap();
    for (outcome, count) in [("sent", 3), ("failed", 61), ("retry", 2)] {
        let line = format!(
            "portcullis_outbox_deliveries_total{{outbox=\"mail\",outcome=\"{outcome}\"}} {count}"
        );
        assert!(text.lines().any(|l| l == line), "{line} in:\n{text}");
    }
    let depth = services::mail::outbox_depth(db).await.unwrap();
    for (delivery, count) in [("pending", 0), ("sending", 0), ("failed", 61)] {
        assert!(
            depth.contains(&(delivery.to_string(), count)),
            "{delivery}: {depth:?}"
        );
    }
});
