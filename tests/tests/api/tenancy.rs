//! One partner never sees another's data, not even as a different error: every query and
//! mutation given another partner's id answers exactly as for an id that does not exist.
use serde_json::{Value, json};

use crate::helpers::{Gql, spawn_app};

fn error_shape(g: &Gql) -> Value {
    let e = &g.0["errors"][0];
    assert!(!e.is_null(), "expected an error: {}", g.0);
    json!({"message": e["message"], "code": e["extensions"]["code"], "field": e["extensions"]["field"]})
}

#[tokio::test]
async fn another_partners_ids_answer_as_missing_ids() {
    let app = spawn_app().await;
    // Partner A's data.
    let cand = app
        .gql("mutation { createCandidate(input: {firstName: \"A\", lastName: \"A\", email: \"a@a-partner.example.com\", referenceId: \"ref-a\"}) { id turnId } }", json!({}))
        .await;
    let cand_id = cand.data()["createCandidate"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let turn_id = cand.data()["createCandidate"]["turnId"]
        .as_str()
        .expect("turn")
        .to_string();
    let check_id = app.start_check(&cand_id, true).await;
    let pkg = app
        .gql(
            "mutation { createPackage(input: {name: \"Extra\", searches: [mvr]}) { id } }",
            json!({}),
        )
        .await;
    let pkg_id = pkg.data()["createPackage"]["id"]
        .as_str()
        .expect("pkg")
        .to_string();
    let member = app.gql("mutation { inviteTeamMember(input: {email: \"m@a.example.com\", role: team_member}) { id } }", json!({})).await;
    let member_id = member.data()["inviteTeamMember"]["id"]
        .as_str()
        .expect("member")
        .to_string();
    let tokens = app.gql("{ apiTokens { id } }", json!({})).await;
    let token_id = tokens.data()["apiTokens"][0]["id"]
        .as_str()
        .expect("token")
        .to_string();

    let (_, b) = app.other_partner().await;
    let missing_uuid = uuid::Uuid::new_v4().to_string();

    // (operation, variables with A's id, variables with a missing id)
    let cases: Vec<(&str, Value, Value)> = vec![
        (
            "query($id: ID!) { candidate(id: $id) { id } }",
            json!({"id": cand_id}),
            json!({"id": missing_uuid}),
        ),
        (
            "query($t: String!) { candidate(turnId: $t) { id } }",
            json!({"t": turn_id}),
            json!({"t": "C0000000000"}),
        ),
        (
            "query($r: String!) { candidate(referenceId: $r) { id } }",
            json!({"r": "ref-a"}),
            json!({"r": "ref-missing"}),
        ),
        // With its checks: one join, the partner checked on its rows.
        (
            "query($id: ID!) { candidate(id: $id) { id checks { id } } }",
            json!({"id": cand_id}),
            json!({"id": missing_uuid}),
        ),
        (
            "query($id: ID!) { check(id: $id) { id } }",
            json!({"id": check_id}),
            json!({"id": missing_uuid}),
        ),
        (
            "query($id: ID!) { package(id: $id) { id } }",
            json!({"id": pkg_id}),
            json!({"id": "P0000000000"}),
        ),
        (
            "mutation($id: ID!) { updateCandidate(id: $id, input: {firstName: \"X\"}) { id } }",
            json!({"id": cand_id}),
            json!({"id": missing_uuid}),
        ),
        (
            "mutation($id: ID!) { startCheck(input: {candidateId: $id}) { id } }",
            json!({"id": cand_id}),
            json!({"id": missing_uuid}),
        ),
        (
            "mutation($id: ID!) { transitionCheck(input: {checkId: $id, status: withdrawn}) { id } }",
            json!({"id": check_id}),
            json!({"id": missing_uuid}),
        ),
        (
            "mutation($id: ID!) { updatePackage(id: $id, input: {name: \"Mine\"}) { id } }",
            json!({"id": pkg_id}),
            json!({"id": "P0000000000"}),
        ),
        (
            "mutation($id: ID!) { archivePackage(id: $id) { id } }",
            json!({"id": pkg_id}),
            json!({"id": "P0000000000"}),
        ),
        (
            "mutation($id: ID!) { changeTeamMemberRole(id: $id, role: admin) { id } }",
            json!({"id": member_id}),
            json!({"id": missing_uuid}),
        ),
        (
            "mutation($id: ID!) { removeTeamMember(id: $id) { id } }",
            json!({"id": member_id}),
            json!({"id": missing_uuid}),
        ),
        (
            "mutation($id: ID!) { revokeApiToken(id: $id) { id } }",
            json!({"id": token_id}),
            json!({"id": missing_uuid}),
        ),
    ];
    // Every mutation on a check, whatever state it needs, refuses another partner's as missing
    // before it looks at the state.
    let mut cases: Vec<(String, Value, Value)> = cases
        .into_iter()
        .map(|(q, a, m)| (q.to_owned(), a, m))
        .collect();
    for op in [
        "sendInvitation(checkId: $id) { id }",
        "runCheck(checkId: $id) { id }",
        "issueConsentLink(checkId: $id) { url }",
        "resumeChecks(checkId: $id) { id }",
        "recheckCheck(checkId: $id) { id }",
        "startAdverseAction(checkId: $id) { id }",
        "cancelAdverseAction(checkId: $id) { id }",
        "disputeAdverseAction(checkId: $id, reason: \"not me\") { state }",
        "enrollMonitoring(checkId: $id) { id }",
        "unenrollMonitoring(checkId: $id) { id }",
        "sandboxArrestAlert(checkId: $id, county: \"Travis\", state: \"TX\") { status }",
    ] {
        cases.push((
            format!("mutation($id: ID!) {{ {op} }}"),
            json!({"id": check_id}),
            json!({"id": missing_uuid}),
        ));
    }
    for (q, theirs, missing) in &cases {
        let a = app.gql_as(Some(&b), q, theirs.clone()).await;
        let m = app.gql_as(Some(&b), q, missing.clone()).await;
        assert_eq!(error_shape(&a), error_shape(&m), "{q}");
        assert!(
            a.0["data"].is_null()
                || a.0["data"]
                    .as_object()
                    .is_some_and(|o| o.values().all(Value::is_null)),
            "{q}: {}",
            a.0
        );
    }

    // Lists show only B's own rows.
    let lists = app
        .gql_as(Some(&b), "{ candidates(first: 100) { totalCount edges { node { id } } } packages(includeArchived: true) { id } teamMembers { email } apiTokens { id } me { partner { name } } }", json!({}))
        .await;
    let d = lists.data();
    assert_eq!(d["candidates"]["totalCount"], 0);
    assert!(!d["packages"].to_string().contains(&pkg_id));
    assert!(!d["teamMembers"].to_string().contains("m@a.example.com"));
    assert!(!d["apiTokens"].to_string().contains(&token_id));
    assert_eq!(d["me"]["partner"]["name"], "Other Partner");

    // B may use the same email and reference id: uniqueness is per partner.
    let b_cand = app.gql_as(
        Some(&b),
        "mutation { createCandidate(input: {firstName: \"B\", lastName: \"B\", email: \"a@a-partner.example.com\", referenceId: \"ref-a\"}) { id } }",
        json!({}),
    )
    .await;
    let b_cand_id = b_cand.data()["createCandidate"]["id"].clone();
    // The key now selects a row of each partner; each partner finds its own, and a second one
    // of its own still conflicts.
    let by_ref = "query { candidate(referenceId: \"ref-a\") { id checks { status } } }";
    let mine = app.gql(by_ref, json!({})).await;
    assert_eq!(mine.data()["candidate"]["id"], cand_id.as_str());
    assert_eq!(mine.data()["candidate"]["checks"][0]["status"], "emailed");
    let theirs = app.gql_as(Some(&b), by_ref, json!({})).await;
    assert_eq!(theirs.data()["candidate"]["id"], b_cand_id);
    // B's candidate has no checks, and none of A's.
    assert_eq!(theirs.data()["candidate"]["checks"], json!([]));
    let again = app.gql_as(
        Some(&b),
        "mutation { createCandidate(input: {firstName: \"B\", lastName: \"Two\", email: \"a@a-partner.example.com\"}) { id } }",
        json!({}),
    )
    .await;
    again.expect_err("CONFLICT", Some("email"));
    assert_eq!(
        again.0["errors"][0]["extensions"]["existingId"], b_cand_id,
        "{}",
        again.0
    );

    // Nor can B use A's package for its own candidate, or mint a token for A's member. (A
    // refusal may quote the id it was given.)
    for (q, theirs, missing, (their_id, missing_id)) in [
        (
            "mutation($c: ID!, $p: ID!) { startCheck(input: {candidateId: $c, packageId: $p}) { id } }",
            json!({"c": b_cand_id, "p": pkg_id}),
            json!({"c": b_cand_id, "p": "P0000000000"}),
            (&pkg_id, "P0000000000"),
        ),
        (
            "mutation($p: ID!) { createConsentForm(zipcode: \"78701\", packageId: $p) { formId } }",
            json!({"p": pkg_id}),
            json!({"p": "P0000000000"}),
            (&pkg_id, "P0000000000"),
        ),
        (
            "mutation($u: ID!) { createApiToken(input: {name: \"t\", role: team_member, userId: $u}) { token } }",
            json!({"u": member_id}),
            json!({"u": missing_uuid}),
            (&member_id, missing_uuid.as_str()),
        ),
    ] {
        let a = app.gql_as(Some(&b), q, theirs).await;
        let m = app.gql_as(Some(&b), q, missing).await;
        let mut shape = error_shape(&a);
        shape["message"] = json!(
            shape["message"]
                .as_str()
                .expect("message")
                .replace(their_id.as_str(), missing_id)
        );
        assert_eq!(shape, error_shape(&m), "{q}");
    }
    // A's check's mail is not B's, and B enrolls nothing of A's.
    let b_view = app
        .gql_as(
            Some(&b),
            "query($c: ID) { emails(checkId: $c) { id } monitoringEnrollments { totalCount } }",
            json!({"c": check_id}),
        )
        .await;
    assert_eq!(
        b_view.data().clone(),
        json!({"emails": [], "monitoringEnrollments": {"totalCount": 0}})
    );
    assert!(
        !app.gql(
            "query($c: ID) { emails(checkId: $c) { id } }",
            json!({"c": check_id})
        )
        .await
        .data()["emails"]
            .as_array()
            .expect("emails")
            .is_empty(),
        "A's own check has its invitation"
    );

    // And A's data is untouched by B's attempts.
    let a = app
        .gql(
            "query($id: ID!) { candidate(id: $id) { firstName checks { status } } }",
            json!({"id": cand_id}),
        )
        .await;
    assert_eq!(a.data()["candidate"]["firstName"], "A");
    assert_eq!(a.data()["candidate"]["checks"][0]["status"], "emailed");
}
