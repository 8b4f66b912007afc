//! The consent page in a real browser: headless Chromium driven through chromedriver's W3C
//! WebDriver API, with the keyboard only, as a candidate would use it. Needs Debian's
//! `chromium` and `chromium-driver`; `.ci/run` installs them and sets
//! `CLEARHIRE_TEST_BROWSER=required`, which turns their absence into a failure.
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app_with};

/// W3C key codes.
const SPACE: &str = "\u{E00D}";
const ENTER: &str = "\u{E007}";
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

struct Browser {
    http: reqwest::Client,
    base: String,
    session: String,
    driver: tokio::process::Child,
    profile: std::path::PathBuf,
}

impl Browser {
    /// Starts chromedriver on a free port and a headless Chromium session; `None` when they are
    /// not installed.
    async fn start() -> Option<Self> {
        let driver_bin = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists());
        let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists());
        let (Some(driver_bin), Some(chromium)) = (driver_bin, chromium) else {
            assert!(
                std::env::var("CLEARHIRE_TEST_BROWSER").as_deref() != Ok("required"),
                "CLEARHIRE_TEST_BROWSER=required but chromium or chromedriver is not installed"
            );
            eprintln!("skipping the browser test: install Debian's chromium and chromium-driver");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let driver = tokio::process::Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            if let Ok(r) = http.get(format!("{base}/status")).send().await
                && r.json::<Value>()
                    .await
                    .is_ok_and(|v| v["value"]["ready"] == true)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile =
            std::env::temp_dir().join(format!("clearhire-chromium-{}", uuid::Uuid::new_v4()));
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                         "--disable-background-networking", "--disable-component-update", "--disable-sync",
                         "--disable-dev-shm-usage", format!("--user-data-dir={}", profile.display())]
            }
        }}});
        let r: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .expect("new session")
            .json()
            .await
            .expect("json");
        let session = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {r}"))
            .to_string();
        Some(Self {
            http,
            base,
            session,
            driver,
            profile,
        })
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut req = self.http.request(method.clone(), &url);
        if method == reqwest::Method::POST {
            req = req.json(&body);
        }
        let v: Value = req
            .send()
            .await
            .expect("webdriver")
            .json()
            .await
            .expect("json");
        assert!(v["value"].get("error").is_none(), "{path}: {v}");
        v["value"].clone()
    }

    async fn go(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", json!({"url": url}))
            .await;
    }

    async fn source(&self) -> String {
        self.call(reqwest::Method::GET, "/source", Value::Null)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    async fn find_all(&self, css: &str) -> Vec<String> {
        self.call(
            reqwest::Method::POST,
            "/elements",
            json!({"using": "css selector", "value": css}),
        )
        .await
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e[ELEMENT].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
    }

    async fn find(&self, css: &str) -> String {
        self.find_all(css)
            .await
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no element {css}"))
    }

    /// Types into an element, as the keyboard does (focus follows).
    async fn keys(&self, element: &str, text: &str) {
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/value"),
            json!({"text": text}),
        )
        .await;
    }

    async fn clear(&self, element: &str) {
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/clear"),
            json!({}),
        )
        .await;
    }

    /// Runs a script in the page with element arguments; returns its result.
    async fn script(&self, script: &str, elements: &[&str]) -> Value {
        let args: Vec<Value> = elements.iter().map(|e| json!({ELEMENT: e})).collect();
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            json!({"script": script, "args": args}),
        )
        .await
    }

    /// A DOM property of an element (`value`, `required`, …).
    async fn property(&self, element: &str, name: &str) -> Value {
        self.call(
            reqwest::Method::GET,
            &format!("/element/{element}/property/{name}"),
            Value::Null,
        )
        .await
    }

    /// How many dark pixels a canvas holds: the ink of a drawing.
    async fn ink(&self, canvas: &str) -> Value {
        self.script(
            "var c = arguments[0], d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data, n = 0;\
             for (var i = 0; i < d.length; i += 4) { if (d[i] < 128) n++; } return n;",
            &[canvas],
        )
        .await
    }

    /// Types each `(field id, value)` into its field.
    async fn fill(&self, fields: &[(&str, &str)]) {
        for (field, value) in fields {
            self.keys(&self.find(&format!("#{field}")).await, value)
                .await;
        }
    }

    async fn click(&self, element: &str) {
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/click"),
            json!({}),
        )
        .await;
    }

    /// Draws one stroke with the mouse through `points`, offsets from the element's centre.
    async fn stroke(&self, element: &str, points: &[(i64, i64)]) {
        self.script(
            "arguments[0].scrollIntoView({block: 'center'});",
            &[element],
        )
        .await;
        let mut steps = Vec::new();
        for (i, (x, y)) in points.iter().enumerate() {
            steps.push(json!({"type": "pointerMove", "duration": 20, "origin": {ELEMENT: element}, "x": x, "y": y}));
            if i == 0 {
                steps.push(json!({"type": "pointerDown", "button": 0}));
            }
        }
        steps.push(json!({"type": "pointerUp", "button": 0}));
        self.call(
            reqwest::Method::POST,
            "/actions",
            json!({"actions": [{"type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"}, "actions": steps}]}),
        )
        .await;
    }

    /// Walks the consent sections: for each, continuing without ticking is refused with a
    /// message, then every box is ticked with the space bar and Enter continues. Returns the
    /// sections' titles.
    async fn acknowledge_sections(&self) -> Vec<String> {
        let mut titles = Vec::new();
        loop {
            let title = self.heading().await;
            if title == "Sign your consent" {
                return titles;
            }
            assert!(titles.len() < 6, "sections never end: {titles:?}");
            // Every checkbox has a label the browser ties to it.
            let html = self.source().await;
            let boxes = self.find_all("input[type=checkbox]").await;
            assert!(!boxes.is_empty(), "{html}");
            for i in 0..boxes.len() {
                assert!(
                    html.contains(&format!("<label for=\"box{i}\">")),
                    "box{i} unlabelled"
                );
            }
            self.keys(&self.find("button[type=submit]").await, ENTER)
                .await;
            let refused = self.wait_for("role=\"alert\"").await;
            assert!(refused.contains("Please tick"), "{refused}");
            assert!(
                refused.contains(&format!("<h1>{title}")),
                "the same section again"
            );
            // The message is tied to the boxes, and the page's title says a correction is due.
            assert!(
                refused.contains("aria-describedby=\"err\"") && refused.contains("<title>Error: "),
                "{refused}"
            );
            for b in self.find_all("input[type=checkbox]").await {
                self.keys(&b, SPACE).await;
            }
            self.keys(&self.find("button[type=submit]").await, ENTER)
                .await;
            for _ in 0..100 {
                if self.heading().await != title {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            titles.push(title);
        }
    }

    /// Waits until the page's source contains `text`; returns the source.
    async fn wait_for(&self, text: &str) -> String {
        for _ in 0..100 {
            let html = self.source().await;
            if html.contains(text) {
                return html;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no page with {text}: {}", self.source().await);
    }

    /// Waits until the page's `<h1>` reads `heading`.
    async fn wait_heading(&self, heading: &str) -> String {
        self.wait_for(&format!("<h1>{heading}")).await
    }

    async fn heading(&self) -> String {
        let html = self.source().await;
        html.split("<h1>")
            .nth(1)
            .and_then(|s| s.split("</h1>").next())
            .unwrap_or_default()
            .to_string()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.start_kill();
        // Chromium outlives its chromedriver: end every process of this test's own profile, even
        // when the test panicked before closing the session.
        // A Chromium process still exiting may write into the profile after it is removed: the
        // removal is tried again until the directory stays gone (at most a second).
        for _ in 0..20 {
            let _ = std::process::Command::new("pkill")
                .arg("-f")
                .arg(format!("user-data-dir={}", self.profile.display()))
                .status();
            let _ = std::fs::remove_dir_all(&self.profile);
            std::thread::sleep(Duration::from_millis(50));
            if !self.profile.exists() {
                break;
            }
        }
    }
}

/// A browser on the signature step of a new candidate's consent page: the invitation's link
/// opened and every section acknowledged. Returns the browser, the app, the check and the
/// sections' titles; `None` when Chromium is not installed.
async fn at_the_signature(email: &str) -> Option<(Browser, TestApp, String, Vec<String>)> {
    let browser = Browser::start().await?;
    let app = spawn_app_with(|c| c.sandbox_latency_ms = 0).await;
    let cand = app.candidate(email).await;
    let check = app.start_check(&cand, true).await;
    let mail = app
        .gql(
            "query($c: ID) { emails(checkId: $c) { body } }",
            json!({"c": check}),
        )
        .await;
    let link = mail.data()["emails"][0]["body"]
        .as_str()
        .expect("body")
        .split_whitespace()
        .find(|w| w.contains("/consent/"))
        .expect("consent link")
        .to_string();
    browser.go(&link).await;
    let titles = browser.acknowledge_sections().await;
    Some((browser, app, check, titles))
}

#[tokio::test]
async fn a_candidate_consents_in_headless_chromium_with_the_keyboard() {
    let Some((browser, app, check, titles)) = at_the_signature("samwise.browser@example.com").await
    else {
        return;
    };
    assert_eq!(titles.len(), 4, "{titles:?}");
    assert_eq!(titles[0], "Welcome");

    // The details the candidate has not given yet, with a mistake first.
    browser
        .fill(&[
            ("date_of_birth", "1980-04-06"),
            ("ssn", "123-45-6780"),
            ("address", "3 Bagshot Row"),
            ("city", "Hobbiton"),
            ("state", "TX"),
            ("zip", "941"),
            ("signature", "Test Person"),
        ])
        .await;
    browser.keys(&browser.find("#signature").await, ENTER).await;
    let html = browser.wait_for("id=\"zip-error\"").await;
    assert!(html.contains("id=\"zip-error\""), "{html}");
    assert!(
        html.contains("aria-invalid=\"true\""),
        "the field is marked invalid"
    );
    assert_eq!(
        app.check_status(&check).await,
        "emailed",
        "nothing was written"
    );
    let zip = browser.find("#zip").await;
    browser.clear(&zip).await;
    browser.keys(&zip, "75001").await;
    // The other answers were kept; the SSN (not written back into the page) and the signature
    // are typed again.
    let ssn = browser.find("#ssn").await;
    browser.clear(&ssn).await;
    browser.keys(&ssn, "123-45-6780").await;
    let sig = browser.find("#signature").await;
    browser.clear(&sig).await;
    browser.keys(&sig, "Test Person").await;
    browser.keys(&sig, ENTER).await;
    let done = browser.wait_heading("Thank you").await;
    assert!(done.contains("background check has started"), "{done}");

    app.wait_check_status(&check, "approved").await;
    let consent = app.dump("consents").await;
    assert_eq!(consent[0]["signature"], "Test Person");
    assert!(
        consent[0]["user_agent"]
            .as_str()
            .is_some_and(|u| u.contains("Chrome")),
        "the browser's user agent is kept: {}",
        consent[0]["user_agent"]
    );
}

#[tokio::test]
async fn a_candidate_signs_by_drawing_in_headless_chromium() {
    let Some((browser, app, check, _)) = at_the_signature("rosie.browser@example.com").await else {
        return;
    };

    // A ZIP code that is too short, so the first submission is refused.
    browser
        .fill(&[
            ("date_of_birth", "1981-03-02"),
            ("ssn", "123-45-6781"),
            ("address", "5 Bagshot Row"),
            ("city", "Hobbiton"),
            ("state", "TX"),
            ("zip", "941"),
        ])
        .await;
    let typed = browser.find("#signature").await;
    let image = browser.find("#signature_image").await;
    let canvas = browser.find("#pad-canvas").await;
    assert_eq!(browser.property(&typed, "required").await, true);
    assert_eq!(browser.property(&image, "value").await, "");

    // A stroke fills the hidden field with a PNG and the typed name is no longer required.
    browser
        .stroke(
            &canvas,
            &[(-200, 20), (-120, -30), (-40, 25), (40, -25), (120, 20)],
        )
        .await;
    let first = browser.property(&image, "value").await;
    assert!(
        first
            .as_str()
            .is_some_and(|v| v.starts_with("data:image/png;base64,")),
        "{first}"
    );
    assert_eq!(browser.property(&typed, "required").await, false);
    // Clearing takes it back.
    browser.click(&browser.find("#pad-clear").await).await;
    assert_eq!(browser.property(&image, "value").await, "");
    assert_eq!(browser.property(&typed, "required").await, true);

    browser
        .stroke(
            &canvas,
            &[(-220, 0), (-150, -40), (-60, 30), (30, -35), (200, 10)],
        )
        .await;
    let ink = browser.ink(&canvas).await;
    assert!(ink.as_u64().is_some_and(|n| n > 300), "ink pixels: {ink}");
    browser
        .keys(&browser.find("button[type=submit]").await, ENTER)
        .await;
    browser.wait_for("id=\"zip-error\"").await;
    assert_eq!(app.check_status(&check).await, "emailed");

    // The refused page hands the drawing back: it is redrawn and still stands for the name.
    let canvas = browser.find("#pad-canvas").await;
    let typed = browser.find("#signature").await;
    let mut redrawn = Value::Null;
    for _ in 0..100 {
        redrawn = browser.property(&typed, "required").await;
        if redrawn == false {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(redrawn, false, "the kept drawing replaces the typed name");
    let ink_again = browser.ink(&canvas).await;
    assert_eq!(ink_again, ink, "the same drawing");
    let zip = browser.find("#zip").await;
    browser.clear(&zip).await;
    browser.keys(&zip, "75001").await;
    let ssn = browser.find("#ssn").await;
    assert_eq!(
        browser.property(&ssn, "value").await,
        "",
        "not written back"
    );
    browser.keys(&ssn, "123-45-6781").await;
    let resubmitted = browser
        .property(&browser.find("#signature_image").await, "value")
        .await;
    browser
        .keys(&browser.find("button[type=submit]").await, ENTER)
        .await;
    browser.wait_heading("Thank you").await;

    app.wait_check_status(&check, "approved").await;
    let consent = app.dump("consents").await;
    let stored = consent[0]["signature"].as_str().expect("signature");
    assert_eq!(stored, resubmitted.as_str().expect("value"));
    // What was kept is the browser's own PNG of the 600×160 pad.
    let png = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        stored.trim_start_matches("data:image/png;base64,"),
    )
    .expect("base64");
    assert_eq!(&png[1..4], b"PNG");
    assert_eq!(
        u32::from_be_bytes([png[16], png[17], png[18], png[19]]),
        600
    );
    assert_eq!(
        u32::from_be_bytes([png[20], png[21], png[22], png[23]]),
        160
    );
}
