//! The candidate-facing pages: the consent page an invitation links to (the FCRA sections in
//! order, each acknowledged, then the missing details and the signature) and the candidate's
//! copy of their report with a dispute form. Plain server-rendered HTML forms; the one script is
//! the signature pad, which only adds drawing as an alternative to typing one's name.
use std::sync::LazyLock;

use base64::Engine;
use poem::http::{HeaderMap, StatusCode};
use poem::web::{Data, Html, Path, RemoteAddr};
use poem::{Body, IntoResponse, Response, handler};
use service::Service;
use service::adverse::DisputeWindow;
use service::screen::{
    ConsentDetails, ConsentPurpose, ConsentSubmission, ConsentView, LinkProblem,
};
use service::screening::disclosures::escape_html as esc;

use crate::client_ip::TrustedProxies;

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:44rem;margin:2rem auto;\
padding:0 1rem;line-height:1.5;color:#1b1b1b}label{display:block;margin-top:1rem;font-weight:600}\
input[type=text]{display:block;width:100%;padding:.5rem;font-size:1rem;\
border:1px solid #555;border-radius:4px}.check label{display:inline;font-weight:400}\
.error{color:#a00000;font-weight:600}.copy{border:1px solid #ccc;padding:1rem;max-height:24rem;\
overflow:auto}button{margin-top:1.5rem;padding:.6rem 1.4rem;font-size:1rem}\
[aria-invalid=true]{border-color:#a00000}:focus{outline:3px solid #1a5fb4;outline-offset:2px}\
canvas{display:block;width:100%;max-width:600px;height:auto;margin-top:.5rem;background:#fff;\
border:1px solid #555;border-radius:4px;touch-action:none}#pad button{margin-top:.5rem}";

/// The signature pad: shown only when scripts run, it turns strokes on the canvas into a PNG
/// data URL in the hidden `signature_image` field, and while a drawing is there the typed name
/// is no longer required. After a refused submission it redraws the kept image.
const PAD_SCRIPT: &str = "(function(){var pad=document.getElementById('pad'),\
c=document.getElementById('pad-canvas'),img=document.getElementById('signature_image'),\
typed=document.getElementById('signature'),x=c&&c.getContext&&c.getContext('2d');if(!x)return;\
pad.hidden=false;var down=false,last=null;\
function blank(){x.fillStyle='#fff';x.fillRect(0,0,c.width,c.height);x.fillStyle='#000';\
x.strokeStyle='#000';x.lineWidth=3;x.lineCap='round';x.lineJoin='round';}\
function sync(drawn){img.value=drawn?c.toDataURL('image/png'):'';typed.required=!drawn;}\
function at(e){var r=c.getBoundingClientRect();\
return[(e.clientX-r.left)*c.width/r.width,(e.clientY-r.top)*c.height/r.height];}\
blank();\
c.addEventListener('pointerdown',function(e){down=true;last=at(e);\
if(c.setPointerCapture)c.setPointerCapture(e.pointerId);x.beginPath();\
x.arc(last[0],last[1],1.5,0,2*Math.PI);x.fill();e.preventDefault();});\
c.addEventListener('pointermove',function(e){if(!down)return;var p=at(e);x.beginPath();\
x.moveTo(last[0],last[1]);x.lineTo(p[0],p[1]);x.stroke();last=p;});\
function end(){if(down){down=false;sync(true);}}\
c.addEventListener('pointerup',end);c.addEventListener('pointercancel',end);\
document.getElementById('pad-clear').addEventListener('click',function(){blank();sync(false);});\
if(img.value){var i=new Image();i.onload=function(){x.drawImage(i,0,0);sync(true);};\
i.src=img.value;}})();";

/// The largest form body taken: room for a drawn signature (a PNG data URL of up to 2 MB, made
/// longer by form encoding).
pub(crate) const FORM_MAX: usize = 3 * 1024 * 1024;

/// What the pages may load and run: their own style and the signature pad's script (by hash),
/// images from data URLs (the pad redraws a kept drawing), forms posted back to this server, and
/// never inside another site's frame (a page with a signing link in it must not be
/// clickjacked).
static CONTENT_SECURITY_POLICY: LazyLock<String> = LazyLock::new(|| {
    use sha2::Digest;
    let hash = |s: &str| base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(s));
    format!(
        "default-src 'none'; style-src 'sha256-{}'; script-src 'sha256-{}'; img-src data:; \
         form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        hash(STYLE),
        hash(PAD_SCRIPT)
    )
});

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    // A refused form says so in its title, which is what a screen reader announces first.
    let error = if status == StatusCode::UNPROCESSABLE_ENTITY {
        "Error: "
    } else {
        ""
    };
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{error}{t}</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>",
        t = esc(title),
    );
    // Pages show what the candidate typed (a refused form keeps its values) and come from a
    // link that is a credential: neither is kept by a cache nor sent on as a referrer.
    Html(html)
        .with_status(status)
        .with_header("cache-control", "no-store")
        .with_header("referrer-policy", "no-referrer")
        .with_header("content-security-policy", CONTENT_SECURITY_POLICY.as_str())
        .with_header("x-frame-options", "DENY")
        .with_header("x-content-type-options", "nosniff")
        .into_response()
}

