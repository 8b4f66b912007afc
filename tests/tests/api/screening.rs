//! The screening engine end to end: consent (the hosted form and our consent page), sandbox
//! searches, adjudication, adverse action in the FCRA order with disputes, rechecks and
//! continuous monitoring. Each path asserts the exact status webhooks a partner received.
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use service::adverse::DisputeOutcome;

use crate::helpers::{TestApp, spawn_app_with};
use crate::webhooks::{Receiver, endpoint, eventually};

static SSN_SEQ: AtomicU32 = AtomicU32::new(1001);

/// A unique, valid SSN for this test binary.
fn next_ssn() -> String {
    format!("123-45-{:04}", SSN_SEQ.fetch_add(1, Ordering::Relaxed))
}

/// An app whose sandbox answers at once, with a receiver subscribed to status updates.
async fn screening_app() -> (TestApp, Receiver) {
    let app = spawn_app_with(|c| {
        c.sandbox_latency_ms = 0;
        c.agency_name = "Bywater Screening LLC".into();
        c.agency_address = Some(r"1 Hill Lane\nHobbiton, CA 94107".into());
        c.agency_phone = Some("+1 800 555 0100".into());
    })
    .await;
    let rx = Receiver::start().await;
    endpoint(&app, &rx.url, json!(["check.status_changed"])).await;
    (app, rx)
}

/// The agency's outcome of a dispute (the operator's `api dispute resolve`), then the check as
/// the partner reads it.
async fn agency_resolves(
    app: &TestApp,
    check: &str,
    outcome: DisputeOutcome,
    resolution: &str,
) -> Value {
    agency_resolves_dispute(app, check, None, outcome, resolution).await
}

/// As [`agency_resolves`], naming the dispute (`--dispute`).
async fn agency_resolves_dispute(
    app: &TestApp,
    check: &str,
    dispute: Option<&str>,
    outcome: DisputeOutcome,
    resolution: &str,
) -> Value {
    app.service
        .agency_resolve_dispute(check, dispute, outcome, resolution)
        .await
        .expect("resolved");
    app.gql(
        "query($c: ID!) { check(id: $c) { status adverseAction { state dueAt resolution } } }",
        json!({"c": check}),
    )
    .await
    .data()["check"]
        .clone()
}

/// Posts an HTML form as a browser does.
async fn post_form<K: AsRef<str>, V: AsRef<str>>(
    client: &reqwest::Client,
    url: &str,
    pairs: &[(K, V)],
    user_agent: Option<&str>,
) -> reqwest::Response {
    let mut body = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        body.append_pair(k.as_ref(), v.as_ref());
    }
    let mut req = client
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.finish());
    if let Some(ua) = user_agent {
        req = req.header("user-agent", ua);
    }
    req.send().await.expect("form post")
}

/// Consent evidence for every section of the form, acknowledged now on the service's clock
/// (which tests move).
fn timestamps(app: &TestApp) -> Value {
    let t = app.service.clock().now().to_rfc3339();
    json!({
        "welcome": [t], "summaryOfRights": [t], "disclosure": [t],
        "summaryOfStateRights": [t], "authorizationOfBackgroundInvestigation": [t], "signature": [t]
    })
}

/// Turn's own example of a `consent_document`: a 1×1 PNG as a data URL.
const SIGNATURE_PNG: &str = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVQYV2NgYAAAAAMAAWgmWQ0AAAAASUVORK5CYII=";

const FORM: &str = "mutation($z: String!, $p: ID) { createConsentForm(zipcode: $z, packageId: $p) { formId state data { field required } disclosures { order key title checkboxes requiredCheckboxes } } }";
const SUBMIT: &str = "mutation($i: SubmitConsentFormInput!) { submitConsentForm(input: $i) { outcome code message candidate { id turnId } check { id status } } }";

/// Runs both steps of the hosted form for a candidate in San Francisco; returns (candidate id,
/// check id).
async fn hosted(
    app: &TestApp,
    first: &str,
    last: &str,
    package: Option<&str>,
    callback: Option<&str>,
) -> (String, String) {
    let form_id = form_for(app, "94107", package).await;
    submit_hosted(app, &form_id, first, last, callback).await
}

/// Step one of the hosted form for a ZIP code; returns the form id.
async fn form_for(app: &TestApp, zip: &str, package: Option<&str>) -> String {
    let f = app.gql(FORM, json!({"z": zip, "p": package})).await;
    f.data()["createConsentForm"]["formId"]
        .as_str()
        .expect("formId")
        .to_string()
}

/// Both steps of the hosted form for a candidate living in Austin, Texas, a state where the
/// consent given for a check also covers continuous monitoring's rechecks (unlike California).
async fn hosted_in_texas(app: &TestApp, first: &str, last: &str) -> (String, String) {
    let form_id = form_for(app, "78701", None).await;
    submit_hosted_in(app, &form_id, first, last, None, "Austin").await
}

/// Step two of the hosted form, for a form made by step one; returns (candidate id, check id).
async fn submit_hosted(
    app: &TestApp,
    form_id: &str,
    first: &str,
    last: &str,
    callback: Option<&str>,
) -> (String, String) {
    submit_hosted_in(app, form_id, first, last, callback, "San Francisco").await
}

async fn submit_hosted_in(
    app: &TestApp,
    form_id: &str,
    first: &str,
    last: &str,
    callback: Option<&str>,
    city: &str,
) -> (String, String) {
    let r = app
        .gql(
            SUBMIT,
            json!({"i": {
                "formId": form_id, "firstName": first, "lastName": last, "noMiddleName": true,
                "email": format!("{}.{}.{}@example.com", first.to_lowercase(), last.to_lowercase(), SSN_SEQ.load(Ordering::Relaxed)),
                "phone": "(415) 555-0134", "dateOfBirth": "1990-04-06", "ssn": next_ssn(),
                "address": "3 Bagshot Row", "city": city,
                "driversLicenseNumber": "D1234567", "driversLicenseState": "CA",
                "consentDocument": SIGNATURE_PNG, "callbackUrl": callback,
                "timestamps": timestamps(app), "ipAddress": "203.0.113.7", "userAgent": "test-suite/1"
            }}),
        )
        .await;
    let d = &r.data()["submitConsentForm"];
    assert_eq!(d["outcome"], "STARTED", "{}", r.0);
    assert_eq!(d["code"], 9200);
    (
        d["candidate"]["id"]
            .as_str()
            .expect("candidate")
            .to_string(),
        d["check"]["id"].as_str().expect("check").to_string(),
    )
}

