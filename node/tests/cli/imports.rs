//! `saldo families import`: bad rows reported by the line an editor shows
//! with nothing written, good rows in and a re-import that changes
//! nothing, and files as Excel writes them (CRLF, UTF-16, tabs).

use std::path::Path;

use saldo_node::store::Store;

use super::common::ok;
use super::{check_refused, dump, realm};

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

const HEADER: &str = "payer_fiscal_code;payer_surname;payer_name;email;phone;consumer_fiscal_code;consumer_surname;consumer_name;pan;school;class;services";

#[test]
fn an_invalid_codice_fiscale_or_a_malformed_row_is_reported_by_line_and_changes_nothing() {
    let realm = realm(20);
    let d = realm.data();
    let file = realm.dir.join("bad.csv");
    write(
        &file,
        &format!(
            "{HEADER}\nRSSMRA85T10A562S;Rossi;Mario;m@example.com;+39 333 1234567;MRTMTT25D09F205A;Moretti;Matteo;;Rodari;3B;Mensa\n\
             RSSMRA85T10A562S;Rossi;Mario;not-an-email;;MRTMTT25D09F205Z;Moretti;Matteo;;Rodari;3B;Mensa\n\
             RSSMRA85T10A562S;Rossi;Mario;;;MRTMTT25D09F205Z;Moretti;Matteo;4111111111111112;Rodari;3B;Mensa\n\
             RSSMRA85T10A562S;Rossi;Mario;;;MRTMTT25D09F205Z;Moretti;\"Matteo;;Rodari;3B;Mensa\n"
        ),
    );
    let mut bytes = std::fs::read(&file).unwrap();
    bytes.extend_from_slice(b"RSSMRA85T10A562S;Rossi;Mario;;;MRTMTT25D09F205Z;Moretti;Matt\xffeo;;Rodari;3B;Mensa\n");
    std::fs::write(&file, bytes).unwrap();
    let before = dump(&realm.dir);
    let out = ok(&["families", "import", "--data", d, file.to_str().unwrap()]);
    assert!(out.contains("line 2: consumer_fiscal_code \"MRTMTT25D09F205A\": the codice fiscale's check character is 'A' but should be 'Z'"), "{out}");
    assert!(out.contains("line 3: email \"not-an-email\" has no '@'"), "{out}");
    assert!(out.contains("line 4: pan \"4111111111111112\": the PAN's last digit does not match"), "{out}");
    assert!(out.contains("line 5: a quote opened on this line is never closed"), "{out}");
    assert!(out.contains("0 imported, 4 rejected"), "{out}");
    assert_eq!(dump(&realm.dir), before);
}

#[test]
fn good_rows_go_in_bad_rows_are_reported_and_a_reimport_changes_nothing() {
    let realm = realm(20);
    let d = realm.data();
    let file = realm.dir.join("mixed.csv");
    write(
        &file,
        &format!(
            "\u{feff}{HEADER};notes\n\
             RSSMRA85T10A562S;Rossi;Mario;m@example.com;+39 333 1234567;MRTMTT25D09F205Z;Moretti;Matteo;;Scuola primaria Rodari;3B;Mensa;ignored\n\
             RSSMRA85T10A562S;Rossi;Mario;;;MRTMTT25D09F205Z;Moretti;Matteo;;Rodari;3B;Mensa;a duplicate\n\
             RSSMRA85T10A562S;Rossi;Mario;;;MRTMTT25D09F205Z;Moretti;Matteo;;Rodari;3B;;no services\n"
        ),
    );
    let out = ok(&["families", "import", "--data", d, file.to_str().unwrap()]);
    assert!(out.contains("line 3: consumer MRTMTT25D09F205Z already appears on line 2"), "{out}");
    assert!(out.contains("line 4: services is empty"), "{out}");
    assert!(out.contains("3 rows read: 1 imported, 2 rejected"), "{out}");
    let found: serde_json::Value =
        serde_json::from_str(&ok(&["search", "--data", d, "MRTMTT25D09F205Z", "--json"])).unwrap();
    let found = &found["consumers"];
    assert_eq!(found[0]["name"], "Matteo");
    assert_eq!(found[0]["class"], "3B");
    // The payer's codice fiscale (a parent's CRS/CNS card) finds the children too.
    let by_payer: serde_json::Value =
        serde_json::from_str(&ok(&["search", "--data", d, "RSSMRA85T10A562S", "--json"])).unwrap();
    assert_eq!(by_payer["consumers"][0]["consumer"], found[0]["consumer"]);
    // Contact data went to the family's contacts document, kept at the hub.
    {
        let mut store = Store::open(&realm.dir.join("saldo.db")).unwrap();
        let tx = store.read().unwrap();
        let payer = saldo_sync::CodiceFiscale::parse("RSSMRA85T10A562S").unwrap();
        let contacts = tx.contacts(&saldo_sync::FamilyId::derive(&payer)).unwrap();
        assert_eq!(contacts, Some((Some("m@example.com".to_string()), Some("+39 333 1234567".to_string()))));
    }
    let before = dump(&realm.dir);
    let again = ok(&["families", "import", "--data", d, file.to_str().unwrap()]);
    assert!(again.contains("0 directory changes written"), "{again}");
    assert_eq!(dump(&realm.dir), before, "re-importing the same file changed the database");
}

