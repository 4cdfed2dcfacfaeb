//! The Leptos app (wasm32 only): log in, the status bar, the navigation and
//! the screens. Routes are the URL's fragment (`#/counter`), so the node
//! serves one page.

use leptos::prelude::*;
use leptos::task::spawn_local;
use saldo_api::Lang;
use saldo_api::operators::{Login, Password};
use saldo_api::receipt::Receipt;
use saldo_api::session::{LoginRequest, Me, PasswordChange};

use crate::hub;
use crate::i18n::{Text, lang_code, lang_from_code, tr};

pub(crate) mod api;
mod counter;
mod money;
mod status;

/// What every screen reads: the language, who is logged in, the wallets'
/// last balances from the event stream, the receipts of this session.
#[derive(Clone, Copy)]
pub(crate) struct Ctx {
    pub lang: RwSignal<Lang>,
    pub me: RwSignal<Option<Me>>,
    pub route: RwSignal<String>,
    /// The last balance event per wallet, numbered in the order they came.
    pub balances: RwSignal<Vec<(u64, saldo_api::status::BalanceChanged)>>,
    /// The number of the last balance event.
    pub balance_seq: RwSignal<u64>,
    /// How many times the event stream said it fell behind (balance events
    /// were lost): the screens read again the balances they show.
    pub lagged: RwSignal<u64>,
    pub receipts: RwSignal<Vec<Receipt>>,
}

impl Ctx {
    pub fn t(&self, text: Text) -> &'static str {
        tr(self.lang.get(), text)
    }

    /// A wallet's balance as it is now: the last one per wallet is kept, numbered.
    pub fn balance_changed(&self, change: saldo_api::status::BalanceChanged) {
        let seq = self.balance_seq.get_untracked() + 1;
        self.balance_seq.set(seq);
        self.balances.update(|all| {
            all.retain(|(_, b)| !(b.consumer == change.consumer && b.service == change.service));
            all.push((seq, change));
        });
    }

    pub fn csrf(&self) -> String {
        self.me.with_untracked(|m| m.as_ref().map(|m| m.csrf_token.clone()).unwrap_or_default())
    }
}

