//! The hub's screens in a real browser: an administrator at a real hub opens
//! each one (a screenshot of each, axe-core finds no serious or critical
//! violation, nothing wider than a tablet or a phone), imports a CSV file
//! with one bad row and sees it named with its line and column, edits a
//! family's e-mail, adds and disables a clerk, sees a mistake named beside
//! its field with nothing saved, creates an enrolment token shown with its
//! QR code, and revokes a device with a reason; a clerk given a one-time
//! password chooses their own at their first login; each change checked
//! through the API.

use fantoccini::Locator;
use serde_json::Value;

use super::harness::{Api, Browser, ENTER, Realm, add_operator, key};

const ADMIN: &str = "admin.centro";
const ADMIN_PASSWORD: &str = "admin centro password";

/// The hub screens' routes, Italian titles, and what shows each one has loaded.
const SCREENS: &[(&str, &str, &str)] = &[
    ("families", "Famiglie e utenti", "return document.querySelector('form[role=search]') !== null"),
    ("services", "Servizi", "return document.querySelectorAll('article.service').length"),
    ("cash-points", "Punti di ricarica", "return document.querySelectorAll('table.cash-points tbody tr').length"),
    ("operators", "Operatori", "return document.querySelectorAll('table.operators tbody tr').length"),
    (
        "flagged",
        "Operazioni segnalate",
        "const h = document.querySelector('section.hub'); return h && (h.querySelector('article.flagged') || /Nessuna operazione/.test(h.innerText))",
    ),
    ("outbox", "Invii ai genitori", "const s = document.getElementById('outbox-counts'); return s && s.innerText"),
    ("reports", "Rapporti", "return document.getElementById('report-table') !== null"),
];

async fn log_in(browser: &mut Browser, base: &str) {
    browser.client.goto(&format!("{base}/")).await.unwrap();
    browser.wait_js("the login form", "return document.activeElement && document.activeElement.id === 'login'").await;
    browser.type_keys(ADMIN).await;
    browser.js("document.getElementById('password').focus()").await;
    browser.type_keys(&format!("{ADMIN_PASSWORD}{}", key(ENTER))).await;
    browser.wait_js("the hub's navigation", "return document.querySelectorAll('nav a.hub-link').length === 7").await;
}

async fn open(browser: &Browser, base: &str, route: &str, loaded: &str) {
    browser.client.goto(&format!("{base}/#/hub/{route}")).await.unwrap();
    browser.wait_js(&format!("the {route} screen"), loaded).await;
}

async fn fill(browser: &Browser, css: &str, text: &str) {
    let input = browser.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
    input.clear().await.unwrap();
    input.send_keys(text).await.unwrap();
}

