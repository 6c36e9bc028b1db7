//! Secret values replaced by `********` in a program's output as it streams, whatever
//! the chunk boundaries (`blockyard run`). Each value is looked for as written and in
//! the forms a URL or an HTTP header gives it: percent-encoded, JSON-escaped, base64 of
//! itself and of `user:value`. Everything else passes byte for byte, colour codes too.

use std::collections::HashSet;

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::document::MASK;

/// Shorter values are not masked: masking two letters would mask half of any output.
pub const SHORTEST: usize = 4;

/// A stream holds back at most this much that could start a secret when the other
/// stream's output might complete it; past it, only what could start a secret in this
/// stream's own output is held.
const HOLD_LIMIT: usize = 64 * 1024;

/// As `connect::info`'s strict set: what a URL percent-encodes.
const URL_PART: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The forms to look for, built once for a run.
pub struct Masker {
    finder: Option<AhoCorasick>,
    /// Every proper prefix of every form: what the end of a chunk may hold of a
    /// secret the next chunk completes.
    prefixes: HashSet<Vec<u8>>,
    longest: usize,
}

impl Masker {
    /// The masker for `secrets` (values shorter than [`SHORTEST`] are left out), with
    /// `users` the user names a value may be paired with in HTTP basic auth.
    pub fn new<'a>(
        secrets: impl IntoIterator<Item = &'a str>,
        users: impl IntoIterator<Item = &'a str> + Clone,
    ) -> Masker {
        let mut forms: Vec<Vec<u8>> = Vec::new();
        for secret in secrets.into_iter().filter(|s| s.len() >= SHORTEST) {
            forms.extend(forms_of(secret, users.clone()));
        }
        forms.sort();
        forms.dedup();
        let prefixes = forms
            .iter()
            .flat_map(|f| (1..f.len()).map(move |n| f[..n].to_vec()))
            .collect();
        let longest = forms.iter().map(Vec::len).max().unwrap_or(0);
        let finder = match forms.is_empty() {
            true => None,
            false => AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .build(&forms)
                .ok(),
        };
        Masker {
            finder,
            prefixes,
            longest,
        }
    }

    /// Whether there is anything to mask.
    pub fn is_empty(&self) -> bool {
        self.finder.is_none()
    }

    /// A new stream's state (one per output of the program).
    pub fn stream(&self) -> MaskStream<'_> {
        MaskStream {
            masker: self,
            held: Vec::new(),
        }
    }

    /// Whether `bytes` is a proper prefix of some form.
    fn starts_a_secret(&self, bytes: &[u8]) -> bool {
        !bytes.is_empty() && bytes.len() < self.longest && self.prefixes.contains(bytes)
    }

    /// The first index from which `buf`'s tail could be the start of a secret.
    fn tail_start(&self, buf: &[u8]) -> usize {
        let from = buf.len().saturating_sub(self.longest.saturating_sub(1));
        (from..buf.len())
            .find(|&i| self.starts_a_secret(&buf[i..]))
            .unwrap_or(buf.len())
    }

    /// The last index at or before `end` where output may stop without its last bytes
    /// starting a secret that another stream's output could complete.
    fn safe_end(&self, buf: &[u8], end: usize) -> usize {
        (0..=end)
            .rev()
            .find(|&e| {
                let from = e.saturating_sub(self.longest.saturating_sub(1));
                !(from..e).any(|j| self.starts_a_secret(&buf[j..e]))
            })
            .unwrap_or(0)
    }
}

/// A value's forms: as is, percent-encoded, JSON-escaped, base64 of itself and of
/// `user:value` for each user.
fn forms_of<'a>(secret: &str, users: impl IntoIterator<Item = &'a str>) -> Vec<Vec<u8>> {
    let mut forms = vec![
        secret.as_bytes().to_vec(),
        utf8_percent_encode(secret, URL_PART)
            .to_string()
            .into_bytes(),
        STANDARD.encode(secret).into_bytes(),
    ];
    if let Ok(json) = serde_json::to_string(secret) {
        forms.push(json.as_bytes()[1..json.len() - 1].to_vec());
    }
    for user in users {
        forms.push(STANDARD.encode(format!("{user}:{secret}")).into_bytes());
    }
    forms
}