/// The `state` of every status webhook received for a worker, in the order of the changes.
/// Deliveries run concurrently, so arrival order is not change order; like a receiver would,
/// this chains them by `original_state` → `state`, starting from the check's creation (null).
/// Every webhook must fit the chain.
fn states_of(rx: &Receiver, worker: &str) -> Vec<String> {
    let mut pairs: Vec<(Option<String>, String)> = rx
        .received()
        .iter()
        .filter(|r| r.json["worker_id"] == worker && r.json.get("hook_type").is_none())
        .map(|r| {
            (
                r.json["original_state"].as_str().map(str::to_string),
                r.json["state"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect();
    let mut chain = Vec::new();
    let mut current: Option<String> = None;
    while let Some(i) = pairs.iter().position(|(from, _)| *from == current) {
        let (_, to) = pairs.remove(i);
        chain.push(to.clone());
        current = Some(to);
    }
    // Anything that does not chain on shows up as "?" so the comparison fails.
    chain.extend(pairs.into_iter().map(|(f, t)| format!("? {f:?} -> {t}")));
    chain
}

/// Waits until the worker's status webhooks are exactly `want`.
async fn expect_states(rx: &Receiver, worker: &str, want: &[&str]) {
    let got = eventually("the status webhooks", 10, || async {
        let s = states_of(rx, worker);
        (s.len() >= want.len()).then_some(s)
    })
    .await;
    assert_eq!(got, want, "status webhooks for {worker}");
    // Nothing more arrives.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(states_of(rx, worker), want, "no further status webhooks");
}

/// Runs `mutation` (one taking only `checkId`, such as `recheckCheck`) on a check; returns
/// the status it answers.
async fn on_check(app: &TestApp, mutation: &str, check: &str) -> String {
    let r = app
        .gql(
            &format!("mutation($c: ID!) {{ {mutation}(checkId: $c) {{ status }} }}"),
            json!({"c": check}),
        )
        .await;
    r.data()[mutation]["status"]
        .as_str()
        .expect("status")
        .to_string()
}

async fn enroll_monitoring(app: &TestApp, check: &str) -> Value {
    let r = app
        .gql(
            "mutation($c: ID!) { enrollMonitoring(checkId: $c) { cmCriminalEnroll } }",
            json!({"c": check}),
        )
        .await;
    r.data()["enrollMonitoring"].clone()
}

/// The sandbox's booking alert for an arrest in Alameda County, CA.
async fn arrest_alert(app: &TestApp, check: &str, charge_filed: bool) {
    app.gql(
        "mutation($c: ID!, $f: Boolean!) { sandboxArrestAlert(checkId: $c, county: \"Alameda\", state: \"CA\", chargeFiled: $f) { status } }",
        json!({"c": check, "f": charge_filed}),
    )
    .await
    .data();
}

/// The check's first monitoring alert: `{status, rechecks}`.
async fn monitoring_alert(app: &TestApp, check: &str) -> Value {
    let r = app
        .gql(
            "query($c: ID!) { check(id: $c) { monitoringAlerts { status rechecks } } }",
            json!({"c": check}),
        )
        .await;
    r.data()["check"]["monitoringAlerts"][0].clone()
}

/// The consent kept for a check with `method`.
async fn consent_by(app: &TestApp, check: &str, method: &str) -> Value {
    let all = app.dump("consents").await;
    let mine: Vec<&Value> = all
        .iter()
        .filter(|c| c["check_id"] == check && c["method"] == method)
        .collect();
    assert_eq!(mine.len(), 1, "{method} consents of {check}: {all:?}");
    mine[0].clone()
}

async fn reports(app: &TestApp, check: &str) -> Vec<Value> {
    let r = app
        .gql(
            "query($id: ID!) { check(id: $id) { reports { kind decision reasons report } } }",
            json!({"id": check}),
        )
        .await;
    r.data()["check"]["reports"]
        .as_array()
        .expect("reports")
        .clone()
}

async fn emails(app: &TestApp, check: &str) -> Vec<Value> {
    let r = app
        .gql(
            "query($c: ID) { emails(checkId: $c) { kind subject body to } }",
            json!({"c": check}),
        )
        .await;
    let mut v = r.data()["emails"].as_array().expect("emails").clone();
    v.reverse(); // oldest first
    v
}

/// The kinds of a check's emails, oldest first.
async fn email_kinds(app: &TestApp, check: &str) -> Vec<Value> {
    emails(app, check)
        .await
        .into_iter()
        .map(|m| m["kind"].clone())
        .collect()
}

async fn emails_of_kind(app: &TestApp, check: &str, kind: &str) -> Vec<Value> {
    emails(app, check)
        .await
        .into_iter()
        .filter(|m| m["kind"] == kind)
        .collect()
}

async fn mvr_package(app: &TestApp) -> String {
    let r = app
        .gql(
            "mutation { createPackage(input: {name: \"Drivers\", searches: [criminal, mvr, ssn_trace]}) { id } }",
            json!({}),
        )
        .await;
    r.data()["createPackage"]["id"]
        .as_str()
        .expect("id")
        .to_string()
}

fn advance(app: &TestApp, days: i64) {
    app.service.clock().advance(chrono::Duration::days(days));
}

/// The end of the check's running adverse-action waiting period.
async fn waiting_period_end(app: &TestApp, check: &str) -> chrono::DateTime<chrono::Utc> {
    let r = app
        .gql(
            "query($c: ID!) { check(id: $c) { adverseAction { dueAt } } }",
            json!({"c": check}),
        )
        .await;
    r.data()["check"]["adverseAction"]["dueAt"]
        .as_str()
        .expect("a running waiting period")
        .parse()
        .expect("time")
}

/// Moves the clock just past the end of the check's adverse-action waiting period.
pub(crate) async fn advance_past_waiting_period(app: &TestApp, check: &str) {
    let due = waiting_period_end(app, check).await;
    let clock = app.service.clock();
    clock.advance(due - clock.now() + chrono::Duration::minutes(1));
}

/// Address and city are optional on the hosted form, as in Turn's (they only speed up
/// Pennsylvania MVRs): step one does not list them, and step two starts the check without them.
#[tokio::test]
async fn hosted_form_starts_a_check_without_address_or_city() {
    let (app, _rx) = screening_app().await;
    let f = app.gql(FORM, json!({"z": "94107", "p": null})).await;
    let form = &f.data()["createConsentForm"];
    let fields: Vec<&str> = form["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|d| d["field"].as_str())
        .collect();
    assert!(
        !fields.contains(&"address") && !fields.contains(&"city"),
        "{fields:?}"
    );
    let r = app
        .gql(
            SUBMIT,
            json!({"i": {
                "formId": form["formId"], "firstName": "Nob", "lastName": "Butterbur", "noMiddleName": true,
                "email": "nob@example.com", "phone": "4155550134", "dateOfBirth": "1975-02-03",
                "ssn": next_ssn(), "driversLicenseNumber": "D7654321", "driversLicenseState": "CA",
                "consentDocument": SIGNATURE_PNG, "timestamps": timestamps(&app)
            }}),
        )
        .await;
    let d = &r.data()["submitConsentForm"];
    assert_eq!(d["outcome"], "STARTED", "{}", r.0);
    assert_eq!(d["check"]["status"], "processing");
}

/// Turn's `/fcra_check/form/{check_id}/run`: a form submitted with `doChecks: false` keeps the
/// consented check at `initiated` until `runCheck` starts it, once. A `zipcode` in step two must
/// be the form's, and a `state` in step one may not hide the summary of rights the ZIP code's
/// state asks for.
#[tokio::test]
async fn a_hosted_form_held_with_do_checks_false_runs_when_asked() {
    let (app, rx) = screening_app().await;
    let all = Receiver::start().await;
    endpoint(&app, &all.url, json!([])).await;
    let confirmations = |cand: &str| {
        all.received()
            .iter()
            .filter(|r| {
                r.json["hook_type"] == "CONSENT_CONFIRMATION" && r.json["worker_id"] == cand
            })
            .count()
    };
    let submit = |form_id: String, zip: &'static str, ssn: String| {
        let app = &app;
        async move {
            app.gql(
                SUBMIT,
                json!({"i": {
                    "formId": form_id, "firstName": "Nob", "lastName": "Butterbur", "noMiddleName": true,
                    "email": format!("nob{ssn}@example.com"), "phone": "4155550134", "dateOfBirth": "1975-02-03",
                    "ssn": ssn, "zipcode": zip, "doChecks": false,
                    "driversLicenseNumber": "D7654321", "driversLicenseState": "CA",
                    "consentDocument": SIGNATURE_PNG, "timestamps": timestamps(app)
                }}),
            )
            .await
        }
    };
    let form_id = form_for(&app, "94107", None).await;
    submit(form_id.clone(), "78701", next_ssn())
        .await
        .expect_err("BAD_USER_INPUT", Some("zipcode"));
    let r = submit(form_id, "94107", next_ssn()).await;
    let d = &r.data()["submitConsentForm"];
    assert_eq!(d["outcome"], "STARTED", "{}", r.0);
    // Turn: "The check will be in an initiated status".
    assert_eq!(d["check"]["status"], "initiated");
    let check = d["check"]["id"].as_str().expect("check id").to_string();
    let cand = d["candidate"]["id"]
        .as_str()
        .expect("candidate id")
        .to_string();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        app.check_status(&check).await,
        "initiated",
        "held until run"
    );
    // Seed 003: the consent confirmation is "particularly helpful when your flow involves
    // storing applicants to be run at a later time": it comes when they sign, not when run.
    eventually("the consent confirmation", 10, || async {
        (confirmations(&cand) == 1).then_some(())
    })
    .await;
    let consent_date = app
        .gql(
            "query($c: ID!) { check(id: $c) { consentDate } }",
            json!({"c": check}),
        )
        .await;
    assert!(
        consent_date.data()["check"]["consentDate"].is_string(),
        "dated when signed"
    );
    // The candidate signed already: no invitation, no consent link.
    for ask in [
        "mutation($c: ID!) { sendInvitation(checkId: $c) { id } }",
        "mutation($c: ID!) { issueConsentLink(checkId: $c) { url } }",
    ] {
        app.gql(ask, json!({"c": check}))
            .await
            .expect_err("BAD_USER_INPUT", Some("checkId"));
    }
    let run = "mutation($c: ID!) { runCheck(checkId: $c) { id status } }";
    let r = app.gql(run, json!({"c": check})).await;
    assert_eq!(r.data()["runCheck"]["status"], "processing");
    app.wait_check_status(&check, "approved").await;
    app.gql(run, json!({"c": check}))
        .await
        .expect_err("CONFLICT", None);
    expect_states(
        &rx,
        &cand,
        &["initiated", "consent", "processing", "approved"],
    )
    .await;
    assert_eq!(confirmations(&cand), 1, "confirmed once");
    // A check that came by invitation is not run this way.
    let invited = app
        .start_check(&app.candidate("invited@example.com").await, true)
        .await;
    app.gql(run, json!({"c": invited}))
        .await
        .expect_err("CONFLICT", None);

    // 94107 is in California, whose summary of rights a Texas form would not show.
    app.gql(
        "mutation { createConsentForm(zipcode: \"94107\", state: \"TX\") { formId } }",
        json!({}),
    )
    .await
    .expect_err("BAD_USER_INPUT", Some("state"));
    let f = app
        .gql(
            "mutation { createConsentForm(zipcode: \"94107\", state: \"ca\") { state } }",
            json!({}),
        )
        .await;
    assert_eq!(f.data()["createConsentForm"]["state"], "CA");
}

/// A check runs the searches it was started with. A change to its package applies to checks
/// started after it, whatever the older checks' statuses (a check held at `initiated`, one being
/// screened): each runs, and is rechecked with, what its candidate consented to and gave the
/// details for.
#[tokio::test]
async fn a_check_runs_the_searches_it_was_started_with() {
    let (app, _rx) = screening_app().await;
    let drivers = mvr_package(&app).await;
    let searches = |check: String| {
        let app = &app;
        async move {
            let r = app
                .gql(
                    "query($c: ID!) { check(id: $c) { searches package { searches } } }",
                    json!({"c": check}),
                )
                .await;
            (
                r.data()["check"]["searches"].clone(),
                r.data()["check"]["package"]["searches"].clone(),
            )
        }
    };
    let mvr_ran = |check: String| {
        let app = &app;
        async move {
            reports(app, &check)
                .await
                .iter()
                .map(|r| !r["report"]["checks"]["mvr"].is_null())
                .collect::<Vec<_>>()
        }
    };
    // Texas, where a recheck needs no fresh consent.
    let form_id = form_for(&app, "78701", Some(&drivers)).await;
    let (_, screened) = submit_hosted_in(&app, &form_id, "Rosie", "Cotton", None, "Austin").await;
    let form_id = form_for(&app, "78701", Some(&drivers)).await;
    let r = app
        .gql(
            SUBMIT,
            json!({"i": {
                "formId": form_id, "firstName": "Tom", "lastName": "Cotton", "noMiddleName": true,
                "email": "tom.cotton@example.com", "phone": "4155550134", "dateOfBirth": "1975-02-03",
                "ssn": next_ssn(), "address": "5 Bywater Road", "city": "Austin", "doChecks": false,
                "driversLicenseNumber": "D7654321", "driversLicenseState": "TX",
                "consentDocument": SIGNATURE_PNG, "timestamps": timestamps(&app)
            }}),
        )
        .await;
    let held = r.data()["submitConsentForm"]["check"]["id"]
        .as_str()
        .expect("held check")
        .to_string();
    let ordered = json!(["criminal", "mvr", "ssn_trace"]);
    assert_eq!(
        searches(held.clone()).await,
        (ordered.clone(), ordered.clone())
    );
    // Invited, not yet consented: the consent page asks for the licence an MVR needs.
    let invite = |email: &'static str| {
        let app = &app;
        let drivers = &drivers;
        async move {
            let cand = app.candidate(email).await;
            let r = app
                .gql(
                    "mutation($c: ID!, $p: ID) { startCheck(input: {candidateId: $c, packageId: $p}) { id } }",
                    json!({"c": cand, "p": drivers}),
                )
                .await;
            r.data()["startCheck"]["id"]
                .as_str()
                .expect("check")
                .to_string()
        }
    };
    let asks_for_licence = |check: String| {
        let app = &app;
        async move {
            let link = invitation_link(&emails(app, &check).await[0]);
            let client = no_redirects();
            acknowledge_every_section(app, &client, &link).await;
            let page = page_html(&client, &link).await;
            assert!(page.contains("name=\"ssn\""), "the details form: {page}");
            page.contains("name=\"drivers_license_number\"")
        }
    };
    let invited = invite("invited.before@example.com").await;
    // A hosted form made now hands out the fields for an MVR.
    let form_before = form_for(&app, "78701", Some(&drivers)).await;

    // The package drops its MVR while one check is held and the other is being screened (or
    // already done: the sandbox answers at once).
    let changed = app
        .gql(
            "mutation($id: ID!) { updatePackage(id: $id, input: {searches: [criminal, ssn_trace]}) { searches } }",
            json!({"id": drivers}),
        )
        .await;
    let now = json!(["criminal", "ssn_trace"]);
    assert_eq!(changed.data()["updatePackage"]["searches"], now);
    for check in [&held, &screened] {
        assert_eq!(
            searches(check.clone()).await,
            (ordered.clone(), now.clone())
        );
    }

    assert!(asks_for_licence(invited).await, "ordered with an MVR");
    let invited_after = invite("invited.after@example.com").await;
    assert!(!asks_for_licence(invited_after).await, "ordered without");
    // Submitted after the change, that form's check runs the searches it collected for.
    let (_, formed) = submit_hosted_in(&app, &form_before, "Daisy", "Gamgee", None, "Austin").await;
    assert_eq!(
        searches(formed.clone()).await,
        (ordered.clone(), now.clone())
    );
    app.wait_check_status(&formed, "approved").await;
    assert_eq!(mvr_ran(formed).await, [true]);

    app.gql(
        "mutation($c: ID!) { runCheck(checkId: $c) { status } }",
        json!({"c": held}),
    )
    .await
    .data();
    app.wait_check_status(&held, "approved").await;
    assert_eq!(mvr_ran(held.clone()).await, [true]);
    // A recheck of a check with one report; its reports then.
    let recheck = |check: String| {
        let app = &app;
        async move {
            app.gql(
                "mutation($c: ID!) { recheckCheck(checkId: $c) { status } }",
                json!({"c": check}),
            )
            .await
            .data();
            eventually("the recheck's report", 10, || async {
                let r = reports(app, &check).await;
                (r.len() == 2).then_some(r)
            })
            .await
        }
    };
    app.wait_check_status(&screened, "approved").await;
    recheck(screened.clone()).await;
    assert_eq!(mvr_ran(screened).await, [true, true]);

    // A check started after the change runs the package as it is now.
    let form_id = form_for(&app, "78701", Some(&drivers)).await;
    let (_, later) = submit_hosted_in(&app, &form_id, "Lotho", "Sackville", None, "Austin").await;
    assert_eq!(searches(later.clone()).await, (now.clone(), now.clone()));
    app.wait_check_status(&later, "approved").await;
    assert_eq!(mvr_ran(later).await, [false]);

    // A check written without searches (by a process older than the column, during an
    // upgrade) runs its package's, not none.
    sea_orm::ConnectionTrait::execute_unprepared(
        app.service.db(),
        &format!("UPDATE checks SET searches = '[]' WHERE id = '{held}'"),
    )
    .await
    .expect("update");
    assert_eq!(searches(held.clone()).await, (now.clone(), now));
    let last = recheck(held).await.pop().expect("report");
    assert!(last["report"]["checks"]["mvr"].is_null(), "{last}");
    assert!(!last["report"]["checks"]["criminal"].is_null(), "{last}");
}

/// The results go to the check's callback URL every time it reaches `approved` or `pending`:
/// when its screening completes, when a team member approves a Consider (the callback URL may
/// be all the partner listens to), and when a recheck completes.
#[tokio::test]
async fn results_are_sent_whenever_a_check_reaches_approved_or_pending() {
    let (app, rx) = screening_app().await;
    let callback = Receiver::start().await;
    // In Texas, where a recheck needs no fresh consent.
    let form_id = form_for(&app, "78701", None).await;
    let (cand, check) = submit_hosted_in(
        &app,
        &form_id,
        "Walter",
        "White",
        Some(&callback.url),
        "Austin",
    )
    .await;
    app.wait_check_status(&check, "pending").await;
    callback
        .wait_for("the results webhook", 10, |g| g.len() == 1)
        .await;
    app.gql(
        "mutation($c: ID!) { transitionCheck(input: {checkId: $c, status: approved, reason: \"offense unrelated to the job\"}) { status } }",
        json!({"c": check}),
    )
    .await
    .data();
    expect_states(
        &rx,
        &cand,
        &["consent", "processing", "pending", "approved"],
    )
    .await;
    let got = callback
        .wait_for("the approval's results", 10, |g| g.len() == 2)
        .await;
    let mut statuses: Vec<&str> = got
        .iter()
        .map(|r| r.json["partner_worker_status"].as_str().unwrap_or("?"))
        .collect();
    statuses.sort_unstable();
    assert_eq!(statuses, ["approved", "pending"]);
    app.gql(
        "mutation($c: ID!) { recheckCheck(checkId: $c) { status } }",
        json!({"c": check}),
    )
    .await
    .data();
    callback
        .wait_for("the recheck's results", 10, |g| g.len() == 3)
        .await;
}

#[tokio::test]
async fn hosted_form_runs_a_clear_candidate_to_approved_with_results_and_webhooks() {
    let (app, rx) = screening_app().await;
    let callback = Receiver::start().await;
    let f = app.gql(FORM, json!({"z": "94107"})).await;
    let form = &f.data()["createConsentForm"];
    assert_eq!(form["state"], "CA", "the zip code's state");
    let keys: Vec<&str> = form["disclosures"]
        .as_array()
        .expect("disclosures")
        .iter()
        .map(|d| d["key"].as_str().expect("key"))
        .collect();
    assert_eq!(
        keys,
        [
            "welcome",
            "summary_of_rights",
            "disclosure",
            "summary_of_state_rights",
            "authorization_of_background_investigation"
        ]
    );
    let fields: Vec<&str> = form["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|d| d["field"].as_str().expect("f"))
        .collect();
    assert!(
        fields.contains(&"ssn") && !fields.contains(&"drivers_license_number"),
        "no MVR in the default package: {fields:?}"
    );

    let (cand, check) = hosted(&app, "Rosie", "Cotton", None, Some(&callback.url)).await;
    app.wait_check_status(&check, "approved").await;
    expect_states(&rx, &cand, &["consent", "processing", "approved"]).await;

    let got = callback
        .wait_for("the results webhook", 10, |g| !g.is_empty())
        .await;
    let b = &got[0].json;
    assert_eq!(b["partner_worker_status"], "approved");
    assert_eq!(b["callback_uuid"], check.as_str());
    assert_eq!(b["checks"]["ssn_status"], "matched", "{b}");
    assert!(
        b["checks"]["criminal"]
            .as_array()
            .expect("criminal searched")
            .iter()
            .all(|c| c["value"].as_array().is_some_and(Vec::is_empty))
    );
    assert!(
        b["checks"]["mvr"].is_null(),
        "the package runs no MVR search"
    );
    assert!(
        b["consent_date"].as_str().is_some_and(|d| d.len() == 10),
        "YYYY-MM-DD"
    );

    let reps = reports(&app, &check).await;
    assert_eq!(reps.len(), 1);
    assert_eq!(reps[0]["decision"], "approved");
    assert_eq!(reps[0]["reasons"], json!(["no reportable records"]));
    // Consent evidence as the partner's form gathered it.
    let consent = app.dump("consents").await;
    assert_eq!(consent.len(), 1);
    assert_eq!(consent[0]["method"], "hosted_form");
    assert_eq!(consent[0]["signature"], SIGNATURE_PNG);
    assert_eq!(consent[0]["ip_address"], "203.0.113.7");
    assert_eq!(consent[0]["user_agent"], "test-suite/1");
    let stamps: Value =
        serde_json::from_str(consent[0]["section_timestamps"].as_str().expect("json"))
            .expect("json");
    assert_eq!(
        stamps.as_object().expect("obj").len(),
        6,
        "five sections and the signature"
    );
    let evidence = app
        .gql(
            "query($id: ID!) { check(id: $id) { consents { method signature ipAddress copyOfReportRequested sections { section } } } }",
            json!({"id": check}),
        )
        .await;
    let e = &evidence.data()["check"]["consents"][0];
    assert_eq!(e["method"], "hosted_form");
    assert_eq!(e["signature"], SIGNATURE_PNG);
    assert_eq!(e["ipAddress"], "203.0.113.7");
    assert!(
        e["copyOfReportRequested"].is_null(),
        "your form does not pass that answer: {e}"
    );
    assert_eq!(e["sections"].as_array().map(Vec::len), Some(6), "{e}");
    assert_eq!(e["sections"][0]["section"], "welcome", "{e}");
    assert_eq!(e["sections"][5]["section"], "signature", "{e}");
}

#[tokio::test]
async fn sandbox_scenarios_are_adjudicated_by_the_default_rules() {
    let (app, rx) = screening_app().await;
    let drivers = mvr_package(&app).await;
    let cases: [(&str, &str, Option<&str>, &str); 8] = [
        ("Darth", "Vader", None, "pending"),
        ("Walter", "White", None, "pending"),
        ("Samwise", "Gamgee", None, "approved"),
        ("Sam", "Registry", None, "review__so"),
        ("Willa", "Wanted", None, "review"),
        ("Ivy", "Mismatch", None, "review__identity"),
        ("Sid", "Speedwell", Some(drivers.as_str()), "review__mvr"),
        ("Cass", "Crash", Some(drivers.as_str()), "pending"),
    ];
    let mut started = Vec::new();
    for (first, last, package, _) in cases {
        started.push(hosted(&app, first, last, package, None).await);
    }
    for ((cand, check), (first, last, _, want)) in started.iter().zip(cases) {
        app.wait_check_status(check, want).await;
        expect_states(&rx, cand, &["consent", "processing", want]).await;
        let reps = reports(&app, check).await;
        assert_eq!(reps[0]["decision"], want, "{first} {last}");
        let reasons = reps[0]["reasons"].as_array().expect("reasons");
        assert!(
            !reasons.is_empty(),
            "{first} {last}: a decision has its reasons"
        );
        if want != "approved" {
            assert_ne!(reasons[0], "no reportable records", "{first} {last}");
        }
    }
    // A decision on a review queue needs its reason, which the history keeps.
    let (_, registry) = &started[3];
    let decide = |reason: Option<&str>| {
        app.gql(
            "mutation($c: ID!, $r: String) { transitionCheck(input: {checkId: $c, status: approved, reason: $r}) { status history { toStatus actorEmail reason } } }",
            json!({"c": registry, "r": reason}),
        )
    };
    for blank in [None, Some("  ")] {
        decide(blank)
            .await
            .expect_err("BAD_USER_INPUT", Some("reason"));
    }
    assert_eq!(app.check_status(registry).await, "review__so");
    let r = decide(Some("registry entry is another person (different DOB)")).await;
    let history = &r.data()["transitionCheck"]["history"];
    let last = history
        .as_array()
        .and_then(|h| h.iter().find(|c| c["toStatus"] == "approved"))
        .expect("the approval in the history");
    assert_eq!(
        (last["actorEmail"].as_str(), last["reason"].as_str()),
        (
            Some("admin@demo.clearhire.dev"),
            Some("registry entry is another person (different DOB)")
        ),
        "{history}"
    );

    // The identity mismatch ran nothing else; "Resume Checks" continues with what was given.
    let (mismatch_cand, mismatch) = &started[5];
    let r = reports(&app, mismatch).await;
    assert!(
        r[0]["report"]["checks"]["criminal"].is_null(),
        "{}",
        r[0]["report"]
    );
    let resumed = app
        .gql(
            "mutation($c: ID!) { resumeChecks(checkId: $c, reason: \"candidate sent a copy of their card\") { status } }",
            json!({"c": mismatch}),
        )
        .await;
    assert_eq!(resumed.data()["resumeChecks"]["status"], "processing");
    app.wait_check_status(mismatch, "approved").await;
    expect_states(
        &rx,
        mismatch_cand,
        &[
            "consent",
            "processing",
            "review__identity",
            "processing",
            "approved",
        ],
    )
    .await;
    assert_eq!(
        reports(&app, mismatch).await.len(),
        2,
        "both reports are kept"
    );
    // Only a check held for identity verification resumes.
    app.gql(
        "mutation($c: ID!) { resumeChecks(checkId: $c) { status } }",
        json!({"c": mismatch}),
    )
    .await
    .expect_err("BAD_USER_INPUT", Some("checkId"));
}

/// A recheck held for identity verification and resumed is still a recheck: its report is
/// kept as one, as the first screening's resumed report is kept as the first.
#[tokio::test]
async fn a_resumed_recheck_keeps_its_report_as_a_recheck() {
    let (app, rx) = screening_app().await;
    let (cand, check) = hosted_in_texas(&app, "Ivy", "Mismatch").await;
    let resume =
        "mutation($c: ID!) { resumeChecks(checkId: $c, reason: \"card seen\") { status } }";
    for round in 0..2 {
        if round == 1 {
            on_check(&app, "recheckCheck", &check).await;
        }
        app.wait_check_status(&check, "review__identity").await;
        app.gql(resume, json!({"c": check})).await.data();
        app.wait_check_status(&check, "approved").await;
    }
    let kinds: Vec<Value> = reports(&app, &check)
        .await
        .iter()
        .map(|r| r["kind"].clone())
        .collect();
    assert_eq!(kinds, ["initial", "initial", "recheck", "recheck"]);
    expect_states(
        &rx,
        &cand,
        &[
            "consent",
            "processing",
            "review__identity",
            "processing",
            "approved",
            "processing",
            "review__identity",
            "processing",
            "approved",
        ],
    )
    .await;
}

#[tokio::test]
async fn partner_rules_change_what_is_decided() {
    let (app, _rx) = screening_app().await;
    // Samwise's felony is about ten years old: outside 7 years, inside 15.
    let (_, before) = hosted(&app, "Samwise", "Gamgee", None, None).await;
    app.wait_check_status(&before, "approved").await;
    let r = app
        .gql(
            "mutation { updatePartnerSettings(input: {adjudicationRules: {felony_lookback_years: 15, sex_offender: \"consider\"}}) { adjudicationRules } }",
            json!({}),
        )
        .await;
    assert_eq!(
        r.data()["updatePartnerSettings"]["adjudicationRules"]["felony_lookback_years"],
        15
    );
    let (_, after) = hosted(&app, "Samwise", "Gamgee", None, None).await;
    app.wait_check_status(&after, "pending").await;
    let (_, so) = hosted(&app, "Sam", "Registry", None, None).await;
    app.wait_check_status(&so, "pending").await;
    // Nonsense rules are refused, naming the field.
    app.gql(
        "mutation { updatePartnerSettings(input: {adjudicationRules: {felony_lookback_years: \"often\"}}) { name } }",
        json!({}),
    )
    .await
    .expect_err("BAD_USER_INPUT", Some("adjudicationRules"));
    // A key naming no rule (camelCase, as a GraphQL client may write it) is refused too, and
    // the rules stay as they were.
    let r = app
        .gql(
            "mutation { updatePartnerSettings(input: {adjudicationRules: {felonyLookbackYears: 3}}) { name } }",
            json!({}),
        )
        .await;
    r.expect_err("BAD_USER_INPUT", Some("adjudicationRules"));
    assert!(
        r.message().contains("felonyLookbackYears"),
        "{}",
        r.message()
    );
    // A lookback that counts no felony, or one of centuries, is refused naming the rule.
    for rules in [
        "{felony_lookback_years: 0}",
        "{mvr_lookback_years: 4000000000}",
    ] {
        let r = app
            .gql(
                &format!(
                    "mutation {{ updatePartnerSettings(input: {{adjudicationRules: {rules}}}) {{ name }} }}"
                ),
                json!({}),
            )
            .await;
        r.expect_err("BAD_USER_INPUT", Some("adjudicationRules"));
        let rule = rules[1..].split(':').next().unwrap_or_default();
        assert!(r.message().contains(rule), "{rules}: {}", r.message());
    }
    let me = app
        .gql("{ me { partner { adjudicationRules } } }", json!({}))
        .await;
    assert_eq!(
        me.data()["me"]["partner"]["adjudicationRules"]["felony_lookback_years"],
        15
    );
}

/// A Consider (`pending`) check for a candidate with criminal hits, with adverse action started.
async fn in_waiting_period(app: &TestApp, first: &str, last: &str) -> (String, String) {
    let (cand, check) = hosted(app, first, last, None, None).await;
    app.wait_check_status(&check, "pending").await;
    app.gql(
        "mutation($c: ID!) { startAdverseAction(checkId: $c) { status } }",
        json!({"c": check}),
    )
    .await
    .data();
    (cand, check)
}

/// Past the waiting period and the final notice's, the candidate's status webhooks still end
/// with `last` after the first notice: the adverse action's timers were stopped.
async fn nothing_follows(app: &TestApp, rx: &Receiver, cand: &str, last: &str) {
    advance(app, 15);
    tokio::time::sleep(Duration::from_millis(500)).await;
    expect_states(
        rx,
        cand,
        &[
            "consent",
            "processing",
            "pending",
            "pending__first_notice",
            last,
        ],
    )
    .await;
}

#[tokio::test]
async fn adverse_action_runs_in_the_fcra_order_on_business_days() {
    let (app, rx) = screening_app().await;
    let (cand, check) = hosted(&app, "Walter", "White", None, None).await;
    app.wait_check_status(&check, "pending").await;
    let r = app
        .gql(
            "mutation($c: ID!) { startAdverseAction(checkId: $c, reason: \"felony within 7 years\") { status adverseAction { state waitingBusinessDays dueAt } } }",
            json!({"c": check}),
        )
        .await;
    let s = &r.data()["startAdverseAction"];
    assert_eq!(s["status"], "pending__first_notice");
    assert_eq!(s["adverseAction"]["state"], "waiting");
    assert_eq!(s["adverseAction"]["waitingBusinessDays"], 7);
    let mail = emails(&app, &check).await;
    let pre = mail
        .iter()
        .find(|m| m["kind"] == "pre_adverse_notice")
        .expect("pre-adverse notice");
    let body = pre["body"].as_str().expect("body");
    assert!(
        body.contains("A Summary of Your Rights Under the Fair Credit Reporting Act")
            && body.contains("You have the right to ask for a credit score.")
            && body.contains("Consumers have the right to obtain a security freeze."),
        "the model summary, whole: {body}"
    );
    assert!(
        body.contains("/report/"),
        "a link to the report copy: {body}"
    );
    assert!(
        body.to_lowercase().contains("felony"),
        "the findings: {body}"
    );
    // The period's end as an instant, not a date that may be a day early where the candidate is.
    let due: chrono::DateTime<chrono::Utc> = s["adverseAction"]["dueAt"]
        .as_str()
        .expect("due")
        .parse()
        .expect("time");
    let until = due.format("%A, %B %-d, %Y at %H:%M UTC").to_string();
    assert!(
        body.contains(&format!("No final decision will be made before {until}.")),
        "{body}"
    );

    // A person cannot skip the waiting period.
    app.transition(&check, "pending__second_notice")
        .await
        .expect_err("BAD_USER_INPUT", Some("status"));
    // Six calendar days hold at most five business days: still waiting.
    advance(&app, 6);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.check_status(&check).await, "pending__first_notice");
    advance_past_waiting_period(&app, &check).await;
    app.wait_check_status(&check, "pending__second_notice")
        .await;
    // The final notice leaves the partner a business day to cancel, then rejects.
    advance(&app, 5);
    app.wait_check_status(&check, "rejected").await;
    expect_states(
        &rx,
        &cand,
        &[
            "consent",
            "processing",
            "pending",
            "pending__first_notice",
            "pending__second_notice",
            "rejected",
        ],
    )
    .await;
    let kinds = email_kinds(&app, &check).await;
    assert_eq!(
        kinds,
        json!(["report_copy", "pre_adverse_notice", "final_adverse_notice"])
            .as_array()
            .expect("a")
            .clone()
    );
    let fin = emails(&app, &check).await.pop().expect("final");
    let body = fin["body"].as_str().expect("b");
    assert!(
        body.contains("dispute"),
        "dispute rights in the final notice"
    );
    // FCRA §615(a): the agency's name, address and telephone number.
    assert!(
        body.contains(&format!(
            "  Bywater Screening LLC (consumer reporting agency)\n  1 Hill Lane, Hobbiton, CA \
             94107\n  Telephone: +1 800 555 0100\n  {}",
            app.url("")
        )),
        "{body}"
    );
    assert!(
        body.contains("Bywater Screening LLC did not make this decision"),
        "{body}"
    );
    let r = app
        .gql(
            "query($c: ID!) { check(id: $c) { adverseAction { state finalNoticeAt endedAt } } }",
            json!({"c": check}),
        )
        .await;
    assert_eq!(r.data()["check"]["adverseAction"]["state"], "completed");
}

/// Walter White's check (Consider), approved by hand, enrolled in monitoring, put in review by
/// an Alameda County charge 15 days later, and marked Consider again: returns the check.
async fn consider_after_a_monitoring_charge(app: &TestApp) -> String {
    let (_, check) = hosted_in_texas(app, "Walter", "White").await;
    app.wait_check_status(&check, "pending").await;
    app.transition(&check, "approved").await.data();
    enroll_monitoring(app, &check).await;
    arrest_alert(app, &check, true).await;
    advance(app, 15);
    app.wait_check_status(&check, "review__cm").await;
    app.transition(&check, "pending").await.data();
    check
}

/// The pre-adverse notice names what the report found: the screening's findings and a
/// monitoring charge added since, not the charge alone.
#[tokio::test]
async fn a_pre_adverse_notice_lists_the_screening_findings_and_a_later_charge() {
    let (app, _rx) = screening_app().await;
    let check = consider_after_a_monitoring_charge(&app).await;
    on_check(&app, "startAdverseAction", &check).await;
    let pre = emails_of_kind(&app, &check, "pre_adverse_notice").await;
    let body = pre[0]["body"].as_str().expect("body");
    let found = &body[body.find("The report found:").expect("findings")..];
    assert!(found.to_lowercase().contains("felony"), "{body}");
    assert!(
        found.contains("continuous monitoring: a charge was found in Alameda County, CA"),
        "{body}"
    );
}

/// A monitoring charge found during the pre-adverse waiting period restarts it: the candidate has
/// the whole period to dispute the new record before the final notice.
#[tokio::test]
async fn a_charge_found_during_the_waiting_period_restarts_it() {
    let (app, _rx) = screening_app().await;
    app.gql(
        "mutation { updatePartnerSettings(input: {adverseActionDays: 20}) { adverseActionDays } }",
        json!({}),
    )
    .await
    .data();
    let check = consider_after_a_monitoring_charge(&app).await;
    // A second arrest, then adverse action: its county recheck comes due inside the period.
    arrest_alert(&app, &check, true).await;
    on_check(&app, "startAdverseAction", &check).await;
    let due = || async {
        let r = app
            .gql(
                "query($c: ID!) { check(id: $c) { status adverseAction { state dueAt } } }",
                json!({"c": check}),
            )
            .await;
        let c = r.data()["check"].clone();
        assert_eq!(c["status"], "pending__first_notice", "{c}");
        assert_eq!(c["adverseAction"]["state"], "waiting", "{c}");
        c["adverseAction"]["dueAt"]
            .as_str()
            .expect("due")
            .parse::<chrono::DateTime<chrono::Utc>>()
            .expect("time")
    };
    let first_due = due().await;
    advance(&app, 15);
    eventually("the second charge's report", 10, || async {
        let n = reports(&app, &check)
            .await
            .iter()
            .filter(|r| r["kind"] == "monitoring")
            .count();
        (n == 2).then_some(())
    })
    .await;
    let now = app.service.clock().now();
    let restarted = due().await;
    assert!(restarted > first_due, "{restarted} after {first_due}");
    assert!(
        restarted >= now + chrono::Duration::days(20),
        "20 business days from the charge: {restarted}, now {now}"
    );
    // The candidate is told, with the updated report.
    let copy = emails_of_kind(&app, &check, "report_copy")
        .await
        .pop()
        .expect("mail");
    assert!(
        copy["body"].as_str().is_some_and(|b| b
            .contains("waiting period before any final decision on your application starts again")),
        "{copy}"
    );
}

/// A timed step whose read of its check fails (the database answering an error mid-run) is run
/// again later, not taken for a check that is gone: here the final notice comes due while the
/// checks table has lost the column it reads, and goes out once the column is back.
#[tokio::test]
async fn a_timed_step_that_cannot_read_its_check_runs_again() {
    let (app, _rx) = screening_app().await;
    let (_, check) = hosted(&app, "Walter", "White", None, None).await;
    app.wait_check_status(&check, "pending").await;
    assert_eq!(
        on_check(&app, "startAdverseAction", &check).await,
        "pending__first_notice"
    );
    let alter = |from: &'static str, to: &'static str| {
        let app = &app;
        async move {
            sea_orm::ConnectionTrait::execute_unprepared(
                app.service.db(),
                &format!("ALTER TABLE checks RENAME COLUMN {from} TO {to}"),
            )
            .await
        }
    };
    let due = waiting_period_end(&app, &check).await;
    alter("status", "status_away").await.expect("rename");
    let clock = app.service.clock();
    clock.advance(due - clock.now() + chrono::Duration::minutes(1));
    let failed_run = || async {
        app.dump("tasks").await.into_iter().find(|t| {
            t["kind"] == "adverse.final_notice"
                && t["last_error"].is_string()
                && t["status"] != "done"
        })
    };
    let mut seen = None;
    for _ in 0..100 {
        seen = failed_run().await;
        if seen.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    alter("status_away", "status").await.expect("rename back");
    let task = seen.expect("the final notice's run failed and waits to run again");
    assert!(task["attempts"].as_i64() >= Some(1), "{task}");
    // Its next run is due within seconds; the clock moves past it.
    app.service.clock().advance(chrono::Duration::hours(2));
    app.wait_check_status(&check, "pending__second_notice")
        .await;
    assert_eq!(
        emails_of_kind(&app, &check, "final_adverse_notice")
            .await
            .len(),
        1
    );
}

/// A check can owe two reinvestigations: a dispute whose adverse action was cancelled, and
/// one of a later adverse action after a recheck. The agency names the one it ends; each
/// outcome lands on its own dispute.
#[tokio::test]
async fn each_of_two_open_disputes_of_a_check_is_resolved_on_its_own() {
    let (app, _rx) = screening_app().await;
    let (_, check) = hosted_in_texas(&app, "Walter", "White").await;
    let dispute = |reason: &'static str| {
        let app = &app;
        let check = check.clone();
        async move {
            app.gql(
                "mutation($c: ID!, $r: String!) { disputeAdverseAction(checkId: $c, reason: $r) { state } }",
                json!({"c": check, "r": reason}),
            )
            .await
            .data();
        }
    };
    app.wait_check_status(&check, "pending").await;
    on_check(&app, "startAdverseAction", &check).await;
    dispute("the first case is not mine").await;
    assert_eq!(
        on_check(&app, "cancelAdverseAction", &check).await,
        "approved"
    );
    on_check(&app, "recheckCheck", &check).await;
    app.wait_check_status(&check, "pending").await;
    on_check(&app, "startAdverseAction", &check).await;
    dispute("the second case is not mine either").await;
    let open: Vec<_> = app
        .service
        .open_disputes()
        .await
        .expect("disputes")
        .into_iter()
        .filter(|d| d.check_id == check)
        .collect();
    assert_eq!(open.len(), 2, "{open:?}");
    let (first, second) = (open[0].id.clone(), open[1].id.clone());

    let unnamed = app
        .service
        .agency_resolve_dispute(&check, None, DisputeOutcome::Corrected, "namesake")
        .await;
    match unnamed {
        Err(service::ServiceError::Invalid { field, message }) => {
            assert_eq!(field, "disputeId");
            assert!(
                message.contains(&first) && message.contains(&second),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    // The first (its adverse action cancelled): the check and the running dispute stay.
    let r = agency_resolves_dispute(
        &app,
        &check,
        Some(&first),
        DisputeOutcome::Corrected,
        "namesake",
    )
    .await;
    assert_eq!(r["status"], "pending__first_notice");
    assert_eq!(r["adverseAction"]["state"], "disputed");
    assert_eq!(r["adverseAction"]["resolution"], Value::Null);
    let last = emails(&app, &check).await.pop().expect("mail");
    assert!(
        last["body"]
            .as_str()
            .is_some_and(|b| b.contains("had already ended")),
        "{last}"
    );
    // The second, now the only one, needs no name.
    let r = agency_resolves(
        &app,
        &check,
        DisputeOutcome::Upheld,
        "court record verified",
    )
    .await;
    assert_eq!(r["status"], "pending__first_notice");
    assert_eq!(r["adverseAction"]["state"], "waiting");
    assert_eq!(r["adverseAction"]["resolution"], "court record verified");
    assert!(
        !app.service
            .open_disputes()
            .await
            .expect("disputes")
            .iter()
            .any(|d| d.check_id == check)
    );
}

/// A dispute whose adverse action was cancelled, resolved twice at once (the agency's command run
/// twice): one resolution lands, the other is refused, and the candidate hears the outcome once.
/// PostgreSQL's case (it fails there without the conditional update); SQLite serialises the two.
#[tokio::test]
async fn a_dispute_is_resolved_once_when_resolved_twice_at_once() {
    let (app, _rx) = screening_app().await;
    let (_, check) = hosted_in_texas(&app, "Walter", "White").await;
    app.wait_check_status(&check, "pending").await;
    on_check(&app, "startAdverseAction", &check).await;
    app.gql(
        "mutation($c: ID!) { disputeAdverseAction(checkId: $c, reason: \"not my case\") { state } }",
        json!({"c": check}),
    )
    .await
    .data();
    assert_eq!(
        on_check(&app, "cancelAdverseAction", &check).await,
        "approved"
    );
    let mails_before = emails(&app, &check).await.len();
    let resolve = |resolution: &'static str| {
        app.service
            .agency_resolve_dispute(&check, None, DisputeOutcome::Upheld, resolution)
    };
    let (a, b) = tokio::join!(resolve("court record verified"), resolve("verified again"));
    assert!(
        a.is_ok() != b.is_ok(),
        "exactly one lands: {:?} {:?}",
        a.map(|c| c.status),
        b.map(|c| c.status)
    );
    assert_eq!(emails(&app, &check).await.len(), mails_before + 1);
}

/// PostgreSQL: a dispute and a concurrent change of the check (here a change committed while the
/// dispute waits for the row, as the final notice coming due would be) cannot both go through:
/// the dispute, second, is refused, and the adverse action stays as it was.
#[tokio::test]
async fn a_dispute_loses_to_a_change_of_the_check_committed_first() {
    use sea_orm::{ConnectionTrait, Statement, TransactionTrait};
    let (app, _rx) = screening_app().await;
    let db = app.service.db();
    if db.get_database_backend() != sea_orm::DbBackend::Postgres {
        return;
    }
    let (_, check) = in_waiting_period(&app, "Darth", "Vader").await;
    let txn = db.begin().await.expect("begin");
    txn.execute_raw(Statement::from_sql_and_values(
        sea_orm::DbBackend::Postgres,
        "UPDATE checks SET updated_at = updated_at + interval '1 millisecond' WHERE id = $1",
        [check.clone().into()],
    ))
    .await
    .expect("change the check, uncommitted");
    let (dispute, _) = tokio::join!(
        app.gql(
            "mutation($c: ID!) { disputeAdverseAction(checkId: $c, reason: \"not mine\") { state } }",
            json!({"c": check}),
        ),
        async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            txn.commit().await.expect("commit");
        }
    );
    dispute.expect_err("CONFLICT", None);
    let r = app
        .gql(
            "query($c: ID!) { check(id: $c) { status adverseAction { state dueAt } } }",
            json!({"c": check}),
        )
        .await;
    assert_eq!(r.data()["check"]["status"], "pending__first_notice");
    assert_eq!(r.data()["check"]["adverseAction"]["state"], "waiting");
    assert!(r.data()["check"]["adverseAction"]["dueAt"].is_string());
    // Made again on the check as it now is, the dispute goes through.
    let again = app
        .gql(
            "mutation($c: ID!) { disputeAdverseAction(checkId: $c, reason: \"not mine\") { state } }",
            json!({"c": check}),
        )
        .await;
    assert_eq!(again.data()["disputeAdverseAction"]["state"], "disputed");
}

#[tokio::test]
async fn a_dispute_pauses_the_waiting_period_and_cancelling_approves() {
    let (app, rx) = screening_app().await;
    let disputes = Receiver::start().await;
    let (_, secret) = endpoint(
        &app,
        &disputes.url,
        json!(["adverse_action.disputed", "adverse_action.resumed"]),
    )
    .await;
    let (cand, check) = in_waiting_period(&app, "Darth", "Vader").await;
    // The candidate disputes from the link in their notice.
    let mail = emails(&app, &check).await;
    let notice = mail
        .iter()
        .find(|m| m["kind"] == "pre_adverse_notice")
        .expect("pre-adverse notice");
    let body = notice["body"].as_str().expect("body");
    let link = body
        .split_whitespace()
        .find(|w| w.contains("/report/"))
        .expect("report link")
        .to_string();
    let page = app.client.get(&link).send().await.expect("report page");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    assert!(
        html.contains("Dispute this report") && html.contains("Felony"),
        "{html}"
    );
    // Too long: refused, with what was typed kept in the form and the message tied to it.
    let long = format!("The 2024 case is not mine. {}", "x".repeat(5000));
    let refused = post_form(
        &app.client,
        &format!("{link}/dispute"),
        &[("reason", long.as_str())],
        None,
    )
    .await;
    assert_eq!(refused.status(), 422);
    let html = refused.text().await.expect("html");
    assert!(
        html.contains("Your dispute was not sent")
            && html.contains("aria-describedby=\"notice\"")
            && html.contains("The 2024 case is not mine. xxx"),
        "{html}"
    );
    let sent = post_form(
        &app.client,
        &format!("{link}/dispute"),
        &[(
            "reason",
            "The 2024 case is not mine: different middle name.",
        )],
        None,
    )
    .await;
    assert_eq!(sent.status(), 200);
    let html = sent.text().await.expect("html");
    assert!(html.contains("Your dispute was received"), "{html}");
    // While it is reinvestigated the page offers no second dispute.
    assert!(
        !html.contains("Dispute this report") && html.contains("We are reinvestigating"),
        "{html}"
    );
    // The form sent again (a second click, the back button): told it is already in hand.
    let again = post_form(
        &app.client,
        &format!("{link}/dispute"),
        &[("reason", "The 2024 case is not mine.")],
        None,
    )
    .await;
    let html = again.text().await.expect("html");
    assert!(
        html.contains("We already have your dispute") && !html.contains("was not sent"),
        "{html}"
    );
    let r = app
        .gql("query($c: ID!) { check(id: $c) { status adverseAction { state dueAt remainingBusinessDays disputeReason } } }", json!({"c": check}))
        .await;
    let aa = &r.data()["check"]["adverseAction"];
    assert_eq!(aa["state"], "disputed");
    assert!(aa["dueAt"].is_null());
    assert!(
        aa["remainingBusinessDays"]
            .as_i64()
            .is_some_and(|d| (1..=7).contains(&d))
    );
    // The clock is stopped: a month later nothing has moved.
    advance(&app, 30);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.check_status(&check).await, "pending__first_notice");
    // The report stands: the waiting period resumes with what it had left.
    // The partner does not decide the dispute of the agency's report: the agency does, after
    // reinvestigating it (`api dispute resolve`).
    app.gql(
        "mutation($c: ID!) { resolveDispute(checkId: $c, outcome: UPHELD, resolution: \"\") { status } }",
        json!({"c": check}),
    )
    .await
    .expect_err("GRAPHQL_VALIDATION_FAILED", None);
    let by_partner = app
        .service
        .resolve_dispute(
            &service::Actor::system(&app.partner_id),
            &check,
            None,
            DisputeOutcome::Upheld,
            "no",
        )
        .await;
    assert!(
        matches!(by_partner, Err(service::ServiceError::Forbidden(_))),
        "{by_partner:?}"
    );
    let before = app.service.clock().now();
    let r = agency_resolves(
        &app,
        &check,
        DisputeOutcome::Upheld,
        "court record verified",
    )
    .await;
    let after = app.service.clock().now();
    assert_eq!(r["adverseAction"]["state"], "waiting");
    // The clock runs again from the resolution with the business days it had left.
    let left = u32::try_from(aa["remainingBusinessDays"].as_i64().expect("left")).expect("u32");
    let resumed_due: chrono::DateTime<chrono::Utc> = r["adverseAction"]["dueAt"]
        .as_str()
        .expect("dueAt")
        .parse()
        .expect("time");
    let add = service::screening::calendar::add_business_days;
    assert!(
        add(before, left) <= resumed_due && resumed_due <= add(after, left),
        "{before} … {after} + {left} business days: {resumed_due}"
    );
    // The candidate was told of the dispute's receipt and of its end, with the new date.
    let mail = emails(&app, &check).await;
    let body_of = |kind: &str| {
        mail.iter()
            .find(|m| m["kind"] == kind)
            .and_then(|m| m["body"].as_str())
            .unwrap_or_else(|| panic!("a {kind} email in {mail:?}"))
            .to_string()
    };
    assert!(body_of("dispute_received").contains("different middle name"));
    let due =
        chrono::DateTime::parse_from_rfc3339(r["adverseAction"]["dueAt"].as_str().expect("dueAt"))
            .expect("time");
    let resolved = body_of("dispute_resolved");
    assert!(resolved.contains("the report stands"), "{resolved}");
    // The end of the waiting period as an instant.
    assert!(
        resolved.contains(
            &due.with_timezone(&chrono::Utc)
                .format("before %A, %B %-d, %Y at %H:%M UTC")
                .to_string()
        ),
        "{resolved}"
    );
    // A partner listening only to webhooks hears of the dispute and of its end.
    disputes
        .wait_for("the dispute and its end", 10, |g| g.len() >= 2)
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let hooks = disputes.received();
    assert_eq!(hooks.len(), 2, "one of each: {hooks:?}");
    assert!(hooks.iter().all(|h| crate::webhooks::verified(h, &secret)));
    let hook = |t: &str| {
        hooks
            .iter()
            .find(|h| h.json["hook_type"] == t)
            .unwrap_or_else(|| panic!("{t} in {hooks:?}"))
            .json
            .clone()
    };
    let disputed = hook("ADVERSE_ACTION_DISPUTED");
    assert_eq!(disputed["worker_id"], cand.as_str());
    assert_eq!(disputed["check_id"], check.as_str());
    assert_eq!(
        disputed["reason"],
        "The 2024 case is not mine: different middle name."
    );
    assert_eq!(
        disputed["remaining_business_days"],
        aa["remainingBusinessDays"]
    );
    assert!(disputed["timestamp"].is_i64());
    let resumed = hook("ADVERSE_ACTION_RESUMED");
    assert_eq!(resumed["check_id"], check.as_str());
    assert_eq!(resumed["resolution"], "court record verified");
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(resumed["due_at"].as_str().expect("due_at"))
            .expect("time"),
        chrono::DateTime::parse_from_rfc3339(r["adverseAction"]["dueAt"].as_str().expect("dueAt"))
            .expect("time")
    );
    advance_past_waiting_period(&app, &check).await;
    app.wait_check_status(&check, "pending__second_notice")
        .await;
    advance(&app, 5);
    app.wait_check_status(&check, "rejected").await;
    expect_states(
        &rx,
        &cand,
        &[
            "consent",
            "processing",
            "pending",
            "pending__first_notice",
            "pending__second_notice",
            "rejected",
        ],
    )
    .await;

    // Cancelling adverse action approves the candidate and stops the clock.
    let (cand2, check2) = in_waiting_period(&app, "Walter", "White").await;
    // What a dashboard offers: not the final notice, which is the clock's.
    let next = app
        .gql(
            "query($c: ID!) { check(id: $c) { nextStatuses } }",
            json!({"c": check2}),
        )
        .await;
    assert_eq!(
        next.data()["check"]["nextStatuses"],
        json!(["approved", "withdrawn"])
    );
    let r = app
        .gql("mutation($c: ID!) { cancelAdverseAction(checkId: $c, reason: \"individualized assessment\") { status adverseAction { state } } }", json!({"c": check2}))
        .await;
    assert_eq!(r.data()["cancelAdverseAction"]["status"], "approved");
    assert_eq!(
        r.data()["cancelAdverseAction"]["adverseAction"]["state"],
        "cancelled"
    );
    // The candidate, who had the pre-adverse notice, is told it no longer applies.
    assert_eq!(
        email_kinds(&app, &check2).await,
        [
            json!("report_copy"),
            json!("pre_adverse_notice"),
            json!("adverse_action_cancelled")
        ]
    );
    nothing_follows(&app, &rx, &cand2, "approved").await;

    // A dispute recorded by a team member, then found right: the report is corrected, the check
    // approved, and the candidate told of both steps in writing.
    let (cand4, check4) = in_waiting_period(&app, "Walter", "White").await;
    let r = app
        .gql(
            "mutation($c: ID!) { disputeAdverseAction(checkId: $c, reason: \"called in: the case is a namesake's\") { state } }",
            json!({"c": check4}),
        )
        .await;
    assert_eq!(r.data()["disputeAdverseAction"]["state"], "disputed");
    let r = agency_resolves(
        &app,
        &check4,
        DisputeOutcome::Corrected,
        "namesake confirmed",
    )
    .await;
    assert_eq!(r["status"], "approved");
    assert_eq!(r["adverseAction"]["state"], "cancelled");
    let kinds = email_kinds(&app, &check4).await;
    assert_eq!(
        kinds,
        [
            json!("report_copy"),
            json!("pre_adverse_notice"),
            json!("dispute_received"),
            json!("dispute_resolved")
        ]
    );
    let last = emails(&app, &check4).await.pop().expect("mail");
    assert!(
        last["body"]
            .as_str()
            .is_some_and(|b| b.contains("found in your favour: namesake confirmed")),
        "{last}"
    );
    nothing_follows(&app, &rx, &cand4, "approved").await;

    // Cancelled while a dispute is open: the candidate is told, and that the reinvestigation
    // goes on; the agency still lists the dispute, and its outcome reaches the candidate.
    let (cand5, check5) = in_waiting_period(&app, "Walter", "White").await;
    app.gql(
        "mutation($c: ID!) { disputeAdverseAction(checkId: $c, reason: \"not mine\") { state } }",
        json!({"c": check5}),
    )
    .await
    .data();
    let r = app
        .gql(
            "mutation($c: ID!) { cancelAdverseAction(checkId: $c) { status } }",
            json!({"c": check5}),
        )
        .await;
    assert_eq!(r.data()["cancelAdverseAction"]["status"], "approved");
    let last = emails(&app, &check5).await.pop().expect("mail");
    assert_eq!(last["kind"], "adverse_action_cancelled", "{last}");
    assert!(
        last["body"]
            .as_str()
            .is_some_and(|b| b.contains("reinvestigation of what you disputed goes on")),
        "{last}"
    );
    let open = app.service.open_disputes().await.expect("disputes");
    assert!(open.iter().any(|d| d.check_id == check5), "{open:?}");
    let r = agency_resolves(
        &app,
        &check5,
        DisputeOutcome::Upheld,
        "court record verified",
    )
    .await;
    assert_eq!(r["status"], "approved", "the check stays as it is");
    let last = emails(&app, &check5).await.pop().expect("mail");
    assert_eq!(last["kind"], "dispute_resolved", "{last}");
    assert!(
        last["body"]
            .as_str()
            .is_some_and(|b| b.contains("had already ended")),
        "{last}"
    );
    let open = app.service.open_disputes().await.expect("disputes");
    assert!(!open.iter().any(|d| d.check_id == check5), "{open:?}");
    nothing_follows(&app, &rx, &cand5, "approved").await;

    // A second dispute after the first was upheld is open again (no outcome shown), and a
    // cancellation then is still told to the candidate.
    let (_, check6) = in_waiting_period(&app, "Walter", "White").await;
    let dispute = "mutation($c: ID!) { disputeAdverseAction(checkId: $c, reason: \"not mine\") { state resolution } }";
    app.gql(dispute, json!({"c": check6})).await.data();
    agency_resolves(&app, &check6, DisputeOutcome::Upheld, "verified").await;
    let again = app.gql(dispute, json!({"c": check6})).await;
    assert_eq!(again.data()["disputeAdverseAction"]["state"], "disputed");
    assert!(again.data()["disputeAdverseAction"]["resolution"].is_null());
    app.gql(
        "mutation($c: ID!) { cancelAdverseAction(checkId: $c) { status } }",
        json!({"c": check6}),
    )
    .await
    .data();
    let last = emails(&app, &check6).await.pop().expect("mail");
    assert_eq!(last["kind"], "adverse_action_cancelled", "{last}");

    // Withdrawing during the waiting period ends the adverse action and its timers too.
    let (cand3, check3) = in_waiting_period(&app, "Walter", "White").await;
    app.transition(&check3, "withdrawn").await.data();
    let r = app
        .gql(
            "query($c: ID!) { check(id: $c) { adverseAction { state } tasks { kind status } } }",
            json!({"c": check3}),
        )
        .await;
    assert_eq!(r.data()["check"]["adverseAction"]["state"], "cancelled");
    let tasks = r.data()["check"]["tasks"]
        .as_array()
        .expect("tasks")
        .clone();
    assert!(
        tasks
            .iter()
            .any(|t| t["kind"] == "adverse.final_notice" && t["status"] == "cancelled"),
        "{tasks:?}"
    );
    assert!(
        tasks
            .iter()
            .all(|t| t["kind"] == "mail.send" || t["status"] != "pending"),
        "{tasks:?}"
    );
    nothing_follows(&app, &rx, &cand3, "withdrawn").await;

    // Months later the first check's report link has expired: the page and a dispute sent
    // through it say so, as about a report (not about signing).
    advance(&app, 100);
    let page = app.client.get(&link).send().await.expect("page");
    assert_eq!(page.status(), 410);
    let html = page.text().await.expect("html");
    assert!(html.contains("link to your report has expired"), "{html}");
    let late = post_form(
        &app.client,
        &format!("{link}/dispute"),
        &[("reason", "x")],
        None,
    )
    .await;
    assert_eq!(late.status(), 410);
    let html = late.text().await.expect("html");
    assert!(html.contains("link to your report has expired"), "{html}");
}

/// The consent link in an invitation email.
fn invitation_link(mail: &Value) -> String {
    mail["body"]
        .as_str()
        .expect("body")
        .split_whitespace()
        .find(|w| w.contains("/consent/"))
        .expect("link")
        .to_string()
}

/// The HTML of a candidate page.
async fn page_html(client: &reqwest::Client, url: &str) -> String {
    client
        .get(url)
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html")
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// Walks the consent page's sections in order as a candidate does (each refused first without
/// its required boxes ticked, with a message), up to the signature; returns the sections'
/// titles.
async fn acknowledge_every_section(
    app: &TestApp,
    client: &reqwest::Client,
    link: &str,
) -> Vec<String> {
    let base = app.url("");
    let mut seen = Vec::new();
    loop {
        let html = page_html(client, link).await;
        if !html.contains("/sections/") {
            assert!(html.contains("Sign your consent"), "{html}");
            break;
        }
        let title = html
            .split("<h1>")
            .nth(1)
            .and_then(|s| s.split("</h1>").next())
            .expect("title")
            .to_string();
        seen.push(title);
        let action = format!("{base}{}", form_action(&html));
        // With two boxes (California's summary: the optional copy of the report, then the
        // required one), the optional one alone is refused and stays ticked on the page.
        let two = html.contains("id=\"box1\"");
        let first_try = if two { ("box0", "on") } else { ("nothing", "") };
        let refused = post_form(client, &action, &[first_try], None).await;
        assert_eq!(refused.status(), 422);
        let again = refused.text().await.expect("html");
        assert!(again.contains("Please tick"), "{again}");
        if two {
            assert!(
                again.contains("name=\"box0\" value=\"on\" checked>")
                    && again.contains("name=\"box1\" value=\"on\" aria-invalid=\"true\""),
                "the ticked box stays ticked, the other is marked: {again}"
            );
        }
        let boxes: Vec<(String, String)> = (0..4)
            .map(|i| (format!("box{i}"), "on".to_string()))
            .collect();
        let ok = post_form(client, &action, &boxes, None).await;
        assert_eq!(ok.status(), 303);
    }
    seen
}

const ISSUE_LINK: &str = "mutation($c: ID!) { issueConsentLink(checkId: $c) { url expiresAt } }";

/// Turn's `email_candidate: false`: the partner sends the consent link itself. The check stays
/// `initiated` with no mail; the link it asks for opens the same consent page, a newer link
/// replaces it, and signing moves the check `initiated → consent → processing`.
#[tokio::test]
async fn a_partner_sends_the_consent_link_itself() {
    let (app, rx) = screening_app().await;
    let cand = app.candidate("samwise@example.com").await;
    let r = app
        .gql(
            "mutation($c: ID!) { startCheck(input: {candidateId: $c, emailCandidate: false}) { id status } }",
            json!({"c": cand}),
        )
        .await;
    let check = r.data()["startCheck"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    assert_eq!(r.data()["startCheck"]["status"], "initiated");
    let first = app.gql(ISSUE_LINK, json!({"c": check})).await;
    let first = first.data()["issueConsentLink"]["url"]
        .as_str()
        .expect("url")
        .to_string();
    let r = app.gql(ISSUE_LINK, json!({"c": check})).await;
    let link = r.data()["issueConsentLink"]["url"]
        .as_str()
        .expect("url")
        .to_string();
    let expires = chrono::DateTime::parse_from_rfc3339(
        r.data()["issueConsentLink"]["expiresAt"]
            .as_str()
            .expect("expiresAt"),
    )
    .expect("time");
    let days = (expires.with_timezone(&chrono::Utc) - app.service.clock().now()).num_hours();
    assert!((167..=168).contains(&days), "{days} h");
    assert!(link.starts_with(&app.url("/consent/")), "{link}");
    assert_ne!(first, link);
    let client = no_redirects();
    assert_eq!(client.get(&first).send().await.expect("page").status(), 410);
    assert!(emails(&app, &check).await.is_empty(), "nothing is mailed");

    acknowledge_every_section(&app, &client, &link).await;
    let html = page_html(&client, &link).await;
    let action = format!("{}{}", app.url(""), form_action(&html));
    let signed = post_form(
        &client,
        &action,
        &[
            ("date_of_birth", "1990-04-06"),
            ("ssn", next_ssn().as_str()),
            ("address", "3 Bagshot Row"),
            ("city", "Austin"),
            ("state", "TX"),
            ("zip", "78701"),
            ("signature", "Test Person"),
        ],
        None,
    )
    .await;
    assert_eq!(
        signed.status(),
        200,
        "{}",
        signed.text().await.unwrap_or_default()
    );
    app.wait_check_status(&check, "approved").await;
    expect_states(
        &rx,
        &cand,
        &["initiated", "consent", "processing", "approved"],
    )
    .await;
    assert_eq!(client.get(&link).send().await.expect("page").status(), 410);
    // Only checks waiting for consent take a link.
    app.gql(ISSUE_LINK, json!({"c": check}))
        .await
        .expect_err("BAD_USER_INPUT", Some("checkId"));

    // An invited candidate's link, asked for by the partner: the invitation's link stops
    // working and our reminders stop.
    let invited_cand = app.candidate("rosie@example.com").await;
    let invited = app.start_check(&invited_cand, true).await;
    let invitation = invitation_link(&emails(&app, &invited).await[0]);
    app.gql(ISSUE_LINK, json!({"c": invited})).await.data();
    assert_eq!(
        client.get(&invitation).send().await.expect("page").status(),
        410
    );
    advance(&app, 3);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let kinds = email_kinds(&app, &invited).await;
    assert_eq!(kinds, [json!("invitation")], "no reminders");
}

/// A candidate with a ZIP code but no state on file gets the summary of rights of the state
/// the ZIP code is in.
#[tokio::test]
async fn the_consent_page_shows_the_state_summary_for_the_zip_codes_state() {
    let (app, _rx) = screening_app().await;
    let r = app
        .gql(
            "mutation { createCandidate(input: {firstName: \"Pippin\", lastName: \"Took\", email: \"pippin@example.com\", zip: \"94107\"}) { id state } }",
            json!({}),
        )
        .await;
    let c = &r.data()["createCandidate"];
    assert!(c["state"].is_null(), "{c}");
    let check = app.start_check(c["id"].as_str().expect("id"), true).await;
    let link = invitation_link(&emails(&app, &check).await[0]);
    let client = no_redirects();
    let seen = acknowledge_every_section(&app, &client, &link).await;
    assert_eq!(seen.len(), 5, "{seen:?}");
    assert_eq!(seen[3], "A Summary of Your State Rights", "{seen:?}");

    // The candidate says they live in New York: California's summary, acknowledged for the
    // ZIP code, does not stand for New York's, which is shown and acknowledged before the
    // authorization is given again.
    let moved = post_form(
        &client,
        &format!("{link}/sign"),
        &[
            ("date_of_birth", "1990-03-01"),
            ("ssn", "123-45-6780"),
            ("address", "1 Great Smials"),
            ("city", "Tuckborough"),
            ("state", "NY"),
            ("signature", "Pippin Took"),
        ],
        None,
    )
    .await;
    assert_eq!(moved.status(), 303);
    assert_eq!(app.check_status(&check).await, "emailed");
    let page = page_html(&client, &link).await;
    assert!(
        page.contains("New York") && !page.contains("Investigative Consumer Reporting"),
        "New York's summary, not California's: {page}"
    );
    let again = acknowledge_every_section(&app, &client, &link).await;
    assert_eq!(
        again,
        [
            "A Summary of Your State Rights",
            "Authorization of Background Investigation"
        ]
    );
    // The copy of the report asked for on California's summary went with it: New York's
    // summary does not offer the box.
    let signed = post_form(
        &client,
        &format!("{link}/sign"),
        &[("signature", "Pippin Took")],
        None,
    )
    .await;
    assert_eq!(signed.status(), 200);
    let evidence = app
        .gql(
            "query($id: ID!) { check(id: $id) { consents { copyOfReportRequested sections { section } } } }",
            json!({"id": check}),
        )
        .await;
    let e = &evidence.data()["check"]["consents"][0];
    assert_eq!(e["copyOfReportRequested"], false, "{e}");
    assert_eq!(
        e["sections"][3]["section"], "summary_of_state_rights",
        "{e}"
    );
}

/// The value of `name="…" value="…"`-style attributes is not needed: the page is driven by
/// posting the forms it shows, as a browser would.
fn form_action(html: &str) -> String {
    let start = html.find("action=\"").expect("a form") + 8;
    html[start..].split('"').next().expect("action").to_string()
}

#[tokio::test]
async fn the_consent_page_takes_a_candidate_from_invitation_to_processing() {
    let (app, rx) = screening_app().await;
    let cand = app.candidate("frodo@example.com").await;
    let check = app.start_check(&cand, true).await;
    assert_eq!(app.check_status(&check).await, "emailed");
    let mail = emails(&app, &check).await;
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0]["kind"], "invitation");
    assert_eq!(mail[0]["to"], "frodo@example.com");
    let link = invitation_link(&mail[0]);
    let client = no_redirects();
    // The link is a credential and the page will show what the candidate types: not cached,
    // not passed on as a referrer.
    let first = client.get(&link).send().await.expect("page");
    assert_eq!(first.headers()["cache-control"], "no-store");
    assert_eq!(first.headers()["referrer-policy"], "no-referrer");
    // Signing before the sections are read (a stale tab, a direct post) is refused, and the
    // section page that comes back says why.
    let early = post_form(
        &client,
        &format!("{link}/sign"),
        &[("signature", "Frodo Baggins")],
        None,
    )
    .await;
    assert_eq!(early.status(), 422);
    let html = early.text().await.expect("html");
    assert!(
        html.contains("Please read and acknowledge every section first.")
            && html.contains("<h1>Welcome</h1>"),
        "{html}"
    );

    // Each section in order; continuing without ticking the boxes is refused with a message.
    let seen = acknowledge_every_section(&app, &client, &link).await;
    assert_eq!(
        seen.len(),
        4,
        "welcome, rights, disclosure, authorization (no state summary without a state): {seen:?}"
    );
    assert!(seen[1].contains("Summary of Your Rights"), "{seen:?}");

    // Every missing field is validated, with the message next to it, and nothing is written.
    let sign = format!("{link}/sign");
    let bad = post_form(
        &client,
        &sign,
        &[
            ("date_of_birth", "2030-01-01"),
            ("ssn", "123"),
            ("address", "Bag End"),
            ("city", "Hobbiton"),
            ("state", "ZZ"),
            ("zip", "1234"),
            // A typed name does not cover for a drawing that is not a PNG image.
            ("signature", "Frodo Baggins"),
            (
                "signature_image",
                "data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=",
            ),
        ],
        None,
    )
    .await;
    assert_eq!(bad.status(), 422);
    // The page may not be framed by another site, and runs only its own style and script.
    let header = |name: &str| {
        bad.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(header("x-frame-options"), "DENY");
    let csp = header("content-security-policy");
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'sha256-"),
        "{csp}"
    );
    assert_eq!(header("referrer-policy"), "no-referrer");
    let html = bad.text().await.expect("html");
    assert!(
        html.contains("Your drawn signature could not be read"),
        "{html}"
    );
    assert!(
        !html.contains("value=\"123\""),
        "the SSN is not written back into the page: {html}"
    );
    // The first field in error takes the focus, and only it.
    let input_of = |id: &str| {
        let at = html
            .find(&format!("<input type=\"text\" id=\"{id}\""))
            .unwrap_or_else(|| panic!("no input {id} in {html}"));
        html[at..].split('>').next().unwrap_or_default().to_string()
    };
    assert!(input_of("date_of_birth").contains("autofocus"), "{html}");
    assert_eq!(html.matches("autofocus").count(), 1, "{html}");
    assert!(
        !html.contains("svg+xml"),
        "a refused drawing is not handed back: {html}"
    );
    for f in [
        "date_of_birth-error",
        "ssn-error",
        "state-error",
        "zip-error",
        "signature-error",
    ] {
        assert!(
            html.contains(&format!("id=\"{f}\"")),
            "{f} missing in {html}"
        );
    }
    assert!(
        !html.contains("id=\"city-error\""),
        "a valid field has no message"
    );
    assert!(
        html.contains("value=\"Hobbiton\""),
        "what was typed is kept"
    );
    assert_eq!(app.check_status(&check).await, "emailed");
    assert_eq!(app.count_rows("consents").await, 0);
    let c = app
        .gql(
            "query($id: ID!) { candidate(id: $id) { ssn city } }",
            json!({"id": cand}),
        )
        .await;
    assert!(c.data()["candidate"]["ssn"].is_null() && c.data()["candidate"]["city"].is_null());

    // Right details, and the candidate turns out to live in California, whose own summary of
    // rights the page could not show without knowing that: the details are kept and the
    // summary comes before the signature.
    let good = post_form(
        &client,
        &sign,
        &[
            ("date_of_birth", "1968-09-22"),
            ("ssn", "123-45-6789"),
            ("address", "Bag End"),
            ("city", "Hobbiton"),
            ("state", "CA"),
            ("zip", "94107"),
            ("signature", "Test Person"),
        ],
        Some("Chromium-test"),
    )
    .await;
    assert_eq!(good.status(), 303);
    assert_eq!(app.check_status(&check).await, "emailed");
    let c = app
        .gql(
            "query($id: ID!) { candidate(id: $id) { city state zip } }",
            json!({"id": cand}),
        )
        .await;
    assert_eq!(
        c.data()["candidate"],
        json!({"city": "Hobbiton", "state": "CA", "zip": "94107"})
    );
    // The state's summary, then the authorization again, so it is given after the summary.
    let state_summary = acknowledge_every_section(&app, &client, &link).await;
    assert_eq!(
        state_summary,
        [
            "A Summary of Your State Rights",
            "Authorization of Background Investigation"
        ]
    );
    let sign_page = client.get(&link).send().await.expect("page");
    let html = sign_page.text().await.expect("html");
    assert!(
        html.contains("Sign your consent") && !html.contains("name=\"zip\""),
        "only the signature is left: {html}"
    );
    let good = post_form(
        &client,
        &sign,
        &[("signature", "Test Person")],
        Some("Chromium-test"),
    )
    .await;
    assert_eq!(good.status(), 200);
    assert!(good.text().await.expect("html").contains("Thank you"));
    app.wait_check_status(&check, "approved").await;
    expect_states(
        &rx,
        &cand,
        &["emailed", "consent", "processing", "approved"],
    )
    .await;
    let consent = app.dump("consents").await;
    assert_eq!(consent[0]["method"], "consent_page");
    assert_eq!(consent[0]["user_agent"], "Chromium-test");
    assert_eq!(consent[0]["signature"], "Test Person");
    let stamps: Value =
        serde_json::from_str(consent[0]["section_timestamps"].as_str().expect("s")).expect("json");
    assert_eq!(
        stamps.as_object().expect("o").len(),
        7,
        "five sections (the state's summary among them), the signature, and the copy of the \
         report asked for on the summary: {stamps}"
    );
    let last = |key: &str| {
        stamps[key]
            .as_array()
            .and_then(|t| t.last())
            .and_then(|t| t.as_str())
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .unwrap_or_else(|| panic!("{key} in {stamps}"))
    };
    assert!(
        last("summary_of_state_rights") <= last("authorization_of_background_investigation"),
        "authorized after reading the state's summary: {stamps}"
    );
    assert_eq!(
        stamps["authorization_of_background_investigation"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "the authorization given before the summary is not kept as if after it: {stamps}"
    );
    // The evidence through GraphQL, in reading order; not for limited team members.
    const CONSENTS: &str = "query($id: ID!) { check(id: $id) { consents { method signedAt copyOfReportRequested signature ipAddress userAgent sections { section acknowledgedAt } } } }";
    let evidence = app.gql(CONSENTS, json!({"id": check})).await;
    let consents = &evidence.data()["check"]["consents"];
    assert_eq!(consents.as_array().map(Vec::len), Some(1), "{consents}");
    let e = &consents[0];
    assert_eq!(e["method"], "consent_page");
    assert_eq!(e["signature"], "Test Person");
    assert_eq!(e["ipAddress"], "127.0.0.1");
    assert_eq!(e["userAgent"], "Chromium-test");
    assert_eq!(e["copyOfReportRequested"], true);
    let order: Vec<&str> = e["sections"]
        .as_array()
        .expect("sections")
        .iter()
        .filter_map(|s| s["section"].as_str())
        .collect();
    assert_eq!(
        order,
        [
            "welcome",
            "summary_of_rights",
            "disclosure",
            "summary_of_state_rights",
            "authorization_of_background_investigation",
            "signature"
        ]
    );
    assert_eq!(
        e["sections"][5]["acknowledgedAt"][0], e["signedAt"],
        "signed when the signature was given: {e}"
    );
    let limited = app.token_with_role("limited_team_member").await;
    app.gql_as(Some(&limited), CONSENTS, json!({"id": check}))
        .await
        .expect_err("FORBIDDEN", None);

    // The link worked once.
    assert_eq!(client.get(&link).send().await.expect("page").status(), 410);
    assert_eq!(
        client
            .get(app.url("/consent/not-a-token"))
            .send()
            .await
            .expect("page")
            .status(),
        404
    );
}

/// Two submissions of the signature page at once (a double click): one signs, and the other is
/// told the link was used (before, on PostgreSQL, it could get "Link not found").
#[tokio::test]
async fn a_double_submission_signs_once_and_says_the_link_was_used() {
    let (app, _rx) = screening_app().await;
    let cand = app.candidate("double@example.com").await;
    let check = app.start_check(&cand, true).await;
    let link = invitation_link(&emails(&app, &check).await[0]);
    let client = no_redirects();
    acknowledge_every_section(&app, &client, &link).await;
    let sign = format!("{link}/sign");
    let fields = [
        ("date_of_birth", "1968-09-22"),
        ("ssn", "123-45-6789"),
        ("address", "1 Congress Ave"),
        ("city", "Austin"),
        ("state", "TX"),
        ("zip", "78701"),
        ("signature", "Test Person"),
    ];
    let (a, b) = tokio::join!(
        post_form(&client, &sign, &fields, None),
        post_form(&client, &sign, &fields, None)
    );
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 410]);
    assert_eq!(app.count_rows("consents").await, 1);
    app.wait_check_status(&check, "approved").await;
}

