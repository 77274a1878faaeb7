//! `umbra keys …`: account keys and recovery phrases (identity §1, §3–4).
//!
//! * `new`: a fresh 32-byte `ed_seed` from the OS CSPRNG, shown as its
//!   25-word phrase (§4.1).
//! * `restore`: a 13-word (Session) or 25-word (Umbra) phrase, from
//!   `--mnemonic` or stdin (§4.2).
//! * `inspect`: a 16- or 32-byte seed in hex, with its 13- or 25-word phrase.
//!
//! Every command prints labelled lines, or with `--json` exactly one JSON
//! object with `account_id`, `ed25519_pubkey`, `x25519_pubkey` and, where
//! the command shows it, `mnemonic`. The seed itself is never printed.

use std::io::{IsTerminal, Read, Write};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use serde_json::{Map, Value};
use umbra_proto::mnemonic::{AccountSeed, SeedForm};
use zeroize::{Zeroize, Zeroizing};

/// Longest phrase read from stdin (a 25-word phrase is under 350 bytes).
const MAX_PHRASE_BYTES: u64 = 4096;

/// The `keys` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Create a new account: a random 256-bit seed and its 25-word recovery phrase.
    New {
        /// Print one JSON object instead of labelled lines.
        #[arg(long)]
        json: bool,
    },
    /// Restore an account from its 13-word (Session) or 25-word (Umbra) phrase.
    Restore {
        /// The recovery phrase. When absent it is read from stdin, which
        /// keeps it out of the shell history and the process list.
        #[arg(long, value_name = "PHRASE")]
        mnemonic: Option<String>,
        /// Print one JSON object instead of labelled lines.
        #[arg(long)]
        json: bool,
    },
    /// Show the keys and recovery phrase of a seed (32 bytes, or 16 for Session).
    Inspect {
        /// The seed in hex: 64 characters (Umbra) or 32 (Session).
        #[arg(long, value_name = "HEX")]
        seed: String,
        /// Print one JSON object instead of labelled lines.
        #[arg(long)]
        json: bool,
    },
}

/// Runs one `keys` subcommand.
pub(crate) fn run(cmd: KeysCommand) -> Result<()> {
    match cmd {
        KeysCommand::New { json } => {
            let ed_seed = Zeroizing::new(umbra_crypto::random_bytes::<32>());
            let seed = AccountSeed::new_umbra(&ed_seed);
            print_account(&seed, true, json)
        }
        KeysCommand::Restore { mnemonic, json } => {
            let phrase = match mnemonic {
                Some(p) => Zeroizing::new(p),
                None => read_phrase_from_stdin()?,
            };
            let seed = AccountSeed::from_phrase(&phrase)
                .context("cannot restore the account from this recovery phrase")?;
            print_account(&seed, false, json)
        }
        KeysCommand::Inspect { seed, json } => {
            let seed = Zeroizing::new(seed);
            let bytes = Zeroizing::new(
                hex::decode(seed.trim())
                    .context("--seed must be hexadecimal (64 or 32 hex characters)")?,
            );
            let seed = AccountSeed::from_bytes(&bytes).context("--seed is not an account seed")?;
            print_account(&seed, true, json)
        }
    }
}

/// Reads the phrase from stdin, prompting on stderr when stdin is a terminal.
pub(crate) fn read_phrase_from_stdin() -> Result<Zeroizing<String>> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("Recovery phrase (13 or 25 words), then Enter and Ctrl-D: ");
        std::io::stderr().flush().ok();
    }
    let mut phrase = Zeroizing::new(String::with_capacity(512));
    let read = stdin
        .lock()
        .take(MAX_PHRASE_BYTES + 1)
        .read_to_string(&mut phrase)
        .context("cannot read the recovery phrase from stdin (it must be UTF-8 text)")?;
    if read as u64 > MAX_PHRASE_BYTES {
        bail!("the recovery phrase on stdin is longer than {MAX_PHRASE_BYTES} bytes");
    }
    if phrase.trim().is_empty() {
        bail!("no recovery phrase given: pass --mnemonic \"...\" or write it to stdin");
    }
    Ok(phrase)
}

/// Prints the account of `seed`, with its phrase when `show_phrase`.
fn print_account(seed: &AccountSeed, show_phrase: bool, json: bool) -> Result<()> {
    let keys = seed.keys();
    let account_id = keys.account_id().to_string();
    let ed = hex::encode(keys.ed25519_public().as_bytes());
    let x = hex::encode(keys.x25519_public().as_bytes());
    let phrase = show_phrase.then(|| seed.phrase());
    let mut out = std::io::stdout().lock();
    if json {
        let mut obj = Map::new();
        obj.insert("account_id".into(), Value::String(account_id));
        obj.insert("ed25519_pubkey".into(), Value::String(ed));
        obj.insert("x25519_pubkey".into(), Value::String(x));
        if let Some(p) = &phrase {
            obj.insert("mnemonic".into(), Value::String(p.to_string()));
        }
        let mut obj = Value::Object(obj);
        let text = Zeroizing::new(serde_json::to_string(&obj)?);
        if let Some(Value::String(p)) = obj.get_mut("mnemonic") {
            p.zeroize();
        }
        writeln!(out, "{}", text.as_str())?;
    } else {
        let form = match seed.form() {
            SeedForm::Session => "Session (16-byte seed, 13-word phrase)",
            SeedForm::Umbra => "Umbra (32-byte seed, 25-word phrase)",
        };
        writeln!(out, "Account ID:         {account_id}")?;
        writeln!(out, "Ed25519 public key: {ed}")?;
        writeln!(out, "X25519 public key:  {x}")?;
        writeln!(out, "Account form:       {form}")?;
        if let Some(p) = &phrase {
            writeln!(out, "Recovery phrase:    {}", p.as_str())?;
            writeln!(
                out,
                "Keep the recovery phrase secret: anyone who has it controls the account."
            )?;
        }
    }
    out.flush()?;
    Ok(())
}
