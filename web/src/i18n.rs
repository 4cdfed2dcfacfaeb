//! The page's words in Italian (the default) and English, and how amounts,
//! methods and balances read in each.

use saldo_api::Lang;
use saldo_api::money::format_eur;
use saldo_api::payments::PaymentMethodApi;
use saldo_sync::Balance;

/// Every text of the page that is not data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Text {
    AppName,
    LoginTitle,
    Login,
    Password,
    LogIn,
    LogOut,
    ChoosePasswordTitle,
    ChoosePasswordHelp,
    CurrentPassword,
    NewPassword,
    RepeatPassword,
    PasswordsDiffer,
    SavePassword,
    Language,
    Online,
    Offline,
    Unconfirmed,
    LastContact,
    Never,
    Counter,
    Reversal,
    DailyClose,
    Remittance,
    Resend,
    Search,
    SearchHelp,
    Amount,
    AmountHelp,
    Child,
    School,
    Class,
    Service,
    Balance,
    Provisional,
    Confirmed,
    Method,
    MethodHelp,
    Lines,
    Total,
    Record,
    ReceiptTitle,
    Print,
    NewSale,
    NoResults,
    Operation,
    Reason,
    Reference,
    Send,
    Email,
    Sms,
    Done,
    Load,
    TodayReceipts,
    Day,
    Count,
    Reversals,
    CloseDay,
    HubScreens,
    NotForCashiers,
    Family,
}

/// The text in `lang`.
pub fn tr(lang: Lang, text: Text) -> &'static str {
    use Text::*;
    let (it, en) = match text {
        AppName => ("Saldo", "Saldo"),
        LoginTitle => ("Accesso operatori", "Operators' login"),
        Login => ("Utente", "Login"),
        Password => ("Password", "Password"),
        LogIn => ("Entra", "Log in"),
        LogOut => ("Esci", "Log out"),
        ChoosePasswordTitle => ("Scegli la tua password", "Choose your password"),
        ChoosePasswordHelp => (
            "Sei entrato con una password provvisoria: scegline una tua, di almeno 10 caratteri (qualche parola è facile da ricordare).",
            "You logged in with a one-time password: choose your own, at least 10 characters (a few words are easy to remember).",
        ),
        CurrentPassword => ("Password provvisoria", "One-time password"),
        NewPassword => ("Nuova password", "New password"),
        RepeatPassword => ("Ripeti la nuova password", "Repeat the new password"),
        PasswordsDiffer => {
            ("Le due nuove password non coincidono: riscrivile.", "The two new passwords differ: type them again.")
        }
        SavePassword => ("Salva la password", "Save the password"),
        Language => ("Lingua", "Language"),
        Online => ("online", "online"),
        Offline => ("offline", "offline"),
        Unconfirmed => ("operazioni non confermate", "unconfirmed operations"),
        LastContact => ("ultimo contatto con il centro", "last contact with the hub"),
        Never => ("mai", "never"),
        Counter => ("Cassa", "Counter"),
        Reversal => ("Storno", "Reversal"),
        DailyClose => ("Chiusura", "Daily close"),
        Remittance => ("Versamento", "Remittance"),
        Resend => ("Rinvia ricevuta", "Send again"),
        Search => ("Cerca (PAN, codice fiscale o nome)", "Search (PAN, codice fiscale or name)"),
        SearchHelp => (
            "Scrivi o leggi la tessera e premi Invio; frecce per scegliere",
            "Type or scan the card and press Enter; arrows to choose",
        ),
        Amount => ("Importo", "Amount"),
        AmountHelp => (
            "Invio conferma; + o Tab aggiunge una riga per un fratello o un altro servizio; Esc annulla",
            "Enter confirms; + or Tab adds a line for a sibling or another service; Esc cancels",
        ),
        Child => ("Bambino", "Child"),
        School => ("Scuola", "School"),
        Class => ("Classe", "Class"),
        Service => ("Servizio", "Service"),
        Balance => ("Saldo", "Balance"),
        Provisional => ("provvisorio", "provisional"),
        Confirmed => ("confermato", "confirmed"),
        Method => ("Pagamento", "Payment"),
        MethodHelp => (
            "Invio registra; F2 o m cambia il metodo; Esc torna all'importo",
            "Enter records; F2 or m switches the method; Esc goes back to the amount",
        ),
        Lines => ("Righe della ricevuta", "Receipt lines"),
        Total => ("Totale", "Total"),
        Record => ("Registra", "Record"),
        ReceiptTitle => ("Ricevuta", "Receipt"),
        Print => ("Stampa", "Print"),
        NewSale => ("Nuova operazione (Invio)", "New sale (Enter)"),
        NoResults => ("Nessun risultato", "No results"),
        Operation => ("Operazione (codice)", "Operation (id)"),
        Reason => ("Motivo", "Reason"),
        Reference => ("Riferimento (CRO, distinta)", "Reference (bank slip)"),
        Send => ("Invia", "Send"),
        Email => ("e-mail", "e-mail"),
        Sms => ("SMS", "SMS"),
        Done => ("Fatto", "Done"),
        Load => ("Mostra", "Show"),
        TodayReceipts => ("Ricevute di questa sessione", "Receipts of this session"),
        Day => ("Giorno", "Day"),
        Count => ("Ricevute", "Receipts"),
        Reversals => ("Storni", "Reversals"),
        CloseDay => ("Chiudi la giornata", "Close the day"),
        HubScreens => ("Centro", "Hub"),
        NotForCashiers => ("Questa pagina è per il personale del centro.", "This page is for the hub's staff."),
        Family => ("Famiglia", "Family"),
    };
    lang.pick(it, en)
}

