//! The counter by keyboard, online and with the hub stopped; a bad amount;
//! a cashier and the hub's screens; accessibility and screenshots.

use std::time::Instant;

use super::harness::{Api, Browser, CASHIER, CASHIER_PASSWORD, CLERK, CLERK_PASSWORD, DOWN, ENTER, Realm, UP, key};

/// Logs in on the page at `base`, by keyboard, and waits for the counter.
async fn log_in(browser: &mut Browser, base: &str, login: &str, password: &str) {
    browser.client.goto(&format!("{base}/")).await.unwrap();
    browser.wait_js("the login form", "return document.activeElement && document.activeElement.id === 'login'").await;
    browser.type_keys(login).await;
    browser.js("document.getElementById('password').focus()").await;
    browser.type_keys(&format!("{password}{}", key(ENTER))).await;
    browser
        .wait_js("the counter's search box", "return document.activeElement && document.activeElement.id === 'search'")
        .await;
    browser.enters = 0;
}

/// Moves the focus from the result that has it to the row of `child`'s canteen wallet.
async fn go_to_row(browser: &mut Browser, child: &str) {
    let script = format!(
        "const rows = [...document.querySelectorAll('.results tbody tr')];
         const target = rows.findIndex(r => r.dataset.child === '{child}' && r.dataset.service === 'mensa');
         const at = rows.findIndex(r => r.classList.contains('focused'));
         return [target, at];"
    );
    let found = browser.js(&script).await;
    let (target, at) = (found[0].as_i64().unwrap(), found[1].as_i64().unwrap());
    assert!(target >= 0 && at >= 0, "no row for {child}'s canteen, or none focused: {found}");
    let step = if target > at { key(DOWN) } else { key(UP) };
    browser.type_keys(&step.repeat(target.abs_diff(at) as usize)).await;
}

/// The receipt's lines as the page shows them: (text, provisional).
async fn receipt_lines(browser: &Browser) -> Vec<(String, bool)> {
    let lines = browser
        .js("return [...document.querySelectorAll('#receipt .confirmation li')].map(li => [li.innerText, li.dataset.provisional === 'true'])")
        .await;
    lines.as_array().unwrap().iter().map(|l| (l[0].as_str().unwrap().to_owned(), l[1].as_bool().unwrap())).collect()
}

