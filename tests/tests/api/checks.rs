use std::collections::{HashMap, VecDeque};

use entity::CheckStatus;
use entity::status::{ALL_STATUSES, TRANSITIONS};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

/// The shortest path of legal transitions from `from` to `to` (excluding `from`).
fn path(from: CheckStatus, to: CheckStatus) -> Vec<CheckStatus> {
    let mut prev: HashMap<CheckStatus, CheckStatus> = HashMap::new();
    let mut queue = VecDeque::from([from]);
    while let Some(s) = queue.pop_front() {
        if s == to {
            break;
        }
        for n in s.next_statuses() {
            if *n != from && !prev.contains_key(n) {
                prev.insert(*n, s);
                queue.push_back(*n);
            }
        }
    }
    let mut out = vec![];
    let mut cur = to;
    while cur != from {
        out.push(cur);
        cur = *prev
            .get(&cur)
            .unwrap_or_else(|| panic!("{to} unreachable from {from}"));
    }
    out.reverse();
    out
}

pub(crate) async fn outbox_events(app: &TestApp, aggregate: &str) -> Vec<(String, Value)> {
    let db = app.service.db();
    let rows = db
        .query_all_raw(sea_orm::Statement::from_sql_and_values(
            db.get_database_backend(),
            match db.get_database_backend() {
                sea_orm::DbBackend::Postgres => {
                    "SELECT event_type, payload FROM outbox WHERE aggregate_id = $1 ORDER BY id"
                }
                _ => "SELECT event_type, payload FROM outbox WHERE aggregate_id = ? ORDER BY id",
            },
            [aggregate.into()],
        ))
        .await
        .expect("outbox");
    rows.iter()
        .map(|r| {
            let t: String = r.try_get("", "event_type").expect("type");
            let p: Value = r.try_get("", "payload").expect("payload");
            (t, p)
        })
        .collect()
}

/// Makes one legal move as its owner makes it: a team member's decision through
/// `transitionCheck`; the final adverse-action notice at the end of the waiting period (nobody may
/// send it early); any other move (consent, the searches' outcome, a recheck) by the system, after
/// checking that a team member's `transitionCheck` is refused with a reason.
async fn step_to(app: &TestApp, check: &str, to: CheckStatus) {
    let from = CheckStatus::from_api_str(&app.check_status(check).await).expect("status");
    if from.person_may(to) {
        let r = app.transition(check, to.as_api_str()).await;
        assert_eq!(r.data()["transitionCheck"]["status"], to.as_api_str());
        return;
    }
    let refused = app.transition(check, to.as_api_str()).await;
    refused.expect_err("BAD_USER_INPUT", Some("status"));
    let message = refused.0["errors"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains("by hand") && message.contains("you may choose"),
        "{from} -> {to}: {message}"
    );
    if to == CheckStatus::PendingSecondNotice {
        crate::screening::advance_past_waiting_period(app, check).await;
        app.wait_check_status(check, to.as_api_str()).await;
    } else {
        app.system_moves(check, to.as_api_str()).await;
    }
    assert_eq!(app.check_status(check).await, to.as_api_str());
}

#[tokio::test]
async fn every_legal_transition_is_accepted_and_every_illegal_one_refused() {
    let app = spawn_app().await;
    let mut illegal_tried = std::collections::HashSet::new();
    let mut n = 0;
    for (from, nexts) in TRANSITIONS {
        for to in *nexts {
            n += 1;
            let cand = app.candidate(&format!("walk{n}@example.com")).await;
            let check = app.start_check(&cand, false).await;
            assert_eq!(app.check_status(&check).await, "initiated");
            for step in path(CheckStatus::Initiated, *from) {
                step_to(&app, &check, step).await;
            }
            assert_eq!(app.check_status(&check).await, from.as_api_str());
            if illegal_tried.insert(*from) {
                for bad in ALL_STATUSES.iter().filter(|s| !from.can_transition_to(**s)) {
                    let r = app.transition(&check, bad.as_api_str()).await;
                    r.expect_err("BAD_USER_INPUT", Some("status"));
                    assert_eq!(
                        app.check_status(&check).await,
                        from.as_api_str(),
                        "{from} -> {bad} changed state"
                    );
                }
            }
            step_to(&app, &check, *to).await;
            assert_eq!(
                app.check_status(&check).await,
                to.as_api_str(),
                "{from} -> {to}"
            );
        }
    }
    assert_eq!(
        illegal_tried.len(),
        15,
        "every status but withdrawn (no way out of it) tried as a source"
    );
    // withdrawn is a dead end: nothing leaves it.
    let cand = app.candidate("dead-end@example.com").await;
    let check = app.start_check(&cand, true).await;
    app.transition(&check, "withdrawn").await.data();
    for s in ALL_STATUSES {
        app.transition(&check, s.as_api_str())
            .await
            .expect_err("BAD_USER_INPUT", Some("status"));
    }
}