/// One output stream being masked: what it holds back until the next chunk says
/// whether it is a secret.
pub struct MaskStream<'a> {
    masker: &'a Masker,
    held: Vec<u8>,
}

impl MaskStream<'_> {
    /// Masks `chunk` (after what was held) into `out`; holds back what could be the start
    /// of a secret.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        let Some(finder) = &self.masker.finder else {
            out.extend_from_slice(chunk);
            return;
        };
        let mut buf = std::mem::take(&mut self.held);
        buf.extend_from_slice(chunk);
        let hold_from = self.masker.tail_start(&buf);
        let mut pos = 0;
        for found in finder.find_iter(&buf) {
            if found.start() >= hold_from {
                break;
            }
            out.extend_from_slice(&buf[pos..found.start()]);
            out.extend_from_slice(MASK.as_bytes());
            pos = found.end();
        }
        let mut end = hold_from.max(pos);
        if buf.len() - pos < HOLD_LIMIT {
            end = self.masker.safe_end(&buf, end).max(pos);
        }
        out.extend_from_slice(&buf[pos..end]);
        self.held = buf.split_off(end);
    }

    /// The end of the stream: what was held, masked.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        let held = std::mem::take(&mut self.held);
        self.finish_with(&held, out);
    }

    /// `text`, every secret in it masked, as the end of a stream.
    fn finish_with(&self, text: &[u8], out: &mut Vec<u8>) {
        match &self.masker.finder {
            Some(finder) => finder.replace_all_with_bytes(text, out, |_, _, dst| {
                dst.extend_from_slice(MASK.as_bytes());
                true
            }),
            None => out.extend_from_slice(text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask_all(masker: &Masker, chunks: &[&[u8]]) -> Vec<u8> {
        let mut stream = masker.stream();
        let mut out = Vec::new();
        for chunk in chunks {
            stream.push(chunk, &mut out);
        }
        stream.finish(&mut out);
        out
    }

    #[test]
    fn a_secret_split_across_chunks_is_masked() {
        let masker = Masker::new(["hunter22"], ["app"]);
        let out = mask_all(&masker, &[b"pw=hun", b"ter", b"22\n"]);
        assert_eq!(out, b"pw=********\n");
    }

    #[test]
    fn forms_in_urls_and_headers_are_masked() {
        let masker = Masker::new(["p@ss word"], ["app"]);
        let basic = STANDARD.encode("app:p@ss word");
        let text = format!("postgres://app:p%40ss%20word@h/db Authorization: Basic {basic}\n");
        let out = mask_all(&masker, &[text.as_bytes()]);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "postgres://app:********@h/db Authorization: Basic ********\n"
        );
    }

    #[test]
    fn a_longer_secret_is_masked_whole() {
        let masker = Masker::new(["abcd", "abcdefgh"], []);
        let out = mask_all(&masker, &[b"x abcd", b"efgh y abcd z"]);
        assert_eq!(out, b"x ******** y ******** z");
    }

    #[test]
    fn other_bytes_pass_unchanged() {
        let masker = Masker::new(["s3cr3t-value"], []);
        let text = b"\x1b[31mred\x1b[0m s3cr3t-valu\xff\n";
        assert_eq!(mask_all(&masker, &[text]), text);
    }

    #[test]
    fn no_output_ends_in_the_start_of_a_secret_while_more_may_come() {
        let masker = Masker::new(["abXY1234", "cdQQ5678"], []);
        let mut stream = masker.stream();
        let mut out = Vec::new();
        stream.push(b"zzabcd", &mut out);
        assert_eq!(out, b"zz");
    }

    /// Random text holding 20 secrets (8 to 64 characters) as written, in URLs and in
    /// basic auth, written in random chunks (byte by byte, split inside a secret) to two
    /// streams: neither stream, nor both as they reach one terminal, shows a secret;
    /// every other byte comes through.
    #[test]
    fn ten_thousand_random_chunkings_leak_nothing() {
        let mut rng = fastrand::Rng::with_seed(23);
        let alphabet: Vec<char> = "abcdefXYZ0123456789@:/%$ ".chars().collect();
        let secrets: Vec<String> = (0..20)
            .map(|_| {
                let len = rng.usize(8..=64);
                (0..len)
                    .map(|_| alphabet[rng.usize(..alphabet.len())])
                    .collect()
            })
            .collect();
        let masker = Masker::new(secrets.iter().map(String::as_str), ["app"]);
        let forms: Vec<Vec<u8>> = secrets.iter().flat_map(|s| forms_of(s, ["app"])).collect();
        for _ in 0..10_000 {
            let writes = random_writes(&mut rng, &secrets);
            let (outs, both) = stream_in_chunks(&mut rng, &masker, &writes);
            for (i, out) in outs.iter().enumerate() {
                let text: Vec<u8> = writes
                    .iter()
                    .filter(|w| w.0 == i)
                    .flat_map(|w| w.1.clone())
                    .collect();
                let mut whole = Vec::new();
                masker.stream().finish_with(&text, &mut whole);
                assert_eq!(out, &whole, "a stream masked in chunks as it is whole");
            }
            for form in &forms {
                for out in outs.iter().chain([&both]) {
                    assert!(!out.windows(form.len()).any(|w| w == &form[..]), "a leak");
                }
            }
        }
    }

    /// What a program writes, in order, to stdout (0) and stderr (1): log lines with
    /// colour, secrets as is, in URLs and in basic auth, a third of them begun on one
    /// stream and ended on the other.
    fn random_writes(rng: &mut fastrand::Rng, secrets: &[String]) -> Vec<(usize, Vec<u8>)> {
        let mut writes = Vec::new();
        for _ in 0..rng.usize(1..10) {
            let i = rng.usize(0..2);
            let log = "log line \x1b[32mok\x1b[0m ".repeat(rng.usize(0..3));
            writes.push((i, log.into_bytes()));
            let secret = &secrets[rng.usize(..secrets.len())];
            let text = match rng.u8(0..3) {
                0 => secret.clone(),
                1 => format!(
                    "postgresql://app:{}@db/x",
                    utf8_percent_encode(secret, URL_PART)
                ),
                _ => STANDARD.encode(format!("app:{secret}")),
            };
            let cut = match rng.u8(0..3) {
                0 => rng.usize(1..text.len()),
                _ => text.len(),
            };
            writes.push((i, text.as_bytes()[..cut].to_vec()));
            writes.push((1 - i, text.as_bytes()[cut..].to_vec()));
            writes.push((rng.usize(0..2), b"\n".to_vec()));
        }
        writes
    }

    /// Each write pushed in random chunks (often one byte): each stream's output, and
    /// everything in the order it came out (as both reach one terminal).
    fn stream_in_chunks(
        rng: &mut fastrand::Rng,
        masker: &Masker,
        writes: &[(usize, Vec<u8>)],
    ) -> ([Vec<u8>; 2], Vec<u8>) {
        let mut streams = [masker.stream(), masker.stream()];
        let mut outs = [Vec::new(), Vec::new()];
        let mut both = Vec::new();
        for (i, bytes) in writes {
            let mut at = 0;
            while at < bytes.len() {
                let n = match rng.bool() {
                    true => 1,
                    false => rng.usize(1..=80),
                };
                let end = (at + n).min(bytes.len());
                let mut piece = Vec::new();
                streams[*i].push(&bytes[at..end], &mut piece);
                at = end;
                outs[*i].extend_from_slice(&piece);
                both.extend_from_slice(&piece);
            }
        }
        for (stream, out) in streams.iter_mut().zip(outs.iter_mut()) {
            let mut piece = Vec::new();
            stream.finish(&mut piece);
            out.extend_from_slice(&piece);
            both.extend_from_slice(&piece);
        }
        (outs, both)
    }
}