/// The page of a consent link that does not work.
fn problem_page(p: LinkProblem) -> Response {
    link_problem_page(
        p,
        "This link has expired or was replaced by a newer one. If you still need to sign, ask the company that asked for your background check, or the screening agency, for a new link.",
    )
}

/// The page of a report link that does not work: an expired one is not about signing.
fn report_problem_page(p: LinkProblem) -> Response {
    link_problem_page(
        p,
        "This link to your report has expired. You may ask the screening agency for a free copy of your report, and dispute anything in it with them.",
    )
}

/// What a link that does not work says, `expired` when it has expired.
fn link_problem_page(p: LinkProblem, expired: &str) -> Response {
    let (status, title, text) = match p {
        LinkProblem::Unknown => (
            StatusCode::NOT_FOUND,
            "Link not found",
            "This link is not valid. Check that you opened the whole link from your email.",
        ),
        LinkProblem::Expired => (StatusCode::GONE, "Link expired", expired),
        LinkProblem::Used => (
            StatusCode::GONE,
            "Link already used",
            "You already signed with this link. Nothing more is needed from you.",
        ),
        LinkProblem::NotNeeded => (
            StatusCode::GONE,
            "Nothing to sign",
            "This background check no longer needs your consent.",
        ),
        LinkProblem::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Please try again",
            "We could not open this page just now. Your link still works: please try again in a few minutes.",
        ),
    };
    let response = page(
        status,
        title,
        &format!("<h1>{}</h1><p>{}</p>", esc(title), esc(text)),
    );
    if p == LinkProblem::Unavailable {
        response.with_header("retry-after", "60").into_response()
    } else {
        response
    }
}

/// Parsed `application/x-www-form-urlencoded` body.
async fn form(body: Body) -> Vec<(String, String)> {
    match body.into_bytes().await {
        Ok(b) if b.len() <= FORM_MAX => url::form_urlencoded::parse(&b).into_owned().collect(),
        _ => Vec::new(),
    }
}

fn field_label(f: &str) -> (&'static str, &'static str, &'static str) {
    // (label, input type, autocomplete/hint)
    match f {
        "date_of_birth" => ("Date of birth (YYYY-MM-DD)", "text", "bday"),
        "ssn" => ("Social Security number", "text", "off"),
        "address" => ("Street address", "text", "street-address"),
        "city" => ("City", "text", "address-level2"),
        "state" => ("State (two letters, e.g. CA)", "text", "address-level1"),
        "zip" => ("ZIP code", "text", "postal-code"),
        "drivers_license_number" => ("Driver's license number", "text", "off"),
        "drivers_license_state" => ("State that issued your driver's license", "text", "off"),
        _ => ("", "text", "off"),
    }
}