#[tokio::test]
async fn history_and_outbox_are_written_with_each_change() {
    let app = spawn_app().await;
    let cand = app.candidate("hist@example.com").await;
    let created = outbox_events(&app, &cand).await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].0, "candidate.created");
    assert_eq!(created[0].1["email"], "hist@example.com");

    let check = app.start_check(&cand, true).await;
    // The candidate's consent and the searches are the system's moves; the decision on the
    // review is the team member's.
    for s in ["consent", "processing", "review"] {
        app.system_moves(&check, s).await;
    }
    app.transition(&check, "pending").await.data();
    let me = app.gql("{ me { subject email } }", json!({})).await;
    let subject = me.data()["me"]["subject"]
        .as_str()
        .expect("subject")
        .to_string();
    let h = app
        .gql("query($id: ID!) { check(id: $id) { status statusLabel history { fromStatus toStatus actorId actorEmail reason at } } }", json!({"id": check}))
        .await;
    let d = &h.data()["check"];
    assert_eq!(d["statusLabel"], "Consider");
    let hist = d["history"].as_array().expect("history");
    let pairs: Vec<(Value, Value)> = hist
        .iter()
        .map(|e| (e["fromStatus"].clone(), e["toStatus"].clone()))
        .collect();
    assert_eq!(
        pairs,
        vec![
            (Value::Null, json!("emailed")),
            (json!("emailed"), json!("consent")),
            (json!("consent"), json!("processing")),
            (json!("processing"), json!("review")),
            (json!("review"), json!("pending")),
        ]
    );
    let actors: Vec<(Value, Value)> = hist
        .iter()
        .map(|e| (e["actorId"].clone(), e["actorEmail"].clone()))
        .collect();
    let admin = (json!(subject), json!("admin@demo.clearhire.dev"));
    let system = (json!("system"), Value::Null);
    assert_eq!(
        actors,
        [admin.clone(), system.clone(), system.clone(), system, admin]
    );
    assert_eq!(hist[1]["reason"], "test");

    let events = outbox_events(&app, &check).await;
    let types: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        types,
        [
            "check.created",
            "check.status_changed",
            "check.status_changed",
            "check.status_changed",
            "check.status_changed",
            "check.status_changed"
        ]
    );
    assert_eq!(
        events[2].1["team_member_email"],
        Value::Null,
        "consent is no team member's"
    );
    let last = &events[5].1;
    assert_eq!(last["original_state"], "review");
    assert_eq!(last["state"], "pending");
    assert_eq!(last["worker_id"], cand.as_str());
    assert_eq!(last["worker_email"], "hist@example.com");
    assert_eq!(last["team_member_email"], "admin@demo.clearhire.dev");
    assert!(last["timestamp"].is_i64());
    assert_eq!(
        last["dashboard_url"],
        format!("http://{}/workers/{cand}", app.addr)
    );
    assert!(last["criminal_monitoring_triggered"].is_boolean());
    // Consent recorded its date; events carry it as YYYY-MM-DD, as the seed does.
    let consent = app
        .gql(
            "query($id: ID!) { check(id: $id) { consentDate } }",
            json!({"id": check}),
        )
        .await;
    let at = consent.data()["check"]["consentDate"]
        .as_str()
        .expect("consent date set")
        .to_string();
    assert_eq!(last["consent_date"], at[..10]);
    assert_eq!(
        events[1].1["consent_date"],
        Value::Null,
        "no consent date before consent"
    );
    // Refused transitions write nothing.
    let before = app.count_rows("outbox").await;
    let hist_before = app.count_rows("check_status_history").await;
    app.transition(&check, "rejected")
        .await
        .expect_err("BAD_USER_INPUT", Some("status"));
    assert_eq!(app.count_rows("outbox").await, before);
    assert_eq!(app.count_rows("check_status_history").await, hist_before);
}

