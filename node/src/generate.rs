//! A realistic synthetic realm for demos, tests and benchmarks: Italian
//! names with accents and apostrophes, valid codici fiscali (computed from
//! name, birth date and birthplace as the Agenzia delle Entrate does, with
//! *omocodia* variants where two people would share a code), valid PANs,
//! families of one to four children in several schools and services.
//! Deterministic for a given seed.

use std::collections::HashSet;
use std::io::Write;

use saldo_sync::values::fold_for_search;
use saldo_sync::{CodiceFiscale, Pan};

/// Most consumers one generated file holds.
pub const CONSUMERS_MAX: u64 = 1_000_000;

/// The columns `saldo families import` reads, in this order.
pub const COLUMNS: [&str; 12] = [
    "payer_fiscal_code",
    "payer_surname",
    "payer_name",
    "email",
    "phone",
    "consumer_fiscal_code",
    "consumer_surname",
    "consumer_name",
    "pan",
    "school",
    "class",
    "services",
];

const SURNAMES: &[&str] = &[
    "Rossi",
    "Russo",
    "Ferrari",
    "Esposito",
    "Bianchi",
    "Romano",
    "Colombo",
    "Ricci",
    "Marino",
    "Greco",
    "Bruno",
    "Gallo",
    "Conti",
    "De Luca",
    "Mancini",
    "Costa",
    "Giordano",
    "Rizzo",
    "Lombardi",
    "Moretti",
    "Barbieri",
    "Fontana",
    "Santoro",
    "Mariani",
    "Rinaldi",
    "Caruso",
    "Ferrara",
    "Galli",
    "Martini",
    "Leone",
    "Longo",
    "Gentile",
    "Martinelli",
    "Vitale",
    "Lombardo",
    "Serra",
    "Coppola",
    "De Santis",
    "D'Angelo",
    "Marchetti",
    "Parisi",
    "Villa",
    "Conte",
    "Ferraro",
    "Ferri",
    "Fabbri",
    "Bianco",
    "Marini",
    "Grasso",
    "Valentini",
    "Messina",
    "Sala",
    "De Angelis",
    "Gatti",
    "Pellegrini",
    "Palumbo",
    "Sanna",
    "Farina",
    "Rizzi",
    "Monti",
    "Cattaneo",
    "Morelli",
    "Amato",
    "Silvestri",
    "Mazza",
    "Testa",
    "Grassi",
    "Pellegrino",
    "Carbone",
    "Giuliani",
    "Benedetti",
    "Barone",
    "Rossetti",
    "Caputo",
    "Montanari",
    "Guerra",
    "Palmieri",
    "Bernardi",
    "Martino",
    "Fiore",
    "De Rosa",
    "Ferretti",
    "Bellini",
    "Basile",
    "Riva",
    "Donati",
    "Piras",
    "Vitali",
    "Battaglia",
    "Sartori",
    "Neri",
    "Costantini",
    "Milani",
    "Pagano",
    "Ruggiero",
    "Sorrentino",
    "D'Amico",
    "Orlando",
    "Damico",
    "Negri",
    "Dell'Acqua",
    "Dell'Orto",
    "D'Alessandro",
    "Lo Russo",
    "La Rosa",
    "Sciacca",
    "Zanetti",
    "Fumagalli",
    "Brambilla",
    "Colombini",
    "Tedesco",
    "Mele",
    "Cirillo",
    "Ruggeri",
    "Bassi",
    "Agostini",
    "Pace",
    "Melis",
    "Cocco",
    "Murgia",
    "Pinna",
    "Zanella",
    "Benetti",
    "Nicolò",
    "Dalla Via",
    "Dall'Ara",
    "Sanfilippo",
    "Pellicanò",
    "Canò",
    "Giannì",
    "Mosè",
    "Fedè",
    "Cantù",
    "Pirrò",
    "Mastrangelo",
    "Iacobelli",
    "Tomasi",
    "Bonetti",
    "Carli",
    "Ceccarelli",
    "Guidi",
    "Zucchi",
    "Pozzi",
    "Zani",
    "Biondi",
    "Bertolini",
];

const MALE_NAMES: &[&str] = &[
    "Leonardo",
    "Francesco",
    "Alessandro",
    "Lorenzo",
    "Mattia",
    "Andrea",
    "Gabriele",
    "Riccardo",
    "Tommaso",
    "Edoardo",
    "Matteo",
    "Giuseppe",
    "Niccolò",
    "Nicolò",
    "Antonio",
    "Federico",
    "Diego",
    "Davide",
    "Christian",
    "Giovanni",
    "Pietro",
    "Samuele",
    "Marco",
    "Filippo",
    "Luca",
    "Michele",
    "Emanuele",
    "Giulio",
    "Salvatore",
    "Vincenzo",
    "Elia",
    "Jacopo",
    "Gioele",
    "Noè",
    "Enea",
    "Thomas",
    "Cristian",
    "Daniele",
    "Raffaele",
    "Giacomo",
];