/// A consent link the database cannot read just now is not a bad link: the candidate is asked
/// to try again (503 with `Retry-After`), nothing is written, and the link works once the
/// database answers. (The links' table is renamed away to make every read of it fail.)
#[tokio::test]
async fn a_link_the_database_cannot_read_asks_the_candidate_to_try_again() {
    let (app, _rx) = screening_app().await;
    let cand = app.candidate("unavailable@example.com").await;
    let check = app.start_check(&cand, true).await;
    let link = invitation_link(&emails(&app, &check).await[0]);
    let client = no_redirects();
    let first = client.get(&link).send().await.expect("page");
    assert_eq!(first.status(), 200);
    let html = first.text().await.expect("html");
    let action = format!("{}{}", app.url(""), form_action(&html));
    let rename = |from: &str, to: &str| {
        let db = app.service.db();
        let sql = format!("ALTER TABLE {from} RENAME TO {to}");
        async move {
            sea_orm::ConnectionTrait::execute_unprepared(db, &sql)
                .await
                .expect("rename");
        }
    };

    rename("candidate_links", "candidate_links_away").await;
    let page = client.get(&link).send().await.expect("page");
    assert_eq!(page.status(), 503);
    assert_eq!(
        page.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("60")
    );
    let busy = page.text().await.expect("html");
    assert!(busy.contains("Please try again"), "{busy}");
    assert!(!busy.contains("not valid"), "{busy}");
    let boxes: Vec<(String, String)> = (0..4)
        .map(|i| (format!("box{i}"), "on".to_string()))
        .collect();
    let posted = post_form(&client, &action, &boxes, None).await;
    assert_eq!(posted.status(), 503);
    let signed = post_form(
        &client,
        &format!("{link}/sign"),
        &[("signature", "A B")],
        None,
    )
    .await;
    assert_eq!(signed.status(), 503);
    rename("candidate_links_away", "candidate_links").await;

    // Nothing was kept: the same first section is due, and the check still waits.
    let again = client.get(&link).send().await.expect("page");
    assert_eq!(again.status(), 200);
    let again = again.text().await.expect("html");
    assert_eq!(form_action(&again), form_action(&html));
    assert_eq!(app.check_status(&check).await, "emailed");
    assert_eq!(app.count_rows("consents").await, 0);
    // A token that was never issued is still "not found".
    let unknown = client
        .get(app.url("/consent/not-a-token"))
        .send()
        .await
        .expect("page");
    assert_eq!(unknown.status(), 404);
}

