//! The org's name in mail and on the reveal page, as the org reports it
//! (`SELECT Name FROM Organization`), and the neutral wording when it cannot be read.

use crate::common;

use std::time::Duration;

use common::*;

use services::provisioning::{DeployPoll, Engine as Worker};
use services::reveal::RevealError;

const NAME: &str = "Kinetic Holdings (Test Org)";
const CONTACT: &str = "ops@vendor.example";

/// Every mail to `to`, subject and body, oldest first.
async fn mails_to(t: &TestPortal, to: &str) -> Vec<(String, String)> {
    let mut mails: Vec<(String, String)> = services::mail::outbox(&t.db.db, Some(to), 50)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.subject, m.body))
        .collect();
    mails.reverse();
    mails
}

fn mail_with<'a>(mails: &'a [(String, String)], subject: &str) -> &'a (String, String) {
    mails
        .iter()
        .find(|(s, _)| s.contains(subject))
        .unwrap_or_else(|| panic!("a mail about {subject:?} in {mails:#?}"))
}

/// Runs the provisioning workflow of `grant` until it is ready (the reveal link is sent).
async fn provision(t: &TestPortal, grant: &str) {
    let worker = Worker::new(t.db.db.clone(), t.salesforce().clone())
        .with_handover(t.handover())
        .with_deploy_poll(DeployPoll {
            first_check: Duration::from_millis(450),
            interval: Duration::from_millis(100),
            timeout: Duration::from_secs(30),
        });
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        worker.run_until_idle().await.unwrap();
        let (state, _) = grant_state(t, grant).await;
        if state == "ready" {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the grant was not set up: {state}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The token of the reveal link mailed to the contact.
fn reveal_token(mails: &[(String, String)]) -> String {
    let (_, body) = mail_with(mails, "Your API credential");
    let at = body.find("/reveal/").expect("a reveal link") + "/reveal/".len();
    body[at..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect()
}

/// The newest reveal code mailed to the contact.
async fn reveal_code(t: &TestPortal) -> String {
    let mails = mails_to(t, CONTACT).await;
    mails
        .iter()
        .rev()
        .filter(|(s, _)| s.starts_with("Your code to reveal"))
        .find_map(|(_, body)| {
            body.split_whitespace()
                .find(|w| w.len() == 6 && w.bytes().all(|b| b.is_ascii_digit()))
                .map(str::to_string)
        })
        .expect("a reveal code")
}

test_kit::both_databases!(
    mail_and_the_reveal_page_name_the_org_as_it_reports_itself,
    |engine| {
        let Some(t) = portal_with_org(engine).await else {
            return;
        };
        // Renamed in the org before the portal first asks: the name can only come from there.
        t.org_settings(serde_json::json!({ "orgName": NAME })).await;

        let grant = approved_grant(&t, "Vendor GmbH", case_scope()).await;
        provision(&t, &grant).await;
        let mails = mails_to(&t, CONTACT).await;
        let possessive = format!("{NAME}'s");

        let (_, confirm) = mail_with(&mails, "Confirm your email");
        assert!(
            confirm.contains(&format!(
                "API access to {possessive} Salesforce org for Vendor GmbH"
            )),
            "{confirm}"
        );
        let (_, received) = mail_with(&mails, "access request was received");
        assert!(
            received.contains(&format!("the request is with {possessive} approvers")),
            "{received}"
        );
        let (_, approved) = mail_with(&mails, "access request was approved");
        assert!(
            approved.contains(&format!(
                "{possessive} approvers approved Vendor GmbH's request"
            )),
            "{approved}"
        );
        let (subject, link) = mail_with(&mails, "Your API credential");
        assert_eq!(
            subject,
            &format!("Your API credential for {possessive} Salesforce org (Vendor GmbH)")
        );
        assert!(
            link.contains(&format!("The API access {NAME} approved for Vendor GmbH")),
            "{link}"
        );
        for (subject, body) in &mails {
            assert!(
                !subject.contains("Acme") && !body.contains("Acme"),
                "no hard-coded name: {subject}\n{body}"
            );
        }

        // The reveal page says whose credential it is.
        let token = reveal_token(&mails);
        let view = t.reveal_link(&token).await.unwrap().expect("the link");
        assert_eq!(view.org_name, NAME);

        // A refusal that sends the contractor to the org's admins names the org.
        t.send_reveal_code(&token, &contractor()).await.unwrap();
        let right = reveal_code(&t).await;
        let wrong = if right == "000000" {
            "111111"
        } else {
            "000000"
        };
        let mut last = None;
        for _ in 0..services::reveal::MAX_ATTEMPTS {
            last = Some(t.reveal(&token, wrong, &contractor()).await);
        }
        match last {
            Some(Err(e @ RevealError::Locked(_))) => {
                assert!(
                    e.to_string()
                        .contains(&format!("{possessive} admins have been told")),
                    "{e}"
                );
            }
            other => panic!("expected the link to lock, got {other:?}"),
        }

        // A rejection names the org too.
        let second = submit_verified(&t, "Other Ltd", "other@vendor.example", case_scope()).await;
        let (alice, actor) = approver("alice@acme.example");
        t.reject(&second, &alice, "Not this quarter.", &actor)
            .await
            .unwrap();
        let (_, rejected) = mail_with(
            &mails_to(&t, "other@vendor.example").await,
            "was not approved",
        )
        .clone();
        assert!(
            rejected.contains(&format!("{possessive} approvers did not approve")),
            "{rejected}"
        );

        // The name is read once, then kept; reading it again picks up a rename.
        t.org_settings(serde_json::json!({ "orgName": "Renamed Inc" }))
            .await;
        assert_eq!(t.org_name().await.as_str(), NAME);
        assert_eq!(t.refresh_org_name().await.as_str(), "Renamed Inc");
        assert_eq!(t.org_name().await.as_str(), "Renamed Inc");
    }
);

test_kit::both_databases!(
    an_org_that_cannot_be_asked_is_called_your_company,
    |engine| {
        // The portal's org connection points nowhere: the name cannot be read, and nothing
        // fails because of it.
        let Some(t) = portal(engine).await else {
            return;
        };
        let name = t.org_name().await;
        assert!(!name.is_known());
        let id = submit(&t, "Vendor GmbH", CONTACT, case_scope()).await;
        assert!(!id.is_empty());
        let mails = mails_to(&t, CONTACT).await;
        let (_, confirm) = mail_with(&mails, "Confirm your email");
        assert!(
            confirm.contains("API access to your company's Salesforce org for Vendor GmbH"),
            "{confirm}"
        );
        assert!(!confirm.contains("Acme"), "{confirm}");
    }
);

test_kit::both_databases!(
    the_sandbox_org_answers_its_name_as_salesforce_does,
    |engine| {
        let Some(t) = portal_with_org(engine).await else {
            return;
        };
        assert_eq!(
            services::org_name::read(t.salesforce()).await.unwrap(),
            Some("Acme (Sandbox Org)".to_string()),
            "the seeded org's name"
        );
        t.org_settings(serde_json::json!({ "orgName": "  Spaced Name  " }))
            .await;
        assert_eq!(
            services::org_name::read(t.salesforce()).await.unwrap(),
            Some("Spaced Name".to_string())
        );
    }
);