const FEMALE_NAMES: &[&str] = &[
    "Sofia",
    "Giulia",
    "Aurora",
    "Alice",
    "Ginevra",
    "Emma",
    "Giorgia",
    "Greta",
    "Beatrice",
    "Anna",
    "Vittoria",
    "Noemi",
    "Chiara",
    "Martina",
    "Ludovica",
    "Matilde",
    "Sara",
    "Nicole",
    "Gaia",
    "Rebecca",
    "Arianna",
    "Elena",
    "Francesca",
    "Bianca",
    "Alessia",
    "Camilla",
    "Ilaria",
    "Asia",
    "Elisa",
    "Benedetta",
    "Marta",
    "Irene",
    "Margherita",
    "Mia",
    "Zoe",
    "Viola",
    "Chloé",
    "Anaïs",
    "Maria Sole",
    "Caterina",
];

const ADULT_MALE: &[&str] = &[
    "Marco",
    "Andrea",
    "Luca",
    "Alessandro",
    "Giuseppe",
    "Roberto",
    "Stefano",
    "Francesco",
    "Davide",
    "Matteo",
    "Paolo",
    "Simone",
    "Massimo",
    "Fabio",
    "Antonio",
    "Gianluca",
    "Daniele",
    "Maurizio",
    "Nicola",
    "Salvatore",
];

const ADULT_FEMALE: &[&str] = &[
    "Francesca",
    "Chiara",
    "Sara",
    "Valentina",
    "Laura",
    "Elena",
    "Silvia",
    "Federica",
    "Paola",
    "Alessandra",
    "Giulia",
    "Martina",
    "Elisa",
    "Roberta",
    "Simona",
    "Monica",
    "Barbara",
    "Cristina",
    "Daniela",
    "Anna",
];

/// Belfiore codes of real comuni (Roma, Milano, Napoli, Torino, Palermo,
/// Genova, Bologna, Firenze, Bari, Catania, Venezia, Verona, ...).
const BIRTHPLACES: &[&str] = &[
    "H501", "F205", "F839", "L219", "G273", "D969", "A944", "D612", "A662", "C351", "L736", "L781", "F158", "A345",
    "E506", "G224", "B157", "H223", "I452", "L424",
];

const INFANZIA: &[&str] = &["Scuola dell'infanzia Collodi", "Scuola dell'infanzia Montessori"];
const PRIMARIA: &[&str] =
    &["Scuola primaria Gianni Rodari", "Scuola primaria Don Lorenzo Milani", "Scuola primaria Maria Montessori"];
const SECONDARIA: &[&str] = &["Scuola secondaria di I grado Dante Alighieri"];
const SECTIONS: &[&str] = &["A", "B", "C"];

/// School and class for a child born in `year`, in the school year 2026/27:
/// infanzia from 3 to 5, primaria classes 1 to 5, secondaria classes 1 to 3.
fn school_and_class(rng: &mut fastrand::Rng, year: u32) -> (&'static str, String) {
    let section = SECTIONS[rng.usize(..SECTIONS.len())];
    match year {
        2021.. => (INFANZIA[rng.usize(..INFANZIA.len())], format!("Sezione {section}")),
        2016..=2020 => (PRIMARIA[rng.usize(..PRIMARIA.len())], format!("{}{section}", 2021 - year)),
        _ => (SECONDARIA[rng.usize(..SECONDARIA.len())], format!("{}{section}", 2016 - year)),
    }
}

const SERVICES: &[&str] = &["Mensa", "Trasporto", "Pre-scuola", "Post-scuola"];

const MONTHS: &[u8; 12] = b"ABCDEHLMPRST";

fn is_vowel(c: char) -> bool {
    matches!(c, 'A' | 'E' | 'I' | 'O' | 'U')
}

fn letters(name: &str) -> Vec<char> {
    fold_for_search(name).to_uppercase().chars().filter(|c| c.is_ascii_alphabetic()).collect()
}

/// The three letters of a surname: consonants, then vowels, then X.
fn surname_code(surname: &str) -> String {
    let all = letters(surname);
    let mut code: Vec<char> = all.iter().copied().filter(|c| !is_vowel(*c)).collect();
    code.extend(all.iter().copied().filter(|c| is_vowel(*c)));
    code.extend(['X'; 3]);
    code.into_iter().take(3).collect()
}

/// The three letters of a given name: with four or more consonants, the
/// first, third and fourth; otherwise as a surname.
fn name_code(name: &str) -> String {
    let all = letters(name);
    let consonants: Vec<char> = all.iter().copied().filter(|c| !is_vowel(*c)).collect();
    if consonants.len() >= 4 {
        return [consonants[0], consonants[2], consonants[3]].iter().collect();
    }
    surname_code(name)
}