#[test]
fn a_file_without_the_needed_columns_is_refused_whole() {
    let realm = realm(5);
    let file = realm.dir.join("columns.csv");
    write(&file, "surname,name\nRossi,Mario\n");
    check_refused(
        &realm,
        &["families", "import", "--data", realm.data(), file.to_str().unwrap()],
        "the header has no column \"payer_fiscal_code\"",
    );
}

/// Line numbers in an import's report are the lines an editor shows, with
/// Excel's CRLF line ends and with a quoted cell over several lines; a bad
/// cell is quoted in short.
#[test]
fn an_import_reports_the_lines_an_editor_shows_and_quotes_bad_cells_in_short() {
    let realm = realm(3);
    let d = realm.data();
    let long_code = "X".repeat(5_000);
    let code =
        |first15: &str| format!("{first15}{}", saldo_sync::CodiceFiscale::check_character(first15.as_bytes()) as char);
    let (giulia, luca) = (code("MRTGLI27E45F205"), code("MRTLCU29A01F205"));
    let rows = [
        HEADER.to_string(),
        // Line 2: good.
        "RSSMRA85T10A562S;Rossi;Mario;;;MRTMTT25D09F205Z;Moretti;Matteo;;Rodari;3B;Mensa".to_string(),
        // Lines 3-4: one row whose school cell spans two lines.
        format!("RSSMRA85T10A562S;Rossi;Mario;;;{giulia};Moretti;Giulia;;\"Rodari\r\nplesso nord\";1A;Mensa"),
        // Line 5: a codice fiscale of 5,000 characters.
        format!("RSSMRA85T10A562S;Rossi;Mario;;;{long_code};Moretti;Luca;;Rodari;3B;Mensa"),
        // Line 6: a bad PAN.
        format!("RSSMRA85T10A562S;Rossi;Mario;;;{luca};Moretti;Luca;4111111111111112;Rodari;3B;Mensa"),
    ];
    let file = realm.dir.join("excel.csv");
    write(&file, &format!("{}\r\n", rows.join("\r\n")));
    let out = ok(&["families", "import", "--data", d, file.to_str().unwrap()]);
    assert!(out.contains("line 3: column school spans several lines"), "{out}");
    let line5 = out.lines().find(|l| l.starts_with("line 5: ")).unwrap_or_else(|| panic!("no line 5 in {out}"));
    assert!(line5.contains(&format!("\"{}…\"", "X".repeat(40))), "{line5}");
    assert!(line5.len() < 300, "{} characters: {line5}", line5.len());
    assert!(out.contains("line 6: pan \"4111111111111112\""), "{out}");
    assert!(out.contains("4 rows read: 1 imported, 3 rejected"), "{out}");
}

/// A UTF-16 file (Excel's "Unicode text") is refused saying what it is and
/// how to save it; a tab-separated file imports like a CSV one.
#[test]
fn a_utf16_file_is_named_as_such_and_a_tab_separated_one_imports() {
    let realm = realm(3);
    let d = realm.data();
    let text = format!(
        "{}\r\nRSSMRA85T10A562S\tRossi\tMario\t\t\tMRTMTT25D09F205Z\tMoretti\tMatteo\t\tRodari\t3B\tMensa\r\n",
        HEADER.replace(';', "\t")
    );
    let tabs = realm.dir.join("tabs.txt");
    write(&tabs, &text);
    let out = ok(&["families", "import", "--data", d, tabs.to_str().unwrap()]);
    assert!(out.contains("1 rows read: 1 imported, 0 rejected"), "{out}");
    for (name, bom, little_endian) in
        [("le-bom", true, true), ("be-bom", true, false), ("le", false, true), ("be", false, false)]
    {
        let mut bytes: Vec<u8> = match (bom, little_endian) {
            (true, true) => vec![0xFF, 0xFE],
            (true, false) => vec![0xFE, 0xFF],
            _ => Vec::new(),
        };
        for unit in text.encode_utf16() {
            bytes.extend(if little_endian { unit.to_le_bytes() } else { unit.to_be_bytes() });
        }
        let file = realm.dir.join(format!("{name}.txt"));
        std::fs::write(&file, bytes).unwrap();
        check_refused(
            &realm,
            &["families", "import", "--data", d, file.to_str().unwrap()],
            "the file is UTF-16 (as Excel's \"Unicode text\" writes it): save it as \"CSV UTF-8\"",
        );
    }
}