async fn click(browser: &Browser, css: &str) {
    let element = browser.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
    // Scrolled to the middle first: the page's sticky bar covers an element
    // the browser scrolls only just into view, and would take the click.
    let reference = serde_json::to_value(&element).unwrap();
    browser.client.execute("arguments[0].scrollIntoView({block: 'center'});", vec![reference]).await.unwrap();
    element.click().await.unwrap_or_else(|e| panic!("{css}: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_uses_each_hub_screen_imports_families_and_enrols_a_device() {
    let realm = tokio::task::spawn_blocking(Realm::new).await.unwrap();
    add_operator(realm.hub_dir.to_str().unwrap(), ADMIN, ADMIN_PASSWORD, "administrator", None);
    let hub = realm.hub_http.clone();
    let api = Api::log_in(&hub, ADMIN, ADMIN_PASSWORD).unwrap();
    let mut browser = Browser::start().await;
    log_in(&mut browser, &hub).await;

    // Each screen: shown, in Italian, accessible.
    for (route, title_it, loaded) in SCREENS {
        open(&browser, &hub, route, loaded).await;
        let title = browser.js("return document.getElementById('hub-title').innerText").await;
        assert_eq!(title.as_str(), Some(*title_it), "{route}");
        browser.screenshot(&format!("hub-{route}")).await;
        let violations = browser.accessibility_violations().await;
        assert!(violations.is_empty(), "{route}: {violations:#?}");
    }

    // At a tablet's and a phone's width each screen fits: wide tables
    // scroll inside their box, the page itself never sideways.
    for (width, height, name) in [(800, 1280, "tablet"), (390, 844, "phone")] {
        browser.client.set_window_size(width, height).await.unwrap();
        for (route, _, loaded) in SCREENS {
            open(&browser, &hub, route, loaded).await;
            let overflow =
                browser.js("return document.documentElement.scrollWidth - document.documentElement.clientWidth").await;
            if overflow.as_i64().unwrap() > 0 {
                let wide = browser
                    .js("const w = document.documentElement.clientWidth; \
                         return [...document.querySelectorAll('main *')].filter(e => e.getBoundingClientRect().right > w) \
                           .slice(0, 8).map(e => e.tagName + '.' + e.className + '#' + e.id + ' ' + Math.round(e.getBoundingClientRect().right))")
                    .await;
                panic!("{route} is {overflow} px wider than a {name}: {wide}");
            }
        }
        browser.screenshot(&format!("hub-reports-{name}")).await;
    }
    browser.client.set_window_size(1280, 900).await.unwrap();

    // A CSV file with one good row and one bad one: the bad one is named
    // with its line and column, the good one goes in.
    let csv = realm.tmp.path().join("two-rows.csv");
    std::fs::write(
        &csv,
        "payer_fiscal_code;payer_surname;payer_name;email;consumer_fiscal_code;consumer_surname;consumer_name;services\n\
         RSSMRA85T10A562S;Zanzottera;Mario;m@example.com;MRTMTT25D09F205Z;Zanzottera;Matteo;mensa\n\
         RSSMRA85T10A562S;Zanzottera;Mario;m@example.com;MRTMTT25D09F205A;Zanzottera;Luca;mensa\n",
    )
    .unwrap();
    open(&browser, &hub, "families", SCREENS[0].2).await;
    let file = browser.client.find(Locator::Id("import-file")).await.unwrap();
    file.send_keys(csv.to_str().unwrap()).await.unwrap();
    click(&browser, "#import-submit").await;
    let refused = browser
        .wait_js("the refused rows", "const t = document.getElementById('refused-rows'); return t && t.innerText")
        .await;
    let refused = refused.as_str().unwrap();
    assert!(refused.contains("Righe rifiutate (1)"), "{refused}");
    assert!(refused.contains("consumer_fiscal_code") && refused.contains("MRTMTT25D09F205A"), "{refused}");
    let report = browser.js("return document.getElementById('import-report').innerText").await;
    assert!(report.as_str().unwrap().contains("2 righe, 1 accettate"), "{report}");
    browser.screenshot("hub-families-import").await;
    let found = |q: &str| api.get(&format!("/consumers?q={q}"))["consumers"].as_array().map_or(0, Vec::len);
    assert_eq!(found("MRTMTT25D09F205Z"), 1, "the good row went in");
    assert_eq!(found("zanzottera"), 1, "the bad row changed nothing");
    let violations = browser.accessibility_violations().await;
    assert!(violations.is_empty(), "import report: {violations:#?}");

    // The new family opened and its e-mail changed.
    fill(&browser, "#families-q", "zanzottera").await;
    click(&browser, "form[role=search] button[type=submit]").await;
    browser
        .wait_js("the family found", "return document.querySelectorAll('table.families tbody tr').length === 1")
        .await;
    click(&browser, "table.families tbody button").await;
    browser.wait_js("the family", "return document.getElementById('family-email')").await;
    fill(&browser, "#family-email", "nuova@example.org").await;
    click(&browser, "article.family button[type=submit]").await;
    browser
        .wait_js(
            "the family saved",
            "const d = document.querySelector('article.family .done'); return d && d.innerText",
        )
        .await;
    let family = api.get("/consumers?q=MRTMTT25D09F205Z")["consumers"][0]["family"].as_str().unwrap().to_owned();
    assert_eq!(api.get(&format!("/families/{family}"))["payer"]["email"], "nuova@example.org");

    // A clerk added, then disabled.
    open(&browser, &hub, "operators", SCREENS[3].2).await;
    fill(&browser, "#operator-login", "anna.verdi").await;
    fill(&browser, "#operator-name", "Anna Verdi").await;
    browser.client.find(Locator::Id("operator-role")).await.unwrap().select_by_value("clerk").await.unwrap();
    fill(&browser, "#operator-password", "anna verdi password").await;
    click(&browser, "section[aria-labelledby=new-operator-title] button[type=submit]").await;
    browser
        .wait_js(
            "the new clerk",
            "return [...document.querySelectorAll('table.operators td')].some(td => td.innerText === 'anna.verdi')",
        )
        .await;
    let operator = |login: &str| {
        let list = api.get("/operators");
        list["operators"].as_array().unwrap().iter().find(|o| o["login"] == login).cloned().unwrap()
    };
    assert_eq!(operator("anna.verdi")["role"], "clerk");
    click(&browser, "button[aria-label='Disattiva anna.verdi']").await;
    browser
        .wait_js("the clerk disabled", "return document.querySelector(\"button[aria-label='Riattiva anna.verdi']\")")
        .await;
    assert_eq!(operator("anna.verdi")["disabled"], true);

    // A clerk added without a password: the page shows the one-time
    // password the hub generated, once.
    fill(&browser, "#operator-login", "bruno.neri").await;
    fill(&browser, "#operator-name", "Bruno Neri").await;
    browser.client.find(Locator::Id("operator-role")).await.unwrap().select_by_value("clerk").await.unwrap();
    click(&browser, "section[aria-labelledby=new-operator-title] button[type=submit]").await;
    let shown = browser
        .wait_js(
            "the one-time password",
            "const d = [...document.querySelectorAll('p.done')].find(p => /bruno.neri/.test(p.innerText));              return d && d.innerText",
        )
        .await;
    let one_time = shown.as_str().unwrap().rsplit(": ").next().unwrap().trim().to_string();
    assert_eq!(operator("bruno.neri")["must_change_password"], true, "{shown}");

    // A mistake is named beside its field, and nothing is saved.
    open(&browser, &hub, "services", SCREENS[1].2).await;
    let service: Value = api.get("/services")["services"][0].clone();
    let id = service["id"].as_str().unwrap();
    fill(&browser, &format!("#floor-{id}"), "20").await;
    click(&browser, &format!("article.service[aria-labelledby='service-{id}'] button[type=submit]")).await;
    let message = browser
        .wait_js("the floor's message", &format!("return document.getElementById('floor-{id}-error').innerText"))
        .await;
    assert!(message.as_str().unwrap().contains("floor"), "{message}");
    let invalid =
        browser.js(&format!("return document.getElementById('floor-{id}').getAttribute('aria-invalid')")).await;
    assert_eq!(invalid.as_str(), Some("true"));
    assert_eq!(api.get("/services")["services"][0], service, "nothing saved");

    // An enrolment token with its QR code to scan on the new device.
    open(&browser, &hub, "cash-points", SCREENS[2].2).await;
    fill(&browser, "#token-name", "Scuola Verdi").await;
    click(&browser, "#token-create").await;
    let token = browser
        .wait_js(
            "the enrolment token",
            "const t = document.querySelector('#enrolment-token code'); return t && t.innerText",
        )
        .await;
    assert!(token.as_str().unwrap().starts_with("saldo-join-"), "{token}");
    let qr = browser
        .js("const f = document.querySelector('#enrolment-token figure.qr'); \
             return [f.getAttribute('aria-label'), f.querySelectorAll('svg path').length, f.querySelector('svg').getAttribute('viewBox')]")
        .await;
    assert!(qr[0].as_str().is_some_and(|l| !l.is_empty()), "the QR code is labelled: {qr}");
    assert_eq!(qr[1], 1, "the QR code's dark modules: {qr}");
    assert!(qr[2].as_str().unwrap().starts_with("0 0 "), "{qr}");
    browser.client.find(Locator::Id("enrolment-token")).await.unwrap();
    browser.screenshot("hub-enrolment-token").await;
    let violations = browser.accessibility_violations().await;
    assert!(violations.is_empty(), "enrolment token: {violations:#?}");

    // A device revoked, with its reason.
    click(&browser, "button[aria-label='Apri Edicola']").await;
    browser.wait_js("the device", "return document.getElementById('revoke-reason')").await;
    fill(&browser, "#revoke-reason", "tablet rubato").await;
    click(&browser, "form[aria-labelledby=revoke-title] button[type=submit]").await;
    browser
        .wait_js(
            "the revocation",
            "const d = document.querySelector('form[aria-labelledby=revoke-title] .done'); return d && d.innerText",
        )
        .await;
    let points = api.get("/cash-points");
    let edicola = points["cash_points"].as_array().unwrap().iter().find(|c| c["name"] == "Edicola").unwrap();
    assert!(edicola["revoked"].is_object(), "{edicola}");

    // The clerk with the one-time password logs in: the page asks for a
    // password of their own before anything else, names a mistake, then
    // lets them in.
    click(&browser, "nav button[type=button]").await;
    browser.wait_js("the login form", "return document.getElementById('login') !== null").await;
    fill(&browser, "#login", "bruno.neri").await;
    fill(&browser, "#password", &format!("{one_time}{}", key(ENTER))).await;
    browser.wait_js("the password form", "return document.getElementById('new-password') !== null").await;
    browser.screenshot("choose-password").await;
    let violations = browser.accessibility_violations().await;
    assert!(violations.is_empty(), "choosing a password: {violations:#?}");
    fill(&browser, "#current-password", &one_time).await;
    fill(&browser, "#new-password", "corta").await;
    fill(&browser, "#repeat-password", &format!("corta{}", key(ENTER))).await;
    let mistake = browser
        .wait_js("the mistake", "const e = document.getElementById('password-error'); return e && e.innerText")
        .await;
    assert!(mistake.as_str().unwrap().contains("10"), "{mistake}");
    fill(&browser, "#new-password", "bruno sceglie la sua").await;
    fill(&browser, "#repeat-password", &format!("bruno sceglie la sua{}", key(ENTER))).await;
    browser.wait_js("the hub's navigation", "return document.querySelectorAll('nav a.hub-link').length === 7").await;
    assert_eq!(operator("bruno.neri")["must_change_password"], false);
    assert!(Api::log_in(&hub, "bruno.neri", "bruno sceglie la sua").is_ok(), "the chosen password logs in");
}