#[tokio::test]
async fn start_check_defaults_conflicts_and_package_rules() {
    let app = spawn_app().await;
    let cand = app.candidate("start@example.com").await;
    let r = app
        .gql(
            "mutation($c: ID!) { startCheck(input: {candidateId: $c, callbackUrl: \"https://partner.example.com/hooks/turn\", referenceId: \"chk-1\"}) { id status callbackUrl referenceId package { id isDefault } candidate { id } consentDate recheckDate cmCriminalEnroll criminalMonitoringTriggered report nextStatuses } }",
            json!({"c": cand}),
        )
        .await;
    let c = &r.data()["startCheck"];
    assert_eq!(c["status"], "emailed");
    assert_eq!(c["package"]["isDefault"], true);
    assert_eq!(c["candidate"]["id"], cand.as_str());
    assert_eq!(c["callbackUrl"], "https://partner.example.com/hooks/turn");
    assert!(
        c["consentDate"].is_null() && c["recheckDate"].is_null() && c["cmCriminalEnroll"].is_null()
    );
    assert_eq!(c["criminalMonitoringTriggered"], false);
    assert!(c["report"].is_null());
    // Consent is the candidate's to give: a team member may only withdraw an emailed check.
    assert_eq!(c["nextStatuses"], json!(["withdrawn"]));
    let first = c["id"].as_str().expect("id").to_string();

    // One active check at a time.
    let dup = app
        .gql(
            "mutation($c: ID!) { startCheck(input: {candidateId: $c}) { id } }",
            json!({"c": cand}),
        )
        .await;
    dup.expect_err("CONFLICT", Some("candidateId"));
    assert_eq!(
        dup.0["errors"][0]["extensions"]["existingId"],
        first.as_str()
    );
    app.transition(&first, "withdrawn").await.data();
    let second = app.start_check(&cand, true).await;
    assert_ne!(second, first);

    // Named, unknown and archived packages.
    let p = app.gql("mutation { createPackage(input: {name: \"Drivers\", searches: [mvr, criminal]}) { id } }", json!({})).await;
    let pkg = p.data()["createPackage"]["id"]
        .as_str()
        .expect("pkg")
        .to_string();
    let other = app.candidate("driver@example.com").await;
    app.gql("mutation($c: ID!) { startCheck(input: {candidateId: $c, packageId: \"P0000000000\"}) { id } }", json!({"c": other}))
        .await
        .expect_err("BAD_USER_INPUT", Some("packageId"));
    app.gql(
        "mutation($p: ID!) { archivePackage(id: $p) { archivedAt } }",
        json!({"p": pkg}),
    )
    .await
    .data();
    app.gql(
        "mutation($c: ID!, $p: ID!) { startCheck(input: {candidateId: $c, packageId: $p}) { id } }",
        json!({"c": other, "p": pkg}),
    )
    .await
    .expect_err("BAD_USER_INPUT", Some("packageId"));
    assert_eq!(app.count_rows("checks").await, 2);
}

#[tokio::test]
async fn concurrent_transitions_of_one_check_have_one_winner() {
    let app = spawn_app().await;
    let system = service::Actor::system(&app.partner_id);
    for i in 0..5 {
        let cand = app.candidate(&format!("race{i}@example.com")).await;
        let check = app.start_check(&cand, true).await;
        // The same move twice at once (consent, whose effects need a transaction): whichever
        // commits second finds it no longer legal.
        let consent = || {
            app.service
                .transition_check(&system, &check, CheckStatus::Consent, None)
        };
        let (a, b) = tokio::join!(consent(), consent());
        assert_eq!(
            [&a, &b].iter().filter(|r| r.is_ok()).count(),
            1,
            "{a:?} / {b:?}"
        );
        let loser = if a.is_err() { a } else { b };
        assert!(
            matches!(
                loser,
                Err(service::ServiceError::Conflict { .. } | service::ServiceError::Invalid { .. })
            ),
            "{loser:?}"
        );
        let h = app
            .gql(
                "query($id: ID!) { check(id: $id) { history { toStatus } } }",
                json!({"id": check}),
            )
            .await;
        assert_eq!(h.data()["check"]["history"].as_array().expect("h").len(), 2);
    }
}