/// What the candidate is consenting to, as each step's heading names it.
fn consent_subject(view: &ConsentView) -> String {
    match view.purpose {
        ConsentPurpose::Screening => format!("background check for {}", esc(&view.partner_name)),
        ConsentPurpose::Recheck => format!(
            "a new background check for {}, an update of your earlier one",
            esc(&view.partner_name)
        ),
        ConsentPurpose::MonitoringRecheck => format!(
            "an update of your background check for {}: a new search of county court records",
            esc(&view.partner_name)
        ),
    }
}

fn render_consent(
    token: &str,
    view: &ConsentView,
    error: Option<&str>,
    field_errors: &[(String, String)],
    values: &[(String, String)],
) -> Response {
    let status = if error.is_some() || !field_errors.is_empty() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let total = view.sections.len();
    if let Some(section) = view.next_section() {
        // A signature posted while a section is still due (a stale tab, a direct post) comes
        // back to that section, saying why.
        let error = error.or_else(|| {
            field_errors
                .iter()
                .find(|(k, _)| k == "sections")
                .map(|(_, m)| m.as_str())
        });
        let step = view
            .sections
            .iter()
            .position(|s| s.key == section.key)
            .unwrap_or(0)
            + 1;
        let mut boxes = String::new();
        for (i, b) in section.checkboxes.iter().enumerate() {
            // A refused page keeps the boxes the candidate ticked (an optional one too: the
            // copy of the report they asked for); the refusal's message is tied to the required
            // ones left unticked, so a screen reader reads it with each.
            let name = format!("box{i}");
            let ticked = values.iter().any(|(k, v)| *k == name && v == "on");
            let required = section.required_checkboxes.contains(b);
            let state = match (ticked, error.is_some() && required) {
                (true, _) => " checked",
                (false, true) => " aria-invalid=\"true\" aria-describedby=\"err\"",
                (false, false) => "",
            };
            // Checkbox labels are our own HTML (they may carry links to terms).
            boxes.push_str(&format!(
                "<div class=\"check\"><input type=\"checkbox\" id=\"{name}\" name=\"{name}\" value=\"on\"{state}> \
                 <label for=\"{name}\">{b}</label></div>"
            ));
        }
        let err = error
            .map(|e| {
                format!(
                    "<p class=\"error\" role=\"alert\" id=\"err\">{}</p>",
                    esc(e)
                )
            })
            .unwrap_or_default();
        let body = format!(
            "<p>Step {step} of {steps}: {subject}</p>\
             <h1>{title}</h1>{err}<div class=\"copy\" role=\"region\" tabindex=\"0\" aria-label=\"{title}\">{copy}</div>\
             <form method=\"post\" action=\"/consent/{token}/sections/{key}\">\
             <fieldset><legend>Please confirm</legend>{boxes}</fieldset>\
             <button type=\"submit\">I agree, continue</button></form>",
            steps = total + 1,
            subject = consent_subject(view),
            title = esc(&section.title),
            copy = section.copy_html,
            key = section.key,
            token = esc(token),
        );
        return page(status, &section.title, &body);
    }
    // What the candidate typed comes back with a refusal, except the SSN: a page is not where
    // it should sit (typed again, as the field's note says).
    let value = |name: &str| {
        values
            .iter()
            .find(|(k, _)| k == name && name != "ssn")
            .map(|(_, v)| esc(v))
            .unwrap_or_default()
    };
    // The first field in error takes the focus (without a script), so a keyboard or screen
    // reader user lands on it.
    let first_error = view
        .missing
        .iter()
        .find(|f| field_errors.iter().any(|(k, _)| k == *f))
        .copied()
        .or_else(|| {
            field_errors
                .iter()
                .any(|(k, _)| k == "signature")
                .then_some("signature")
        });
    let mut fields = String::new();
    for f in &view.missing {
        let (label, kind, auto) = field_label(f);
        let err = field_errors.iter().find(|(k, _)| k == f).map(|(_, m)| m);
        let (invalid, described, msg) = match err {
            Some(m) => (
                " aria-invalid=\"true\"",
                format!(" aria-describedby=\"{f}-error\""),
                format!("<span class=\"error\" id=\"{f}-error\">{}</span>", esc(m)),
            ),
            // A refused submission does not show the SSN again: say why it is empty.
            None if *f == "ssn" && !field_errors.is_empty() => (
                "",
                " aria-describedby=\"ssn-note\"".to_string(),
                "<span id=\"ssn-note\">For your security, please enter it again.</span>"
                    .to_string(),
            ),
            None => ("", String::new(), String::new()),
        };
        let numeric = if matches!(*f, "ssn" | "zip") {
            " inputmode=\"numeric\""
        } else {
            ""
        };
        let focus = if first_error == Some(*f) {
            " autofocus"
        } else {
            ""
        };
        fields.push_str(&format!(
            "<label for=\"{f}\">{label}</label>{msg}\
             <input type=\"{kind}\" id=\"{f}\" name=\"{f}\" autocomplete=\"{auto}\" required \
             value=\"{v}\"{numeric}{invalid}{described}{focus}>",
            v = value(f),
        ));
    }
    let sig_err = field_errors
        .iter()
        .find(|(k, _)| k == "signature")
        .map(|(_, m)| m);
    let (sig_invalid, sig_msg) = match sig_err {
        Some(m) => (
            " aria-invalid=\"true\" aria-describedby=\"signature-error\"",
            format!(
                "<span class=\"error\" id=\"signature-error\">{}</span>",
                esc(m)
            ),
        ),
        None => ("", String::new()),
    };
    let other_errors: String = field_errors
        .iter()
        .filter(|(k, _)| k == "sections")
        .map(|(_, m)| format!("<p class=\"error\" role=\"alert\">{}</p>", esc(m)))
        .collect();
    let summary = if field_errors.is_empty() {
        String::new()
    } else {
        format!(
            "<p class=\"error\" role=\"alert\">Please correct the {} marked below.</p>",
            if field_errors.len() == 1 {
                "field"
            } else {
                "fields"
            }
        )
    };
    let details = if view.missing.is_empty() {
        "<p>We have all the details we need.</p>".to_string()
    } else {
        format!("<fieldset><legend>Your details</legend>{fields}</fieldset>")
    };
    // A drawing is kept across a refused submission unless the drawing itself was refused.
    let drawn = if sig_err.is_some() {
        String::new()
    } else {
        value("signature_image")
    };
    let body = format!(
        "<p>Step {last} of {last}: {subject}</p><h1>Sign your consent</h1>\
         {summary}{other_errors}<form method=\"post\" action=\"/consent/{token}/sign\">{details}\
         <fieldset><legend>Signature</legend>\
         <label for=\"signature\">Type your full name ({name}) to sign</label>{sig_msg}\
         <input type=\"text\" id=\"signature\" name=\"signature\" autocomplete=\"name\" required \
         value=\"{sig}\"{sig_invalid}{sig_focus}>\
         <div id=\"pad\" hidden><p id=\"pad-help\">Or draw your signature in the box with a mouse, \
         finger or pen instead of typing your name.</p>\
         <canvas id=\"pad-canvas\" width=\"600\" height=\"160\" aria-label=\"Signature drawing area\" \
         aria-describedby=\"pad-help\"></canvas>\
         <button type=\"button\" id=\"pad-clear\">Clear drawing</button></div>\
         <input type=\"hidden\" id=\"signature_image\" name=\"signature_image\" value=\"{drawn}\">\
         </fieldset><button type=\"submit\">Sign and submit</button></form><script>{PAD_SCRIPT}</script>",
        last = total + 1,
        subject = consent_subject(view),
        token = esc(token),
        name = esc(&view.full_name),
        sig_focus = if first_error == Some("signature") {
            " autofocus"
        } else {
            ""
        },
        sig = value("signature"),
    );
    page(status, "Sign your consent", &body)
}