/// Behind a reverse proxy named in `CLEARHIRE_TRUSTED_PROXIES` the consent evidence keeps the
/// address the proxy forwards; from any other peer `X-Forwarded-For` is not believed.
#[tokio::test]
async fn consent_evidence_takes_the_address_only_a_trusted_proxy_forwards() {
    for (trusted, want) in [("", "127.0.0.1"), ("127.0.0.1", "203.0.113.9")] {
        let app = spawn_app_with(|c| {
            c.sandbox_latency_ms = 0;
            c.trusted_proxies = trusted.into();
        })
        .await;
        let cand = app.candidate("proxied@example.com").await;
        let check = app.start_check(&cand, true).await;
        let link = invitation_link(&emails(&app, &check).await[0]);
        let mut forwarded = reqwest::header::HeaderMap::new();
        forwarded.insert(
            "x-forwarded-for",
            "198.51.100.1, 203.0.113.9".parse().expect("header"),
        );
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .default_headers(forwarded)
            .build()
            .expect("client");
        acknowledge_every_section(&app, &client, &link).await;
        let fields = [
            ("date_of_birth", "1968-09-22"),
            ("ssn", "123-45-6780"),
            ("address", "1 Congress Ave"),
            ("city", "Austin"),
            ("state", "TX"),
            ("zip", "78701"),
            ("signature", "Test Person"),
        ];
        let signed = post_form(&client, &format!("{link}/sign"), &fields, None).await;
        assert_eq!(signed.status(), 200);
        let consent = app.dump("consents").await;
        assert_eq!(
            consent[0]["ip_address"], want,
            "trusted proxies: {trusted:?}"
        );
    }
}