#[tokio::test]
async fn concurrent_withdrawals_write_one_history_row_and_one_event() {
    // On PostgreSQL a withdrawal is one statement outside a transaction, its history, event and
    // effects written only if its update matched: a loser that read the check before the winner
    // changed it writes nothing. On SQLite the write lock orders them.
    let app = spawn_app().await;
    let mut conflicts = 0;
    for i in 0..5 {
        let cand = app.candidate(&format!("withdraw{i}@example.com")).await;
        let check = app.start_check(&cand, true).await;
        let waiting = || async {
            app.dump("tasks")
                .await
                .into_iter()
                .filter(|t| t["check_id"] == check.as_str() && t["kind"] != "mail.send")
                .filter(|t| t["status"] == "pending" || t["status"] == "queued")
                .count()
        };
        // (Mail already written still goes out after a withdrawal.)
        assert!(
            waiting().await > 0,
            "the invitation's reminders are scheduled"
        );
        let tries =
            futures_util::future::join_all((0..8).map(|_| app.transition(&check, "withdrawn")))
                .await;
        let wins = tries.iter().filter(|g| g.0.get("errors").is_none()).count();
        assert_eq!(
            wins,
            1,
            "{:?}",
            tries.iter().map(|g| &g.0).collect::<Vec<_>>()
        );
        for lost in tries.iter().filter(|g| g.0.get("errors").is_some()) {
            assert!(
                ["CONFLICT", "BAD_USER_INPUT"].contains(&lost.code()),
                "{}",
                lost.0
            );
            conflicts += usize::from(lost.code() == "CONFLICT");
        }
        let h = app
            .gql(
                "query($id: ID!) { check(id: $id) { status history { toStatus } } }",
                json!({"id": check}),
            )
            .await;
        assert_eq!(h.data()["check"]["status"], "withdrawn");
        let to: Vec<&str> = h.data()["check"]["history"]
            .as_array()
            .expect("history")
            .iter()
            .map(|e| e["toStatus"].as_str().expect("toStatus"))
            .collect();
        assert_eq!(to, ["emailed", "withdrawn"]);
        let withdrawals = outbox_events(&app, &check)
            .await
            .into_iter()
            .filter(|(t, p)| t == "check.status_changed" && p["state"] == "withdrawn")
            .count();
        assert_eq!(withdrawals, 1, "one event for the one withdrawal");
        // The winner's effects ran: the invitation's reminders are cancelled.
        assert_eq!(waiting().await, 0, "timed steps of a withdrawn check");
    }
    eprintln!("{conflicts} losing withdrawals read the check before the winner changed it");
}

#[tokio::test]
async fn check_statuses_describe_the_table_with_labels() {
    let app = spawn_app().await;
    let r = app
        .gql(
            "{ checkStatuses { status label next byHand active } }",
            json!({}),
        )
        .await;
    let list = r.data()["checkStatuses"].as_array().expect("list").clone();
    assert_eq!(list.len(), 16);
    let get = |s: &str| list.iter().find(|e| e["status"] == s).cloned().expect(s);
    assert_eq!(get("pending")["label"], "Consider");
    assert_eq!(get("review__identity")["label"], "Verifying");
    assert_eq!(get("review__mvr")["label"], "Compliance Review");
    assert_eq!(
        get("pending__first_notice")["next"],
        json!(["pending__second_notice", "approved", "withdrawn"])
    );
    assert_eq!(
        get("pending__first_notice")["byHand"],
        json!(["approved", "withdrawn"])
    );
    assert_eq!(get("processing")["byHand"], json!(["withdrawn"]));
    assert_eq!(
        get("review__identity")["byHand"],
        json!(["pending", "withdrawn"])
    );
    assert_eq!(get("withdrawn")["next"], json!([]));
    assert_eq!(get("approved")["active"], false);
}

