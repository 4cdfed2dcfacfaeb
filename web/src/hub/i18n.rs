//! The hub screens' words in Italian (the default) and English. Kept apart
//! from the counter's [`crate::i18n`] so both grow without touching each other.

use saldo_api::Lang;
use saldo_api::directory::NotifyApi;
use saldo_api::outbox::{ChannelApi, DeliveryStateApi, PurposeApi};
use saldo_api::review::FlagReasonApi;
use saldo_api::session::OperatorRole;

/// Every text of the hub screens that is not data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum H {
    Search,
    SearchFamiliesHelp,
    Find,
    AllFamilies,
    Payer,
    FiscalCode,
    Children,
    Open,
    Close,
    Email,
    Phone,
    Notify,
    MessagesLanguage,
    Save,
    Saved,
    ImportTitle,
    ImportFile,
    ImportHelp,
    Import,
    ImportDone,
    RefusedRows,
    Line,
    Column,
    Problem,
    NoneRefused,
    Service,
    Name,
    Tariff,
    TariffHelp,
    NoTariff,
    Floor,
    FloorHelp,
    Reminders,
    RemindersHelp,
    CashPoint,
    Role,
    PerOperation,
    UnconfirmedTotal,
    OfflineHours,
    LastSeen,
    Unconfirmed,
    State,
    Active,
    Revoked,
    Limits,
    Escrow,
    EscrowHelp,
    ConsumerId,
    Amount,
    Revoke,
    RevokeReason,
    NewToken,
    DeviceName,
    Create,
    TokenShown,
    TokenScan,
    Operators,
    Login,
    NewOperator,
    Add,
    NewPassword,
    OneTimePassword,
    SetPassword,
    Disable,
    Enable,
    Disabled,
    Enabled,
    NoCashPoint,
    Operation,
    Author,
    Kind,
    Receipt,
    Reason,
    Detail,
    Recorded,
    BelowFloorWarning,
    ConfirmBelowFloor,
    Accept,
    Reject,
    Note,
    NoteHelp,
    NothingFlagged,
    Accepted,
    Rejected,
    AllStates,
    Filter,
    Recipient,
    Subject,
    Attempts,
    LastError,
    Retry,
    Purpose,
    Channel,
    Message,
    OlderMessages,
    ReportKind,
    DailyCloseReport,
    RemittanceReport,
    YearlyReport,
    MovementsReport,
    Day,
    From,
    To,
    Year,
    DayHelp,
    FromHelp,
    YearHelp,
    Show,
    DownloadCsv,
    ProvisionalReport,
    TopUpsPerDay,
    TopUpsPerCashPoint,
    BalancesPerService,
    BalancesPerServiceHelp,
    Receipts,
    Reversals,
    Pending,
    Flagged,
    Owed,
    Remitted,
    Collected,
    Traceable,
    Cash,
    Other,
    Deductible,
    TopUps,
    Charges,
    DuePayments,
    Refunds,
    NoData,
    Total,
    Loading,
    Actions,
}