#[handler]
pub async fn consent_get(Path(token): Path<String>, svc: Data<&Service>) -> Response {
    match svc.consent_view(&token).await {
        Ok(view) => render_consent(&token, &view, None, &[], &[]),
        Err(p) => problem_page(p),
    }
}

#[handler]
pub async fn consent_section(
    Path((token, key)): Path<(String, String)>,
    svc: Data<&Service>,
    body: Body,
) -> Response {
    let posted = form(body).await;
    let view = match svc.consent_view(&token).await {
        Ok(v) => v,
        Err(p) => return problem_page(p),
    };
    let ticked: Vec<String> = view
        .sections
        .iter()
        .find(|s| s.key == key)
        .map(|s| {
            s.checkboxes
                .iter()
                .enumerate()
                .filter(|(i, _)| {
                    posted
                        .iter()
                        .any(|(k, v)| *k == format!("box{i}") && v == "on")
                })
                .map(|(_, b)| b.clone())
                .collect()
        })
        .unwrap_or_default();
    match svc.acknowledge_section(&token, &key, &ticked).await {
        Ok(Ok(())) => see_other(&format!("/consent/{token}")),
        Ok(Err(message)) => render_consent(&token, &view, Some(&message), &[], &posted),
        Err(p) => problem_page(p),
    }
}