pub(crate) fn ctx() -> Ctx {
    expect_context::<Ctx>()
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

fn current_route() -> String {
    let hash = web_sys::window().and_then(|w| w.location().hash().ok()).unwrap_or_default();
    let route = hash.trim_start_matches('#').trim_start_matches('/').to_owned();
    if route.is_empty() { "counter".into() } else { route }
}

pub fn mount() {
    leptos::mount::mount_to_body(App);
}

#[component]
fn App() -> impl IntoView {
    let stored = storage().and_then(|s| s.get_item("saldo-lang").ok().flatten());
    let ctx = Ctx {
        lang: RwSignal::new(lang_from_code(stored.as_deref())),
        me: RwSignal::new(None),
        route: RwSignal::new(current_route()),
        balances: RwSignal::new(Vec::new()),
        balance_seq: RwSignal::new(0),
        lagged: RwSignal::new(0),
        receipts: RwSignal::new(Vec::new()),
    };
    provide_context(ctx);
    let checked = RwSignal::new(false);
    // A session already open (a reload) is picked up.
    spawn_local(async move {
        if let Ok(me) = api::get::<Me>("/session").await {
            ctx.me.set(Some(me));
        }
        checked.set(true);
    });
    let handle = window_event_listener(leptos::ev::hashchange, move |_| ctx.route.set(current_route()));
    on_cleanup(move || handle.remove());
    Effect::new(move |_| {
        let code = lang_code(ctx.lang.get());
        if let Some(html) = document().document_element() {
            let _ = html.set_attribute("lang", code);
        }
        if let Some(s) = storage() {
            let _ = s.set_item("saldo-lang", code);
        }
    });
    view! {
        <Show when=move || checked.get() fallback=|| view! { <p class="loading">"…"</p> }>
            <Show when=move || ctx.me.with(Option::is_some) fallback=|| view! { <LoginScreen/> }>
                <Show
                    when=move || ctx.me.with(|m| m.as_ref().is_some_and(|m| m.must_change_password))
                    fallback=|| view! { <Shell/> }
                >
                    <PasswordScreen/>
                </Show>
            </Show>
        </Show>
    }
}

#[component]
fn LangPicker() -> impl IntoView {
    let ctx = ctx();
    view! {
        <label class="lang">
            {move || ctx.t(Text::Language)}
            " "
            <select
                id="lang"
                on:change=move |ev| ctx.lang.set(lang_from_code(Some(event_target_value(&ev).as_str())))
                prop:value=move || lang_code(ctx.lang.get())
            >
                <option value="it">"Italiano"</option>
                <option value="en">"English"</option>
            </select>
        </label>
    }
}

#[component]
fn LoginScreen() -> impl IntoView {
    let ctx = ctx();
    let login = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let parsed = Login::parse(&login.get_untracked());
        let request = match parsed {
            Ok(login) => LoginRequest { login, password: Password::new(password.get_untracked()) },
            Err(e) => {
                error.set(Some(e.to_string()));
                return;
            }
        };
        if let Err(e) = request.validate() {
            error.set(Some(e.message));
            return;
        }
        busy.set(true);
        spawn_local(async move {
            match api::login::<Me, _>(&request).await {
                Ok(me) => {
                    error.set(None);
                    ctx.me.set(Some(me));
                }
                Err(e) => error.set(Some(e.message)),
            }
            busy.set(false);
        });
    };
    view! {
        <main class="login" id="main">
            <h1>{move || format!("Saldo · {}", ctx.t(Text::LoginTitle))}</h1>
            <form on:submit=submit aria-describedby="login-error">
                <label for="login">{move || ctx.t(Text::Login)}</label>
                <input id="login" name="login" autocomplete="username" autofocus=true
                    on:input=move |ev| login.set(event_target_value(&ev)) prop:value=login />
                <label for="password">{move || ctx.t(Text::Password)}</label>
                <input id="password" name="password" type="password" autocomplete="current-password"
                    on:input=move |ev| password.set(event_target_value(&ev)) prop:value=password />
                <p id="login-error" class="error" role="alert">{move || error.get()}</p>
                <button type="submit" disabled=busy>{move || ctx.t(Text::LogIn)}</button>
            </form>
            <LangPicker/>
        </main>
    }
}

/// Ends the session, back to the login screen.
fn log_out(ctx: Ctx) {
    let csrf = ctx.csrf();
    spawn_local(async move {
        api::logout(&csrf).await;
        ctx.me.set(None);
    });
}