/// Search "rossi", 20,00 € for Rebecca and 15,00 € for her brother
/// Giovanni on one receipt, cash: three Enter presses, no click.
async fn top_up_the_rossi_children(browser: &mut Browser) -> std::time::Duration {
    browser.enters = 0;
    browser.type_keys(&format!("rossi{}", key(ENTER))).await;
    browser.wait_js("the results", "return document.activeElement && document.activeElement.id === 'amount' && document.querySelectorAll('.results tbody tr').length").await;
    go_to_row(browser, "Rossi Rebecca").await;
    browser.type_keys("20,00+").await;
    go_to_row(browser, "Rossi Giovanni").await;
    browser.type_keys(&format!("15.00{}", key(ENTER))).await;
    browser.wait_js("the method", "return document.activeElement && document.activeElement.id === 'record'").await;
    let method = browser.js("return document.getElementById('record').innerText").await;
    assert!(method.as_str().unwrap().contains("contanti"), "cash by default: {method}");
    let started = Instant::now();
    browser.type_keys(&key(ENTER)).await;
    browser.wait_js("the receipt", "return !document.getElementById('receipt').hidden && document.querySelectorAll('#receipt .confirmation li').length").await;
    let elapsed = started.elapsed();
    assert_eq!(browser.enters, 3, "from the search to the receipt in three Enter presses");
    elapsed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cashier_tops_up_two_siblings_on_one_receipt_by_keyboard_online_and_with_the_hub_stopped() {
    let mut realm = tokio::task::spawn_blocking(Realm::new).await.unwrap();
    let api = Api::log_in(&realm.cp_http, CASHIER, CASHIER_PASSWORD).unwrap();
    let before = api.rossi_canteen();
    let mut browser = Browser::start().await;

    // The login screen: accessible, shown.
    browser.client.goto(&format!("{}/", realm.cp_http)).await.unwrap();
    browser.wait_js("the login form", "return document.getElementById('login')").await;
    browser.screenshot("login").await;
    let violations = browser.accessibility_violations().await;
    assert!(violations.is_empty(), "login screen: {violations:#?}");
    log_in(&mut browser, &realm.cp_http, CASHIER, CASHIER_PASSWORD).await;

    // From navigation to a search box that takes input.
    let started = Instant::now();
    browser.client.goto(&format!("{}/", realm.cp_http)).await.unwrap();
    browser.wait_js("the search box", "return document.activeElement && document.activeElement.id === 'search'").await;
    let to_search = started.elapsed();
    browser.wait_js("online", "return document.getElementById('hub-state').dataset.online === 'true'").await;
    let violations = browser.accessibility_violations().await;
    assert!(violations.is_empty(), "counter screen: {violations:#?}");

    let to_receipt = top_up_the_rossi_children(&mut browser).await;
    let lines = receipt_lines(&browser).await;
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].0.contains("Rossi Rebecca") && lines[0].0.contains("20,00 €"), "{lines:?}");
    assert!(lines[1].0.contains("Rossi Giovanni") && lines[1].0.contains("15,00 €"), "{lines:?}");
    let receipt_text = browser.js("return document.querySelector('#receipt pre').innerText").await;
    assert!(receipt_text.as_str().unwrap().contains("35,00"), "{receipt_text}");
    browser.screenshot("counter").await;
    let violations = browser.accessibility_violations().await;
    assert!(violations.is_empty(), "receipt: {violations:#?}");
    // Recorded: each balance grew by what the page took.
    let after = api.rossi_canteen();
    let grew = |name: &str, by: i64| {
        let cents = |v: &[(String, String, String)]| {
            let (_, _, p) = v.iter().find(|(n, ..)| n == name).unwrap();
            let (units, cents) = p.split_once('.').unwrap();
            units.parse::<i64>().unwrap() * 100 + cents.parse::<i64>().unwrap()
        };
        assert_eq!(cents(&after) - cents(&before), by, "{name}: {before:?} → {after:?}");
    };
    grew("Rossi Rebecca", 2_000);
    grew("Rossi Giovanni", 1_500);
    // Each line shows the child's new balance, as the node has it.
    for (name, _, provisional) in &after {
        let shown = provisional.replace('.', ",");
        assert!(
            lines.iter().any(|(l, _)| l.contains(name.as_str()) && l.contains(&shown)),
            "{name} {shown}: {lines:?}"
        );
    }

    // A bad amount: a message next to the field, nothing recorded.
    browser.type_keys(&key(ENTER)).await; // a new sale
    browser.wait_js("the search box", "return document.activeElement && document.activeElement.id === 'search'").await;
    browser.type_keys(&format!("rossi{}", key(ENTER))).await;
    browser.wait_js("the amount box", "return document.activeElement && document.activeElement.id === 'amount'").await;
    browser.type_keys(&format!("12,345{}", key(ENTER))).await;
    let message =
        browser.wait_js("the amount's message", "return document.getElementById('amount-error').innerText").await;
    assert!(message.as_str().unwrap().contains("12,345"), "{message}");
    let described = browser.js("return document.getElementById('amount').getAttribute('aria-describedby')").await;
    assert!(described.as_str().unwrap().split(' ').any(|id| id == "amount-error"), "{described}");
    assert_eq!(browser.focused_id().await, "amount", "the focus stays in the amount box");
    browser.screenshot("bad-amount").await;
    browser.type_keys(&key(ENTER)).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(api.rossi_canteen(), after, "a refused amount records nothing");
    browser.type_keys(&key(super::harness::ESCAPE)).await;

    // The hub stops: the page says offline, and the sale is provisional.
    realm.stop_hub();
    browser.wait_js("offline", "return document.getElementById('hub-state').dataset.online === 'false'").await;
    let state = browser.js("return document.getElementById('hub-state').innerText").await;
    assert!(state.as_str().unwrap().contains("offline"), "{state}");
    browser.js("window.__same_page = true").await;
    browser.wait_js("the search box", "return document.activeElement && document.activeElement.id === 'search'").await;
    top_up_the_rossi_children(&mut browser).await;
    let lines = receipt_lines(&browser).await;
    assert!(lines.iter().all(|(text, provisional)| *provisional && text.contains("provvisorio")), "{lines:?}");
    browser
        .wait_js("unconfirmed operations", "return Number(document.getElementById('unconfirmed').dataset.count) > 0")
        .await;
    browser.screenshot("counter-offline").await;

    // The hub runs again: the balances turn confirmed in place, no reload.
    let realm = tokio::task::spawn_blocking(move || {
        realm.start_hub();
        realm
    })
    .await
    .unwrap();
    browser.wait_js("online again", "return document.getElementById('hub-state').dataset.online === 'true'").await;
    browser
        .wait_js(
            "the balances confirmed",
            "return [...document.querySelectorAll('#receipt .confirmation li')].every(li => li.dataset.provisional === 'false')",
        )
        .await;
    let lines = receipt_lines(&browser).await;
    assert!(lines.iter().all(|(text, provisional)| !provisional && text.contains("confermato")), "{lines:?}");
    assert_eq!(browser.js("return window.__same_page === true").await, true, "the page was not reloaded");
    browser.screenshot("counter-confirmed").await;
    eprintln!(
        "web UI: navigation to a search box that takes input {to_search:?}; last Enter to the receipt on screen {to_receipt:?}"
    );
    let _ = browser.client.close().await;
    drop(realm);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cashier_cannot_open_the_hub_screens_and_a_clerk_sees_them() {
    let realm = tokio::task::spawn_blocking(Realm::new).await.unwrap();
    let mut browser = Browser::start().await;
    log_in(&mut browser, &realm.hub_http, CLERK, CLERK_PASSWORD).await;
    let links = browser.js("return document.querySelectorAll('nav .hub-link').length").await;
    assert!(links.as_u64().unwrap() >= 5, "a clerk at the hub sees the hub's screens: {links}");
    browser.js("document.querySelector('nav button').focus()").await;
    browser.type_keys(&key(ENTER)).await; // log out
    log_in(&mut browser, &realm.cp_http, CASHIER, CASHIER_PASSWORD).await;
    assert_eq!(browser.js("return document.querySelectorAll('nav .hub-link').length").await, 0);
    // At a phone's width the counter fits: nothing wider than the screen.
    browser.client.set_window_size(390, 844).await.unwrap();
    browser.type_keys(&format!("rossi{}", key(ENTER))).await;
    browser.wait_js("the results", "return document.querySelectorAll('.results tbody tr').length").await;
    let overflow =
        browser.js("return document.documentElement.scrollWidth - document.documentElement.clientWidth").await;
    assert!(overflow.as_i64().unwrap() <= 0, "the page is {overflow} px wider than a phone");
    browser.screenshot("counter-phone").await;
    let violations = browser.accessibility_violations().await;
    assert!(violations.is_empty(), "counter at a phone's width: {violations:#?}");
    browser.client.set_window_size(1280, 900).await.unwrap();
    browser.client.goto(&format!("{}/#/hub/families", realm.cp_http)).await.unwrap();
    let refused = browser
        .wait_js(
            "the refusal",
            "return document.getElementById('hub-refused') && document.getElementById('hub-refused').innerText",
        )
        .await;
    assert!(refused.as_str().unwrap().contains("personale del centro"), "{refused}");
    browser.screenshot("hub-refused").await;
    let _ = browser.client.close().await;
}