fn see_other(to: &str) -> Response {
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header("location", to)
        .finish()
}

#[handler]
pub async fn consent_sign(
    Path(token): Path<String>,
    svc: Data<&Service>,
    remote: &RemoteAddr,
    proxies: Data<&TrustedProxies>,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    let posted = form(body).await;
    let mut details = ConsentDetails {
        ip_address: proxies
            .client_ip(remote.as_socket_addr().map(|a| a.ip()), headers)
            .map(|ip| ip.to_string()),
        user_agent: headers
            .get("user-agent")
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(500).collect()),
        ..Default::default()
    };
    for (k, v) in &posted {
        if k == "signature" {
            details.signature = v.clone();
        } else if k == "signature_image" {
            details.signature_image = v.clone();
        } else {
            details.fields.insert(k.clone(), v.clone());
        }
    }
    match svc.submit_consent_page(&token, details).await {
        Ok(ConsentSubmission::Signed(ConsentPurpose::Screening)) => page(
            StatusCode::OK,
            "Thank you",
            "<h1>Thank you</h1><p>Your consent was recorded and your background check has \
             started. You will receive a copy of your report by email.</p>",
        ),
        Ok(ConsentSubmission::Signed(ConsentPurpose::Recheck)) => page(
            StatusCode::OK,
            "Thank you",
            "<h1>Thank you</h1><p>Your consent was recorded and your new background check has \
             started. You will receive a copy of your report by email.</p>",
        ),
        Ok(ConsentSubmission::Signed(ConsentPurpose::MonitoringRecheck)) => page(
            StatusCode::OK,
            "Thank you",
            "<h1>Thank you</h1><p>Your consent was recorded. The county court records search \
             that updates your background check can now run.</p>",
        ),
        Ok(ConsentSubmission::Invalid(errors)) => match svc.consent_view(&token).await {
            Ok(view) => render_consent(&token, &view, None, &errors, &posted),
            Err(p) => problem_page(p),
        },
        // The state's own summary comes first; the page then asks for the signature again.
        Ok(ConsentSubmission::StateSummaryDue) => see_other(&format!("/consent/{token}")),
        Err(p) => problem_page(p),
    }
}

/// An identity status as the candidate reads it: "n/a" where the report has none (or an
/// empty one, as for a date of birth that was not given).
fn status_text(v: &serde_json::Value) -> &str {
    v.as_str().filter(|s| !s.trim().is_empty()).unwrap_or("n/a")
}