/// The text in `lang`.
pub fn ht(lang: Lang, text: H) -> &'static str {
    use H::*;
    let (it, en) = match text {
        Search => ("Cerca (cognome, codice fiscale o PAN)", "Search (surname, codice fiscale or PAN)"),
        SearchFamiliesHelp => (
            "Lascia vuoto e premi Cerca per l'elenco di tutte le famiglie",
            "Leave it empty and press Find for the list of every family",
        ),
        Find => ("Cerca", "Find"),
        AllFamilies => ("famiglie in tutto", "families in all"),
        Payer => ("Adulto pagante", "Payer"),
        FiscalCode => ("Codice fiscale", "Codice fiscale"),
        Children => ("Figli", "Children"),
        Open => ("Apri", "Open"),
        Close => ("Chiudi", "Close"),
        Email => ("E-mail", "E-mail"),
        Phone => ("Cellulare (per gli SMS)", "Mobile phone (for SMS)"),
        Notify => ("Ricevute e promemoria via", "Receipts and reminders by"),
        MessagesLanguage => ("Lingua dei messaggi", "Language of the messages"),
        Save => ("Salva", "Save"),
        Saved => ("Salvato", "Saved"),
        ImportTitle => ("Importa famiglie da CSV", "Import families from CSV"),
        ImportFile => {
            ("File CSV (una riga per bambino, con intestazione)", "CSV file (one row per child, with a header)")
        }
        ImportHelp => (
            "Le righe corrette entrano intere; ogni riga rifiutata è elencata con il motivo e non cambia nulla",
            "Good rows go in whole; each refused row is listed with its reason and changes nothing",
        ),
        Import => ("Importa", "Import"),
        ImportDone => ("Importazione", "Import"),
        RefusedRows => ("Righe rifiutate", "Refused rows"),
        Line => ("Riga", "Line"),
        Column => ("Colonna", "Column"),
        Problem => ("Cosa correggere", "What to fix"),
        NoneRefused => ("Nessuna riga rifiutata", "No row refused"),
        Service => ("Servizio", "Service"),
        Name => ("Nome", "Name"),
        Tariff => ("Tariffa per addebito", "Tariff per charge"),
        TariffHelp => ("Vuoto: nessuna tariffa", "Empty: no tariff"),
        NoTariff => ("nessuna", "none"),
        Floor => ("Soglia minima del saldo", "Balance floor"),
        FloorHelp => (
            "Quanto un borsellino può scendere sotto zero: 0 o negativo, per esempio -20,00",
            "How far below zero a wallet may go: 0 or negative, like -20.00",
        ),
        Reminders => ("Promemoria (addebiti rimasti)", "Reminders (charges left)"),
        RemindersHelp => (
            "Numeri separati da virgole, per esempio 3, 0, -2; al più 5, da -100 a 100; vuoto: nessuno",
            "Numbers separated by commas, like 3, 0, -2; at most 5, from -100 to 100; empty: none",
        ),
        CashPoint => ("Punto di ricarica", "Cash point"),
        Role => ("Ruolo", "Role"),
        PerOperation => ("Massimo per operazione", "Most per operation"),
        UnconfirmedTotal => ("Massimo non confermato", "Most unconfirmed"),
        OfflineHours => ("Ore massime offline", "Most hours offline"),
        LastSeen => ("Ultimo contatto", "Last contact"),
        Unconfirmed => ("Non confermate", "Unconfirmed"),
        State => ("Stato", "State"),
        Active => ("attivo", "active"),
        Revoked => ("revocato", "revoked"),
        Limits => ("Limiti", "Limits"),
        Escrow => ("Riserva per un borsellino", "Escrow for a wallet"),
        EscrowHelp => (
            "Somma che il punto può spendere da quel borsellino anche offline",
            "What the cash point may spend from that wallet even offline",
        ),
        ConsumerId => ("Codice del bambino (esadecimale)", "Child's id (hex)"),
        Amount => ("Importo", "Amount"),
        Revoke => ("Revoca", "Revoke"),
        RevokeReason => ("Motivo della revoca", "Reason for revoking"),
        NewToken => ("Nuovo dispositivo: codice di attivazione", "New device: enrolment token"),
        DeviceName => ("Nome del punto", "Cash point's name"),
        Create => ("Crea", "Create"),
        TokenShown => ("Codice di attivazione (mostrato una sola volta)", "Enrolment token (shown once)"),
        TokenScan => (
            "Inquadra il codice QR con il nuovo dispositivo, o copia il codice",
            "Scan the QR code with the new device, or copy the token",
        ),
        Operators => ("Operatori", "Operators"),
        Login => ("Utente", "Login"),
        NewOperator => ("Nuovo operatore", "New operator"),
        Add => ("Aggiungi", "Add"),
        NewPassword => (
            "Nuova password (almeno 10 caratteri; vuota: una password provvisoria)",
            "New password (at least 10 characters; empty: a one-time password)",
        ),
        OneTimePassword => (
            "password provvisoria, mostrata solo ora: consegnala all'operatore",
            "one-time password, shown only now: hand it to the operator",
        ),
        SetPassword => ("Cambia password", "Set password"),
        Disable => ("Disattiva", "Disable"),
        Enable => ("Riattiva", "Enable"),
        Disabled => ("disattivato", "disabled"),
        Enabled => ("attivo", "active"),
        NoCashPoint => ("nessuno (amministratore o impiegato)", "none (administrator or clerk)"),
        Operation => ("Operazione", "Operation"),
        Author => ("Dispositivo", "Device"),
        Kind => ("Tipo", "Kind"),
        Receipt => ("Ricevuta", "Receipt"),
        Reason => ("Motivo", "Reason"),
        Detail => ("Dettaglio", "Detail"),
        Recorded => ("Registrata", "Recorded"),
        BelowFloorWarning => (
            "Se accettata, questi borsellini scendono sotto la soglia:",
            "If accepted, these wallets go below their floor:",
        ),
        ConfirmBelowFloor => ("Accetto anche sotto la soglia", "Accept even below the floor"),
        Accept => ("Accetta", "Accept"),
        Reject => ("Rifiuta", "Reject"),
        Note => ("Nota (obbligatoria per rifiutare)", "Note (needed to reject)"),
        NoteHelp => ("Il punto di ricarica vedrà la nota", "The cash point will see the note"),
        NothingFlagged => ("Nessuna operazione da rivedere", "No operation to review"),
        Accepted => ("accettata", "accepted"),
        Rejected => ("rifiutata", "rejected"),
        AllStates => ("tutti", "all"),
        Filter => ("Stato dell'invio", "Delivery state"),
        Recipient => ("Destinatario", "Recipient"),
        Subject => ("Oggetto", "Subject"),
        Attempts => ("Tentativi", "Attempts"),
        LastError => ("Ultimo errore", "Last error"),
        Retry => ("Riprova l'invio", "Retry"),
        Purpose => ("Tipo", "Purpose"),
        Channel => ("Canale", "Channel"),
        Message => ("Messaggio", "Message"),
        OlderMessages => ("Messaggi precedenti", "Older messages"),
        ReportKind => ("Rapporto", "Report"),
        DailyCloseReport => ("Chiusura giornaliera", "Daily close"),
        RemittanceReport => ("Prospetto dei versamenti", "Remittance statement"),
        YearlyReport => ("Attestazione annuale", "Yearly statement"),
        MovementsReport => ("Movimenti per servizio e giorno", "Movements per service and day"),
        Day => ("Giorno", "Day"),
        From => ("Dal", "From"),
        To => ("Al", "To"),
        Year => ("Anno", "Year"),
        DayHelp => ("gg/mm/aaaa, vuoto: oggi", "dd/mm/yyyy, empty: today"),
        FromHelp => ("gg/mm/aaaa, vuoto: il primo del mese", "dd/mm/yyyy, empty: the first of this month"),
        YearHelp => ("per esempio 2026, vuoto: l'anno scorso", "like 2026, empty: last year"),
        Show => ("Mostra", "Show"),
        DownloadCsv => ("Scarica CSV", "Download CSV"),
        ProvisionalReport => (
            "Provvisorio: comprende operazioni non ancora confermate",
            "Provisional: includes operations not yet confirmed",
        ),
        TopUpsPerDay => ("Ricariche per giorno", "Top-ups per day"),
        TopUpsPerCashPoint => ("Ricariche per punto di ricarica", "Top-ups per cash point"),
        BalancesPerService => ("Saldo per servizio nel periodo", "Balance per service over the period"),
        BalancesPerServiceHelp => (
            "Entrate meno uscite di ogni servizio, sommate giorno per giorno dall'inizio del periodo",
            "Money in less money out of each service, added up day by day from the start of the period",
        ),
        Receipts => ("Ricevute", "Receipts"),
        Reversals => ("Storni", "Reversals"),
        Pending => ("In attesa di verifica", "Awaiting a verdict"),
        Flagged => ("Segnalate", "Flagged"),
        Owed => ("Da versare", "Owed"),
        Remitted => ("Versato", "Remitted"),
        Collected => ("Incassato", "Collected"),
        Traceable => ("Tracciabili", "Traceable"),
        Cash => ("Contanti", "Cash"),
        Other => ("Altro", "Other"),
        Deductible => ("Detraibile", "Deductible"),
        TopUps => ("Ricariche", "Top-ups"),
        Charges => ("Addebiti", "Charges"),
        DuePayments => ("Pagamenti dovuti", "Due payments"),
        Refunds => ("Rimborsi", "Refunds"),
        NoData => ("Nessun dato nel periodo", "No data in the period"),
        Total => ("Totale", "Total"),
        Loading => ("Caricamento…", "Loading…"),
        Actions => ("Azioni", "Actions"),
    };
    lang.pick(it, en)
}