/// An operator who logged in with a one-time password chooses their own
/// before anything else (the hub refuses the rest until then).
#[component]
fn PasswordScreen() -> impl IntoView {
    let ctx = ctx();
    let current = RwSignal::new(String::new());
    let new = RwSignal::new(String::new());
    let repeated = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let change = PasswordChange {
            current_password: Password::new(current.get_untracked()),
            new_password: Password::new(new.get_untracked()),
        };
        if let Err(e) = change.validate() {
            error.set(Some(e.message));
            return;
        }
        if new.get_untracked() != repeated.get_untracked() {
            error.set(Some(ctx.t(Text::PasswordsDiffer).to_string()));
            return;
        }
        busy.set(true);
        let csrf = ctx.csrf();
        spawn_local(async move {
            match api::post::<_, Me>("/session/password", &change, &csrf, None).await {
                Ok(me) => {
                    error.set(None);
                    ctx.me.set(Some(me));
                }
                Err(e) => error.set(Some(e.message)),
            }
            busy.set(false);
        });
    };
    let logout = move |_| log_out(ctx);
    view! {
        <main class="login" id="main">
            <h1>{move || format!("Saldo · {}", ctx.t(Text::ChoosePasswordTitle))}</h1>
            <p id="password-help">{move || ctx.t(Text::ChoosePasswordHelp)}</p>
            <form on:submit=submit aria-describedby="password-help password-error">
                <input type="hidden" name="username" autocomplete="username"
                    prop:value=move || ctx.me.with(|m| m.as_ref().map(|m| m.login.as_str().to_string()).unwrap_or_default()) />
                <label for="current-password">{move || ctx.t(Text::CurrentPassword)}</label>
                <input id="current-password" type="password" autocomplete="current-password" autofocus=true
                    on:input=move |ev| current.set(event_target_value(&ev)) prop:value=current />
                <label for="new-password">{move || ctx.t(Text::NewPassword)}</label>
                <input id="new-password" type="password" autocomplete="new-password"
                    on:input=move |ev| new.set(event_target_value(&ev)) prop:value=new />
                <label for="repeat-password">{move || ctx.t(Text::RepeatPassword)}</label>
                <input id="repeat-password" type="password" autocomplete="new-password"
                    on:input=move |ev| repeated.set(event_target_value(&ev)) prop:value=repeated />
                <p id="password-error" class="error" role="alert">{move || error.get()}</p>
                <button type="submit" disabled=busy>{move || ctx.t(Text::SavePassword)}</button>
            </form>
            <div class="login-foot">
                <button type="button" on:click=logout>{move || ctx.t(Text::LogOut)}</button>
                <LangPicker/>
            </div>
        </main>
    }
}

#[component]
fn Shell() -> impl IntoView {
    let ctx = ctx();
    status::listen(ctx);
    let hub_visible = move || ctx.me.with(|m| m.as_ref().is_some_and(|m| hub::visible_to(m.role, m.node)));
    let link = move |route: &'static str, text: Text| {
        view! {
            <a href=format!("#/{route}")
               aria-current=move || if ctx.route.get() == route { Some("page") } else { None }>
               {move || ctx.t(text)}
            </a>
        }
    };
    let logout = move |_| log_out(ctx);
    let who =
        move || ctx.me.with(|m| m.as_ref().map(|m| format!("{} ({})", m.name, m.login.as_str())).unwrap_or_default());
    view! {
        <header class="top">
            <status::StatusBar/>
            <nav aria-label="Saldo">
                {link("counter", Text::Counter)}
                {link("reversal", Text::Reversal)}
                {link("close", Text::DailyClose)}
                {link("remittance", Text::Remittance)}
                <Show when=hub_visible>
                    {link("resend", Text::Resend)}
                    {hub::SCREENS.iter().map(|s| {
                        let route = s.route;
                        view! { <a href=format!("#/{route}") class="hub-link">{move || s.title(ctx.lang.get())}</a> }
                    }).collect_view()}
                </Show>
                <span class="who">{who}</span>
                <LangPicker/>
                <button type="button" on:click=logout>{move || ctx.t(Text::LogOut)}</button>
            </nav>
        </header>
        <main id="main">
            {move || {
                let route = ctx.route.get();
                match route.as_str() {
                    "reversal" => money::Reversal().into_any(),
                    "close" => money::Close().into_any(),
                    "remittance" => money::RemittanceScreen().into_any(),
                    "resend" => money::Resend().into_any(),
                    r if r.starts_with("hub/") => hub_screen(r).into_any(),
                    _ => counter::CounterScreen().into_any(),
                }
            }}
        </main>
    }
}

/// A hub screen, or why not. The screens themselves are `crate::hub`'s.
fn hub_screen(route: &str) -> impl IntoView {
    let ctx = ctx();
    let allowed = ctx.me.with_untracked(|m| m.as_ref().is_some_and(|m| hub::visible_to(m.role, m.node)));
    let title = hub::screen(route).map(|s| s.title(ctx.lang.get_untracked())).unwrap_or("?");
    if !allowed {
        return view! { <section class="refused"><h1>{title}</h1><p role="alert" id="hub-refused">{ctx.t(Text::NotForCashiers)}</p></section> }.into_any();
    }
    hub::ui::screen(route)
}