fn render_report(report: &serde_json::Value) -> String {
    let checks = &report["checks"];
    let mut out = String::new();
    let name = checks["candidate_provided_name"]
        .as_str()
        .unwrap_or_default();
    out.push_str(&format!(
        "<h2>Identity</h2><p>Name: {} · name status: {} · date of birth status: {} · SSN status: {}</p>",
        esc(name),
        esc(status_text(&checks["name_status"])),
        esc(status_text(&checks["dob_status"])),
        esc(status_text(&checks["ssn_status"])),
    ));
    out.push_str("<h2>Criminal records</h2>");
    match checks["criminal"].as_array() {
        None => out.push_str("<p>Not searched.</p>"),
        Some(counties) => {
            let records: Vec<&serde_json::Value> = counties
                .iter()
                .flat_map(|c| c["value"].as_array().into_iter().flatten())
                .collect();
            if records.is_empty() {
                out.push_str("<p>No records found.</p>");
            } else {
                out.push_str("<ul>");
                for r in records {
                    out.push_str(&format!(
                        "<li>{} — {} ({}), offense {}, disposition {} — case {} in {}</li>",
                        esc(r["crime_type"].as_str().unwrap_or("record")),
                        esc(r["offense_description_1"].as_str().unwrap_or("")),
                        esc(r["suspect_state"].as_str().unwrap_or("")),
                        esc(r["offense_date"].as_str().unwrap_or("unknown date")),
                        esc(r["disposition"].as_str().unwrap_or("unknown")),
                        esc(r["case_number"].as_str().unwrap_or("")),
                        esc(r["county"].as_str().unwrap_or("")),
                    ));
                }
                out.push_str("</ul>");
            }
        }
    }
    out.push_str("<h2>Sex-offender registries</h2>");
    records(&mut out, &checks["sex_offender"], |r| {
        fields(
            r,
            &[
                ("Offense", "offense_description1"),
                ("State", "state"),
                ("Dispute status", "dispute_status"),
            ],
        )
    });
    out.push_str("<h2>Watchlists</h2>");
    records(&mut out, &checks["watchlist"], |r| {
        let n = &r["name"];
        let name = ["first_name", "middle_name", "last_name"]
            .iter()
            .filter_map(|k| n[*k].as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let mut line = if name.is_empty() {
            String::new()
        } else {
            format!("Name: {}; ", esc(&name))
        };
        line.push_str(&fields(
            r,
            &[
                ("List", "source"),
                ("Listed", "listing_date"),
                ("Date of birth", "date_of_birth"),
                ("Remarks", "remarks"),
            ],
        ));
        line
    });
    out.push_str("<h2>Motor vehicle record</h2>");
    match checks["mvr"].as_object() {
        None => out.push_str("<p>Not searched.</p>"),
        Some(m) => {
            let section = |out: &mut String, title: &str, key: &str, dated: &[(&str, &str)]| {
                out.push_str(&format!("<h3>{title}</h3>"));
                records(out, m.get(key).unwrap_or(&serde_json::Value::Null), |r| {
                    // Its own descriptions, else those of its sub-violations (where a
                    // violation's are).
                    let subs = r["sub_violations"].as_array().into_iter().flatten();
                    let what = std::iter::once(r)
                        .chain(subs)
                        .flat_map(|x| x["descriptions"].as_array().into_iter().flatten())
                        .find_map(|d| {
                            d["long_description"]
                                .as_str()
                                .or(d["short_description"].as_str())
                        })
                        .or(r["accident_details"].as_str())
                        .or(r["action_type"].as_str())
                        .or(r["viol_type"].as_str())
                        .unwrap_or("record");
                    format!("{}; {}", esc(what), fields(r, dated))
                });
            };
            out.push_str("<h3>Licences</h3>");
            records(
                &mut out,
                m.get("licenses").unwrap_or(&serde_json::Value::Null),
                |r| {
                    fields(
                        r,
                        &[
                            ("State", "state"),
                            ("Number", "license_number"),
                            ("Type", "type_description"),
                            ("Valid", "is_valid"),
                            ("Expires", "exp_date"),
                        ],
                    )
                },
            );
            section(
                &mut out,
                "Violations",
                "violations",
                &[
                    ("Date", "incident_date"),
                    ("Convicted", "conviction_date"),
                    ("State", "state_code"),
                ],
            );
            section(
                &mut out,
                "Accidents",
                "accidents",
                &[("Date", "incident_date"), ("State", "state_code")],
            );
            section(
                &mut out,
                "Actions",
                "actions",
                &[
                    ("From", "start_date"),
                    ("To", "end_date"),
                    ("State", "state_code"),
                ],
            );
        }
    }
    out
}

/// A search's records as a list, one line each from `line` (escaped there), or why there is
/// none: not searched (`null`) or nothing found.
fn records(
    out: &mut String,
    found: &serde_json::Value,
    line: impl Fn(&serde_json::Value) -> String,
) {
    match found.as_array() {
        None => out.push_str("<p>Not searched.</p>"),
        Some(v) if v.is_empty() => out.push_str("<p>No records found.</p>"),
        Some(v) => {
            out.push_str("<ul>");
            for r in v {
                out.push_str(&format!("<li>{}</li>", line(r)));
            }
            out.push_str("</ul>");
        }
    }
}

/// `Label: value` for each of `keys` the record has (text, number or yes/no), escaped.
fn fields(r: &serde_json::Value, keys: &[(&str, &str)]) -> String {
    keys.iter()
        .filter_map(|(label, key)| {
            let v = match &r[*key] {
                serde_json::Value::String(s) if !s.trim().is_empty() => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => (if *b { "yes" } else { "no" }).to_string(),
                _ => return None,
            };
            Some(format!("{label}: {}", esc(&v)))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[handler]
pub async fn report_get(Path(token): Path<String>, svc: Data<&Service>) -> Response {
    report_page(&svc, &token, None, None).await
}

/// The report page, with a `notice` on top; `refused`: the dispute the candidate typed, refused
/// for what the notice says (422, kept in the form and tied to the notice).
async fn report_page(
    svc: &Service,
    token: &str,
    notice: Option<&str>,
    refused: Option<&str>,
) -> Response {
    let (c, cand, partner, latest) = match svc.report_by_token(token).await {
        Ok(r) => r,
        Err(p) => return report_problem_page(p),
    };
    let report = latest
        .map(|r| render_report(&r.report))
        .unwrap_or_else(|| "<p>Your report is not ready yet.</p>".into());
    // Not knowing whether the candidate may dispute is not "they may not": the page waits.
    let window = match svc.dispute_window(&c).await {
        Ok(w) => w,
        Err(e) => return report_problem_page(e.into()),
    };
    let dispute = match window {
        DisputeWindow::Open => "<h2>Your dispute</h2><p>We are reinvestigating what you \
             disputed. No decision is made on your application until we write to you with the \
             outcome.</p>"
            .to_string(),
        DisputeWindow::Offered => format!(
            "<h2>Dispute this report</h2><p>If anything here is incomplete or inaccurate, tell us \
             what and why. No decision is made while we reinvestigate.</p>\
             <form method=\"post\" action=\"/report/{t}/dispute\">\
             <label for=\"reason\">What is wrong in the report</label>\
             <textarea id=\"reason\" name=\"reason\" rows=\"5\" cols=\"60\" required{invalid}>{typed}</textarea>\
             <button type=\"submit\">Send dispute</button></form>",
            t = esc(token),
            invalid = if refused.is_some() {
                " aria-invalid=\"true\" aria-describedby=\"notice\" autofocus"
            } else {
                ""
            },
            typed = esc(refused.unwrap_or_default()),
        ),
        DisputeWindow::Closed => String::new(),
    };
    let notice = notice
        .map(|n| {
            format!(
                "<p id=\"notice\" role=\"{}\"><strong>{}</strong></p>",
                if refused.is_some() { "alert" } else { "status" },
                esc(n)
            )
        })
        .unwrap_or_default();
    page(
        if refused.is_some() {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::OK
        },
        "Your background check report",
        &format!(
            "<h1>Your background check report</h1>{notice}<p>Prepared for {partner} about {name}, \
             Turn ID {turn}.</p>{report}{dispute}",
            partner = esc(&partner.name),
            name = esc(&cand.first_name),
            turn = esc(&cand.turn_id),
        ),
    )
}

/// The report page after a dispute that was not taken because of the check's state: told it is
/// already in hand when a dispute is open (the form sent twice), else that it was not sent, with
/// what they wrote kept while a dispute can still be sent.
async fn refused_dispute(svc: &Service, token: &str, reason: &str, changed: bool) -> Response {
    let window = match svc.report_by_token(token).await {
        Ok((c, ..)) => svc.dispute_window(&c).await.ok(),
        Err(_) => None,
    };
    let (notice, kept) = match window {
        Some(DisputeWindow::Open) => (
            "We already have your dispute: it is being reinvestigated, and we will write to you.",
            None,
        ),
        Some(DisputeWindow::Offered) if changed => (
            "Your dispute was not sent: your application changed at that moment. Please send it \
             again.",
            Some(reason),
        ),
        _ => (
            "Your dispute was not sent: there is no waiting period before a decision running \
             now. Please look below.",
            None,
        ),
    };
    report_page(svc, token, Some(notice), kept).await
}

#[handler]
pub async fn report_dispute(
    Path(token): Path<String>,
    svc: Data<&Service>,
    body: Body,
) -> Response {
    let posted = form(body).await;
    let reason = posted
        .iter()
        .find(|(k, _)| k == "reason")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    match svc.dispute_by_token(&token, reason).await {
        Ok(()) => {
            report_page(
                &svc,
                &token,
                Some("Your dispute was received. We will reinvestigate and write to you."),
                None,
            )
            .await
        }
        // No waiting period running: the candidate's dispute already paused it (the form sent
        // twice), or it ended a moment ago, or the adverse action did.
        Err(service::ServiceError::Invalid { field, .. }) if field == "checkId" => {
            refused_dispute(&svc, &token, reason, false).await
        }
        Err(service::ServiceError::Invalid { message, .. }) => {
            report_page(
                &svc,
                &token,
                Some(&format!("Your dispute was not sent: {message}.")),
                Some(reason),
            )
            .await
        }
        // The link itself: the report page says what is wrong with it (expired, say).
        Err(service::ServiceError::NotFound { .. }) => report_page(&svc, &token, None, None).await,
        // The check changed at that very moment (the waiting period ending, or the same form
        // sent twice at once).
        Err(service::ServiceError::Conflict { .. }) => {
            refused_dispute(&svc, &token, reason, true).await
        }
        Err(e) => report_problem_page(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use service::screening::provider::{SearchOutcome, SearchRequest, Subject};
    use service::screening::sandbox::SandboxProvider;

    use super::render_report;

    /// The candidate's copy as the page shows it, for the sandbox's candidate `last`.
    fn copy_of(last: &str) -> String {
        let at = Utc
            .with_ymd_and_hms(2026, 3, 2, 10, 0, 0)
            .single()
            .expect("time");
        let req = SearchRequest {
            subject: Subject {
                first_name: "Pat".into(),
                last_name: last.into(),
                email: "pat@example.com".into(),
                state: Some("TN".into()),
                drivers_license_number: Some("D1234567".into()),
                drivers_license_state: Some("TN".into()),
                ..Subject::default()
            },
            searches: entity::SearchKind::ALL.to_vec(),
            requested_at: at,
            now: at + chrono::Duration::hours(1),
            identity_override: false,
        };
        match SandboxProvider::new(std::time::Duration::ZERO).run_search(&req) {
            Ok(SearchOutcome::Ready(r)) => render_report(&serde_json::to_value(r).expect("json")),
            other => panic!("expected a report, got {other:?}"),
        }
    }

    /// The candidate sees every record of every search (to know what to dispute), not counts.
    #[test]
    fn the_candidates_copy_shows_each_record() {
        let so = copy_of("Registry");
        assert!(
            so.contains(
                "<li>Offense: Sexual battery; State: TN; Dispute status: not_disputed</li>"
            ),
            "{so}"
        );
        let wanted = copy_of("Wanted");
        assert!(wanted.contains("List: Most Wanted"), "{wanted}");
        let mvr = copy_of("Speedwell");
        for text in [
            "Speeding 11 to 15 miles per hour over the limit; Date: ",
            "Failure to obey a traffic signal; Date: ",
            "Following too closely; Date: ",
            "At-fault collision with property damage; Date: ",
            "State: TN; Number: D1234567",
        ] {
            assert!(mvr.contains(text), "{text} in {mvr}");
        }
        // A clear candidate: a licence, and nothing found anywhere else.
        let clear = copy_of("Baggins");
        assert_eq!(clear.matches("<li>").count(), 1, "{clear}");
        assert_eq!(clear.matches("No records found.").count(), 6, "{clear}");
        assert!(!clear.contains("Not searched"), "{clear}");
    }
}
