//! Case and confusable folding, so filters see `ＢＡＤ`, `bаd` (Cyrillic а), `b\u{200B}ad`
//! and `B4D` alike. A small own table of the common lookalikes: fullwidth forms, Cyrillic
//! and Greek letters shaped like Latin ones, Latin letters with diacritics, zero-width and
//! invisible characters (removed), and — for word matching only — leetspeak digits and
//! symbols.

/// Characters removed before matching: zero-width, joiners, soft hyphen, BOM, bidi marks.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
    )
}

/// The Latin letter a lowercase lookalike stands for, if any.
fn lookalike(c: char) -> Option<char> {
    Some(match c {
        // Cyrillic
        'а' | 'ӑ' | 'ӓ' => 'a',
        'в' => 'b',
        'с' | 'ҫ' => 'c',
        'ԁ' => 'd',
        'е' | 'ё' | 'є' | 'ҽ' => 'e',
        'һ' | 'н' => 'h',
        'і' | 'ї' | 'ӏ' => 'i',
        'ј' => 'j',
        'к' | 'ҝ' => 'k',
        'м' => 'm',
        'о' | 'ӧ' => 'o',
        'р' => 'p',
        'ԛ' => 'q',
        'г' => 'r',
        'ѕ' => 's',
        'т' => 't',
        'ц' => 'u',
        'ѵ' => 'v',
        'ш' | 'ԝ' => 'w',
        'х' | 'ҳ' => 'x',
        'у' | 'ү' => 'y',
        // Greek
        'α' | 'ά' => 'a',
        'β' => 'b',
        'ε' | 'έ' => 'e',
        'η' | 'ή' => 'n',
        'ι' | 'ί' | 'ϊ' => 'i',
        'κ' => 'k',
        'μ' => 'u',
        'ν' => 'v',
        'ο' | 'ό' => 'o',
        'ρ' => 'p',
        'τ' => 't',
        'υ' | 'ύ' => 'u',
        'χ' => 'x',
        'ω' | 'ώ' => 'w',
        'ζ' => 'z',
        // Latin with diacritics, and other Latin lookalikes
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' | 'ɑ' => 'a',
        'ç' | 'ć' | 'č' | 'ĉ' | 'ċ' => 'c',
        'ď' | 'đ' => 'd',
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ė' | 'ę' | 'ě' => 'e',
        'ğ' | 'ĝ' | 'ġ' | 'ģ' | 'ɡ' => 'g',
        'ì' | 'í' | 'î' | 'ï' | 'ī' | 'į' | 'ı' => 'i',
        'ł' | 'ľ' | 'ĺ' | 'ļ' => 'l',
        'ñ' | 'ń' | 'ň' | 'ņ' => 'n',
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' => 'o',
        'ŕ' | 'ř' => 'r',
        'ś' | 'š' | 'ş' | 'ș' | 'ŝ' => 's',
        'ť' | 'ţ' | 'ț' => 't',
        'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' | 'ų' => 'u',
        'ý' | 'ÿ' => 'y',
        'ź' | 'ż' | 'ž' => 'z',
        'ß' => 's',
        _ => return None,
    })
}

/// Leetspeak: digits and symbols written for letters.
fn leet(c: char) -> Option<char> {
    Some(match c {
        '0' => 'o',
        '1' => 'i',
        '3' => 'e',
        '4' | '@' => 'a',
        '5' | '$' => 's',
        '6' | '9' => 'g',
        '7' => 't',
        '8' => 'b',
        _ => return None,
    })
}

/// Fullwidth ASCII (U+FF01..U+FF5E) to ASCII, the ideographic space to a space, and
/// the fullwidth/halfwidth ideographic full stop to '.'.
fn narrow(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        '\u{3000}' => ' ',
        '\u{3002}' | '\u{FF61}' => '.',
        _ => c,
    }
}

fn fold_with(text: &str, with_leet: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if is_invisible(c) {
            continue;
        }
        let c = narrow(c);
        for l in c.to_lowercase() {
            let l = lookalike(l).unwrap_or(l);
            let l = if with_leet { leet(l).unwrap_or(l) } else { l };
            out.push(l);
        }
    }
    out
}

/// Folding for word filters: lowercase, lookalikes and fullwidth forms to Latin,
/// invisible characters removed, leetspeak digits and symbols to letters.
pub fn fold_words(text: &str) -> String {
    fold_with(text, true)
}

/// Folding for link detection: as [`fold_words`] but digits stay digits (hosts and
/// ports hold them).
pub fn fold_plain(text: &str) -> String {
    fold_with(text, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookalikes_fold_to_latin() {
        assert_eq!(fold_words("ＢＡＤ"), "bad");
        assert_eq!(fold_words("bаd"), "bad", "Cyrillic а");
        assert_eq!(fold_words("ΒΑΔ"), "baδ", "Greek capitals lower, then fold");
        assert_eq!(fold_words("b\u{200B}a\u{FEFF}d"), "bad");
        assert_eq!(fold_words("B4D"), "bad");
        assert_eq!(fold_words("$p4m"), "spam");
        assert_eq!(fold_words("ѕрαм"), "spam");
        assert_eq!(fold_words("Bäd"), "bad");
    }

    #[test]
    fn plain_fold_keeps_digits() {
        assert_eq!(
            fold_plain("ＥＸＡＭＰＬＥ．ｃｏｍ:8080"),
            "example.com:8080"
        );
        assert_eq!(fold_plain("evil\u{200B}.com"), "evil.com");
    }
}