#[tokio::test]
async fn invitations_remind_expire_and_resend() {
    let (app, _rx) = screening_app().await;
    let cand = app.candidate("pippin@example.com").await;
    let check = app.start_check(&cand, true).await;
    // The candidate acknowledges the first section through the invitation's link.
    let invitation = invitation_link(&emails(&app, &check).await[0]);
    let client = no_redirects();
    let page = client.get(&invitation).send().await.expect("page");
    let action = app.url(&form_action(&page.text().await.expect("html")));
    let boxes: Vec<(String, String)> = (0..4).map(|i| (format!("box{i}"), "on".into())).collect();
    assert_eq!(
        post_form(&client, &action, &boxes, None).await.status(),
        303
    );
    advance(&app, 1); // past the 12 h reminder
    let sent = |n: usize| {
        let app = &app;
        let check = &check;
        async move {
            let got = eventually("a reminder", 10, || async {
                let m = emails(app, check).await;
                (m.len() >= n).then_some(m)
            })
            .await;
            assert_eq!(got.len(), n, "mail: {got:?}");
        }
    };
    sent(2).await;
    // The reminder's task run again, as when its end was not recorded before its lease ran out:
    // the candidate was reminded, and nothing is sent again.
    let reminder = eventually("the first reminder's task done", 10, || async {
        let r = app
            .gql(
                "query($c: ID!) { check(id: $c) { tasks { id kind status } } }",
                json!({"c": check}),
            )
            .await;
        r.data()["check"]["tasks"]
            .as_array()
            .expect("tasks")
            .iter()
            .find(|t| t["kind"] == "invite.reminder" && t["status"] == "done")
            .map(|t| t["id"].as_str().expect("id").to_string())
    })
    .await;
    {
        use entity::task;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
        let lease = app.service.clock().now() + chrono::Duration::minutes(2);
        task::Entity::update_many()
            .col_expr(task::Column::Status, Expr::value("queued"))
            .col_expr(task::Column::LeaseUntil, Expr::value(lease))
            .filter(task::Column::Id.eq(&reminder))
            .exec(app.service.db())
            .await
            .expect("queue again");
    }
    assert!(app.service.run_task(&reminder).await.expect("run again"));
    assert_eq!(emails(&app, &check).await.len(), 2, "no second mail");
    advance(&app, 2); // past the 48 h one
    sent(3).await;
    let mail = emails(&app, &check).await;
    assert_eq!(mail[1]["kind"], "reminder");
    // A reminder's link works beside the invitation's, which keeps the candidate's progress.
    let title = |html: String| {
        html.split("<h1>")
            .nth(1)
            .and_then(|s| s.split("</h1>").next())
            .map(str::to_string)
    };
    let html = client.get(&invitation).send().await.expect("get");
    assert_eq!(html.status(), 200);
    assert_eq!(
        title(html.text().await.expect("html")).as_deref(),
        Some("A Summary of Your Rights Under the FCRA"),
        "the invitation's link resumes after the acknowledged section"
    );
    let latest = invitation_link(&mail[2]);
    assert_eq!(
        app.client.get(&latest).send().await.expect("get").status(),
        200
    );
    // Links expire.
    advance(&app, 8);
    assert_eq!(
        app.client.get(&latest).send().await.expect("get").status(),
        410
    );
    // Resending gives a fresh one.
    app.gql(
        "mutation($c: ID!) { sendInvitation(checkId: $c) { status } }",
        json!({"c": check}),
    )
    .await
    .data();
    let fresh = invitation_link(&emails(&app, &check).await.pop().expect("mail"));
    assert_eq!(
        app.client.get(&fresh).send().await.expect("get").status(),
        200
    );
    // A resent invitation ends every earlier link, unexpired ones too.
    advance(&app, 1);
    sent(5).await; // the resent invitation's own 12 h reminder
    let mail = emails(&app, &check).await;
    assert_eq!(mail[4]["kind"], "reminder", "{mail:?}");
    app.gql(
        "mutation($c: ID!) { sendInvitation(checkId: $c) { status } }",
        json!({"c": check}),
    )
    .await
    .data();
    for old in [fresh, invitation_link(&mail[4])] {
        assert_eq!(
            app.client.get(&old).send().await.expect("get").status(),
            410
        );
    }
    let last = invitation_link(&emails(&app, &check).await.pop().expect("mail"));
    assert_eq!(
        app.client.get(&last).send().await.expect("get").status(),
        200
    );
}

/// A scheduled recheck comes due while the candidate has a newer check in progress: it is not
/// run (the newer check screens them afresh), and its task ends rather than failing on.
#[tokio::test]
async fn a_scheduled_recheck_gives_way_to_a_newer_check_in_progress() {
    let (app, _rx) = screening_app().await;
    app.gql("mutation { updatePartnerSettings(input: {recheckIntervalDays: 30}) { recheckIntervalDays } }", json!({}))
        .await
        .data();
    let (cand, check) = hosted_in_texas(&app, "Lotho", "Cotton").await;
    app.wait_check_status(&check, "approved").await;
    let newer = app.start_check(&cand, false).await;
    advance(&app, 31);
    let tasks = eventually("the recheck task ended", 10, || async {
        let r = app
            .gql(
                "query($c: ID!) { check(id: $c) { tasks { kind status } } }",
                json!({"c": check}),
            )
            .await;
        let tasks = r.data()["check"]["tasks"]
            .as_array()
            .expect("tasks")
            .clone();
        tasks
            .iter()
            .any(|t| t["kind"] == "recheck.scheduled" && t["status"] == "done")
            .then_some(tasks)
    })
    .await;
    assert!(!tasks.iter().any(|t| t["status"] == "failed"), "{tasks:?}");
    assert_eq!(app.check_status(&check).await, "approved");
    assert_eq!(app.check_status(&newer).await, "initiated");
    assert_eq!(reports(&app, &check).await.len(), 1);
}

#[tokio::test]
async fn rechecks_keep_every_report_and_follow_the_partner_interval() {
    let (app, rx) = screening_app().await;
    app.gql("mutation { updatePartnerSettings(input: {recheckIntervalDays: 30}) { recheckIntervalDays } }", json!({}))
        .await
        .data();
    let (cand, check) = hosted_in_texas(&app, "Rosie", "Cotton").await;
    app.wait_check_status(&check, "approved").await;
    let r = app
        .gql(
            "query($c: ID!) { check(id: $c) { recheckDate } }",
            json!({"c": check}),
        )
        .await;
    // A date on the business calendar's clock (UTC−11).
    let expected = (app.service.clock().now() + chrono::Duration::days(30))
        .with_timezone(&service::screening::calendar::zone())
        .date_naive()
        .to_string();
    assert_eq!(r.data()["check"]["recheckDate"], expected.as_str());
    // It runs once the whole interval is over, not as its date began in UTC−11 (up to a day
    // earlier).
    let scheduled = {
        use entity::task;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        task::Entity::find()
            .filter(task::Column::Kind.eq("recheck.scheduled"))
            .filter(task::Column::CheckId.eq(&check))
            .all(app.service.db())
            .await
            .expect("tasks")
    };
    assert_eq!(scheduled.len(), 1, "{scheduled:?}");
    let run_at = scheduled[0].run_at;
    let approved = app.service.clock().now();
    assert!(
        run_at > approved + chrono::Duration::days(30) - chrono::Duration::minutes(1),
        "{run_at} for an approval at about {approved}"
    );
    assert!(run_at < approved + chrono::Duration::days(31), "{run_at}");
    // On demand: same check, same turnId, back through processing.
    let r = app
        .gql(
            "mutation($c: ID!) { recheckCheck(checkId: $c) { status } }",
            json!({"c": check}),
        )
        .await;
    assert_eq!(r.data()["recheckCheck"]["status"], "processing");
    app.wait_check_status(&check, "approved").await;
    // On schedule.
    advance(&app, 31);
    eventually("the scheduled recheck", 10, || async {
        (reports(&app, &check).await.len() == 3).then_some(())
    })
    .await;
    app.wait_check_status(&check, "approved").await;
    let kinds: Vec<Value> = reports(&app, &check)
        .await
        .iter()
        .map(|r| r["kind"].clone())
        .collect();
    assert_eq!(
        kinds,
        vec![json!("initial"), json!("recheck"), json!("recheck")]
    );
    expect_states(
        &rx,
        &cand,
        &[
            "consent",
            "processing",
            "approved",
            "processing",
            "approved",
            "processing",
            "approved",
        ],
    )
    .await;
    // The interval turned off: the date goes at once, the next approval sets none, and the
    // recheck that was scheduled does not run (before, the old date came back and rechecked
    // again and again).
    let dated = app
        .gql(
            "query($c: ID!) { check(id: $c) { recheckDate } }",
            json!({"c": check}),
        )
        .await;
    let date = &dated.data()["check"]["recheckDate"];
    assert!(date.is_string(), "{date}");
    app.gql("mutation { updatePartnerSettings(input: {recheckIntervalDays: 0}) { recheckIntervalDays } }", json!({}))
        .await
        .data();
    let undated = app
        .gql(
            "query($c: ID!) { check(id: $c) { recheckDate } }",
            json!({"c": check}),
        )
        .await;
    assert_eq!(undated.data()["check"]["recheckDate"], Value::Null);
    app.gql(
        "mutation($c: ID!) { recheckCheck(checkId: $c) { status } }",
        json!({"c": check}),
    )
    .await
    .data();
    app.wait_check_status(&check, "approved").await;
    let r = app
        .gql(
            "query($c: ID!) { check(id: $c) { recheckDate } }",
            json!({"c": check}),
        )
        .await;
    assert_eq!(r.data()["check"]["recheckDate"], Value::Null);
    advance(&app, 31);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        reports(&app, &check).await.len(),
        4,
        "no recheck without an interval"
    );
    // Only completed checks can be rechecked.
    let other = app.candidate("busy@example.com").await;
    let busy = app.start_check(&other, true).await;
    app.gql(
        "mutation($c: ID!) { recheckCheck(checkId: $c) { status } }",
        json!({"c": busy}),
    )
    .await
    .expect_err("BAD_USER_INPUT", Some("checkId"));
}