pub fn role(lang: Lang, role: OperatorRole) -> &'static str {
    match role {
        OperatorRole::Administrator => lang.pick("amministratore", "administrator"),
        OperatorRole::Clerk => lang.pick("impiegato", "clerk"),
        OperatorRole::Cashier => lang.pick("cassiere", "cashier"),
    }
}

pub fn notify(lang: Lang, notify: Option<NotifyApi>) -> &'static str {
    match notify {
        None => lang.pick("ogni contatto dato", "every contact given"),
        Some(NotifyApi::Email) => lang.pick("e-mail", "e-mail"),
        Some(NotifyApi::Sms) => lang.pick("SMS", "SMS"),
        Some(NotifyApi::EmailAndSms) => lang.pick("e-mail e SMS", "e-mail and SMS"),
        Some(NotifyApi::None) => lang.pick("nessun invio", "nothing sent"),
    }
}

pub fn delivery(lang: Lang, state: DeliveryStateApi) -> &'static str {
    match state {
        DeliveryStateApi::Queued => lang.pick("in coda", "queued"),
        DeliveryStateApi::Failing => lang.pick("in errore, si riprova", "failing, retrying"),
        DeliveryStateApi::Sent => lang.pick("inviato", "sent"),
        DeliveryStateApi::GivenUp => lang.pick("abbandonato", "given up"),
    }
}