/// A valid codice fiscale for a person.
pub fn fiscal_code(
    surname: &str,
    name: &str,
    year: u32,
    month: u32,
    day: u32,
    female: bool,
    place: &str,
) -> CodiceFiscale {
    let day = if female { day + 40 } else { day };
    let first15 = format!(
        "{}{}{:02}{}{:02}{}",
        surname_code(surname),
        name_code(name),
        year % 100,
        MONTHS[(month - 1) as usize] as char,
        day,
        place
    );
    let check = CodiceFiscale::check_character(first15.as_bytes()) as char;
    CodiceFiscale::parse(&format!("{first15}{check}")).expect("a computed codice fiscale is valid")
}

/// Writes `consumers` rows of a synthetic realm as CSV.
pub fn write_csv(out: &mut impl Write, consumers: u64, seed: u64) -> std::io::Result<()> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut codes: HashSet<CodiceFiscale> = HashSet::with_capacity(consumers as usize * 2);
    let mut unique = |code: CodiceFiscale| -> CodiceFiscale {
        if codes.insert(code.clone()) {
            return code;
        }
        // Two people with the same code: the Agenzia assigns an omocodia variant.
        for level in 1..=7 {
            if let Some(variant) = code.omocodia_variant(level)
                && codes.insert(variant.clone())
            {
                return variant;
            }
        }
        code
    };
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(COLUMNS)?;
    let mut written = 0u64;
    let mut pan_serial = 0u64;
    while written < consumers {
        let surname = SURNAMES[rng.usize(..SURNAMES.len())];
        let payer_female = rng.bool();
        let payer_name = if payer_female { ADULT_FEMALE } else { ADULT_MALE }[rng.usize(..20)];
        let payer_code = unique(fiscal_code(
            surname,
            payer_name,
            rng.u32(1970..=1992),
            rng.u32(1..=12),
            rng.u32(1..=28),
            payer_female,
            BIRTHPLACES[rng.usize(..BIRTHPLACES.len())],
        ));
        let email =
            format!("{}.{}{}@example.com", fold_for_search(payer_name), fold_for_search(surname), rng.u32(1..100));
        let phone = format!("+39 3{:02} {:07}", rng.u32(20..=99), rng.u32(0..10_000_000));
        let children = match rng.u32(0..100) {
            0..40 => 1,
            40..80 => 2,
            80..95 => 3,
            _ => 4,
        };
        for _ in 0..children {
            if written == consumers {
                break;
            }
            let female = rng.bool();
            let name = if female { FEMALE_NAMES } else { MALE_NAMES }[rng.usize(..40)];
            let year = rng.u32(2013..=2023);
            let code = unique(fiscal_code(
                surname,
                name,
                year,
                rng.u32(1..=12),
                rng.u32(1..=28),
                female,
                BIRTHPLACES[rng.usize(..BIRTHPLACES.len())],
            ));
            let (school, class) = school_and_class(&mut rng, year);
            let mut services = vec![SERVICES[0]];
            for service in &SERVICES[1..] {
                if rng.u32(0..100) < 30 {
                    services.push(service);
                }
            }
            if rng.u32(0..100) < 10 {
                services.remove(0);
                if services.is_empty() {
                    services.push(SERVICES[1]);
                }
            }
            pan_serial += 1;
            // One in twenty rows leaves the PAN empty: the import generates it.
            let pan = if rng.u32(0..20) == 0 {
                String::new()
            } else {
                // A realm prefix, then a serial scrambled so neighbours differ in many digits.
                let scrambled = (pan_serial.wrapping_mul(0x9E37_79B9) ^ seed) % 10_000_000_000;
                Pan::with_check_digit(&format!("80391{scrambled:010}"))
                    .expect("15 digits and a check digit make a PAN")
                    .to_string()
            };
            writer.write_record([
                payer_code.as_str(),
                surname,
                payer_name,
                &email,
                &phone,
                code.as_str(),
                surname,
                name,
                &pan,
                school,
                &class,
                &services.join(";"),
            ])?;
            written += 1;
        }
    }
    writer.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codici_fiscali_are_computed_as_the_agenzia_does() {
        // Mario Rossi, born 10 December 1985 in A562: the well-known example code.
        assert_eq!(fiscal_code("Rossi", "Mario", 1985, 12, 10, false, "A562").as_str(), "RSSMRA85T10A562S");
        assert_eq!(name_code("Alessandro"), "LSN");
        assert_eq!(surname_code("Fo"), "FOX");
        assert_eq!(surname_code("D'Angelo"), "DNG");
    }

    #[test]
    fn generated_files_are_deterministic_and_unique() {
        let mut a = Vec::new();
        write_csv(&mut a, 500, 7).unwrap();
        let mut b = Vec::new();
        write_csv(&mut b, 500, 7).unwrap();
        assert_eq!(a, b);
        let text = String::from_utf8(a).unwrap();
        assert_eq!(text.lines().count(), 501);
        let mut seen = HashSet::new();
        for line in text.lines().skip(1) {
            let code = line.split(',').nth(5).unwrap();
            assert!(seen.insert(code.to_string()), "duplicate consumer code {code}");
            CodiceFiscale::parse(code).unwrap();
        }
    }
}