/// Turn's "CA Recheck": California requires consent to every background check, so a recheck
/// of a candidate whose ZIP code is there leaves the check approved and emails the candidate a
/// consent link; it runs (as a recheck, same check) once they sign, and not before. The
/// partner's interval recheck asks the same way.
#[tokio::test]
async fn a_california_recheck_asks_the_candidate_to_consent_again() {
    let (app, rx) = screening_app().await;
    app.gql("mutation { updatePartnerSettings(input: {recheckIntervalDays: 30}) { recheckIntervalDays } }", json!({}))
        .await
        .data();
    let (cand, check) = hosted(&app, "Fatty", "Bolger", None, None).await;
    app.wait_check_status(&check, "approved").await;
    let r = app
        .gql(
            "mutation($c: ID!) { recheckCheck(checkId: $c) { status } }",
            json!({"c": check}),
        )
        .await;
    assert_eq!(r.data()["recheckCheck"]["status"], "approved");
    let first = emails_of_kind(&app, &check, "recheck_consent").await;
    assert_eq!(first.len(), 1, "{first:?}");
    let body = first[0]["body"].as_str().expect("body");
    assert!(
        body.contains("California law asks for your consent"),
        "{body}"
    );
    // Asked again: the newer link replaces the first.
    app.gql(
        "mutation($c: ID!) { recheckCheck(checkId: $c) { status } }",
        json!({"c": check}),
    )
    .await
    .data();
    let asks = emails_of_kind(&app, &check, "recheck_consent").await;
    assert_eq!(asks.len(), 2);
    let client = no_redirects();
    let old = invitation_link(&asks[0]);
    let link = invitation_link(&asks[1]);
    assert_eq!(client.get(&old).send().await.expect("page").status(), 410);
    // Nothing runs before the candidate signs, whatever the time; they are reminded at 12 h
    // and 48 h, each reminder with a link of its own.
    let clock = app.service.clock();
    for (hours, n) in [(13, 1), (36, 2)] {
        clock.advance(chrono::Duration::hours(hours));
        eventually("a reminder", 10, || async {
            (emails_of_kind(&app, &check, "reminder").await.len() == n).then_some(())
        })
        .await;
    }
    advance(&app, 2);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reminders = emails_of_kind(&app, &check, "reminder").await;
    assert_eq!(reminders.len(), 2);
    assert!(
        reminders[0]["body"]
            .as_str()
            .expect("body")
            .contains("an update of your earlier one")
    );
    let reminded = invitation_link(&reminders[1]);
    assert_eq!(
        client.get(&reminded).send().await.expect("page").status(),
        200
    );
    assert_eq!(reports(&app, &check).await.len(), 1);
    assert_eq!(app.check_status(&check).await, "approved");

    let seen = acknowledge_every_section(&app, &client, &link).await;
    assert_eq!(seen.len(), 5, "{seen:?}");
    let html = page_html(&client, &link).await;
    assert!(html.contains("an update of your earlier one"), "{html}");
    assert!(html.contains("We have all the details we need"), "{html}");
    let action = format!("{}{}", app.url(""), form_action(&html));
    let signed = post_form(&client, &action, &[("signature", "Fatty Bolger")], None).await;
    assert_eq!(signed.status(), 200);
    assert_eq!(client.get(&link).send().await.expect("page").status(), 410);
    eventually("the recheck's report", 10, || async {
        (reports(&app, &check).await.len() == 2).then_some(())
    })
    .await;
    app.wait_check_status(&check, "approved").await;
    assert_eq!(
        client.get(&reminded).send().await.expect("page").status(),
        410,
        "one signature: the reminder's link stops working, also once the check is decided again"
    );
    let kinds: Vec<Value> = reports(&app, &check)
        .await
        .iter()
        .map(|r| r["kind"].clone())
        .collect();
    assert_eq!(kinds, [json!("initial"), json!("recheck")]);
    consent_by(&app, &check, "hosted_form").await;
    let again = consent_by(&app, &check, "recheck_consent_page").await;
    assert_eq!(again["signature"], "Fatty Bolger");
    expect_states(
        &rx,
        &cand,
        &[
            "consent",
            "processing",
            "approved",
            "processing",
            "approved",
        ],
    )
    .await;

    // The partner's interval: the scheduled recheck asks for consent too, and waits for it.
    advance(&app, 31);
    eventually("the scheduled recheck's request", 10, || async {
        (emails_of_kind(&app, &check, "recheck_consent").await.len() == 3).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.check_status(&check).await, "approved");
    assert_eq!(reports(&app, &check).await.len(), 2);
    // The scheduled step run again (its end not recorded: the process stopped, say) asks no
    // second time.
    {
        use entity::task;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
        let done = task::Entity::find()
            .filter(task::Column::Kind.eq("recheck.scheduled"))
            .filter(task::Column::CheckId.eq(&check))
            .filter(task::Column::Status.eq("done"))
            .all(app.service.db())
            .await
            .expect("tasks");
        let last = done
            .iter()
            .max_by_key(|t| t.run_at)
            .expect("the step that asked");
        let lease = app.service.clock().now() + chrono::Duration::minutes(2);
        task::Entity::update_many()
            .col_expr(task::Column::Status, Expr::value("queued"))
            .col_expr(task::Column::LeaseUntil, Expr::value(lease))
            .filter(task::Column::Id.eq(&last.id))
            .exec(app.service.db())
            .await
            .expect("queue again");
        assert!(app.service.run_task(&last.id).await.expect("run again"));
    }
    assert_eq!(
        emails_of_kind(&app, &check, "recheck_consent").await.len(),
        3
    );

    // A newer check of the candidate's starts before they sign: the recheck can no longer run
    // beside it, and signing says there is nothing to sign (410), not "try again" (503).
    let asks = emails_of_kind(&app, &check, "recheck_consent").await;
    let link = invitation_link(&asks[2]);
    acknowledge_every_section(&app, &client, &link).await;
    let newer = app.start_check(&cand, true).await;
    let html = page_html(&client, &link).await;
    let action = format!("{}{}", app.url(""), form_action(&html));
    let late = post_form(&client, &action, &[("signature", "Fatty Bolger")], None).await;
    assert_eq!(late.status(), 410);
    assert!(
        late.text().await.expect("html").contains("Nothing to sign"),
        "the check moved on"
    );
    assert_eq!(app.check_status(&check).await, "approved");
    assert_eq!(app.check_status(&newer).await, "emailed");
}

/// A California recheck's consent link stops working once the recheck starts another way: the
/// candidate moved to Texas, the recheck asked again went straight to processing, and signing the
/// old link later would start a recheck no one asked for.
#[tokio::test]
async fn a_recheck_consent_link_ends_when_the_recheck_starts_without_it() {
    let (app, _rx) = screening_app().await;
    let (cand, check) = hosted(&app, "Fredegar", "Bolger", None, None).await;
    app.wait_check_status(&check, "approved").await;
    assert_eq!(on_check(&app, "recheckCheck", &check).await, "approved");
    let asks = emails_of_kind(&app, &check, "recheck_consent").await;
    let link = invitation_link(&asks[0]);
    let client = no_redirects();
    assert_eq!(client.get(&link).send().await.expect("page").status(), 200);
    app.gql(
        "mutation($id: ID!) { updateCandidate(id: $id, input: {zip: \"78701\", state: \"TX\", city: \"Austin\"}) { id } }",
        json!({"id": cand}),
    )
    .await
    .data();
    assert_eq!(on_check(&app, "recheckCheck", &check).await, "processing");
    assert_eq!(client.get(&link).send().await.expect("page").status(), 410);
    app.wait_check_status(&check, "approved").await;
    assert_eq!(client.get(&link).send().await.expect("page").status(), 410);
    assert_eq!(reports(&app, &check).await.len(), 2);
}

/// A California recheck asked for on a Consider check ends when adverse action starts: its
/// link does not come back to life when the adverse action is cancelled, and its reminders stop.
#[tokio::test]
async fn adverse_action_ends_a_recheck_waiting_for_consent() {
    let (app, _rx) = screening_app().await;
    let (_, check) = hosted(&app, "Darth", "Vader", None, None).await;
    app.wait_check_status(&check, "pending").await;
    assert_eq!(on_check(&app, "recheckCheck", &check).await, "pending");
    let link = invitation_link(&emails_of_kind(&app, &check, "recheck_consent").await[0]);
    let client = no_redirects();
    assert_eq!(client.get(&link).send().await.expect("page").status(), 200);
    for (mutation, to) in [
        ("startAdverseAction", "pending__first_notice"),
        ("cancelAdverseAction", "approved"),
    ] {
        assert_eq!(on_check(&app, mutation, &check).await, to);
    }
    assert_eq!(
        client.get(&link).send().await.expect("page").status(),
        410,
        "the recheck asked for before the adverse action is not waiting any more"
    );
    let reminders = app.tasks_of_kind(&check, "recheck.consent_reminder").await;
    assert!(
        !reminders.is_empty() && reminders.iter().all(|t| t["status"] == "cancelled"),
        "{reminders:?}"
    );
}

#[tokio::test]
async fn continuous_monitoring_reports_a_charge_and_stays_silent_without_one() {
    let (app, rx) = screening_app().await;
    let (charged_cand, charged) = hosted_in_texas(&app, "Rosie", "Cotton").await;
    let (quiet_cand, quiet) = hosted_in_texas(&app, "Merry", "Brandybuck").await;
    app.wait_check_status(&charged, "approved").await;
    app.wait_check_status(&quiet, "approved").await;
    let mut enrolled_on = Vec::new();
    for c in [&charged, &quiet] {
        let on = enroll_monitoring(&app, c).await["cmCriminalEnroll"].clone();
        enrolled_on.push(
            chrono::NaiveDate::parse_from_str(on.as_str().expect("a date"), "%Y-%m-%d")
                .expect("YYYY-MM-DD"),
        );
    }
    // The enrollment-date filters include both ends.
    let day = enrolled_on[0];
    let (before, after) = (day.pred_opt().expect("day"), day.succ_opt().expect("day"));
    let window = "query($f: NaiveDate, $t: NaiveDate) { monitoringEnrollments(enrolledFrom: $f, enrolledTo: $t) { totalCount nodes { id } } }";
    for (from, to) in [
        (Some(day), Some(day)),
        (Some(before), None),
        (None, Some(after)),
        (Some(after), None),
        (None, Some(before)),
    ] {
        // Both enrolled on `day`, unless midnight fell between them.
        let want = enrolled_on
            .iter()
            .filter(|d| from.is_none_or(|f| **d >= f) && to.is_none_or(|t| **d <= t))
            .count();
        let r = app.gql(window, json!({"f": from, "t": to})).await;
        assert_eq!(
            r.data()["monitoringEnrollments"]["totalCount"],
            want,
            "{from:?}..{to:?}"
        );
    }
    app.gql(window, json!({"f": after, "t": before}))
        .await
        .expect_err("BAD_USER_INPUT", Some("enrolledTo"));
    let r = app
        .gql(
            "{ monitoringEnrollments(first: 1) { totalCount hasNextPage endCursor nodes { id } } }",
            json!({}),
        )
        .await;
    let page = &r.data()["monitoringEnrollments"];
    assert_eq!(page["totalCount"], 2);
    assert_eq!(page["hasNextPage"], true);
    let r = app
        .gql("query($a: String) { monitoringEnrollments(first: 5, after: $a) { hasNextPage nodes { id } } }", json!({"a": page["endCursor"]}))
        .await;
    assert_eq!(
        r.data()["monitoringEnrollments"]["nodes"]
            .as_array()
            .expect("n")
            .len(),
        1
    );

    for (c, charge) in [(&charged, true), (&quiet, false)] {
        arrest_alert(&app, c, charge).await;
    }
    // Before the courthouse lead time nothing happens.
    advance(&app, 3);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(app.check_status(&charged).await, "approved");
    advance(&app, 12);
    app.wait_check_status(&charged, "review__cm").await;
    expect_states(
        &rx,
        &charged_cand,
        &["consent", "processing", "approved", "review__cm"],
    )
    .await;
    let last = rx
        .received()
        .into_iter()
        .find(|r| r.json["worker_id"] == charged_cand.as_str() && r.json["state"] == "review__cm")
        .expect("the review__cm webhook");
    let earlier = rx
        .received()
        .into_iter()
        .find(|r| r.json["worker_id"] == charged_cand.as_str() && r.json["state"] == "approved")
        .expect("the approved webhook");
    assert_eq!(earlier.json["criminal_monitoring_triggered"], false);
    assert_eq!(last.json["criminal_monitoring_triggered"], true);
    assert!(last.json["cm_criminal_enroll"].is_string());
    let reps = reports(&app, &charged).await;
    assert_eq!(reps.last().expect("report")["kind"], "monitoring");
    // No charge: the partner hears nothing, and one more recheck runs 30 days later.
    eventually("the first county recheck", 10, || async {
        (monitoring_alert(&app, &quiet).await["rechecks"] == 1).then_some(())
    })
    .await;
    advance(&app, 31);
    eventually("the second county recheck", 10, || async {
        (monitoring_alert(&app, &quiet).await["status"] == "no_charge").then_some(())
    })
    .await;
    expect_states(&rx, &quiet_cand, &["consent", "processing", "approved"]).await;
    assert_eq!(app.check_status(&quiet).await, "approved");

    // Cleared after review, then rechecked: a new screening, whose webhooks carry no monitoring
    // tag (Turn sends recheck results without it).
    app.transition(&charged, "approved").await.data();
    app.gql(
        "mutation($c: ID!) { recheckCheck(checkId: $c) { status } }",
        json!({"c": charged}),
    )
    .await
    .data();
    app.wait_check_status(&charged, "approved").await;
    expect_states(
        &rx,
        &charged_cand,
        &[
            "consent",
            "processing",
            "approved",
            "review__cm",
            "approved",
            "processing",
            "approved",
        ],
    )
    .await;
    let tags: Vec<(String, String, Value)> = rx
        .received()
        .into_iter()
        .filter(|r| r.json["worker_id"] == charged_cand.as_str() && r.json.get("state").is_some())
        .map(|r| {
            (
                r.json["original_state"].as_str().unwrap_or("").to_string(),
                r.json["state"].as_str().unwrap_or("").to_string(),
                r.json["criminal_monitoring_triggered"].clone(),
            )
        })
        .collect();
    let tag = |from: &str, to: &str| {
        tags.iter()
            .find(|(f, t, _)| f == from && t == to)
            .map(|(_, _, v)| v.clone())
            .unwrap_or_else(|| panic!("{from} -> {to} in {tags:?}"))
    };
    assert_eq!(
        tag("review__cm", "approved"),
        true,
        "the cleared alert's webhook"
    );
    assert_eq!(
        tag("approved", "processing"),
        false,
        "the recheck's webhooks"
    );
    let approvals: Vec<&Value> = tags
        .iter()
        .filter(|(f, t, _)| f == "processing" && t == "approved")
        .map(|(_, _, v)| v)
        .collect();
    assert_eq!(
        approvals,
        [&json!(false), &json!(false)],
        "both screenings' approvals"
    );
    let r = app
        .gql(
            "query($c: ID!) { check(id: $c) { criminalMonitoringTriggered } }",
            json!({"c": charged}),
        )
        .await;
    assert_eq!(r.data()["check"]["criminalMonitoringTriggered"], false);
}

/// The enrollment list's cursor holds its place: the next page follows even after the check it
/// was taken at has been unenrolled (before, that page was refused).
#[tokio::test]
async fn the_enrollment_list_goes_on_after_its_cursor_check_is_unenrolled() {
    let (app, _rx) = screening_app().await;
    let (_, a) = hosted_in_texas(&app, "Rosie", "Cotton").await;
    let (_, b) = hosted_in_texas(&app, "Merry", "Brandybuck").await;
    for c in [&a, &b] {
        app.wait_check_status(c, "approved").await;
        enroll_monitoring(&app, c).await;
    }
    let r = app
        .gql(
            "{ monitoringEnrollments(first: 1) { endCursor nodes { id } } }",
            json!({}),
        )
        .await;
    let page = r.data()["monitoringEnrollments"].clone();
    let seen = page["nodes"][0]["id"].as_str().expect("id").to_string();
    app.gql(
        "mutation($c: ID!) { unenrollMonitoring(checkId: $c) { cmCriminalEnroll } }",
        json!({"c": seen}),
    )
    .await
    .data();
    let r = app
        .gql(
            "query($a: String) { monitoringEnrollments(first: 5, after: $a) { hasNextPage nodes { id } } }",
            json!({"a": page["endCursor"]}),
        )
        .await;
    let rest: Vec<&str> = r.data()["monitoringEnrollments"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter_map(|n| n["id"].as_str())
        .collect();
    let other = if seen == a { &b } else { &a };
    assert_eq!(rest, [other.as_str()]);
    app.gql(
        "{ monitoringEnrollments(first: 5, after: \"not-a-cursor\") { totalCount } }",
        json!({}),
    )
    .await
    .expect_err("BAD_USER_INPUT", Some("after"));
}

/// A charge found while the check cannot go to review (here it is in `review__cm` from an
/// earlier charge) still reaches the partner: a status update with the monitoring tag and the
/// state unchanged (before, the report changed silently). Withdrawing a monitored check ends
/// its monitoring: unenrolled, its open alert cancelled, no new alert taken.
/// A charge found while a decision may go against the candidate (here Consider) changes the
/// report in place; the candidate is sent the updated report, with the right to dispute it.
#[tokio::test]
async fn a_charge_on_a_considered_check_sends_the_candidate_the_updated_report() {
    let (app, rx) = screening_app().await;
    let (cand, check) = hosted_in_texas(&app, "Lobelia", "Cotton").await;
    app.wait_check_status(&check, "approved").await;
    enroll_monitoring(&app, &check).await;
    arrest_alert(&app, &check, true).await;
    advance(&app, 15);
    app.wait_check_status(&check, "review__cm").await;
    app.transition(&check, "pending").await.data();
    let copies_before = emails_of_kind(&app, &check, "report_copy").await.len();
    arrest_alert(&app, &check, true).await;
    advance(&app, 15);
    expect_states(
        &rx,
        &cand,
        &[
            "consent",
            "processing",
            "approved",
            "review__cm",
            "pending",
            "pending",
        ],
    )
    .await;
    let copies = eventually("the updated report mailed", 10, || async {
        let c = emails_of_kind(&app, &check, "report_copy").await;
        (c.len() > copies_before).then_some(c)
    })
    .await;
    let last = copies.last().expect("copy");
    let body = last["body"].as_str().expect("body");
    assert!(
        body.contains("Continuous monitoring found a new record") && body.contains("/report/"),
        "{body}"
    );
}

#[tokio::test]
async fn a_second_charge_is_reported_and_withdrawal_ends_monitoring() {
    let (app, rx) = screening_app().await;
    let (cand, check) = hosted_in_texas(&app, "Rosie", "Cotton").await;
    app.wait_check_status(&check, "approved").await;
    enroll_monitoring(&app, &check).await;
    arrest_alert(&app, &check, true).await;
    advance(&app, 15);
    app.wait_check_status(&check, "review__cm").await;
    arrest_alert(&app, &check, true).await;
    advance(&app, 15);
    expect_states(
        &rx,
        &cand,
        &[
            "consent",
            "processing",
            "approved",
            "review__cm",
            "review__cm",
        ],
    )
    .await;
    let update = rx
        .received()
        .into_iter()
        .find(|r| {
            r.json["worker_id"] == cand.as_str()
                && r.json["original_state"] == "review__cm"
                && r.json["state"] == "review__cm"
        })
        .expect("the second charge's webhook");
    assert_eq!(update.json["criminal_monitoring_triggered"], true);
    let monitoring_reports = reports(&app, &check)
        .await
        .iter()
        .filter(|r| r["kind"] == "monitoring")
        .count();
    assert_eq!(monitoring_reports, 2);

    arrest_alert(&app, &check, true).await;
    app.transition(&check, "withdrawn").await.data();
    let r = app
        .gql(
            "query($c: ID!) { check(id: $c) { cmCriminalEnroll monitoringAlerts { status } } monitoringEnrollments(first: 5) { totalCount } }",
            json!({"c": check}),
        )
        .await;
    assert_eq!(r.data()["check"]["cmCriminalEnroll"], Value::Null);
    assert_eq!(r.data()["monitoringEnrollments"]["totalCount"], 0);
    let mut alerts: Vec<String> = r.data()["check"]["monitoringAlerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .map(|a| a["status"].as_str().unwrap_or("?").to_string())
        .collect();
    alerts.sort();
    assert_eq!(alerts, ["cancelled", "charged", "charged"]);
    app.gql(
        "mutation($c: ID!) { sandboxArrestAlert(checkId: $c, county: \"Alameda\", state: \"CA\", chargeFiled: true) { status } }",
        json!({"c": check}),
    )
    .await
    .expect_err("BAD_USER_INPUT", Some("checkId"));
    advance(&app, 15);
    expect_states(
        &rx,
        &cand,
        &[
            "consent",
            "processing",
            "approved",
            "review__cm",
            "review__cm",
            "withdrawn",
        ],
    )
    .await;
}

/// A county that answers a second alert with the record an earlier alert's recheck already put in
/// the report (two bookings of one arrest, raised the same day) reports no new charge: the
/// partner hears of the charge once, the report holds its record once, and both alerts are
/// `charged`.
#[tokio::test]
async fn a_charge_already_in_the_report_is_not_reported_again() {
    let (app, rx) = screening_app().await;
    let (cand, check) = hosted_in_texas(&app, "Lobelia", "Bracegirdle").await;
    app.wait_check_status(&check, "approved").await;
    enroll_monitoring(&app, &check).await;
    arrest_alert(&app, &check, true).await;
    arrest_alert(&app, &check, true).await;
    advance(&app, 15);
    app.wait_check_status(&check, "review__cm").await;
    // Each alert as (status, county rechecks run).
    let alerts = || async {
        let r = app
            .gql(
                "query($c: ID!) { check(id: $c) { monitoringAlerts { status rechecks } } }",
                json!({"c": check}),
            )
            .await;
        let mut s: Vec<(String, i64)> = r.data()["check"]["monitoringAlerts"]
            .as_array()
            .expect("alerts")
            .iter()
            .map(|a| {
                (
                    a["status"].as_str().unwrap_or("?").to_string(),
                    a["rechecks"].as_i64().unwrap_or(-1),
                )
            })
            .collect();
        s.sort();
        s
    };
    let pairs = |v: &[(&str, i64)]| -> Vec<(String, i64)> {
        v.iter().map(|(s, n)| ((*s).to_string(), *n)).collect()
    };
    // The second alert's charge is the first's: charged too, nothing new reported, and nothing
    // to look at again 30 days later.
    let want = pairs(&[("charged", 1), ("charged", 1)]);
    eventually("both county rechecks", 10, || async {
        (alerts().await == want).then_some(())
    })
    .await;
    advance(&app, 31);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(alerts().await, want);
    let rechecks = app
        .tasks_of_kind(&check, "monitoring.county_recheck")
        .await
        .len();
    assert_eq!(rechecks, 2, "one county recheck per alert, no follow-up");
    expect_states(
        &rx,
        &cand,
        &["consent", "processing", "approved", "review__cm"],
    )
    .await;
    let monitoring: Vec<Value> = reports(&app, &check)
        .await
        .into_iter()
        .filter(|r| r["kind"] == "monitoring")
        .collect();
    assert_eq!(monitoring.len(), 1);
    let alameda: Vec<&Value> = monitoring[0]["report"]["checks"]["criminal"]
        .as_array()
        .expect("counties")
        .iter()
        .filter(|c| {
            c["county"]
                .as_str()
                .is_some_and(|n| n.starts_with("Alameda"))
        })
        .collect();
    assert_eq!(alameda.len(), 1);
    assert_eq!(alameda[0]["value"].as_array().map(Vec::len), Some(1));
}

/// A county recheck that comes due while a recheck of the whole check is screening the candidate
/// waits for it: the recheck's report would replace the one the charge went into, and from
/// `processing` the check cannot go to `review__cm`. Once the recheck approves, the charge moves
/// the check to review with the county's records in the new report.
#[tokio::test]
async fn a_monitoring_charge_waits_for_a_running_recheck() {
    let (app, rx) = screening_app().await;
    let clock = app.service.clock();
    // Slowpoke's searches take two minutes of the clock, so the recheck can be caught running.
    let (cand, check) = hosted_in_texas(&app, "Sloan", "Slowpoke").await;
    clock.advance(chrono::Duration::minutes(3));
    app.wait_check_status(&check, "approved").await;
    assert!(enroll_monitoring(&app, &check).await["cmCriminalEnroll"].is_string());
    let alert_at = clock.now();
    arrest_alert(&app, &check, true).await;
    let due = service::screening::calendar::add_business_days(
        alert_at,
        service::monitoring::RECHECK_AFTER_BUSINESS_DAYS,
    );
    // The recheck starts 30 s before the county recheck is due; its searches finish 90 s after.
    clock.advance(due - clock.now() - chrono::Duration::seconds(30));
    app.gql(
        "mutation($c: ID!) { recheckCheck(checkId: $c) { status } }",
        json!({"c": check}),
    )
    .await
    .data();
    assert_eq!(app.check_status(&check).await, "processing");
    clock.advance(chrono::Duration::seconds(40));
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        monitoring_alert(&app, &check).await,
        json!({"status": "waiting", "rechecks": 0}),
        "the county recheck waits for the running recheck"
    );
    assert_eq!(app.check_status(&check).await, "processing");
    clock.advance(chrono::Duration::minutes(2));
    app.wait_check_status(&check, "approved").await;
    clock.advance(chrono::Duration::hours(1));
    app.wait_check_status(&check, "review__cm").await;
    assert_eq!(
        monitoring_alert(&app, &check).await,
        json!({"status": "charged", "rechecks": 1})
    );
    expect_states(
        &rx,
        &cand,
        &[
            "consent",
            "processing",
            "approved",
            "processing",
            "approved",
            "review__cm",
        ],
    )
    .await;
    let last = rx
        .received()
        .into_iter()
        .find(|r| r.json["worker_id"] == cand.as_str() && r.json["state"] == "review__cm")
        .expect("the review__cm webhook");
    assert_eq!(last.json["criminal_monitoring_triggered"], true);
    // Three reports: the screening, the recheck, and the recheck's with the county added.
    let reps = reports(&app, &check).await;
    let kinds: Vec<&Value> = reps.iter().map(|r| &r["kind"]).collect();
    assert_eq!(kinds, ["initial", "recheck", "monitoring"], "{kinds:?}");
    let criminal = reps.last().expect("report")["report"]["checks"]["criminal"].clone();
    assert!(
        criminal
            .as_array()
            .expect("criminal")
            .iter()
            .any(|c| c["county"] == "Alameda County"),
        "{criminal}"
    );
}

/// California is not an evergreen state: an arrest alert for a candidate living there asks them
/// for fresh consent by email, and the county recheck runs only once they have signed on the
/// consent page (here after it came due); for a candidate who never signs it does not run at
/// all. The partner hears of neither: no consent confirmation, no status webhook without a
/// charge.
#[tokio::test]
async fn a_california_monitoring_hit_runs_its_recheck_only_with_fresh_consent() {
    let (app, rx) = screening_app().await;
    let all = Receiver::start().await;
    endpoint(&app, &all.url, json!([])).await;
    let (signer_cand, signer) = hosted(&app, "Lobelia", "Bracegirdle", None, None).await;
    let (silent_cand, silent) = hosted(&app, "Ted", "Sandyman", None, None).await;
    for c in [&signer, &silent] {
        app.wait_check_status(c, "approved").await;
        assert!(enroll_monitoring(&app, c).await["cmCriminalEnroll"].is_string());
        arrest_alert(&app, c, true).await;
        assert_eq!(
            monitoring_alert(&app, c).await,
            json!({"status": "awaiting_consent", "rechecks": 0})
        );
    }
    let asked = emails(&app, &signer).await;
    let ask: Vec<&Value> = asked
        .iter()
        .filter(|m| m["kind"] == "monitoring_consent")
        .collect();
    assert_eq!(ask.len(), 1, "{asked:?}");
    let body = ask[0]["body"].as_str().expect("body");
    assert!(!body.to_lowercase().contains("arrest"), "{body}");
    let link = invitation_link(ask[0]);

    // One check may wait for two consents at once, a recheck's and the monitoring hit's: each
    // request is reminded on its own, the monitoring one without a word of the arrest.
    app.gql(
        "mutation($c: ID!) { recheckCheck(checkId: $c) { status } }",
        json!({"c": silent}),
    )
    .await
    .data();
    app.service.clock().advance(chrono::Duration::hours(13));
    eventually("a reminder of each request", 10, || async {
        (emails_of_kind(&app, &silent, "reminder").await.len() >= 2).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reminded = emails_of_kind(&app, &silent, "reminder").await;
    let texts: Vec<&str> = reminded
        .iter()
        .map(|m| m["body"].as_str().expect("body"))
        .collect();
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(
        texts
            .iter()
            .any(|t| t.contains("an update of your earlier one")),
        "{texts:?}"
    );
    assert!(
        texts.iter().any(|t| t.contains("county court records")),
        "{texts:?}"
    );
    assert!(texts.iter().all(|t| !t.contains("arrest")), "{texts:?}");

    // Unenrolled before signing: the alert ends and its link stops working, also once the
    // check is enrolled again.
    let (_, quitter) = hosted(&app, "Will", "Whitfoot", None, None).await;
    app.wait_check_status(&quitter, "approved").await;
    enroll_monitoring(&app, &quitter).await;
    arrest_alert(&app, &quitter, true).await;
    let quit_link = invitation_link(&emails_of_kind(&app, &quitter, "monitoring_consent").await[0]);
    app.gql(
        "mutation($c: ID!) { unenrollMonitoring(checkId: $c) { cmCriminalEnroll } }",
        json!({"c": quitter}),
    )
    .await
    .data();
    assert_eq!(
        monitoring_alert(&app, &quitter).await["status"],
        "cancelled"
    );
    enroll_monitoring(&app, &quitter).await;
    assert_eq!(
        no_redirects()
            .get(&quit_link)
            .send()
            .await
            .expect("page")
            .status(),
        410
    );

    // Past the day the recheck was due, unsigned: it waits, an hour at a time, and nothing
    // changes. Waiting is no failure: the task's attempts (which bound retries) start again.
    advance(&app, 12);
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        app.service.clock().advance(chrono::Duration::hours(1));
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        monitoring_alert(&app, &signer).await,
        json!({"status": "awaiting_consent", "rechecks": 0})
    );
    assert_eq!(app.check_status(&signer).await, "approved");
    let waiting = app
        .tasks_of_kind(&signer, "monitoring.county_recheck")
        .await;
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0]["attempts"], 0, "{waiting:?}");
    // The monitoring request's second reminder, with a link still good; the recheck's link
    // expired after 7 days, so it has none. The unenrolled candidate is not reminded.
    let reminded = eventually("the second reminder", 10, || async {
        let r = emails_of_kind(&app, &silent, "reminder").await;
        (r.len() >= 3).then_some(r)
    })
    .await;
    assert_eq!(reminded.len(), 3, "{reminded:?}");
    let text = reminded[2]["body"].as_str().expect("body");
    assert!(
        text.contains("county court records") && !text.contains("arrest"),
        "{text}"
    );
    assert!(emails_of_kind(&app, &quitter, "reminder").await.is_empty());

    // The same sections as for the check, the state's summary among them, and nothing to fill
    // in before the signature.
    let client = no_redirects();
    let seen = acknowledge_every_section(&app, &client, &link).await;
    assert_eq!(seen.len(), 5, "{seen:?}");
    assert_eq!(seen[3], "A Summary of Your State Rights", "{seen:?}");
    let html = page_html(&client, &link).await;
    assert!(
        html.contains("a new search of county court records"),
        "{html}"
    );
    assert!(!html.contains("Your details"), "{html}");
    let action = format!("{}{}", app.url(""), form_action(&html));
    let refused = post_form(&client, &action, &[("signature", " ")], None).await;
    assert_eq!(refused.status(), 422);
    assert_eq!(
        monitoring_alert(&app, &signer).await["status"],
        "awaiting_consent"
    );
    let signed = post_form(
        &client,
        &action,
        &[("signature", "Lobelia Bracegirdle")],
        Some("test-browser/2"),
    )
    .await;
    assert_eq!(signed.status(), 200);
    assert!(
        signed
            .text()
            .await
            .expect("html")
            .contains("Your consent was recorded")
    );
    assert_eq!(
        monitoring_alert(&app, &signer).await,
        json!({"status": "waiting", "rechecks": 0})
    );
    assert_eq!(client.get(&link).send().await.expect("page").status(), 410);
    assert_eq!(
        app.dump("consents").await.len(),
        4,
        "three checks' and the fresh one"
    );
    let fresh = consent_by(&app, &signer, "monitoring_consent_page").await;
    assert_eq!(fresh["signature"], "Lobelia Bracegirdle");
    assert_eq!(fresh["user_agent"], "test-browser/2");

    // Within the hour the recheck runs and the charge reaches the partner.
    app.service.clock().advance(chrono::Duration::hours(1));
    app.wait_check_status(&signer, "review__cm").await;
    assert_eq!(
        monitoring_alert(&app, &signer).await,
        json!({"status": "charged", "rechecks": 1})
    );
    expect_states(
        &rx,
        &signer_cand,
        &["consent", "processing", "approved", "review__cm"],
    )
    .await;

    // The other candidate's link runs out unsigned: no recheck, nothing sent.
    advance(&app, 8);
    eventually("the unsigned alert to end", 10, || async {
        (monitoring_alert(&app, &silent).await["status"] == "no_consent").then_some(())
    })
    .await;
    assert_eq!(monitoring_alert(&app, &silent).await["rechecks"], 0);
    assert_eq!(app.check_status(&silent).await, "approved");
    expect_states(&rx, &silent_cand, &["consent", "processing", "approved"]).await;
    let silent_link = invitation_link(
        emails(&app, &silent)
            .await
            .iter()
            .find(|m| m["kind"] == "monitoring_consent")
            .expect("the consent request"),
    );
    assert_eq!(
        client
            .get(&silent_link)
            .send()
            .await
            .expect("page")
            .status(),
        410
    );
    for cand in [&signer_cand, &silent_cand] {
        let confirmations = all
            .received()
            .iter()
            .filter(|r| {
                r.json["hook_type"] == "CONSENT_CONFIRMATION"
                    && r.json["worker_id"] == cand.as_str()
            })
            .count();
        assert_eq!(
            confirmations, 1,
            "only the check's own consent is confirmed"
        );
    }
}

#[tokio::test]
async fn slow_searches_finish_when_their_time_comes() {
    let (app, _rx) = screening_app().await;
    let (_, check) = hosted(&app, "Sloan", "Slowpoke", None, None).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.check_status(&check).await, "processing");
    app.service.clock().advance(chrono::Duration::minutes(3));
    app.wait_check_status(&check, "approved").await;
}