pub fn purpose(lang: Lang, purpose: PurposeApi) -> &'static str {
    match purpose {
        PurposeApi::Receipt => lang.pick("ricevuta", "receipt"),
        PurposeApi::Reminder => lang.pick("promemoria", "reminder"),
        PurposeApi::Resend => lang.pick("ricevuta rinviata", "receipt sent again"),
    }
}

pub fn channel(lang: Lang, channel: ChannelApi) -> &'static str {
    match channel {
        ChannelApi::Email => lang.pick("e-mail", "e-mail"),
        ChannelApi::Sms => "SMS",
    }
}

/// Why the hub flagged an operation, in words.
pub fn flag_reason(lang: Lang, reason: FlagReasonApi) -> &'static str {
    use FlagReasonApi::*;
    let (it, en) = match reason {
        RevokedAuthor => ("dispositivo revocato", "revoked device"),
        FrozenAuthor => ("dispositivo sospeso", "frozen device"),
        RoleNotAllowed => ("operazione non permessa a questo dispositivo", "not allowed to this device"),
        UnknownConsumer => ("bambino sconosciuto", "unknown child"),
        NotEnrolledInService => ("bambino non iscritto al servizio", "child not enrolled in the service"),
        OverOperationLimit => ("oltre il limite per operazione", "over the per-operation limit"),
        OverUnconfirmedLimit => ("oltre il limite non confermato", "over the unconfirmed limit"),
        OfflineTooLong => ("offline troppo a lungo", "offline too long"),
        DuplicateReceipt => ("ricevuta doppia", "duplicate receipt"),
        DuplicateDuePayment => ("pagamento dovuto doppio", "duplicate due payment"),
        DuplicateCharge => ("addebito doppio", "duplicate charge"),
        BelowFloor => ("sotto la soglia minima", "below the floor"),
        InsufficientFunds => ("saldo insufficiente", "insufficient funds"),
        ReversalNotAllowed => ("storno non permesso", "reversal not allowed"),
        CloseMismatch => ("chiusura non corrispondente", "close does not match"),
        OverEscrow => ("oltre la riserva", "over the escrow"),
    };
    lang.pick(it, en)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_words_come_in_both_languages() {
        assert_eq!(ht(Lang::It, H::Revoke), "Revoca");
        assert_eq!(ht(Lang::En, H::RefusedRows), "Refused rows");
        assert_eq!(role(Lang::It, OperatorRole::Clerk), "impiegato");
        assert_eq!(delivery(Lang::En, DeliveryStateApi::GivenUp), "given up");
        assert_eq!(flag_reason(Lang::It, FlagReasonApi::BelowFloor), "sotto la soglia minima");
        assert_eq!(notify(Lang::En, None), "every contact given");
    }
}