/// A candidate has at most one check in progress: a check that was over and would run again
/// (a recheck, a decision reopened) beside one started since is refused, and two checks
/// started at once (PostgreSQL runs them side by side) make one.
#[tokio::test]
async fn a_candidate_never_has_two_checks_in_progress() {
    let app = spawn_app().await;
    let cand = app.candidate("one-at-a-time@example.com").await;
    let first = app.start_check(&cand, false).await;
    for s in ["consent", "processing", "approved"] {
        app.system_moves(&first, s).await;
    }
    let second = app.start_check(&cand, false).await;
    let recheck = app
        .gql(
            "mutation($c: ID!) { recheckCheck(checkId: $c) { status } }",
            json!({"c": first}),
        )
        .await;
    recheck.expect_err("CONFLICT", Some("candidateId"));
    assert_eq!(
        recheck.0["errors"][0]["extensions"]["existingId"],
        second.as_str()
    );
    assert_eq!(app.check_status(&first).await, "approved");
    // Once the second is over, the first may run again.
    app.transition(&second, "withdrawn").await.data();
    app.gql(
        "mutation($c: ID!) { recheckCheck(checkId: $c) { status } }",
        json!({"c": first}),
    )
    .await
    .data();
    assert_eq!(app.check_status(&first).await, "processing");

    let other = app.candidate("at-once@example.com").await;
    let start = |_: usize| {
        app.gql(
            "mutation($c: ID!) { startCheck(input: {candidateId: $c}) { id } }",
            json!({"c": other}),
        )
    };
    let answers = futures_util::future::join_all((0..8).map(start)).await;
    let started = answers
        .iter()
        .filter(|a| a.0.get("errors").is_none())
        .count();
    assert_eq!(started, 1, "{answers:?}");
    for a in answers.iter().filter(|a| a.0.get("errors").is_some()) {
        a.expect_err("CONFLICT", Some("candidateId"));
    }

    // A recheck of a finished check and a new check for its candidate at once: one runs.
    for round in 0..5 {
        let cand = app
            .candidate(&format!("recheck-race-{round}@example.com"))
            .await;
        let done = app.start_check(&cand, false).await;
        for s in ["consent", "processing", "approved"] {
            app.system_moves(&done, s).await;
        }
        let (recheck, start) = tokio::join!(
            app.gql(
                "mutation($c: ID!) { recheckCheck(checkId: $c) { status } }",
                json!({"c": done}),
            ),
            app.gql(
                "mutation($c: ID!) { startCheck(input: {candidateId: $c}) { id } }",
                json!({"c": cand}),
            )
        );
        let ran = [&recheck, &start]
            .iter()
            .filter(|r| r.0.get("errors").is_none())
            .count();
        assert_eq!(ran, 1, "round {round}: {} / {}", recheck.0, start.0);
        let active = app
            .gql(
                "query($c: ID!) { candidate(id: $c) { checks { status } } }",
                json!({"c": cand}),
            )
            .await;
        let in_progress = active.data()["candidate"]["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .filter(|c| c["status"] != "approved")
            .count();
        // (A recheck that won may already be screened and approved again.)
        assert!(in_progress <= 1, "round {round}: {}", active.0);
    }
}

/// Monitoring follows the worker, as Turn enrolls a worker: of two of a candidate's approved
/// checks enrolled at once (PostgreSQL runs them side by side), one is enrolled and the other
/// answers CONFLICT naming it.
#[tokio::test]
async fn a_worker_is_enrolled_in_monitoring_through_one_check_at_a_time() {
    let app = spawn_app().await;
    let cand = app.candidate("enrolled-once@example.com").await;
    let mut checks = Vec::new();
    for _ in 0..2 {
        let check = app.start_check(&cand, false).await;
        for s in ["consent", "processing", "approved"] {
            app.system_moves(&check, s).await;
        }
        checks.push(check);
    }
    let enroll = |c: &str| {
        app.gql(
            "mutation($c: ID!) { enrollMonitoring(checkId: $c) { id cmCriminalEnroll } }",
            json!({"c": c}),
        )
    };
    for _ in 0..5 {
        let (a, b) = tokio::join!(enroll(&checks[0]), enroll(&checks[1]));
        let won: Vec<&str> = [&a, &b]
            .iter()
            .filter(|r| r.0.get("errors").is_none())
            .map(|r| r.data()["enrollMonitoring"]["id"].as_str().expect("id"))
            .collect();
        assert_eq!(won.len(), 1, "{} / {}", a.0, b.0);
        let lost = if a.0.get("errors").is_some() { &a } else { &b };
        lost.expect_err("CONFLICT", Some("checkId"));
        assert_eq!(lost.0["errors"][0]["extensions"]["existingId"], won[0]);
        let enrolled = app
            .gql(
                "{ monitoringEnrollments(first: 10) { totalCount } }",
                json!({}),
            )
            .await;
        assert_eq!(enrolled.data()["monitoringEnrollments"]["totalCount"], 1);
        app.gql(
            "mutation($c: ID!) { unenrollMonitoring(checkId: $c) { id } }",
            json!({"c": won[0]}),
        )
        .await
        .data();
    }
}