#[tokio::test]
async fn hosted_form_input_is_validated_and_duplicates_answer_with_the_existing_candidate() {
    let (app, _rx) = screening_app().await;
    app.gql(FORM, json!({"z": "9410"}))
        .await
        .expect_err("BAD_USER_INPUT", Some("zipcode"));
    // Five digits, but no one's address: its disclosures could not be chosen.
    app.gql(FORM, json!({"z": "00000"}))
        .await
        .expect_err("BAD_USER_INPUT", Some("zipcode"));
    app.gql(FORM, json!({"z": "94107", "p": "P0000000000"}))
        .await
        .expect_err("BAD_USER_INPUT", Some("packageId"));
    let drivers = mvr_package(&app).await;
    let form = |p: Option<String>| {
        let app = &app;
        async move {
            let f = app.gql(FORM, json!({"z": "94107", "p": p})).await;
            f.data()["createConsentForm"]["formId"]
                .as_str()
                .expect("id")
                .to_string()
        }
    };
    let base = |form_id: &str| {
        json!({
            "formId": form_id, "firstName": "Lobelia", "lastName": "Sackville", "middleName": "B",
            "email": "lobelia@example.com", "phone": "4155550134", "dateOfBirth": "1950-01-01",
            "ssn": "212-45-6789", "address": "Bag End", "city": "Hobbiton",
            "consentDocument": SIGNATURE_PNG, "timestamps": timestamps(&app)
        })
    };
    let rows_before = app.count_rows("candidates").await;
    let f = form(None).await;
    let now = app.service.clock().now().to_rfc3339();
    for (patch, want) in [
        (json!({"ssn": "123"}), "ssn"),
        (json!({"dateOfBirth": "tomorrow"}), "dateOfBirth"),
        (json!({"middleName": null}), "middleName"),
        (json!({"consentDocument": " "}), "consentDocument"),
        // Turn takes PNG images only: a typed name, another image type or a cut-off PNG is refused.
        (
            json!({"consentDocument": "Lobelia Sackville"}),
            "consentDocument",
        ),
        (
            json!({"consentDocument": "data:image/jpeg;base64,/9j/4AAQSkZJRg=="}),
            "consentDocument",
        ),
        (
            json!({"consentDocument": "data:image/png;base64,iVBORw0KGgo="}),
            "consentDocument",
        ),
        (
            json!({"timestamps": {"welcome": ["x"], "summaryOfRights": [], "disclosure": [], "authorizationOfBackgroundInvestigation": [], "signature": []}}),
            "timestamps.welcome",
        ),
        (json!({"callbackUrl": "ftp://nope"}), "callbackUrl"),
        // The form's disclosures were chosen for California (its ZIP code); a candidate in New
        // York was not shown New York's summary of rights.
        (json!({"state": "NY"}), "state"),
        // Nor may a state put aside the ZIP code's, whose law asks for its summary: the
        // candidate would be kept as living in Texas, and asked for later consents without it.
        (json!({"state": "TX"}), "state"),
        (json!({"ipAddress": "somewhere"}), "ipAddress"),
        // Evidence from a day after the form was submitted cannot be true.
        (
            json!({"timestamps": {
                "welcome": [(app.service.clock().now() + chrono::Duration::days(1)).to_rfc3339()],
                "summaryOfRights": [now], "disclosure": [now], "summaryOfStateRights": [now],
                "authorizationOfBackgroundInvestigation": [now], "signature": [now]
            }}),
            "timestamps.welcome",
        ),
        // Authorized before the disclosure was read: out of order.
        (
            json!({"timestamps": {
                "welcome": [now], "summaryOfRights": [now], "disclosure": [now],
                "summaryOfStateRights": [now],
                "authorizationOfBackgroundInvestigation": [(app.service.clock().now() - chrono::Duration::seconds(30)).to_rfc3339()],
                "signature": [now]
            }}),
            "timestamps.authorization_of_background_investigation",
        ),
        // Acknowledged again a minute after the signature: signed before it was read.
        (
            json!({"timestamps": {
                "welcome": [now], "summaryOfRights": [now], "disclosure": [now],
                "summaryOfStateRights": [now],
                "authorizationOfBackgroundInvestigation": [now, (app.service.clock().now() + chrono::Duration::seconds(60)).to_rfc3339()],
                "signature": [now]
            }}),
            "timestamps.authorization_of_background_investigation",
        ),
    ] {
        let mut i = base(&f);
        for (k, v) in patch.as_object().expect("o") {
            i[k] = v.clone();
        }
        app.gql(SUBMIT, json!({"i": i}))
            .await
            .expect_err("BAD_USER_INPUT", Some(want));
    }
    // An MVR package needs the licence.
    let fm = form(Some(drivers.clone())).await;
    app.gql(SUBMIT, json!({"i": base(&fm)}))
        .await
        .expect_err("BAD_USER_INPUT", Some("driversLicenseNumber"));
    // A package archived after step one starts no check: step two refuses the form.
    app.gql(
        "mutation($id: ID!) { archivePackage(id: $id) { archivedAt } }",
        json!({"id": drivers}),
    )
    .await
    .data();
    let mut licensed = base(&fm);
    licensed["driversLicenseNumber"] = json!("D1234567");
    licensed["driversLicenseState"] = json!("CA");
    let archived = app.gql(SUBMIT, json!({"i": licensed})).await;
    archived.expect_err("BAD_USER_INPUT", Some("formId"));
    assert!(archived.message().contains("archived"), "{}", archived.0);
    assert_eq!(
        app.count_rows("candidates").await,
        rows_before,
        "refusals write nothing"
    );
    assert_eq!(app.count_rows("checks").await, 0);

    let ok = app.gql(SUBMIT, json!({"i": base(&f)})).await;
    assert_eq!(ok.data()["submitConsentForm"]["outcome"], "STARTED");
    let turn_id = ok.data()["submitConsentForm"]["candidate"]["turnId"].clone();
    app.gql(SUBMIT, json!({"i": base(&f)}))
        .await
        .expect_err("BAD_USER_INPUT", Some("formId"));
    // Same SSN again: Turn's 9400 with the existing candidate, nothing started.
    let f2 = form(None).await;
    let mut again = base(&f2);
    again["email"] = json!("someone.else@example.com");
    let dup = app.gql(SUBMIT, json!({"i": again})).await;
    let d = &dup.data()["submitConsentForm"];
    assert_eq!(d["outcome"], "CANDIDATE_EXISTS");
    assert_eq!(d["code"], 9400);
    assert_eq!(d["candidate"]["turnId"], turn_id);
    assert!(d["check"].is_null());
    assert_eq!(app.count_rows("checks").await, 1);
    // A limited team member, who may not see SSNs, is not told whose it is.
    let limited = app.token_with_role("limited_team_member").await;
    let mut probe = base(&form(None).await);
    probe["email"] = json!("probe@example.com");
    let hidden = app
        .gql_as(Some(&limited), SUBMIT, json!({"i": probe}))
        .await;
    hidden.expect_err("CONFLICT", Some("ssn"));
    let text = hidden.0.to_string();
    assert!(
        !text.contains(turn_id.as_str().expect("turnId")) && !text.contains("Lobelia"),
        "{text}"
    );
    assert_eq!(app.count_rows("checks").await, 1);

    // Turn's `bypass_dupe`: the returning candidate is screened again, but not while a check
    // of theirs is still in progress.
    let first_check = ok.data()["submitConsentForm"]["check"]["id"]
        .as_str()
        .expect("check")
        .to_string();
    let candidate_id = d["candidate"]["id"].clone();
    app.wait_check_status(&first_check, "approved").await;
    let mut returning = base(&f2);
    returning["bypassDupe"] = json!(true);
    returning["email"] = json!("lobelia.new@example.com");
    returning["address"] = json!("1 Sackville Lane");
    // What the form leaves out of the name and address is cleared from the profile.
    returning["middleName"] = json!(null);
    returning["noMiddleName"] = json!(true);
    returning.as_object_mut().expect("input").remove("city");
    // A limited team member may not rewrite the profile's date of birth this way.
    let limited = app.token_with_role("limited_team_member").await;
    let refused = app
        .gql_as(Some(&limited), SUBMIT, json!({"i": returning.clone()}))
        .await;
    refused.expect_err("FORBIDDEN", None);
    assert!(refused.message().contains("bypassDupe"), "{}", refused.0);
    // Held at `initiated` (`doChecks: false`), it is in progress until run.
    returning["doChecks"] = json!(false);
    let again = app.gql(SUBMIT, json!({"i": returning.clone()})).await;
    let d = &again.data()["submitConsentForm"];
    assert_eq!(d["outcome"], "STARTED", "{}", again.0);
    assert_eq!(d["code"], 9200);
    assert_eq!(d["candidate"]["id"], candidate_id);
    assert_eq!(d["candidate"]["turnId"], turn_id);
    assert_eq!(d["check"]["status"], "initiated");
    let second_check = d["check"]["id"].as_str().expect("check").to_string();
    assert_ne!(second_check, first_check);
    let mut third = returning.clone();
    third["formId"] = json!(form(None).await);
    let running = app.gql(SUBMIT, json!({"i": third})).await;
    running.expect_err("CONFLICT", Some("candidateId"));
    assert!(running.message().contains(&second_check), "{}", running.0);
    assert_eq!(app.count_rows("checks").await, 2);
    assert_eq!(app.count_rows("candidates").await, rows_before + 1);
    app.gql(
        "mutation($c: ID!) { runCheck(checkId: $c) { status } }",
        json!({"c": second_check}),
    )
    .await
    .data();
    app.wait_check_status(&second_check, "approved").await;
    let profile = app
        .gql(
            "query($id: ID!) { candidate(id: $id) { email address city middleName checks { id } } }",
            json!({"id": candidate_id}),
        )
        .await;
    assert!(
        profile.data()["candidate"]["city"].is_null(),
        "{}",
        profile.0
    );
    assert!(
        profile.data()["candidate"]["middleName"].is_null(),
        "{}",
        profile.0
    );
    assert_eq!(
        profile.data()["candidate"]["email"],
        "lobelia.new@example.com"
    );
    assert_eq!(profile.data()["candidate"]["address"], "1 Sackville Lane");
    assert_eq!(
        profile.data()["candidate"]["checks"]
            .as_array()
            .map(Vec::len),
        Some(2),
        "{}",
        profile.0
    );
    // Screened again from a military ZIP code, which has no state: California, on file
    // before, goes too, or the profile would keep her under California's rules with no
    // California disclosure in the evidence.
    let abroad_form = app.gql(FORM, json!({"z": "09001"})).await;
    let mut abroad = returning.clone();
    abroad["formId"] = abroad_form.data()["createConsentForm"]["formId"].clone();
    let r = app.gql(SUBMIT, json!({"i": abroad})).await;
    assert_eq!(
        r.data()["submitConsentForm"]["outcome"],
        "STARTED",
        "{}",
        r.0
    );
    let profile = app
        .gql(
            "query($id: ID!) { candidate(id: $id) { state zip } }",
            json!({"id": candidate_id}),
        )
        .await;
    assert_eq!(
        profile.data()["candidate"],
        json!({"state": null, "zip": "09001"}),
        "{}",
        profile.0
    );
}

