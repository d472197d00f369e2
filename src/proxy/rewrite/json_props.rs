//! The block lexer against the byte-at-a-time model (`json_model.rs`): the same output for any
//! bytes and any chunking, with the edges of 64-byte blocks placed everywhere: quotes and
//! backslash runs at and across block ends, annotation keys and values straddling blocks and
//! chunks, backslashes between strings, frames of one byte. Every case is also fed with its
//! last piece given to `push_last`.

use proptest::prelude::*;

use super::json_model;
use super::tests::{FROM, Lcg, TO, feed_json, feed_json_last};

/// Pieces that move the lexer between its states, and filler that moves block edges.
const PIECES: [&str; 30] = [
    "\"",
    "\\",
    "\\\\",
    "\\\"",
    "\\/",
    ":",
    " ",
    "{",
    "}",
    ",",
    "@odata.nextLink",
    "@odata.id",
    "@odata.context",
    "Link",
    "k",
    "t",
    "d",
    "https://org.crm.dynamics.com",
    "https:\\/\\/org.crm.dynamics.com",
    "HTTPS://ORG.crm.dynamics.com",
    "https://org.crm.dynamics.com.evil",
    "/",
    "x",
    "xxxxxxx",
    "é",
    "\u{1F600}",
    "\"@odata.nextLink\":\"https://org.crm.dynamics.com/a\"",
    "\"v\":\"\\\\\\\"\"",
    "\"h",
    "H",
];

fn assemble(picks: &[(u8, u8)]) -> Vec<u8> {
    let mut input = Vec::new();
    for &(piece, extra) in picks {
        input.extend_from_slice(PIECES[usize::from(piece) % PIECES.len()].as_bytes());
        // Filler of 0..=63 bytes now and then, so that everything lands on every block offset.
        if extra % 4 == 0 {
            input.extend(std::iter::repeat_n(b'f', usize::from(extra / 4)));
        }
    }
    input
}

/// Whole, one byte at a time, and cut at `cuts` (any order, any values).
fn assert_matches_model(input: &[u8], cuts: &[usize]) -> Result<(), TestCaseError> {
    let want = json_model::rewrite(input, FROM, TO);
    prop_assert_eq!(&feed_json(input, &[], FROM, TO), &want, "whole");
    let every_byte: Vec<usize> = (1..input.len()).collect();
    prop_assert_eq!(
        &feed_json(input, &every_byte, FROM, TO),
        &want,
        "1-byte frames"
    );
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    cuts.sort_unstable();
    prop_assert_eq!(
        &feed_json(input, &cuts, FROM, TO),
        &want,
        "cut at {:?}",
        cuts
    );
    // The last piece finished by `push_last`, which stops lexing after the last `"h`/`"H`.
    prop_assert_eq!(&feed_json_last(input, &[], FROM, TO), &want, "whole, last");
    prop_assert_eq!(
        &feed_json_last(input, &cuts, FROM, TO),
        &want,
        "cut at {:?}, last",
        cuts
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    #[test]
    fn the_block_lexer_agrees_with_the_model_in_any_chunking(
        picks in prop::collection::vec((any::<u8>(), any::<u8>()), 0..60),
        cuts in prop::collection::vec(any::<usize>(), 0..6),
    ) {
        assert_matches_model(&assemble(&picks), &cuts)?;
    }

    #[test]
    fn raw_bytes_agree_with_the_model(
        input in prop::collection::vec(
            prop::sample::select(b"\"\\:ktd/ {xhH\n\x00\xff".to_vec()), 0..300),
        cuts in prop::collection::vec(any::<usize>(), 0..6),
    ) {
        assert_matches_model(&input, &cuts)?;
    }
}

/// Snippets whose interesting bytes are put at every offset of a 64-byte block (and across the
/// first block end), behind filler between strings and inside a string.
#[test]
fn every_block_offset_of_quotes_escapes_and_keys() {
    let snippets = [
        format!(r#""@odata.nextLink":"{FROM}/api?x=1","b":"c""#),
        format!(r#""k\\\\":"\"","q\\\"@odata.id":"{FROM}/a""#),
        r#""@odata.id" : "https:\/\/org.crm.dynamics.com\/x\\","n":1"#.to_string(),
        r#""\\\\\\\\\\\\\\\"\\","t":"d""#.to_string(),
        format!(r#"\"a":"b"\\,"@odata.context":"{FROM}""#),
        format!(r#""@odata.id":"{FROM}.evil/x","@odata.id":"h@odata.id":"{FROM}/y""#),
    ];
    let mut rng = Lcg(31);
    for snippet in &snippets {
        for offset in 0..=130 {
            for opened in ["", "\"", "\"\\"] {
                let input = format!("{opened}{}{snippet}", "f".repeat(offset));
                let cuts = [rng.below(input.len() + 1), 64, 128];
                assert_matches_model(input.as_bytes(), &cuts)
                    .unwrap_or_else(|e| panic!("{e}: {input}"));
            }
        }
    }
}

/// Backslash runs of every length ending at every position around a block end, in a key that
/// is or is not an annotation depending on the run's parity.
#[test]
fn backslash_runs_across_block_ends() {
    for run in 0..=9 {
        for offset in 40..=80 {
            let input = format!(
                r#"{{"{}{}"@odata.id":"{FROM}/a"}}"#,
                "f".repeat(offset),
                "\\".repeat(run)
            );
            let cuts = [offset, offset + run / 2, 64];
            assert_matches_model(input.as_bytes(), &cuts)
                .unwrap_or_else(|e| panic!("{e}: {input}"));
        }
    }
}