/// "contanti", "bancomat", "carta di credito".
pub fn method(lang: Lang, method: PaymentMethodApi) -> &'static str {
    match method {
        PaymentMethodApi::Cash => lang.pick("contanti", "cash"),
        PaymentMethodApi::DebitCard => lang.pick("bancomat", "debit card"),
        PaymentMethodApi::CreditCard => lang.pick("carta di credito", "credit card"),
        PaymentMethodApi::Other => lang.pick("altro", "other"),
    }
}

/// A balance with its state in words, never in colour alone:
/// `20,50 € (provvisorio)` or `20,50 € (confermato)`.
pub fn balance(lang: Lang, balance: Balance, provisional: bool) -> String {
    let state = tr(lang, if provisional { Text::Provisional } else { Text::Confirmed });
    format!("{} ({state})", format_eur(balance))
}

/// How long ago, in words: "12 s fa", "3 min fa".
pub fn ago(lang: Lang, then_ms: Option<u64>, now_ms: u64) -> String {
    let Some(then) = then_ms else { return tr(lang, Text::Never).into() };
    let seconds = now_ms.saturating_sub(then) / 1000;
    let (value, unit) = match seconds {
        0..=59 => (seconds, "s"),
        60..=3599 => (seconds / 60, "min"),
        3600..=86_399 => (seconds / 3600, "h"),
        _ => (seconds / 86_400, lang.pick("g", "d")),
    };
    match lang {
        Lang::It => format!("{value} {unit} fa"),
        Lang::En => format!("{value} {unit} ago"),
    }
}

/// The language a stored choice names (`it` when none).
pub fn lang_from_code(code: Option<&str>) -> Lang {
    match code {
        Some("en") => Lang::En,
        _ => Lang::It,
    }
}

/// The code of a language, for storing the choice and the `lang` attribute.
pub fn lang_code(lang: Lang) -> &'static str {
    match lang {
        Lang::It => "it",
        Lang::En => "en",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balances_say_their_state_in_words_the_italian_way() {
        let b = Balance::from_minor(123_450).unwrap();
        assert_eq!(balance(Lang::It, b, true), "1.234,50 € (provvisorio)");
        assert_eq!(balance(Lang::En, b, false), "1.234,50 € (confirmed)");
        assert_eq!(method(Lang::It, PaymentMethodApi::DebitCard), "bancomat");
        assert_eq!(tr(Lang::En, Text::Offline), "offline");
    }

    #[test]
    fn last_contact_reads_as_time_ago() {
        assert_eq!(ago(Lang::It, None, 10), "mai");
        assert_eq!(ago(Lang::It, Some(1_000), 13_000), "12 s fa");
        assert_eq!(ago(Lang::En, Some(0), 180_000), "3 min ago");
        assert_eq!(lang_from_code(Some("en")), Lang::En);
        assert_eq!(lang_code(lang_from_code(None)), "it");
    }
}