#[tokio::test]
async fn forms_with_one_ssn_submitted_at_once_start_one_candidate() {
    let (app, _rx) = screening_app().await;
    let mut inputs = Vec::new();
    for n in 0..6 {
        let f = app.gql(FORM, json!({"z": "94107"})).await;
        let form_id = f.data()["createConsentForm"]["formId"].clone();
        inputs.push(json!({
            "formId": form_id, "firstName": "Lotho", "lastName": "Sackville", "noMiddleName": true,
            "email": format!("lotho{n}@example.com"), "phone": "4155550135",
            "dateOfBirth": "1960-01-01", "ssn": "212-45-6790", "address": "Bag End",
            "city": "Hobbiton", "consentDocument": SIGNATURE_PNG, "timestamps": timestamps(&app)
        }));
    }
    let answers = futures_util::future::join_all(
        inputs.into_iter().map(|i| app.gql(SUBMIT, json!({"i": i}))),
    )
    .await;
    let mut outcomes: Vec<String> = answers
        .iter()
        .map(|a| {
            a.data()["submitConsentForm"]["outcome"]
                .as_str()
                .expect("outcome")
                .to_string()
        })
        .collect();
    outcomes.sort();
    assert_eq!(outcomes[0], "CANDIDATE_EXISTS");
    assert_eq!(outcomes[5], "STARTED");
    assert_eq!(
        outcomes.iter().filter(|o| *o == "STARTED").count(),
        1,
        "{outcomes:?}"
    );
    let turn_ids: std::collections::HashSet<String> = answers
        .iter()
        .map(|a| a.data()["submitConsentForm"]["candidate"]["turnId"].to_string())
        .collect();
    assert_eq!(turn_ids.len(), 1, "every answer names the one candidate");
    assert_eq!(app.count_rows("candidates").await, 1);
    assert_eq!(app.count_rows("checks").await, 1);
}

#[tokio::test]
async fn another_partner_cannot_reach_screening_of_this_one() {
    let (app, _rx) = screening_app().await;
    let (_, check) = hosted(&app, "Walter", "White", None, None).await;
    app.wait_check_status(&check, "pending").await;
    let f = app.gql(FORM, json!({"z": "94107"})).await;
    let form_id = f.data()["createConsentForm"]["formId"]
        .as_str()
        .expect("id")
        .to_string();
    let (_, other) = app.other_partner().await;
    for (q, vars) in [
        (
            "mutation($c: ID!) { startAdverseAction(checkId: $c) { status } }",
            json!({"c": check}),
        ),
        (
            "mutation($c: ID!) { recheckCheck(checkId: $c) { status } }",
            json!({"c": check}),
        ),
        (
            "mutation($c: ID!) { enrollMonitoring(checkId: $c) { status } }",
            json!({"c": check}),
        ),
        (
            "mutation($c: ID!) { sendInvitation(checkId: $c) { status } }",
            json!({"c": check}),
        ),
        (
            "mutation($c: ID!) { issueConsentLink(checkId: $c) { url } }",
            json!({"c": check}),
        ),
        (
            "mutation($c: ID!) { disputeAdverseAction(checkId: $c, reason: \"x\") { state } }",
            json!({"c": check}),
        ),
        (
            "query($c: ID!) { check(id: $c) { reports { kind } } }",
            json!({"c": check}),
        ),
    ] {
        app.gql_as(Some(&other), q, vars)
            .await
            .expect_err("NOT_FOUND", None);
    }
    // Address and city may be left out, as in Turn's form.
    let mut i = json!({
        "formId": form_id, "firstName": "A", "lastName": "B", "noMiddleName": true, "email": "ab@example.com",
        "phone": "4155550134", "dateOfBirth": "1980-01-01", "ssn": next_ssn(),
        "consentDocument": SIGNATURE_PNG, "timestamps": timestamps(&app)
    });
    // A foreign form answers exactly as a missing one.
    let r = app
        .gql_as(Some(&other), SUBMIT, json!({"i": i.clone()}))
        .await;
    r.expect_err("BAD_USER_INPUT", Some("formId"));
    assert_eq!(r.message(), format!("formId: {form_id} does not exist"));
    let random = uuid::Uuid::new_v4().to_string();
    i["formId"] = json!(random);
    let missing = app.gql_as(Some(&other), SUBMIT, json!({"i": i})).await;
    missing.expect_err("BAD_USER_INPUT", Some("formId"));
    assert_eq!(
        missing.message(),
        format!("formId: {random} does not exist")
    );
    let mail = app
        .gql_as(Some(&other), "{ emails { id } }", json!({}))
        .await;
    assert_eq!(mail.data()["emails"], json!([]));
    // Limited team members see statuses but no report contents.
    let limited = app.token_with_role("limited_team_member").await;
    app.gql_as(
        Some(&limited),
        "query($c: ID!) { check(id: $c) { reports { kind } } }",
        json!({"c": check}),
    )
    .await
    .expect_err("FORBIDDEN", None);
}

/// Writes `n` mail tasks due a second ago, with `payload`, straight into the tasks table (the
/// scheduler tests drive the scheduler themselves).
async fn due_email_tasks(app: &TestApp, n: u64, payload: Value) {
    use sea_orm::ConnectionTrait;
    let now = app.service.clock().now();
    for _ in 0..n {
        app.service
            .db()
            .execute(&service::tasks::scheduling(
                &app.partner_id,
                None,
                service::tasks::TaskKind::SendEmail,
                payload.clone(),
                now - chrono::Duration::seconds(1),
                now,
            ))
            .await
            .expect("task");
    }
}

/// A backlog of due steps larger than the job queue should hold (a bulk import's invitations)
/// is handed out [`service::tasks::MAX_QUEUED`] at a time: the scheduler queues more only as
/// queued ones are taken, so no lease runs out while its job still waits in the queue, and a
/// lease that does run out (a lost job) frees its place and the task is handed out again.
#[tokio::test]
async fn the_scheduler_keeps_at_most_max_queued_tasks_in_the_job_queue() {
    use entity::task;
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    use service::tasks::MAX_QUEUED;

    // No scheduler of the app's own: this test is the scheduler.
    let app = spawn_app_with(|c| c.embedded_workers = Some(false)).await;
    let (svc, db) = (&app.service, app.service.db());
    let backlog = MAX_QUEUED + 100;
    due_email_tasks(&app, backlog, json!({})).await;
    let queued = || async {
        task::Entity::find()
            .filter(task::Column::Status.eq("queued"))
            .count(db)
            .await
            .expect("count")
    };
    // Claim rounds of 200 until the scheduler hands out nothing more.
    let drain = || async {
        let mut ids = Vec::new();
        loop {
            let round = svc.claim_due_tasks(200).await.expect("claim");
            if round.is_empty() {
                return ids;
            }
            ids.extend(round);
        }
    };

    let first = drain().await;
    assert_eq!(
        first.len() as u64,
        MAX_QUEUED,
        "one queue's worth, not the whole backlog"
    );
    assert_eq!(queued().await, MAX_QUEUED);

    // A job taken from the queue frees its place for exactly one more.
    assert!(
        svc.run_task(&first[0]).await.expect("run"),
        "the task was queued"
    );
    let next = drain().await;
    assert_eq!(next.len(), 1, "{next:?}");
    assert!(!first.contains(&next[0]), "a task not handed out before");

    // Leases run out (the jobs were lost; leases are on the wall clock, so they are moved back
    // rather than the service clock forward): every place is free again, and tasks still
    // queued are among those handed out anew.
    task::Entity::update_many()
        .col_expr(
            task::Column::LeaseUntil,
            sea_orm::sea_query::Expr::value(chrono::Utc::now() - chrono::Duration::seconds(1)),
        )
        .filter(task::Column::Status.eq("queued"))
        .exec(db)
        .await
        .expect("leases run out");
    let again = drain().await;
    assert_eq!(again.len() as u64, MAX_QUEUED);
    assert!(
        again.iter().any(|id| first.contains(id)),
        "expired tasks handed out again"
    );
}

/// A running task's lease is on the wall clock: a test (or a clock) moving the service's time
/// days ahead does not hand the task out again while it runs.
#[tokio::test]
async fn moving_the_clock_does_not_hand_out_a_running_task_again() {
    use entity::task;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

    let app = spawn_app_with(|c| c.embedded_workers = Some(false)).await;
    let (svc, db) = (&app.service, app.service.db());
    due_email_tasks(&app, 1, json!({})).await;
    // Running, as `run_task` leaves it while the task's work is under way.
    task::Entity::update_many()
        .col_expr(
            task::Column::Status,
            sea_orm::sea_query::Expr::value("running"),
        )
        .col_expr(
            task::Column::LeaseUntil,
            sea_orm::sea_query::Expr::value(chrono::Utc::now() + chrono::Duration::minutes(2)),
        )
        .filter(task::Column::Status.eq("pending"))
        .exec(db)
        .await
        .expect("running");
    svc.clock().advance(chrono::Duration::days(2));
    assert!(svc.claim_due_tasks(10).await.expect("claim").is_empty());
}

/// A task whose runs never finish (each took the process down) is given up once it has been
/// taken more times than a task is retried, rather than handed out for ever.
#[tokio::test]
async fn a_task_whose_runs_never_finish_is_given_up() {
    use entity::task;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

    let app = spawn_app_with(|c| c.embedded_workers = Some(false)).await;
    let (svc, db) = (&app.service, app.service.db());
    due_email_tasks(&app, 1, json!({})).await;
    let ids = svc.claim_due_tasks(10).await.expect("claim");
    // Every run a task may have was taken and none recorded its end.
    let most = service::tasks::MAX_ATTEMPTS;
    task::Entity::update_many()
        .col_expr(
            task::Column::Attempts,
            sea_orm::sea_query::Expr::value(most),
        )
        .filter(task::Column::Id.eq(&ids[0]))
        .exec(db)
        .await
        .expect("attempts");
    assert!(svc.run_task(&ids[0]).await.expect("run"));
    let t = task::Entity::find_by_id(ids[0].clone())
        .one(db)
        .await
        .expect("read")
        .expect("task");
    assert_eq!(t.status, "failed");
    assert!(
        t.last_error
            .as_deref()
            .is_some_and(|e| e.starts_with(&format!("given up after {most} runs"))),
        "{:?}",
        t.last_error
    );
}

/// Of several jobs that run one queued task at once (a re-queue after a lost lease, a duplicate
/// job), exactly one runs it, whether the runs take their tasks in one statement (PostgreSQL's
/// group commit, where one task can be named twice in a batch) or one by one; each run's end is
/// recorded, and a task that is done is not run again.
#[tokio::test]
async fn concurrent_runs_of_a_queued_task_run_it_exactly_once() {
    use entity::task;
    use sea_orm::EntityTrait;

    let app = spawn_app_with(|c| c.embedded_workers = Some(false)).await;
    let (svc, db) = (&app.service, app.service.db());
    due_email_tasks(&app, 4, json!({"email_id": "none"})).await;
    let ids = svc.claim_due_tasks(10).await.expect("claim");
    assert_eq!(ids.len(), 4, "{ids:?}");
    // Each task run four times, all at once.
    let runs: Vec<String> = (0..4).flat_map(|_| ids.clone()).collect();
    let ran = futures_util::future::join_all(runs.iter().map(|id| svc.run_task(id))).await;
    for id in &ids {
        let n = runs
            .iter()
            .zip(&ran)
            .filter(|(asked, r)| *asked == id && *r.as_ref().expect("run"))
            .count();
        assert_eq!(n, 1, "{id} was run {n} times");
        let t = task::Entity::find_by_id(id.clone())
            .one(db)
            .await
            .expect("read")
            .expect("task");
        assert_eq!(
            (t.status.as_str(), t.attempts, t.lease_until),
            ("done", 1, None)
        );
        assert!(!svc.run_task(id).await.expect("run"), "done: not run again");
    }
}

/// A hosted-form submission's statements, counted without BEGIN and COMMIT: the form with its
/// package and partner; in the transaction, the SSN's turn (an advisory lock, on PostgreSQL
/// only), one lookup of the SSN, e-mail and reference id,
/// the candidate, its event, the check with its history and two events (one statement on
/// PostgreSQL, four on SQLite), the consent, the form marked used, and the move to `processing`
/// with its history, its event, the reminders cancelled and the screening task (one on
/// PostgreSQL, five on SQLite).
#[tokio::test]
async fn a_hosted_form_submission_takes_nine_statements_on_postgresql() {
    // No embedded relay or scheduler: their polling would share the pool whose statements are
    // counted.
    let app = spawn_app_with(|c| c.embedded_workers = Some(false)).await;
    let f = app.gql(FORM, json!({"z": "94107", "p": null})).await;
    let form_id = f.data()["createConsentForm"]["formId"]
        .as_str()
        .expect("formId")
        .to_string();
    let before = app.service.statements_executed();
    let (_, check) = submit_hosted(&app, &form_id, "Counted", "Statements", None).await;
    let n = app.service.statements_executed() - before;
    let expected = if crate::helpers::pg_url().is_some() {
        9
    } else {
        15
    };
    assert_eq!(n, expected, "statements for one hosted-form submission");
    // What the statements wrote: the check processing, its two status changes in history, its
    // screening task due.
    let d = app
        .gql(
            "query($id: ID!) { check(id: $id) { status history { fromStatus toStatus } } }",
            json!({"id": check}),
        )
        .await;
    assert_eq!(d.data()["check"]["status"], "processing", "{}", d.0);
    assert_eq!(
        d.data()["check"]["history"],
        json!([
            {"fromStatus": null, "toStatus": "consent"},
            {"fromStatus": "consent", "toStatus": "processing"}
        ])
    );
    let now = app.service.clock().now();
    assert_eq!(
        app.service.claim_due_tasks(10).await.expect("claim").len(),
        1,
        "the screening task, due at {now}"
    );
}

/// Whether the named type under a field's list and non-null wrappers is an object.
fn is_object(t: &Value) -> bool {
    let mut t = t;
    while t["name"].is_null() {
        t = &t["ofType"];
    }
    t["kind"] == "OBJECT"
}

/// Each field of `type_name` as a selection: an object-typed one with `{ __typename }` (its
/// loader finds the object by a key column, so a key not read shows as a missing object), and
/// `ssn` also unmasked. `skip` leaves fields out.
async fn selections(app: &TestApp, type_name: &str, skip: &[&str]) -> Vec<String> {
    let r = app
        .gql(
            "query($t: String!) { __type(name: $t) { fields { name type { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } }",
            json!({"t": type_name}),
        )
        .await;
    let mut out = Vec::new();
    for f in r.data()["__type"]["fields"].as_array().expect("fields") {
        let name = f["name"].as_str().expect("name");
        if skip.contains(&name) {
            continue;
        }
        out.push(if is_object(&f["type"]) {
            format!("{name} {{ __typename }}")
        } else {
            name.to_string()
        });
        if name == "ssn" {
            out.push("ssn(unmasked: true)".into());
        }
    }
    out
}

/// A page of candidates and `candidate(id)` read only the columns their selection shows. Every
/// field of `Candidate`, and of the `Check`s under it, asked for alone through both answers
/// exactly as the full read behind `check(id)` does, for a candidate and a check with every
/// field filled.
#[tokio::test]
async fn every_field_read_from_its_own_columns_answers_as_a_full_read() {
    let (app, _rx) = screening_app().await;
    let callback = Receiver::start().await;
    app.gql(
        "mutation { updatePartnerSettings(input: {recheckIntervalDays: 30}) { recheckIntervalDays } }",
        json!({}),
    )
    .await
    .data();
    let form_id = form_for(&app, "78701", None).await;
    let (cand, check) = submit_hosted_in(
        &app,
        &form_id,
        "Rosie",
        "Cotton",
        Some(&callback.url),
        "Austin",
    )
    .await;
    app.wait_check_status(&check, "approved").await;
    app.gql(
        "mutation($id: ID!) { updateCandidate(id: $id, input: {middleName: \"May\", zip: \"78701\", state: \"TX\", experience: \"Gardening, 6 years\", interests: \"Deliveries\", transportationMethod: \"bike\", referenceId: \"ref-rosie\"}) { id } }",
        json!({"id": cand}),
    )
    .await
    .data();
    app.gql(
        "mutation($c: ID!) { enrollMonitoring(checkId: $c) { id } }",
        json!({"c": check}),
    )
    .await
    .data();
    app.gql(
        "mutation($c: ID!) { sandboxArrestAlert(checkId: $c, county: \"Alameda\", state: \"CA\", chargeFiled: true) { status } }",
        json!({"c": check}),
    )
    .await
    .data();
    advance(&app, 15);
    app.wait_check_status(&check, "review__cm").await;
    // Cleared after review: approved again, with the monitoring tag and a new recheck date.
    app.transition(&check, "approved").await.data();
    // Other candidates on the page: one whose check has what the hosted form does not set (a
    // reference id), one without checks.
    let other = app.candidate("other@example.com").await;
    let r = app
        .gql(
            "mutation($c: ID!) { startCheck(input: {candidateId: $c, doChecks: false, referenceId: \"chk-other\"}) { id } }",
            json!({"c": other}),
        )
        .await;
    let other_check = r.data()["startCheck"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    app.candidate("no-checks@example.com").await;

    let vars = json!({"id": cand, "k": check, "k2": other_check});
    // Fields the full reads leave empty would not show a column left unread.
    let may_be_empty = ["adverseAction"];
    let node = |page: &Value, at: &str, id: &str| -> Value {
        page[at]
            .as_array()
            .expect("a page")
            .iter()
            .map(|n| if at == "edges" { &n["node"] } else { n })
            .find(|n| n["id"] == id)
            .expect("the candidate on the page")
            .clone()
    };
    for sel in selections(&app, "Candidate", &["checks"]).await {
        let q = format!(
            "query($id: ID!, $k: ID!) {{ candidates(first: 10) {{ edges {{ node {{ id x: {sel} }} }} nodes {{ id x: {sel} }} }} \
             candidate(id: $id) {{ x: {sel} }} check(id: $k) {{ candidate {{ x: {sel} }} }} }}"
        );
        let r = app.gql(&q, json!({"id": cand, "k": check})).await;
        let d = r.data();
        let full = &d["check"]["candidate"]["x"];
        assert!(
            !full.is_null(),
            "the full read of Candidate.{sel} is filled"
        );
        for at in ["edges", "nodes"] {
            let got = &node(&d["candidates"], at, &cand)["x"];
            assert_eq!(got, full, "{at}: Candidate.{sel}");
        }
        assert_eq!(&d["candidate"]["x"], full, "candidate(id): Candidate.{sel}");
    }
    for sel in selections(&app, "Check", &[]).await {
        let q = format!(
            "query($id: ID!, $k: ID!, $k2: ID!) {{ candidates(first: 10) {{ edges {{ node {{ id checks {{ x: {sel} }} }} }} nodes {{ id checks {{ x: {sel} }} }} }} \
             candidate(id: $id) {{ checks {{ x: {sel} }} }} full: check(id: $k) {{ x: {sel} }} full2: check(id: $k2) {{ x: {sel} }} }}"
        );
        let r = app.gql(&q, vars.clone()).await;
        let d = r.data();
        let field = sel.split([' ', '(']).next().expect("a name");
        let empty = |v: &Value| v.is_null() || *v == json!(false) || *v == json!([]);
        if !may_be_empty.contains(&field) {
            assert!(
                !(empty(&d["full"]["x"]) && empty(&d["full2"]["x"])),
                "a full read of Check.{sel} is filled"
            );
        }
        for (of, full) in [(&cand, "full"), (&other, "full2")] {
            let want = json!([{"x": d[full]["x"]}]);
            for at in ["edges", "nodes"] {
                let got = &node(&d["candidates"], at, of)["checks"];
                assert_eq!(*got, want, "{at}: Check.{sel}");
            }
        }
        let want = json!([{"x": d["full"]["x"]}]);
        assert_eq!(d["candidate"]["checks"], want, "candidate(id): Check.{sel}");
    }
}
