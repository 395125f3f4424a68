//! The Users page's searches, answered from memory: every user's search text, name order
//! and status facts, held by each instance and kept in step with the database through
//! its log of changed users (`user_changes`, written by triggers).
//!
//! Why: a search is a substring of names and addresses, and a database's trigram index
//! finds the matches in no useful order. A broad search ("ove": 4,000 matches at
//! 100,000 users) then sorted every match, and a search with a status filter joined
//! every match to its invitation, to show 50 rows: milliseconds of work per request.
//! Here the users are held in name order, in chunks whose texts are searched with
//! `memchr::memmem` (a few GB/s) unless the chunk's trigram filter rules the term out,
//! so a page stops at its 50th match, and a status is derived from a few bytes instead
//! of two index look-ups. The page's rows are made from the index too (reading 51 rows
//! by id was most of a search's cost); a row it cannot make is read by id. The database
//! still answers tag searches, and every search while the index is being built.
//!
//! Freshness: before answering, the index reads the changes logged since it last looked
//! (a single indexed query) whenever this instance changed users since, or its last look
//! is older than the page cache's freshness window: the same promise the rendered pages
//! make (a change made here shows at once; others within the window). On PostgreSQL the
//! log's trigger also notifies every instance; while this one hears notifications it
//! looks only after one (a change made anywhere shows at once), so a search asks the
//! database nothing while nobody changes users.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::ops::Range;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};
use memchr::memmem;

use super::EnrollmentStatus;
use super::counts::{COUNT_CAP, StatusCounts};
use super::list::{Cursor, Direction, FoundRow, ListQuery, SortKey};
use super::status::{EXPIRING_SOON_DAYS, StatusFacts, StatusFlags, users_with_live_invitation};
use crate::db::presence::Presence;
use crate::db::schema::{invitations, users};
use crate::db::{DbConnection, Engine, Stamp, engine_of};

/// Users per chunk: a chunk is copied whole when one of its users changes, and searched
/// whole (about 25 KB of text) when any of its users may be on the page.
const CHUNK_USERS: usize = 512;
/// Chunks whose filters are held together, sliced by bit (see [`ChunkFilters`]).
const GROUP_CHUNKS: usize = 64;
/// Groups of chunks asked how many of their chunks hold each of a term's keys (see
/// [`Snapshot::rank_keys`]).
const KEY_SAMPLE: usize = 8;
/// Changes read from the log at a time.
const CHANGES_PER_READ: i64 = 10_000;
/// The log keeps at least this many of the latest changes (the migrations' trim keeps
/// 100,000, on SQLite every 1,024 changes): an index further behind than this reads
/// everyone again.
const CHANGES_SURELY_KEPT: i64 = 100_000 - 2 * 1024;
/// How long a search waits for a first build of the index before the database answers it
/// instead: tests and small consoles get the index at once, a million users do not
/// stall the first searcher.
const FIRST_BUILD_WAIT: Duration = Duration::from_millis(250);

/// [`super::status::not_invited_expiry`], in microseconds.
static NOT_INVITED_FROM: std::sync::LazyLock<i64> =
    std::sync::LazyLock::new(|| micros(super::status::not_invited_expiry()));

fn micros(at: NaiveDateTime) -> i64 {
    at.and_utc().timestamp_micros()
}

fn time_of(micros: i64) -> Option<NaiveDateTime> {
    chrono::DateTime::from_timestamp_micros(micros).map(|at| at.naive_utc())
}

/// One user, as the index holds them: what their row on the page shows, and what it is
/// found and sorted by. The text (`search_key`: first name, last name, address,
/// lower-cased) is in the chunk's buffer, with the capitals of the names as typed beside
/// it; the name order is last name, then first name (`name_key`), then id, compared as
/// bytes like the database does. Times are microseconds since the epoch.
///
/// 40 bytes: the id is held as two halves (a `u128` would align the entry to 16 bytes and
/// pad it to 48), and the names' lengths and the status flags share one word.
#[derive(Debug, Clone, Copy)]
struct Entry {
    id_halves: [u64; 2],
    created_at: i64,
    expires_at: i64,
    /// Where this user's text ends in the chunk's buffer (a separator follows).
    text_end: u32,
    /// The lengths in the text of the first name (bits 0–10) and the last name (11–21),
    /// then one bit per [`Flag`].
    shape: u32,
}

// A million users' entries are 40 MB: a field added here costs another 8 MB.
const _: () = assert!(std::mem::size_of::<Entry>() == 40);

/// A name's length in the text, lower-cased, fits in 11 bits: names are at most 100
/// characters, and none lower-cases to more than 20 bytes a character.
const NAME_LENGTH_BITS: u32 = 11;

#[derive(Debug, Clone, Copy)]
enum Flag {
    Deactivated = 22,
    Enrolled,
    Sent,
    DeliveryFailed,
    /// The row can be shown from the index alone: nothing it shows is missing (an
    /// identity provider's name, a delivery error, capitals beyond ASCII).
    ShownFromIndex,
    /// The first name as typed begins with a capital (ASCII), as nearly every one does:
    /// held here rather than among the chunk's other capitals.
    FirstNameCapital,
    /// The same of the last name.
    LastNameCapital,
}

/// Where an entry's shape holds its address's domain: 0 for one held in the text, else
/// the chunk's domain of that number (see [`Chunk::domains`]).
const DOMAIN_SHIFT: u32 = Flag::LastNameCapital as u32 + 1;
/// Domains a chunk holds apart, at most (what the shape's bits left can number).
const MOST_DOMAINS: usize = (1 << (32 - DOMAIN_SHIFT)) - 1;

impl Entry {
    /// None for names too long to hold (see [`NAME_LENGTH_BITS`]).
    fn new(
        id: u128,
        created_at: i64,
        facts: StatusFacts<i64>,
        (first_len, last_len): (usize, usize),
        shown_from_index: bool,
        (first_capital, last_capital): (bool, bool),
    ) -> Option<Self> {
        let length = |len: usize| {
            u32::try_from(len)
                .ok()
                .filter(|l| *l >> NAME_LENGTH_BITS == 0)
        };
        let flag = |set: bool, flag: Flag| u32::from(set) << flag as u32;
        Some(Self {
            // Truncating on purpose: the low and the high half.
            id_halves: [id as u64, (id >> 64) as u64],
            created_at,
            expires_at: facts.expires_at,
            text_end: 0,
            shape: length(first_len)?
                | length(last_len)? << NAME_LENGTH_BITS
                | flag(facts.flags.deactivated, Flag::Deactivated)
                | flag(facts.flags.enrolled, Flag::Enrolled)
                | flag(facts.flags.sent, Flag::Sent)
                | flag(facts.flags.delivery_failed, Flag::DeliveryFailed)
                | flag(shown_from_index, Flag::ShownFromIndex)
                | flag(first_capital, Flag::FirstNameCapital)
                | flag(last_capital, Flag::LastNameCapital),
        })
    }

    fn id(&self) -> u128 {
        u128::from(self.id_halves[1]) << 64 | u128::from(self.id_halves[0])
    }

    fn first_len(&self) -> usize {
        (self.shape & ((1 << NAME_LENGTH_BITS) - 1)) as usize
    }

    fn last_len(&self) -> usize {
        (self.shape >> NAME_LENGTH_BITS & ((1 << NAME_LENGTH_BITS) - 1)) as usize
    }

    fn has(&self, flag: Flag) -> bool {
        self.shape >> flag as u32 & 1 == 1
    }

    /// 0, or the number of the chunk's domain that ends the address.
    fn domain(&self) -> usize {
        (self.shape >> DOMAIN_SHIFT) as usize
    }

    fn with_domain(mut self, domain: usize) -> Self {
        self.shape = self.shape & ((1 << DOMAIN_SHIFT) - 1) | (domain as u32) << DOMAIN_SHIFT;
        self
    }

    fn facts(&self) -> StatusFacts<i64> {
        StatusFacts {
            flags: StatusFlags {
                deactivated: self.has(Flag::Deactivated),
                enrolled: self.has(Flag::Enrolled),
                sent: self.has(Flag::Sent),
                delivery_failed: self.has(Flag::DeliveryFailed),
            },
            expires_at: self.expires_at,
        }
    }

    /// Derived from the microseconds held, without making dates of them: the index
    /// derives a status for every match it counts, filters or sorts.
    fn status(&self, now: NaiveDateTime) -> EnrollmentStatus {
        EnrollmentStatus::derive_at(&self.facts(), &micros(now), &NOT_INVITED_FROM)
    }

    /// As [`super::list::UserRow::expires_soon`].
    fn expires_soon(&self, now: NaiveDateTime) -> bool {
        matches!(
            self.status(now),
            EnrollmentStatus::Pending | EnrollmentStatus::Sending
        ) && self.expires_at <= micros(now + chrono::TimeDelta::days(EXPIRING_SOON_DAYS))
    }
}

/// Users in name order, with their texts in one buffer.
#[derive(Debug, Default)]
struct Chunk {
    entries: Vec<Entry>,
    text: Vec<u8>,
    /// The domains its users' addresses end with, held once rather than in each text
    /// (a user's text then ends at the "@"): an organisation's users share one or a
    /// few, and "@example.com" was a quarter of the text at a million users. A domain
    /// with a capital as typed, or beyond [`MOST_DOMAINS`], stays in the text.
    domains: Vec<Box<[u8]>>,
    /// Where the text has a capital letter (ASCII) in the name or address as typed, in
    /// order, but for the names' initials (see [`Flag::FirstNameCapital`]): few users
    /// have any other, and a bit for every byte of text was 6 MB at a million users.
    capitals: Vec<u32>,
    /// The rows whose invitation could not be delivered, with the reason (a number in
    /// `delivery_reasons`), in order: few users have one, and most share it. Without
    /// them a page showing such a user was read from the database, most pages of 50
    /// rows where 4% of users had one.
    delivery_errors: Vec<(u32, u32)>,
    delivery_reasons: Vec<Box<str>>,
    /// How many distinct keys its users' texts hold ([`Chunk::keys`]; about: counted as
    /// bits of a wide bitmap), which sizes the filter of its group (see [`ChunkFilters`]). Names
    /// sorted together share most trigrams: 512 users hold a few hundred to a few
    /// thousand.
    distinct_keys: usize,
    /// Which statuses its users may have (see [`StatusSpan`]). Held in the chunk, not
    /// behind a pointer of its own: a search with a status filter asks it of hundreds of
    /// chunks, and the extra memory read for each was most of what such a search cost
    /// beyond its text at a million users.
    statuses: StatusSpans,
    /// Where each segment's text ends (that of its last user): a segment is searched
    /// without reading the entries at its ends, a memory read each.
    segment_ends: [u32; MOST_SEGMENTS],
}

/// Segments in a chunk at its largest (a chunk is split at twice [`CHUNK_USERS`]).
const MOST_SEGMENTS: usize = 2 * CHUNK_USERS / SEGMENT_USERS;

/// Users per segment of a chunk: the trigrams of three digits are told by segment (see
/// [`ChunkFilters::digits`]).
const SEGMENT_USERS: usize = 64;

/// The users of a chunk who share one set of status flags, by the span of their
/// invitations' expiry: enough to tell which statuses the chunk may hold at any moment,
/// so that a search filtered by a status none of its users has does not search its text.
/// Such a search, broad, read every chunk at a million users to fill a page it could not.
#[derive(Debug, Clone, Copy)]
struct StatusSpan {
    /// The flag bits of [`Entry::shape`] the users share.
    flags: u32,
    earliest: i64,
    latest: i64,
}

/// The bits of [`Entry::shape`] a status is derived from, beside the expiry.
const STATUS_FLAG_BITS: u32 = 0b1111 << Flag::Deactivated as u32;
const _: () = assert!(
    Flag::Enrolled as u32 == Flag::Deactivated as u32 + 1
        && Flag::Sent as u32 == Flag::Deactivated as u32 + 2
        && Flag::DeliveryFailed as u32 == Flag::Deactivated as u32 + 3
);

/// A chunk's [`StatusSpan`]s: one for each set of status flags its users have, of the
/// sixteen there are.
#[derive(Debug, Clone, Copy)]
struct StatusSpans {
    spans: [StatusSpan; STATUS_FLAG_SETS],
    len: usize,
}

const STATUS_FLAG_SETS: usize = 1 << STATUS_FLAG_BITS.count_ones();

impl Default for StatusSpans {
    fn default() -> Self {
        let none = StatusSpan {
            flags: 0,
            earliest: 0,
            latest: 0,
        };
        Self {
            spans: [none; STATUS_FLAG_SETS],
            len: 0,
        }
    }
}

impl StatusSpans {
    fn of(entries: &[Entry]) -> Self {
        let mut of = Self::default();
        for entry in entries {
            let flags = entry.shape & STATUS_FLAG_BITS;
            match of.spans[..of.len]
                .iter_mut()
                .find(|span| span.flags == flags)
            {
                Some(span) => {
                    span.earliest = span.earliest.min(entry.expires_at);
                    span.latest = span.latest.max(entry.expires_at);
                }
                None => {
                    // Never full: each span has other flags.
                    of.spans[of.len] = StatusSpan {
                        flags,
                        earliest: entry.expires_at,
                        latest: entry.expires_at,
                    };
                    of.len += 1;
                }
            }
        }
        of
    }

    fn iter(&self) -> impl Iterator<Item = &StatusSpan> {
        self.spans[..self.len].iter()
    }
}

impl StatusSpan {
    /// A user of the span with this expiry, as an entry (for its status).
    fn expiring_at(&self, expires_at: i64) -> Entry {
        Entry {
            id_halves: [0; 2],
            created_at: 0,
            expires_at,
            text_end: 0,
            shape: self.flags,
        }
    }

    /// Whether some user of the span may pass the filter. With its flags, a status
    /// changes with the expiry only at `now` and at the moment from which nobody is
    /// invited yet, so the span's ends and its first moment after `now` stand for all.
    fn may_pass(&self, filter: &Filter) -> bool {
        let after_now = filter
            .now_micros
            .saturating_add(1)
            .clamp(self.earliest, self.latest);
        let status_passes = filter.status.is_none_or(|status| {
            [self.earliest, after_now, self.latest]
                .into_iter()
                .any(|at| self.expiring_at(at).status(filter.now) == status)
        });
        let expiry_passes = !filter.expiring_soon
            || (after_now > filter.now_micros
                && self.expiring_at(after_now).expires_soon(filter.now));
        status_passes && expiry_passes
    }
}

/// A page's filter (a status, expiring soon) as the index applies it: to a user, and to
/// a chunk, which it passes over when none of its users can pass.
#[derive(Clone, Copy)]
struct Filter {
    status: Option<EnrollmentStatus>,
    expiring_soon: bool,
    now: NaiveDateTime,
    now_micros: i64,
}

impl Filter {
    fn of(query: &ListQuery, now: NaiveDateTime) -> Self {
        Self {
            status: query.status,
            expiring_soon: query.expiring_soon,
            now,
            now_micros: micros(now),
        }
    }

    fn passes(&self, entry: &Entry) -> bool {
        self.status.is_none_or(|s| entry.status(self.now) == s)
            && (!self.expiring_soon || entry.expires_soon(self.now))
    }

    fn may_pass(&self, chunk: &Chunk) -> bool {
        (self.status.is_none() && !self.expiring_soon)
            || chunk.statuses.iter().any(|span| span.may_pass(self))
    }
}

/// A block of the chunks' filters (see [`ChunkFilters`]): a cache line.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C, align(64))]
struct FilterBlock([u64; 8]);

/// The trigrams of three digits a segment's text holds, a bit for each of the thousand
/// ("042" is bit 42): exact, and smaller than a Bloom filter of the two or three hundred
/// a segment holds (128 bytes against about 250).
#[derive(Debug, Clone, Copy, Default)]
#[repr(C, align(64))]
struct DigitTrigrams([u64; 16]);

impl DigitTrigrams {
    fn of(text: &[u8]) -> Self {
        let mut held = Self::default();
        for trigram in digit_keys(text) {
            held.0[trigram / 64] |= 1 << (trigram % 64);
        }
        held
    }

    fn holds(&self, trigram: usize) -> bool {
        self.0[trigram / 64] >> (trigram % 64) & 1 == 1
    }

    fn add(&mut self, other: &Self) {
        for (word, more) in self.0.iter_mut().zip(other.0) {
            *word |= more;
        }
    }
}

/// Bits per distinct key in a filter (12–22% of them set), within these bounds.
const FILTER_BITS_PER_TRIGRAM: usize = 8;
const FILTER_BITS_MIN: usize = 2048;
const FILTER_BITS_MAX: usize = 65_536;

fn trigram_hash(trigram: &[u8]) -> u32 {
    mixed(
        trigram
            .iter()
            .fold(0u32, |packed, byte| packed << 8 | u32::from(*byte)),
    )
}

/// Spreads a value's bits over all 32 (multiply and shift, as hash finalisers do).
fn mixed(value: u32) -> u32 {
    let mut h = value.wrapping_mul(0x9E37_79B1);
    h ^= h >> 15;
    h = h.wrapping_mul(0x85EB_CA77);
    h ^ (h >> 13)
}

/// A key's block, chosen by the high bits of its hash (multiplied into the range, so that
/// a filter need not be a power of two of blocks: rounded up, filters were half as large
/// again); [`ChunkFilters::place`] takes the low ones for the words.
fn block_of(filter: &[FilterBlock], hash: u32) -> usize {
    ((u64::from(hash) * filter.len() as u64) >> 32) as usize
}

/// A key as one filter holds it (see [`ChunkFilters::seed`]).
fn salted(key: u32, seed: u32) -> u32 {
    mixed(key ^ seed)
}

/// The filters of up to [`GROUP_CHUNKS`] neighbouring chunks, sliced by bit: a Bloom
/// filter per chunk of the keys of its text ([`chunk_keys`]), where bit `c` of every word
/// is chunk `c`'s. A key sets two words of one block (a cache line), so asking a group
/// for a key is one memory read that answers for its 64 chunks: a term not in a chunk is
/// not searched there. Held a filter to a chunk, a million users' 8 MB of filters cost a
/// cache miss per chunk and key, 2,000 of them for any search (14% of the server's time
/// under the varied mix), where a group costs 32.
#[derive(Debug, Clone)]
struct ChunkFilters {
    /// Sized to the chunk holding most keys.
    blocks: Vec<FilterBlock>,
    /// Mixed into every key. Chunks hold much the same trigrams (the digits, the
    /// domain), so under one hash for all a term whose bits happened to be set by common
    /// trigrams passed nearly every chunk's filter, and another almost none ("ove" passed
    /// 273 of 1,954 chunks at a million users, 40 of them holding it): salted per group,
    /// each term passes about the filter's rate of the chunks lacking it.
    seed: u32,
    /// The chunks it holds, from the first bit.
    chunks: usize,
    /// Of each trigram of three digits ("042" is the 42nd), which segments of its
    /// chunks hold it: a word a segment, a bit a chunk. Numbers in addresses put nearly
    /// every such trigram in every chunk, so the chunk's filter could not rule a chunk
    /// out for them, and a search for a number read a quarter of the text at a million
    /// users to find its first 1,001 matches; a segment holds a quarter of them, and only
    /// its text is searched when it holds all of the term's. Held by chunk, the few
    /// segments a number needs cost a memory read for every segment of every chunk its
    /// filter passed (the chunk's own filter passing some by chance); here two or three
    /// reads answer for the group.
    digits: Vec<SegmentsHolding>,
}

/// Which segments of a group's chunks hold a trigram of three digits (see
/// [`ChunkFilters::digits`]).
#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
struct SegmentsHolding([u64; MOST_SEGMENTS]);

/// Trigrams of three digits.
const DIGIT_TRIGRAMS: usize = 1000;

/// Segments of a chunk, a bit each.
type Segments = u16;
const _: () = assert!(MOST_SEGMENTS == Segments::BITS as usize);

impl ChunkFilters {
    fn of(chunks: &[Arc<Chunk>]) -> Self {
        let most = chunks.iter().map(|c| c.distinct_keys).max().unwrap_or(0);
        // Not a power of two: the groups' filters are most of the index's but its
        // entries and text, and rounded up they were half as large again.
        let words = (most * FILTER_BITS_PER_TRIGRAM).clamp(FILTER_BITS_MIN, FILTER_BITS_MAX);
        let mut filters = Self {
            blocks: vec![FilterBlock::default(); words.div_ceil(8)],
            // Any value differing from group to group will do: part of a user's id.
            seed: chunks
                .first()
                .and_then(|c| c.entries.first())
                .map_or(0, |entry| mixed(entry.id() as u32)),
            chunks: chunks.len(),
            digits: vec![SegmentsHolding([0; MOST_SEGMENTS]); DIGIT_TRIGRAMS],
        };
        for (column, chunk) in chunks.iter().enumerate() {
            filters.set(column, chunk);
        }
        filters
    }

    /// The block and the two words of it that hold a key, each at a bit per chunk: the
    /// block by the hash's high bits (multiplied into the range), the words by its low.
    fn place(&self, key: u32) -> (usize, [usize; 2]) {
        let hash = salted(key, self.seed);
        let block = block_of(&self.blocks, hash);
        let first = hash as usize & 7;
        // Another word than the first: two bits a key.
        let second = (first + 1 + (hash >> 3) as usize % 7) & 7;
        (block, [first, second])
    }

    fn set(&mut self, column: usize, chunk: &Chunk) {
        for key in chunk.keys() {
            let (block, words) = self.place(key);
            for word in words {
                self.blocks[block].0[word] |= 1 << column;
            }
        }
        for (segment, held) in chunk.segment_digit_trigrams().enumerate() {
            for (trigram, holding) in self.digits.iter_mut().enumerate() {
                if held.holds(trigram) {
                    holding.0[segment] |= 1 << column;
                }
            }
        }
    }

    /// Whether a chunk of this many keys is held at about the rate the filters were
    /// sized for (a chunk grows by changes until it splits).
    fn fits(&self, distinct_keys: usize) -> bool {
        distinct_keys * FILTER_BITS_PER_TRIGRAM <= 2 * self.blocks.len() * 8
    }

    /// The filters with these chunks' columns made again (each chunk a new one in the
    /// place of one).
    fn with_columns(&self, columns: &[(usize, &Chunk)]) -> Self {
        let mut filters = self.clone();
        let cleared = !columns
            .iter()
            .fold(0u64, |bits, &(column, _)| bits | 1 << column);
        let words = filters.blocks.iter_mut().flat_map(|block| &mut block.0);
        for word in words.chain(filters.digits.iter_mut().flat_map(|holding| &mut holding.0)) {
            *word &= cleared;
        }
        for &(column, chunk) in columns {
            filters.set(column, chunk);
        }
        filters
    }

    /// The chunks that may hold every one of the keys, as bits (surely not the others).
    fn holding(&self, keys: &[u32]) -> u64 {
        let mut may = match self.chunks {
            GROUP_CHUNKS.. => u64::MAX,
            chunks => (1 << chunks) - 1,
        };
        for &key in keys {
            may &= self.holding_key(key);
            if may == 0 {
                break;
            }
        }
        may
    }

    fn holding_key(&self, key: u32) -> u64 {
        let (block, [first, second]) = self.place(key);
        let words = &self.blocks[block].0;
        words[first] & words[second]
    }

    /// The segments holding every one of these trigrams of three digits, as
    /// [`ChunkFilters::digits`] holds them (all for none).
    fn holding_digits(&self, trigrams: &[usize]) -> [u64; MOST_SEGMENTS] {
        let mut holding = [u64::MAX; MOST_SEGMENTS];
        for held in trigrams
            .iter()
            .filter_map(|&trigram| self.digits.get(trigram))
        {
            for (may, held) in holding.iter_mut().zip(held.0) {
                *may &= held;
            }
        }
        holding
    }
}

/// The segments of the chunk in `column` among those of [`ChunkFilters::holding_digits`].
fn segments_of(holding: &[u64; MOST_SEGMENTS], column: usize) -> Segments {
    holding
        .iter()
        .enumerate()
        .fold(0, |segments, (segment, chunks)| {
            segments | (((chunks >> column & 1) as Segments) << segment)
        })
}

/// What a search looks for: the substring, and its keys for the chunks' filters and for
/// their segments'.
struct Term<'a> {
    finder: memmem::Finder<'a>,
    trigrams: Vec<u32>,
    digit_trigrams: Vec<usize>,
    /// Where the term has an "@" (see [`Chunk::rows_by_domain`]).
    ats: Vec<usize>,
}

impl<'a> Term<'a> {
    fn new(term: &'a str) -> Self {
        Self {
            finder: memmem::Finder::new(term.as_bytes()),
            trigrams: chunk_keys(term.as_bytes()).collect(),
            digit_trigrams: digit_keys(term.as_bytes()).collect(),
            ats: memchr::memchr_iter(b'@', term.as_bytes()).collect(),
        }
    }
}

/// What a chunk's filter holds of a text: its trigrams but those of three digits (see
/// [`ChunkFilters::digits`]), and its runs of four digits.
/// Numbers in addresses make nearly every digit trigram common to every chunk (a
/// thousand of them), so a search for a number would scan them all; four digits (ten
/// thousand) rule out most chunks. Packed, four bytes never equal three.
///
/// The runs come first: a search asks a chunk's filter for its term's keys in this order
/// and stops at the first one missing, each asked at the cost of a memory read, and a
/// run of four digits is missing from most chunks where its trigrams are not.
fn chunk_keys(text: &[u8]) -> impl Iterator<Item = u32> + '_ {
    let runs = text.windows(4).filter(|run| all_digits(run));
    let trigrams = text.windows(3).filter(|trigram| !all_digits(trigram));
    runs.chain(trigrams).map(trigram_hash)
}

/// What a chunk's segment holds of a text: its trigrams of three digits, as numbers.
fn digit_keys(text: &[u8]) -> impl Iterator<Item = usize> + '_ {
    text.windows(3)
        .filter(|trigram| all_digits(trigram))
        .map(|trigram| {
            trigram
                .iter()
                .fold(0, |number, digit| number * 10 + usize::from(digit - b'0'))
        })
}

fn all_digits(bytes: &[u8]) -> bool {
    bytes.iter().all(u8::is_ascii_digit)
}

/// A user's parts, borrowed from a chunk.
#[derive(Clone, Copy)]
struct Parts<'a> {
    entry: &'a Entry,
    first: &'a [u8],
    last: &'a [u8],
    /// The address as the text holds it: whole, or up to its "@" when its domain is
    /// held apart (then `domain`).
    email: &'a [u8],
    domain: &'a [u8],
}

impl<'a> Parts<'a> {
    /// A user's text ("first last address") cut at the lengths their entry holds, and
    /// the domain held apart from it (empty when none is).
    fn of(entry: &'a Entry, text: &'a [u8], domain: &'a [u8]) -> Self {
        let (first_len, last_len) = (entry.first_len(), entry.last_len());
        Parts {
            entry,
            first: &text[..first_len],
            last: &text[first_len + 1..first_len + 1 + last_len],
            email: &text[first_len + last_len + 2..],
            domain,
        }
    }

    /// The whole address against another one.
    fn email_cmp(&self, (email, domain): (&[u8], &[u8])) -> Ordering {
        // The held parts compared as slices first (most addresses differ there).
        let shorter = self.email.len().min(email.len());
        self.email[..shorter].cmp(&email[..shorter]).then_with(|| {
            self.email[shorter..]
                .iter()
                .chain(self.domain)
                .cmp(email[shorter..].iter().chain(domain))
        })
    }

    fn email_order(&self, other: &Parts<'_>) -> Ordering {
        self.email_cmp((other.email, other.domain))
    }

    /// `name_key` (last name, a space, first name) against another one.
    fn name_cmp(&self, other: &[u8]) -> Ordering {
        self.last
            .iter()
            .chain(b" ")
            .chain(self.first)
            .cmp(other.iter())
    }

    fn name_order(&self, other: &Parts<'_>) -> Ordering {
        self.last
            .iter()
            .chain(b" ")
            .chain(self.first)
            .cmp(other.last.iter().chain(b" ").chain(other.first))
            .then(self.entry.id().cmp(&other.entry.id()))
    }
}

impl Chunk {
    /// The chunk with its segments' filters made and its keys counted.
    fn sealed(mut self) -> Self {
        // One bit a key; few share one at this width.
        let mut seen = vec![0u64; FILTER_BITS_MAX / 64];
        for key in self.keys() {
            let bit = key as usize % FILTER_BITS_MAX;
            seen[bit / 64] |= 1 << (bit % 64);
        }
        self.distinct_keys = seen.iter().map(|word| word.count_ones() as usize).sum();
        self.statuses = StatusSpans::of(&self.entries);
        self.seal_segments();
        // Grown by doubling while filled: a third of a chunk's text would be spare.
        self.entries.shrink_to_fit();
        self.text.shrink_to_fit();
        self.capitals.shrink_to_fit();
        self.delivery_errors.shrink_to_fit();
        self
    }

    /// The keys of [`chunk_keys`] of its users' whole texts: those of its text, of its
    /// domains (after an "@"), and where a text meets its domain (the trigram of the
    /// "@" and a byte either side).
    fn keys(&self) -> impl Iterator<Item = u32> + '_ {
        let domains = self.domains.iter().flat_map(|domain| {
            let after_at: Vec<u8> = [b"@", &domain[..]].concat();
            chunk_keys(&after_at).collect::<Vec<u32>>()
        });
        let meetings = (0..self.entries.len()).filter_map(|row| {
            let entry = &self.entries[row];
            let end = entry.text_end as usize;
            let &first = self.domain_of(entry).first()?;
            let before_at = *self.text[self.start_of(row)..end].iter().nth_back(1)?;
            Some(trigram_hash(&[before_at, b'@', first]))
        });
        chunk_keys(&self.text).chain(domains).chain(meetings)
    }

    /// The domain held apart from the text of a user of this chunk (empty when none is).
    fn domain_of(&self, entry: &Entry) -> &[u8] {
        entry
            .domain()
            .checked_sub(1)
            .and_then(|number| self.domains.get(number))
            .map_or(&[], |domain| domain)
    }

    /// The number a domain is held under (see [`Entry::domain`]), held now if it is new
    /// and there is room.
    fn domain_number(&mut self, domain: &[u8]) -> Option<usize> {
        let at = match self.domains.iter().position(|held| **held == *domain) {
            Some(at) => at,
            None if self.domains.len() < MOST_DOMAINS => {
                self.domains.push(domain.into());
                self.domains.len() - 1
            }
            None => return None,
        };
        Some(at + 1)
    }

    /// Where each segment's text ends.
    fn seal_segments(&mut self) {
        for (segment, first) in (0..self.entries.len()).step_by(SEGMENT_USERS).enumerate() {
            let last = (first + SEGMENT_USERS).min(self.entries.len()) - 1;
            if let Some(held) = self.segment_ends.get_mut(segment) {
                *held = self.entries[last].text_end;
            }
        }
    }

    /// The trigrams of three digits of each segment's users' whole texts, domains too.
    fn segment_digit_trigrams(&self) -> impl Iterator<Item = DigitTrigrams> + '_ {
        let of_domains: Vec<DigitTrigrams> = self
            .domains
            .iter()
            .map(|domain| DigitTrigrams::of(domain))
            .collect();
        (0..self.entries.len())
            .step_by(SEGMENT_USERS)
            .map(move |first| {
                let rows = first..(first + SEGMENT_USERS).min(self.entries.len());
                let end = self.entries[rows.end - 1].text_end as usize;
                let mut held = DigitTrigrams::of(&self.text[self.start_of(first)..end]);
                let numbers = self.entries[rows]
                    .iter()
                    .fold(0u32, |numbers, entry| numbers | 1 << entry.domain());
                for (number, of_domain) in (1..).zip(&of_domains) {
                    if numbers >> number & 1 == 1 {
                        held.add(of_domain);
                    }
                }
                held
            })
    }

    fn start_of(&self, row: usize) -> usize {
        row.checked_sub(1)
            .map_or(0, |before| self.entries[before].text_end as usize + 1)
    }

    fn parts(&self, row: usize) -> Parts<'_> {
        let entry = &self.entries[row];
        Parts::of(
            entry,
            &self.text[self.start_of(row)..entry.text_end as usize],
            self.domain_of(entry),
        )
    }

    /// Appends a user: their whole text, the positions of its capitals, their entry. The
    /// address's domain is held apart when it is as typed (no capital) and there is room.
    fn push(
        &mut self,
        text: &[u8],
        capitals: impl Iterator<Item = usize>,
        entry: Entry,
        delivery_error: Option<&str>,
    ) -> Option<()> {
        let capitals: Vec<usize> = capitals.collect();
        let email_at = entry.first_len() + entry.last_len() + 2;
        let domain_at = text
            .get(email_at..)
            .and_then(|email| memchr::memrchr(b'@', email))
            .map(|at| email_at + at + 1)
            .filter(|&at| at < text.len() && capitals.iter().all(|&capital| capital < at));
        let held_apart = domain_at.and_then(|at| Some((at, self.domain_number(&text[at..])?)));
        let (text, mut entry) = match held_apart {
            Some((at, number)) => (&text[..at], entry.with_domain(number)),
            None => (text, entry.with_domain(0)),
        };
        let start = self.text.len();
        self.text.extend_from_slice(text);
        entry.text_end = u32::try_from(self.text.len()).ok()?;
        self.text.push(b'\n');
        for at in capitals {
            self.capitals.push(u32::try_from(start + at).ok()?);
        }
        if let Some(reason) = delivery_error {
            let number = match self.delivery_reasons.iter().position(|r| **r == *reason) {
                Some(number) => number,
                None => {
                    self.delivery_reasons.push(reason.into());
                    self.delivery_reasons.len() - 1
                }
            };
            let row = u32::try_from(self.entries.len()).ok()?;
            self.delivery_errors
                .push((row, u32::try_from(number).ok()?));
        }
        self.entries.push(entry);
        Some(())
    }

    /// Why a row's invitation could not be delivered, if it could not.
    fn delivery_error(&self, row: usize) -> Option<&str> {
        let at = self
            .delivery_errors
            .binary_search_by_key(&row, |&(held, _)| held as usize)
            .ok()?;
        let (_, number) = self.delivery_errors[at];
        self.delivery_reasons.get(number as usize).map(|r| &**r)
    }

    /// The capitals held of a row's text, as positions in it.
    fn capitals_of(&self, row: usize) -> impl Iterator<Item = usize> + '_ {
        let (start, end) = (self.start_of(row), self.entries[row].text_end as usize);
        let from = self.capitals.partition_point(|&at| (at as usize) < start);
        self.capitals[from..]
            .iter()
            .map(|&at| at as usize)
            .take_while(move |&at| at < end)
            .map(move |at| at - start)
    }

    fn push_from(&mut self, other: &Chunk, row: usize) -> Option<()> {
        let entry = other.entries[row];
        let (start, end) = (other.start_of(row), entry.text_end as usize);
        let held = &other.text[start..end];
        let domain = other.domain_of(&entry);
        let whole: std::borrow::Cow<'_, [u8]> = if domain.is_empty() {
            held.into()
        } else {
            [held, domain].concat().into()
        };
        self.push(
            &whole,
            other.capitals_of(row),
            entry,
            other.delivery_error(row),
        )
    }

    /// The user's row as the page shows it, when the index holds all of it.
    fn row(&self, row: usize) -> Option<super::list::UserRow> {
        let entry = &self.entries[row];
        if !entry.has(Flag::ShownFromIndex) {
            return None;
        }
        let (first_len, last_len) = (entry.first_len(), entry.last_len());
        let mut typed = self.text[self.start_of(row)..entry.text_end as usize].to_vec();
        let initials = [
            (entry.has(Flag::FirstNameCapital), 0),
            (entry.has(Flag::LastNameCapital), first_len + 1),
        ];
        let capitals = initials
            .into_iter()
            .filter_map(|(capital, at)| capital.then_some(at))
            .chain(self.capitals_of(row));
        for at in capitals {
            if let Some(byte) = typed.get_mut(at) {
                byte.make_ascii_uppercase();
            }
        }
        typed.extend_from_slice(self.domain_of(entry));
        let typed = String::from_utf8(typed).ok()?;
        let first_name = typed.get(..first_len)?.to_owned();
        let last_name = typed
            .get(first_len + 1..first_len + 1 + last_len)?
            .to_owned();
        let email = typed.get(first_len + last_len + 2..)?.to_owned();
        Some(super::list::UserRow {
            id: uuid::Uuid::from_u128(entry.id()).hyphenated().to_string(),
            email_key: email.to_ascii_lowercase(),
            name_key: super::name_key(&first_name, &last_name),
            first_name,
            last_name,
            email,
            created_at: time_of(entry.created_at)?,
            flags: entry.facts().flags,
            provisioned_by: None,
            expires_at: time_of(entry.expires_at)?,
            delivery_error: self.delivery_error(row).map(str::to_owned),
        })
    }

    /// The rows whose text holds the term, in order. A hit across two users' texts (a
    /// term with a line break in it) is none. The chunk's filters are not asked: the
    /// searches ask its group's ([`Snapshot::may_hold`]).
    #[cfg(test)]
    fn matching_rows(&self, term: &Term<'_>) -> Vec<usize> {
        let mut rows = Vec::new();
        self.matching_rows_into(term, Segments::MAX, &mut rows);
        rows
    }

    /// [`Chunk::matching_rows`] into `rows` (emptied first), searching only the text of
    /// `segments` that its group says may hold the term (see [`Snapshot::may_hold`]): a
    /// search reading hundreds of chunks reuses one buffer.
    fn matching_rows_into(&self, term: &Term<'_>, segments: Segments, rows: &mut Vec<usize>) {
        rows.clear();
        if term.finder.needle().is_empty() {
            rows.extend(0..self.entries.len());
            return;
        }
        self.text_rows(term, segments, rows);
        let in_text = rows.len();
        self.rows_by_domain(term, rows);
        if rows.len() > in_text {
            // In order, each once: an address may hold the term twice.
            rows.sort_unstable();
            rows.dedup();
        }
    }

    /// The rows whose whole text holds the term in its domain held apart, or across the
    /// "@" before it. Asked for every chunk a search reads, so each domain costs one
    /// search of a few bytes with the term's own finder, and the "@"s were found once for
    /// the term.
    fn rows_by_domain(&self, term: &Term<'_>, rows: &mut Vec<usize>) {
        let needle = term.finder.needle();
        for (number, domain) in (1..).zip(&self.domains) {
            let within = term.finder.find(domain).is_some();
            // The needle up to an "@" ending a text, and the rest beginning the domain.
            let ends: Vec<&[u8]> = term
                .ats
                .iter()
                .filter(|&&at| at + 1 < needle.len() && domain.starts_with(&needle[at + 1..]))
                .map(|&at| &needle[..=at])
                .collect();
            if !within && ends.is_empty() {
                continue;
            }
            for (row, entry) in self.entries.iter().enumerate() {
                if entry.domain() == number
                    && (within
                        || ends.iter().any(|end| {
                            self.text[self.start_of(row)..entry.text_end as usize].ends_with(end)
                        }))
                {
                    rows.push(row);
                }
            }
        }
    }

    /// The rows whose text as held holds the term, of those in `segments` (a bit each)
    /// for a term with trigrams of three digits, of all otherwise.
    fn text_rows(&self, term: &Term<'_>, segments: Segments, rows: &mut Vec<usize>) {
        if term.digit_trigrams.is_empty() {
            // Every user's text, and the line breaks between them.
            let text = 0..self.text.len().saturating_sub(1);
            self.search_rows(term, 0, text, rows);
            return;
        }
        for (segment, first) in (0..self.entries.len()).step_by(SEGMENT_USERS).enumerate() {
            if segments >> segment & 1 == 1 {
                let last = (first + SEGMENT_USERS).min(self.entries.len()) - 1;
                let end_of = |segment: usize, last: usize| {
                    self.segment_ends
                        .get(segment)
                        .map_or(self.entries[last].text_end, |&end| end)
                        as usize
                };
                let start = segment
                    .checked_sub(1)
                    .map_or(0, |before| end_of(before, first - 1) + 1);
                self.search_rows(term, first, start..end_of(segment, last), rows);
            }
        }
    }

    /// Appends the rows whose text holds the term, of those whose texts are in `text`
    /// (from row `first` on).
    fn search_rows(
        &self,
        term: &Term<'_>,
        first: usize,
        text: std::ops::Range<usize>,
        rows: &mut Vec<usize>,
    ) {
        let finder = &term.finder;
        let from = text.start;
        let text = &self.text[text];
        // Only a term with a line break can match across two users' texts; the row of
        // any other match is known without reading the entries (a memory read each).
        let may_cross = finder.needle().contains(&b'\n');
        let (mut row, mut counted_to) = (first, 0);
        for at in finder.find_iter(text) {
            // A user's row is the number of line breaks before the match (each text is
            // followed by one, and holds none: see `Loose::of`), counted on from the last
            // match through text the search has just read. Walking the entries instead
            // read 48 bytes of each, and a binary search missed the cache at every probe.
            row += memchr::memchr_iter(b'\n', &text[counted_to..at]).count();
            counted_to = at;
            if may_cross {
                let Some(entry) = self.entries.get(row) else {
                    break;
                };
                let (at, end) = (from + at, from + at + finder.needle().len());
                if self.start_of(row) > at || end > entry.text_end as usize {
                    continue;
                }
            }
            if rows.last() != Some(&row) {
                rows.push(row);
            }
        }
    }
}

/// A user read from the database, before it joins a chunk.
#[derive(Queryable, Selectable)]
#[diesel(check_for_backend(crate::db::MultiBackend))]
struct UserFacts {
    #[diesel(select_expression = users::id)]
    id: String,
    #[diesel(select_expression = users::first_name)]
    first_name: String,
    #[diesel(select_expression = users::last_name)]
    last_name: String,
    #[diesel(select_expression = users::email)]
    email: String,
    #[diesel(select_expression = users::created_at, deserialize_as = Stamp)]
    created_at: NaiveDateTime,
    #[diesel(embed)]
    flags: StatusFlags,
    #[diesel(select_expression = invitations::expires_at, deserialize_as = Stamp)]
    expires_at: NaiveDateTime,
    #[diesel(select_expression = users::provisioned_by)]
    provisioned_by: Option<String>,
    #[diesel(select_expression = invitations::delivery_error)]
    delivery_error: Option<String>,
}

/// An index entry, with its own text, to insert.
struct Loose {
    text: Vec<u8>,
    /// Where the names and address as typed have a capital (ASCII) in place of `text`'s
    /// small letter.
    capitals: Vec<usize>,
    entry: Entry,
    delivery_error: Option<String>,
}

impl Loose {
    /// None for an id that is not the canonical text of a UUID (the index finds users by
    /// their id as a number, and must give the same text back), or a text with a line
    /// break (which separates users' texts; names and addresses are refused with one).
    fn of(user: UserFacts) -> Option<Self> {
        let id = uuid::Uuid::parse_str(&user.id).ok()?;
        if id.hyphenated().to_string() != user.id {
            return None;
        }
        let first = user.first_name.to_lowercase();
        let last = user.last_name.to_lowercase();
        let text = super::search_key(&user.first_name, &user.last_name, &user.email);
        if text.contains('\n') {
            return None;
        }
        let typed = format!("{} {} {}", user.first_name, user.last_name, user.email);
        // The row is made from the text only where each typed byte is the text's, or its
        // ASCII capital.
        let same_but_capitals = typed.len() == text.len()
            && typed
                .bytes()
                .zip(text.bytes())
                .all(|(typed, small)| typed == small || typed.to_ascii_lowercase() == small);
        let mut capitals: Vec<usize> = typed
            .bytes()
            .zip(text.bytes())
            .enumerate()
            .filter(|(_, (typed, small))| typed != small)
            .map(|(at, _)| at)
            .collect();
        let initials = (0, first.len() + 1);
        let first_capital = same_but_capitals && capitals.contains(&initials.0);
        let last_capital = same_but_capitals && capitals.contains(&initials.1);
        capitals.retain(|at| *at != initials.0 && *at != initials.1);
        Some(Self {
            entry: Entry::new(
                id.as_u128(),
                micros(user.created_at),
                StatusFacts {
                    flags: user.flags,
                    expires_at: micros(user.expires_at),
                },
                (first.len(), last.len()),
                same_but_capitals && user.provisioned_by.is_none(),
                (first_capital, last_capital),
            )?,
            capitals: if same_but_capitals {
                capitals
            } else {
                Vec::new()
            },
            text: text.into_bytes(),
            delivery_error: user.delivery_error,
        })
    }

    fn parts(&self) -> Parts<'_> {
        Parts::of(&self.entry, &self.text, b"")
    }
}

/// Chunks being filled in order: full ones are closed, and one that grew past twice the
/// size is split in halves.
#[derive(Default)]
struct ChunkRun {
    done: Vec<Arc<Chunk>>,
    open: Chunk,
}

impl ChunkRun {
    fn push(&mut self, loose: &Loose) -> Option<()> {
        self.open.push(
            &loose.text,
            loose.capitals.iter().copied(),
            loose.entry,
            loose.delivery_error.as_deref(),
        )?;
        if self.open.entries.len() >= CHUNK_USERS {
            self.close();
        }
        Some(())
    }

    fn close(&mut self) {
        self.done
            .push(Arc::new(std::mem::take(&mut self.open).sealed()));
    }

    fn finish(mut self) -> Vec<Arc<Chunk>> {
        if !self.open.entries.is_empty() {
            self.close();
        }
        self.done
    }
}

/// Where a user is: chunk, then row.
type At = (usize, usize);

/// Every user, in name order.
#[derive(Debug, Default)]
struct Snapshot {
    /// Never empty ones; shared with the snapshots before and after a change.
    chunks: Vec<Arc<Chunk>>,
    /// The chunks' filters, a group of neighbouring chunks to each, in order; shared
    /// like the chunks.
    filters: Vec<Arc<ChunkFilters>>,
    /// Of each chunk, its group of filters and its column there.
    placed: Vec<(u32, u32)>,
}

impl Snapshot {
    fn of(chunks: Vec<Arc<Chunk>>) -> Self {
        let filters = grouped_filters(&chunks);
        Self::with_filters(chunks, filters)
    }

    fn with_filters(chunks: Vec<Arc<Chunk>>, filters: Vec<Arc<ChunkFilters>>) -> Self {
        let placed = filters
            .iter()
            .enumerate()
            .flat_map(|(group, filters)| {
                (0..filters.chunks).map(move |column| (group as u32, column as u32))
            })
            .collect();
        Self {
            chunks,
            filters,
            placed,
        }
    }

    fn entry(&self, (chunk, row): At) -> &Entry {
        &self.chunks[chunk].entries[row]
    }

    fn parts(&self, (chunk, row): At) -> Parts<'_> {
        self.chunks[chunk].parts(row)
    }

    /// Those of the chunks in `order` that may hold the term, by their filters, in that
    /// order, each with the segments to search. A group's filters answer for all its
    /// chunks at once, asked once for a run of its chunks.
    fn may_hold<'s>(
        &'s self,
        term: &'s Term<'_>,
        order: impl Iterator<Item = usize> + 's,
    ) -> impl Iterator<Item = (usize, Segments)> + 's {
        let mut asked: Option<(u32, u64, [u64; MOST_SEGMENTS])> = None;
        order.filter_map(move |c| {
            let (group, column) = self.placed[c];
            let (holding, digits) = match asked {
                Some((asked_group, holding, digits)) if asked_group == group => (holding, digits),
                _ => {
                    let filters = &self.filters[group as usize];
                    let mut holding = filters.holding(&term.trigrams);
                    let digits = filters.holding_digits(&term.digit_trigrams);
                    if !term.digit_trigrams.is_empty() {
                        holding &= digits.iter().fold(0, |any, chunks| any | chunks);
                    }
                    asked = Some((group, holding, digits));
                    (holding, digits)
                }
            };
            (holding >> column & 1 == 1).then(|| (c, segments_of(&digits, column as usize)))
        })
    }

    /// Puts the term's keys in the order of how few chunks hold them, as a sample of the
    /// groups' filters says: a group is ruled out at the first key none of its chunks
    /// holds, and each key asked is a memory read. The keys of a whole name are mostly
    /// those of a first name, in every chunk ("gra", "rac", "ace" of "grace hopper"); one
    /// across the space is in few ("e h"), and asked first it rules out nearly every
    /// chunk alone.
    fn rank_keys(&self, term: &mut Term<'_>) {
        if term.trigrams.len() < 2 || self.filters.is_empty() {
            return;
        }
        let step = self.filters.len().div_ceil(KEY_SAMPLE);
        let sample: Vec<&ChunkFilters> = self
            .filters
            .iter()
            .step_by(step)
            .map(|f| f.as_ref())
            .collect();
        term.trigrams.sort_by_cached_key(|&key| {
            sample
                .iter()
                .map(|filters| filters.holding_key(key).count_ones())
                .sum::<u32>()
        });
    }

    /// Whether more than `cap` users surely hold the term, as its segments' trigrams of
    /// three digits tell without reading the text: for a number of three digits, each
    /// segment holding it holds a user whose text does. At a million users such a
    /// number is in about 4,000, and finding the first 1,001 of them, to say that there
    /// are more than 1,000, searched the text of a thousand segments.
    fn surely_more_than(&self, term: &Term<'_>, cap: usize) -> bool {
        let &[trigram] = term.digit_trigrams.as_slice() else {
            return false;
        };
        if term.finder.needle().len() != 3 {
            return false;
        }
        let mut segments = 0;
        for filters in &self.filters {
            let holding = filters
                .digits
                .get(trigram)
                .map_or(&[0; MOST_SEGMENTS], |h| &h.0);
            segments += holding
                .iter()
                .map(|chunks| chunks.count_ones() as usize)
                .sum::<usize>();
            if segments > cap {
                return true;
            }
        }
        false
    }

    /// The matches of the first chunks, each read whole, until there are more than
    /// `enough`: those matches in name order, and the chunk the search stopped before.
    fn first_matches(&self, term: &Term<'_>, enough: usize) -> (Vec<At>, usize) {
        let (mut found, mut rows) = (Vec::new(), Vec::new());
        for (c, segments) in self.may_hold(term, 0..self.chunks.len()) {
            if found.len() > enough {
                return (found, c);
            }
            self.chunks[c].matching_rows_into(term, segments, &mut rows);
            found.extend(rows.iter().map(|&row| (c, row)));
        }
        (found, self.chunks.len())
    }

    /// The matches in name order from chunk `from` on, in the chunks where some user may
    /// pass `filter`.
    fn matches_from<'s>(
        &'s self,
        from: usize,
        term: &'s Term<'_>,
        filter: &'s Filter,
    ) -> impl Iterator<Item = At> + 's {
        self.may_hold(term, from..self.chunks.len())
            .filter(|&(c, _)| filter.may_pass(&self.chunks[c]))
            .flat_map(move |(c, segments)| {
                let mut rows = Vec::new();
                self.chunks[c].matching_rows_into(term, segments, &mut rows);
                rows.into_iter().map(move |row| (c, row))
            })
    }

    /// Matches past `bound` in name order (or its reverse) that pass `filter`, until
    /// `wanted`: only the chunks the page reaches are searched.
    fn walk_by_name(
        &self,
        term: &Term<'_>,
        direction: Direction,
        bound: Option<&Bound>,
        wanted: usize,
        filter: &Filter,
    ) -> Vec<At> {
        let beyond =
            |parts: &Parts<'_>| bound.is_none_or(|b| b.is_passed_by(parts, direction, filter.now));
        let chunks: Box<dyn Iterator<Item = usize>> = match direction {
            Direction::Ascending => {
                let start = self
                    .chunks
                    .partition_point(|c| !beyond(&c.parts(c.entries.len() - 1)));
                Box::new(start..self.chunks.len())
            }
            Direction::Descending => {
                let end = self.chunks.partition_point(|c| beyond(&c.parts(0)));
                Box::new((0..end).rev())
            }
        };
        let (mut found, mut rows) = (Vec::with_capacity(wanted), Vec::new());
        for (c, segments) in self.may_hold(term, chunks) {
            let chunk = &self.chunks[c];
            if !filter.may_pass(chunk) {
                continue;
            }
            chunk.matching_rows_into(term, segments, &mut rows);
            if direction == Direction::Descending {
                rows.reverse();
            }
            for &row in &rows {
                let parts = chunk.parts(row);
                if beyond(&parts) && filter.passes(parts.entry) {
                    found.push((c, row));
                    if found.len() >= wanted {
                        return found;
                    }
                }
            }
        }
        found
    }

    /// Matches in status order past `bound` (a position in that order: a cursor of the
    /// status sort) that pass `filter`, until `wanted`: one status after another, each a
    /// walk in name order through the chunks that may hold it, rather than every match
    /// sorted.
    fn walk_by_status(
        &self,
        term: &Term<'_>,
        direction: Direction,
        bound: Option<&Bound>,
        wanted: usize,
        filter: &Filter,
    ) -> Vec<At> {
        let mut ranks: Vec<usize> = (0..EnrollmentStatus::ALL.len()).collect();
        if direction == Direction::Descending {
            ranks.reverse();
        }
        let mut found = Vec::with_capacity(wanted);
        for (rank, status) in ranks.into_iter().map(|r| (r, EnrollmentStatus::ALL[r])) {
            if filter.status.is_some_and(|s| s != status) {
                continue;
            }
            let within = match bound {
                Some(Bound::Status(bound_rank, name, id)) => {
                    match (rank.cmp(bound_rank), direction) {
                        (Ordering::Equal, _) => Some(Bound::Name(name.clone(), *id)),
                        (Ordering::Less, Direction::Ascending)
                        | (Ordering::Greater, Direction::Descending) => continue,
                        _ => None,
                    }
                }
                _ => None,
            };
            let of_status = Filter {
                status: Some(status),
                ..*filter
            };
            let rest = wanted - found.len();
            found.extend(self.walk_by_name(term, direction, within.as_ref(), rest, &of_status));
            if found.len() >= wanted {
                break;
            }
        }
        found
    }

    /// This snapshot with the `changed` users taken out and `fresh` (their current
    /// state, those that still exist) put in. Only the chunks concerned are copied.
    fn with_changes(&self, changed: &HashSet<u128>, mut fresh: Vec<Loose>) -> Option<Self> {
        fresh.sort_by(|a, b| a.parts().name_order(&b.parts()));
        let mut arriving: HashMap<usize, Vec<Loose>> = HashMap::new();
        for loose in fresh {
            let target = self
                .chunks
                .partition_point(|c| {
                    c.parts(c.entries.len() - 1).name_order(&loose.parts()) == Ordering::Less
                })
                .min(self.chunks.len().saturating_sub(1));
            arriving.entry(target).or_default().push(loose);
        }
        let mut chunks = Vec::with_capacity(self.chunks.len() + 1);
        // Of each chunk, the chunks it became, and whether they are new.
        let mut became: Vec<(Range<usize>, bool)> = Vec::with_capacity(self.chunks.len());
        for (c, chunk) in self.chunks.iter().enumerate() {
            let incoming = arriving.remove(&c);
            if incoming.is_none() && !chunk.entries.iter().any(|e| changed.contains(&e.id())) {
                became.push((chunks.len()..chunks.len() + 1, false));
                chunks.push(chunk.clone());
                continue;
            }
            let mut run = ChunkRun::default();
            let mut incoming = incoming.unwrap_or_default().into_iter().peekable();
            for row in 0..chunk.entries.len() {
                if changed.contains(&chunk.entries[row].id()) {
                    continue;
                }
                let parts = chunk.parts(row);
                while let Some(loose) =
                    incoming.next_if(|l| l.parts().name_order(&parts) == Ordering::Less)
                {
                    run.push(&loose)?;
                }
                run.open.push_from(chunk, row)?;
                if run.open.entries.len() >= 2 * CHUNK_USERS {
                    run.close();
                }
            }
            for loose in incoming {
                run.push(&loose)?;
            }
            let from = chunks.len();
            chunks.extend(run.finish());
            became.push((from..chunks.len(), true));
        }
        let mut filters = Vec::with_capacity(self.filters.len() + 1);
        let mut first = 0;
        for group in &self.filters {
            let olds = &became[first..first + group.chunks];
            first += group.chunks;
            let new_columns: Vec<(usize, &Chunk)> = olds
                .iter()
                .enumerate()
                .filter(|(_, (range, new))| *new && range.len() == 1)
                .map(|(column, (range, _))| (column, chunks[range.start].as_ref()))
                .collect();
            let redone = olds.iter().filter(|(_, new)| *new).count();
            if redone == 0 {
                filters.push(group.clone());
            } else if new_columns.len() == redone
                && new_columns.iter().all(|(_, c)| group.fits(c.distinct_keys))
            {
                // As many chunks as before: only the new ones' columns change.
                filters.push(Arc::new(group.with_columns(&new_columns)));
            } else {
                let (start, end) = (olds[0].0.start, olds[olds.len() - 1].0.end);
                filters.extend(grouped_filters(&chunks[start..end]));
            }
        }
        // Into an empty index.
        if let Some(incoming) = arriving.remove(&0) {
            let mut run = ChunkRun::default();
            for loose in incoming {
                run.push(&loose)?;
            }
            let from = chunks.len();
            chunks.extend(run.finish());
            filters.extend(grouped_filters(&chunks[from..]));
        }
        Some(Self::with_filters(chunks, filters))
    }
}

/// The filters of these chunks, in groups of at most [`GROUP_CHUNKS`] of about one size.
fn grouped_filters(chunks: &[Arc<Chunk>]) -> Vec<Arc<ChunkFilters>> {
    let groups = chunks.len().div_ceil(GROUP_CHUNKS);
    if groups == 0 {
        return Vec::new();
    }
    chunks
        .chunks(chunks.len().div_ceil(groups))
        .map(|group| Arc::new(ChunkFilters::of(group)))
        .collect()
}

/// A position in the list (a page's cursor), as the index compares it.
enum Bound {
    Name(Vec<u8>, u128),
    Email(Vec<u8>),
    Invited(i64, u128),
    Status(usize, Vec<u8>, u128),
}

fn status_rank(status: EnrollmentStatus) -> usize {
    EnrollmentStatus::ALL
        .iter()
        .position(|s| *s == status)
        .unwrap_or(usize::MAX)
}

impl Bound {
    /// None where the database would not bound the page either (see `cursor_condition`
    /// and `page_by_status`).
    fn of(cursor: &Cursor) -> Option<Self> {
        let id = uuid::Uuid::parse_str(&cursor.id).ok()?.as_u128();
        let value = cursor.value.as_bytes().to_vec();
        match cursor.sort {
            SortKey::Name => Some(Self::Name(value, id)),
            SortKey::Email => Some(Self::Email(value)),
            SortKey::Invited => {
                let at = chrono::DateTime::parse_from_rfc3339(&cursor.value).ok()?;
                Some(Self::Invited(at.timestamp_micros(), id))
            }
            SortKey::Status => {
                let (status, name) = cursor.value.split_once(super::list::STATUS_SEPARATOR)?;
                let status = EnrollmentStatus::from_slug(status)?;
                Some(Self::Status(
                    status_rank(status),
                    name.as_bytes().to_vec(),
                    id,
                ))
            }
        }
    }

    /// Whether `parts` comes strictly after this position, reading in `direction` (a
    /// status as it is at `now`, as the cursor's was when its page was read).
    fn is_passed_by(&self, parts: &Parts<'_>, direction: Direction, now: NaiveDateTime) -> bool {
        let order = match self {
            Self::Name(name, id) => parts.name_cmp(name).then(parts.entry.id().cmp(id)),
            Self::Email(email) => parts.email_cmp((email, b"")),
            Self::Invited(micros, id) => parts
                .entry
                .created_at
                .cmp(micros)
                .then(parts.entry.id().cmp(id)),
            Self::Status(rank, name, id) => status_rank(parts.entry.status(now))
                .cmp(rank)
                .then_with(|| parts.name_cmp(name))
                .then(parts.entry.id().cmp(id)),
        };
        match direction {
            Direction::Ascending => order == Ordering::Greater,
            Direction::Descending => order == Ordering::Less,
        }
    }
}

/// The order of a sort key, as the database's `order_by!` gives it.
fn sort_order(sort: SortKey, a: &Parts<'_>, b: &Parts<'_>, now: NaiveDateTime) -> Ordering {
    match sort {
        SortKey::Name => a.name_order(b),
        // Addresses are unique.
        SortKey::Email => a.email_order(b),
        SortKey::Invited => a
            .entry
            .created_at
            .cmp(&b.entry.created_at)
            .then(a.entry.id().cmp(&b.entry.id())),
        SortKey::Status => status_rank(a.entry.status(now))
            .cmp(&status_rank(b.entry.status(now)))
            .then_with(|| a.name_order(b)),
    }
}

/// A search's page, as its rows in reading order (one more than the page holds when
/// there are more), and its counts.
pub struct Found {
    pub rows: Vec<FoundRow>,
    /// By status within the search; None for everyone (the page shows the counts of all).
    pub counts: Option<StatusCounts>,
}

impl Snapshot {
    fn find(&self, query: &ListQuery, term: &str, now: NaiveDateTime) -> Found {
        let mut term = Term::new(term);
        self.rank_keys(&mut term);
        let wanted = usize::try_from(query.per_page + 1).unwrap_or(1);
        let (cursor, _, direction) = query.reading_order();
        let bound = cursor.and_then(Bound::of);
        let filter = Filter::of(query, now);
        let keep = |parts: &Parts<'_>| {
            filter.passes(parts.entry)
                && bound
                    .as_ref()
                    .is_none_or(|b| b.is_passed_by(parts, direction, now))
        };
        if term.finder.needle().is_empty() {
            // Everyone, in name order: the plain list.
            let page = self.walk_by_name(&term, direction, bound.as_ref(), wanted, &filter);
            return Found {
                rows: self.found_rows(page),
                counts: None,
            };
        }
        let cap = usize::try_from(COUNT_CAP).unwrap_or(usize::MAX);
        // The first matches decide the counts; the page reads on from them rather than
        // searching the same chunks again.
        let surely_capped = self.surely_more_than(&term, cap);
        let (first, resume) = if surely_capped {
            (Vec::new(), 0)
        } else {
            self.first_matches(&term, cap)
        };
        let capped = surely_capped || first.len() > cap;
        let counts = if capped {
            StatusCounts::capped()
        } else {
            StatusCounts::tally(first.iter().map(|&at| {
                let entry = self.entry(at);
                (entry.status(now), entry.expires_soon(now))
            }))
        };
        let later = self.matches_from(resume, &term, &filter);
        let page = if capped && query.sort == SortKey::Name {
            if direction == Direction::Ascending && bound.is_none() {
                // The first page in name order: the matches read so far, then on.
                first
                    .into_iter()
                    .chain(later)
                    .filter(|&at| filter.passes(self.entry(at)))
                    .take(wanted)
                    .collect()
            } else {
                self.walk_by_name(&term, direction, bound.as_ref(), wanted, &filter)
            }
        } else if capped && query.sort == SortKey::Status {
            self.walk_by_status(&term, direction, bound.as_ref(), wanted, &filter)
        } else if query.sort == SortKey::Name {
            // Every match was read, in name order.
            let kept = |&at: &At| keep(&self.parts(at));
            match direction {
                Direction::Ascending => first.into_iter().filter(kept).take(wanted).collect(),
                Direction::Descending => {
                    first.into_iter().rev().filter(kept).take(wanted).collect()
                }
            }
        } else {
            let in_order = |a: &Parts<'_>, b: &Parts<'_>| {
                let order = sort_order(query.sort, a, b, now);
                match direction {
                    Direction::Ascending => order,
                    Direction::Descending => order.reverse(),
                }
            };
            // Cut back to the page's rows, unsorted (linear), whenever the buffer fills,
            // then only they are sorted: a broad search in another order has tens of
            // thousands of matches, which the searches running at once would otherwise
            // each gather whole (megabytes of them at a million users). A match's parts
            // are read once and kept with it (read again at every comparison, they were
            // most of such a search's time), and once the buffer was cut, a match that
            // does not come before the page's last row so far is passed over (the orders
            // are total: no two users tie).
            let cut_back = |candidates: &mut Vec<(At, Parts<'_>)>| {
                if let Some(last) = wanted.checked_sub(1)
                    && candidates.len() > wanted
                {
                    candidates.select_nth_unstable_by(last, |a, b| in_order(&a.1, &b.1));
                }
                candidates.truncate(wanted);
            };
            let buffer = (4 * wanted).max(256);
            let mut candidates = Vec::with_capacity(buffer);
            let mut page_ends_by: Option<Parts<'_>> = None;
            // Every match: those read so far, then the rest (none when not capped).
            for at in first.into_iter().chain(later) {
                let parts = self.parts(at);
                if !keep(&parts)
                    || page_ends_by.is_some_and(|last| in_order(&parts, &last) != Ordering::Less)
                {
                    continue;
                }
                candidates.push((at, parts));
                if candidates.len() == buffer {
                    cut_back(&mut candidates);
                    page_ends_by = candidates.last().map(|&(_, parts)| parts);
                }
            }
            cut_back(&mut candidates);
            candidates.sort_by(|a, b| in_order(&a.1, &b.1));
            candidates.into_iter().map(|(at, _)| at).collect()
        };
        Found {
            rows: self.found_rows(page),
            counts: Some(counts),
        }
    }

    /// The page's rows, made from the index where it holds all of them.
    fn found_rows(&self, page: Vec<At>) -> Vec<FoundRow> {
        page.into_iter()
            .map(|(chunk, row)| {
                let chunk = &self.chunks[chunk];
                chunk.row(row).map_or_else(
                    || {
                        let id = uuid::Uuid::from_u128(chunk.entries[row].id());
                        FoundRow::ToRead(id.hyphenated().to_string())
                    },
                    |made| FoundRow::Made(Box::new(made)),
                )
            })
            .collect()
    }
}

/// One row of the log as read, with what the reader needs to know about the log and the
/// transactions of the moment (every row carries the same; with no change, one row
/// carries only that).
#[derive(QueryableByName)]
struct LogRead {
    #[diesel(sql_type = Nullable<BigInt>)]
    seq: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    user_id: Option<String>,
    /// The newest number in the log.
    #[diesel(sql_type = Nullable<BigInt>)]
    newest: Option<i64>,
    /// PostgreSQL: every transaction older than this has ended (the snapshot's xmin).
    #[diesel(sql_type = Nullable<BigInt>)]
    ended_below: Option<i64>,
    /// PostgreSQL: no transaction running now is this new (the snapshot's xmax).
    #[diesel(sql_type = Nullable<BigInt>)]
    next_transaction: Option<i64>,
}

/// How far the index has read the log of changed users.
///
/// On SQLite numbers are committed in order, one writer at a time. On PostgreSQL a
/// number is taken when a change is made and seen when it is committed, so a lower one
/// can appear after a higher one: a missing number is waited for until every
/// transaction that was running when it was first missed has ended (it was then rolled
/// back, or never taken by a change).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct ChangeLog {
    /// Every change numbered up to here is in the index, or never will be committed.
    read_to: i64,
    /// Changes above `read_to` already in the index (read past a missing number).
    read_above: BTreeSet<i64>,
    /// The lowest missing number, and the transaction from which on none that was
    /// running when it was missed can be.
    missing: Option<(i64, i64)>,
}

/// What a look at the log found.
enum LogLook {
    /// These users changed since the last look (their ids).
    Changed(Vec<String>),
    /// The log no longer holds every change since the last look: read everyone again.
    TooFarBehind,
}

impl ChangeLog {
    fn read(conn: &mut DbConnection, after: i64) -> QueryResult<Vec<LogRead>> {
        let (transactions, after_it, at_most) = match engine_of(conn) {
            Engine::Postgres => (
                "pg_snapshot_xmin(pg_current_snapshot())::text::bigint, \
                 pg_snapshot_xmax(pg_current_snapshot())::text::bigint",
                "$1",
                "$2",
            ),
            Engine::Sqlite => ("NULL, NULL", "?", "?"),
        };
        let (ended_below, next_transaction) = transactions.split_once(", ").unwrap_or_default();
        diesel::sql_query(format!(
            "SELECT changes.seq AS seq, changes.user_id AS user_id, \
             (SELECT max(seq) FROM user_changes) AS newest, \
             {ended_below} AS ended_below, {next_transaction} AS next_transaction \
             FROM (SELECT 1 AS one) AS one LEFT JOIN \
             (SELECT seq, user_id FROM user_changes WHERE seq > {after_it} \
              ORDER BY seq LIMIT {at_most}) AS changes ON 1 = 1 \
             ORDER BY changes.seq"
        ))
        .bind::<BigInt, _>(after)
        .bind::<BigInt, _>(CHANGES_PER_READ)
        .load(conn)
    }

    /// The position of a log read in the same snapshot as every user: numbers well
    /// before the newest are in that snapshot; recent missing ones are waited for.
    fn for_build(conn: &mut DbConnection) -> QueryResult<Option<Self>> {
        let mut log = Self::default();
        let newest = Self::read(conn, i64::MAX)?
            .first()
            .and_then(|row| row.newest)
            .unwrap_or(0);
        log.read_to = (newest - BUILD_LOOKBACK).max(0);
        Ok(match log.look(conn)? {
            LogLook::Changed(_) => Some(log),
            LogLook::TooFarBehind => None,
        })
    }

    /// Reads the changes since the last look, and moves past those it may.
    fn look(&mut self, conn: &mut DbConnection) -> QueryResult<LogLook> {
        let mut changed = Vec::new();
        loop {
            let rows = Self::read(conn, self.read_to)?;
            let Some(first) = rows.first() else {
                return Ok(LogLook::Changed(changed));
            };
            let newest = first.newest.unwrap_or(0);
            if newest - self.read_to > CHANGES_SURELY_KEPT {
                return Ok(LogLook::TooFarBehind);
            }
            let (ended_below, next_transaction) = (first.ended_below, first.next_transaction);
            let full = i64::try_from(rows.len()).unwrap_or(0) >= CHANGES_PER_READ;
            let mut highest = self.read_to;
            for row in rows {
                let (Some(seq), Some(user_id)) = (row.seq, row.user_id) else {
                    continue;
                };
                highest = highest.max(seq);
                if self.read_above.insert(seq) {
                    changed.push(user_id);
                }
            }
            let before = self.read_to;
            self.move_past(highest, ended_below, next_transaction);
            if !full || self.read_to == before {
                return Ok(LogLook::Changed(changed));
            }
        }
    }

    /// Moves `read_to` over the numbers read, and over missing ones that can no longer
    /// be committed (on SQLite, none is ever missing but in a trimmed log, which `look`
    /// caught already).
    fn move_past(&mut self, highest: i64, ended_below: Option<i64>, next_transaction: Option<i64>) {
        while self.read_to < highest {
            let next = self.read_to + 1;
            if self.read_above.remove(&next) {
                self.read_to = next;
                continue;
            }
            match (ended_below, next_transaction, self.missing) {
                (Some(ended_below), _, Some((seq, waiting_for)))
                    if seq == next && ended_below >= waiting_for =>
                {
                    self.missing = None;
                    self.read_to = next;
                }
                (Some(_), _, Some((seq, _))) if seq == next => break,
                (Some(_), Some(next_transaction), _) => {
                    self.missing = Some((next, next_transaction));
                    break;
                }
                _ => self.read_to = next,
            }
        }
        if self.missing.is_some_and(|(seq, _)| seq <= self.read_to) {
            self.missing = None;
        }
    }
}

/// The index of one instance.
pub struct SearchIndex {
    state: Mutex<State>,
    building: AtomicU8,
    built: tokio::sync::Notify,
    /// Changes made elsewhere show within this (the page cache's freshness window).
    fresh_for: Duration,
    /// PostgreSQL: the notifications of changed users heard so far, counted, and what
    /// hears them; while it listens, no look at the log is due until the count moves.
    heard: Arc<AtomicU64>,
    presence: OnceLock<Arc<Presence>>,
}

const NOT_BUILT: u8 = 0;
const BUILDING: u8 = 1;
const BUILT: u8 = 2;
/// Users it cannot hold (see [`build`]): the database answers every search.
const UNINDEXABLE: u8 = 3;

#[derive(Default)]
struct State {
    snapshot: Option<Arc<Snapshot>>,
    log: ChangeLog,
    looked: Option<Looked>,
}

/// What was known at the last look at the log.
#[derive(Clone, Copy)]
struct Looked {
    /// This instance's generation of changes.
    generation: u64,
    /// Notifications heard before the look began; None when not listening then.
    heard: Option<u64>,
    at: Instant,
}

impl SearchIndex {
    pub fn new(fresh_for: Duration) -> Self {
        Self {
            state: Mutex::default(),
            building: AtomicU8::new(NOT_BUILT),
            built: tokio::sync::Notify::new(),
            fresh_for,
            heard: Arc::default(),
            presence: OnceLock::new(),
        }
    }

    /// Hears the changes other instances, the outbox or the command line make, where
    /// the database tells (PostgreSQL).
    pub fn listen_with(&self, presence: &Arc<Presence>) {
        if !presence.hears_other_writers() {
            return;
        }
        let heard = self.heard.clone();
        presence.on_users(move || {
            heard.fetch_add(1, AtomicOrdering::SeqCst);
        });
        let _ = self.presence.set(presence.clone());
    }

    /// The notifications heard so far, when every change made elsewhere is heard now.
    fn heard_while_listening(&self) -> Option<u64> {
        // Handles the notifications that already arrived first.
        let listening = self.presence.get().is_some_and(|p| p.is_listening());
        listening.then(|| self.heard.load(AtomicOrdering::SeqCst))
    }

    /// Whether the last look still holds: nothing changed here since, and nothing was
    /// heard from elsewhere (when not listening: the freshness window has not passed).
    fn is_fresh(&self, looked: Option<Looked>, generation: u64, heard: Option<u64>) -> bool {
        looked.is_some_and(|looked| {
            looked.generation == generation
                && match heard {
                    Some(heard) => looked.heard == Some(heard),
                    None => looked.at.elapsed() < self.fresh_for,
                }
        })
    }

    /// The page and counts of a search when the index can give them without the
    /// database (no look at the log is due); None otherwise.
    pub fn find_in_memory(
        &self,
        query: &ListQuery,
        term: &str,
        now: NaiveDateTime,
        generation: u64,
    ) -> Option<Found> {
        let heard = self.heard_while_listening();
        let snapshot = {
            let state = self.state.lock().ok()?;
            if !self.is_fresh(state.looked, generation, heard) {
                return None;
            }
            state.snapshot.clone()?
        };
        Some(snapshot.find(query, term, now))
    }

    /// What the index looks for in this view, when it can answer it: a substring of
    /// names and addresses, or "" for everyone in name order (the plain list, filtered
    /// or not). The database answers tag searches, and everyone in another order (its
    /// indexes walk those in order; its counts of everyone are cached).
    pub fn term_of(query: &ListQuery) -> Option<String> {
        if query.search.trim().is_empty() {
            return (query.sort == SortKey::Name).then(String::new);
        }
        if super::tags::Tag::from_search(&query.search).is_some() {
            return None;
        }
        super::list::search_term(&query.search)
    }

    /// Whether the index is built; if not, starts building it and waits a moment.
    pub async fn wait_until_built(self: &Arc<Self>, db: &crate::db::Db) -> bool {
        let built = self.built.notified();
        tokio::pin!(built);
        built.as_mut().enable();
        match self.building.compare_exchange(
            NOT_BUILT,
            BUILDING,
            AtomicOrdering::SeqCst,
            AtomicOrdering::SeqCst,
        ) {
            Ok(_) => {
                let index = self.clone();
                let db = db.clone();
                tokio::spawn(async move {
                    let started = Instant::now();
                    // Not under the write deadline: a million users take longer than
                    // any one statement may (each of its statements is short).
                    let outcome = tokio::task::spawn_blocking(move || {
                        let mut conn = db.get().map_err(|e| e.to_string())?;
                        build(&mut conn).map_err(|e| e.to_string())
                    })
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|built| built);
                    let state = match outcome {
                        Ok(Some((snapshot, log))) => {
                            let users: usize =
                                snapshot.chunks.iter().map(|c| c.entries.len()).sum();
                            tracing::info!(users, elapsed = ?started.elapsed(), "search index built");
                            if let Ok(mut state) = index.state.lock() {
                                *state = State {
                                    snapshot: Some(Arc::new(snapshot)),
                                    log,
                                    looked: None,
                                };
                            }
                            BUILT
                        }
                        Ok(None) => {
                            tracing::warn!(
                                "users the search index cannot hold (ids not UUIDs, or not in \
                                 byte order): the database answers searches"
                            );
                            UNINDEXABLE
                        }
                        Err(error) => {
                            tracing::warn!(%error, "could not build the search index; the database answers searches meanwhile");
                            NOT_BUILT
                        }
                    };
                    index.building.store(state, AtomicOrdering::SeqCst);
                    index.built.notify_waiters();
                });
            }
            Err(BUILT) => return true,
            Err(_) => {}
        }
        let _ = tokio::time::timeout(FIRST_BUILD_WAIT, built).await;
        self.building.load(AtomicOrdering::SeqCst) == BUILT
    }

    /// The page and counts of a search, from the index brought up to date with the log;
    /// None when the index is not built (the database answers).
    pub fn find(
        &self,
        conn: &mut DbConnection,
        query: &ListQuery,
        term: &str,
        now: NaiveDateTime,
        generation: u64,
    ) -> QueryResult<Option<Found>> {
        let heard = self.heard_while_listening();
        let snapshot = {
            let Ok(mut state) = self.state.lock() else {
                return Ok(None);
            };
            let Some(snapshot) = state.snapshot.clone() else {
                return Ok(None);
            };
            if self.is_fresh(state.looked, generation, heard) {
                snapshot
            } else {
                let mut log = state.log.clone();
                match log.look(conn)? {
                    LogLook::TooFarBehind => {
                        *state = State::default();
                        self.building.store(NOT_BUILT, AtomicOrdering::SeqCst);
                        return Ok(None);
                    }
                    LogLook::Changed(ids) if ids.is_empty() => {}
                    LogLook::Changed(ids) => {
                        let Some(updated) = reload(conn, ids)?
                            .and_then(|(changed, fresh)| snapshot.with_changes(&changed, fresh))
                        else {
                            return Ok(None);
                        };
                        state.snapshot = Some(Arc::new(updated));
                    }
                }
                state.log = log;
                state.looked = Some(Looked {
                    generation,
                    heard,
                    at: Instant::now(),
                });
                state.snapshot.clone().unwrap_or(snapshot)
            }
        };
        Ok(Some(snapshot.find(query, term, now)))
    }
}

/// The current state of these users (those still listed), read again; None when one of
/// them cannot be indexed (see [`Loose::of`]): the database answers instead.
fn reload(
    conn: &mut DbConnection,
    ids: Vec<String>,
) -> QueryResult<Option<(HashSet<u128>, Vec<Loose>)>> {
    let changed = ids
        .iter()
        .filter_map(|id| uuid::Uuid::parse_str(id).ok())
        .map(|id| id.as_u128())
        .collect();
    let mut fresh = Vec::new();
    let distinct: BTreeSet<String> = ids.into_iter().collect();
    let distinct: Vec<String> = distinct.into_iter().collect();
    for batch in distinct.chunks(500) {
        let users: Vec<UserFacts> = users_with_live_invitation()
            .select(UserFacts::as_select())
            .filter(users::id.eq_any(batch))
            .load(conn)?;
        for user in users {
            let Some(loose) = Loose::of(user) else {
                return Ok(None);
            };
            fresh.push(loose);
        }
    }
    Ok(Some((changed, fresh)))
}

/// How many of the latest changes a build looks through for numbers still missing
/// (transactions running while it reads).
const BUILD_LOOKBACK: i64 = 50_000;
/// Users read per statement while building.
const BUILD_BATCH: i64 = 2_000;

/// Every user and the log's position, read in one snapshot of the database. None when
/// the users cannot be indexed (an id that is not a UUID's canonical text; an order
/// that is not byte order).
fn build(conn: &mut DbConnection) -> QueryResult<Option<(Snapshot, ChangeLog)>> {
    conn.transaction(|conn| {
        if engine_of(conn) == Engine::Postgres {
            diesel::sql_query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(conn)?;
        }
        let Some(log) = ChangeLog::for_build(conn)? else {
            return Ok(None);
        };
        let mut run = ChunkRun::default();
        let mut last: Option<Loose> = None;
        let mut after: Option<(String, String)> = None;
        loop {
            // The batch's users in name order from `users` alone (its name index), then
            // their rows by id: joined in one ordered query, an unanalysed SQLite sorted
            // every user for each batch.
            let mut keys = users::table
                .select((users::name_key, users::id))
                .order((users::name_key, users::id))
                .limit(BUILD_BATCH)
                .into_boxed();
            if let Some((name_key, id)) = after.take() {
                keys = keys.filter(
                    users::name_key
                        .ge(name_key.clone())
                        .and(users::name_key.gt(name_key).or(users::id.gt(id))),
                );
            }
            let keys: Vec<(String, String)> = keys.load(conn)?;
            let complete = i64::try_from(keys.len()).unwrap_or(0) < BUILD_BATCH;
            let position: HashMap<&str, usize> = keys
                .iter()
                .enumerate()
                .map(|(n, (_, id))| (id.as_str(), n))
                .collect();
            let mut users: Vec<UserFacts> = users_with_live_invitation()
                .select(UserFacts::as_select())
                .filter(users::id.eq_any(keys.iter().map(|(_, id)| id)))
                .load(conn)?;
            users.sort_by_key(|user| position.get(user.id.as_str()).copied());
            for user in users {
                let Some(loose) = Loose::of(user) else {
                    return Ok(None);
                };
                if let Some(before) = &last
                    && before.parts().name_order(&loose.parts()) != Ordering::Less
                {
                    return Ok(None);
                }
                if run.push(&loose).is_none() {
                    return Ok(None);
                }
                last = Some(loose);
            }
            after = keys.last().cloned();
            if complete {
                break;
            }
        }
        Ok(Some((Snapshot::of(run.finish()), log)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(n: usize, first: &str, last: &str) -> Loose {
        Loose::of(facts(n, first, last)).expect("a canonical id")
    }

    fn facts(n: usize, first: &str, last: &str) -> UserFacts {
        let day = chrono::NaiveDate::from_ymd_opt(2026, 12, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .expect("a date");
        UserFacts {
            id: uuid::Uuid::from_u128(n as u128).hyphenated().to_string(),
            first_name: first.to_owned(),
            last_name: last.to_owned(),
            email: format!("{first}.{last}.{n}@example.com"),
            created_at: day,
            flags: StatusFlags {
                sent: true,
                ..StatusFlags::default()
            },
            expires_at: day,
            provisioned_by: None,
            delivery_error: None,
        }
    }

    fn names(snapshot: &Snapshot) -> Vec<String> {
        snapshot
            .chunks
            .iter()
            .flat_map(|chunk| {
                (0..chunk.entries.len()).map(|row| {
                    let parts = chunk.parts(row);
                    String::from_utf8_lossy(&[parts.last, b" ", parts.first].concat()).into_owned()
                })
            })
            .collect()
    }

    #[test]
    fn changes_keep_the_name_order_and_the_chunks_bounded() {
        let mut snapshot = Snapshot::default();
        let everyone: Vec<Loose> = (0..3000)
            .map(|n| user(n, &format!("f{:04}", (n * 7919) % 3000), "same"))
            .collect();
        let ids: HashSet<u128> = everyone.iter().map(|l| l.entry.id()).collect();
        snapshot = snapshot.with_changes(&ids, everyone).expect("indexed");
        let mut expected: Vec<String> = (0..3000).map(|n| format!("same f{n:04}")).collect();
        assert_eq!(names(&snapshot), expected);

        // Renamed (to the front), removed, added.
        let renamed = user(5, "a", "aardvark");
        let added = user(9000, "f1500x", "same");
        let changed: HashSet<u128> = [5, 6, 9000].into_iter().collect();
        let old_5 = format!("same f{:04}", (5 * 7919) % 3000);
        let old_6 = format!("same f{:04}", (6 * 7919) % 3000);
        snapshot = snapshot
            .with_changes(&changed, vec![renamed, added])
            .expect("indexed");
        expected.retain(|name| *name != old_5 && *name != old_6);
        expected.push("aardvark a".to_owned());
        expected.push("same f1500x".to_owned());
        expected.sort();
        assert_eq!(names(&snapshot), expected);
        assert_filters_hold_every_key(&snapshot);
        assert!(
            snapshot
                .chunks
                .iter()
                .all(|c| !c.entries.is_empty() && c.entries.len() < 2 * CHUNK_USERS)
        );
    }

    /// A user's text with the domain held apart put back.
    fn whole_text(chunk: &Chunk, row: usize) -> Vec<u8> {
        let parts = chunk.parts(row);
        [
            parts.first,
            b" ",
            parts.last,
            b" ",
            parts.email,
            parts.domain,
        ]
        .concat()
    }

    /// The rows whose whole text holds the needle, read one by one.
    fn rows_holding(chunk: &Chunk, needle: &[u8]) -> Vec<usize> {
        (0..chunk.entries.len())
            .filter(|&row| {
                whole_text(chunk, row)
                    .windows(needle.len())
                    .any(|window| window == needle)
            })
            .collect()
    }

    /// Every chunk has a column in one group of filters, in order, and its filters hold
    /// every key of its users' texts.
    fn assert_filters_hold_every_key(snapshot: &Snapshot) {
        assert_eq!(
            snapshot.filters.iter().map(|f| f.chunks).sum::<usize>(),
            snapshot.chunks.len()
        );
        assert!(snapshot.filters.iter().all(|f| f.chunks <= GROUP_CHUNKS));
        for (c, chunk) in snapshot.chunks.iter().enumerate() {
            let (group, column) = snapshot.placed[c];
            let filters = &snapshot.filters[group as usize];
            assert!(
                (0..chunk.entries.len())
                    .flat_map(|row| chunk_keys(&whole_text(chunk, row)).collect::<Vec<u32>>())
                    .all(|key| filters.holding_key(key) >> column & 1 == 1),
                "chunk {c}"
            );
            for row in 0..chunk.entries.len() {
                let segment = row / SEGMENT_USERS;
                assert!(
                    digit_keys(&whole_text(chunk, row))
                        .all(|t| filters.digits[t].0[segment] >> column & 1 == 1),
                    "chunk {c}, row {row}"
                );
            }
        }
    }

    #[test]
    fn an_address_is_searched_whole_with_its_domain_held_once() {
        // Domains shared, one with a capital as typed, one with digits, and more than a
        // chunk holds apart.
        let domains = [
            "example.com",
            "Example.COM",
            "mail2go.net",
            "a.io",
            "b.io",
            "c.io",
            "d.io",
            "e.io",
            "f.io",
            "g.io",
        ];
        let everyone: Vec<Loose> = (0..300)
            .map(|n| {
                let mut facts = facts(n, &format!("ada{}", n % 7), &format!("l{n:03}"));
                facts.email = format!("ada{n}@{}", domains[n % domains.len()]);
                Loose::of(facts).expect("a canonical id")
            })
            .collect();
        let snapshot = Snapshot::default()
            .with_changes(&HashSet::new(), everyone)
            .expect("indexed");
        let chunk = &snapshot.chunks[0];
        assert_eq!(chunk.domains.len(), MOST_DOMAINS);
        assert!(
            chunk
                .domains
                .iter()
                .all(|domain| &domain[..] != b"example.com@")
        );
        assert_filters_hold_every_key(&snapshot);
        let mut needles: BTreeSet<String> = [
            "@",
            "0@e",
            "@example.com",
            "e.c",
            "com",
            "2go",
            "ple.com",
            "a0@exa",
            "io",
            "@g.io",
            "l007 ada",
            "3@mail2go.n",
            "ada5@",
            "@@",
            "g.io@",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect();
        // And every piece of some users' texts.
        for row in [0, 1, 2, 9, 17] {
            let text = String::from_utf8(whole_text(chunk, row)).expect("text");
            for len in 1..=8 {
                needles.extend(
                    text.as_bytes()
                        .windows(len)
                        .filter_map(|w| std::str::from_utf8(w).ok().map(str::to_owned)),
                );
            }
        }
        for needle in &needles {
            let expected = rows_holding(chunk, needle.as_bytes());
            assert_eq!(
                chunk.matching_rows(&Term::new(needle)),
                expected,
                "{needle}"
            );
        }
        // The rows give the addresses back as typed, and sort by them.
        for row in 0..chunk.entries.len() {
            let made = chunk.row(row).expect("shown from the index");
            let n = usize::try_from(chunk.entries[row].id()).expect("small");
            assert_eq!(made.email, format!("ada{n}@{}", domains[n % domains.len()]));
        }
        let query = ListQuery {
            sort: SortKey::Email,
            ..ListQuery::default()
        };
        let found = snapshot.find(&query, "ada", november_30());
        let emails = made(&found, |row| &row.email_key);
        let mut every: Vec<String> = (0..300)
            .map(|n| format!("ada{n}@{}", domains[n % domains.len()]).to_lowercase())
            .collect();
        every.sort();
        assert!(emails.len() > 1);
        assert_eq!(emails, every[..emails.len()]);
    }

    #[test]
    fn the_filters_of_a_group_of_chunks_follow_its_changes() {
        // 70 chunks of one last name each: two groups.
        let everyone: Vec<Loose> = (0..70 * CHUNK_USERS)
            .map(|n| {
                user(
                    n,
                    &format!("f{:03}", n % CHUNK_USERS),
                    &format!("l{:02}", n / CHUNK_USERS),
                )
            })
            .collect();
        let mut snapshot = Snapshot::default()
            .with_changes(&HashSet::new(), everyone)
            .expect("indexed");
        assert_eq!((snapshot.chunks.len(), snapshot.filters.len()), (70, 2));
        assert_filters_hold_every_key(&snapshot);
        let kept = snapshot.filters[1].clone();

        // A user of chunk 3 renamed (in place: its column changes), the other group
        // untouched and shared.
        let renamed = user(3 * CHUNK_USERS, "zebedee", "l03");
        let changed: HashSet<u128> = [3 * CHUNK_USERS as u128].into_iter().collect();
        snapshot = snapshot
            .with_changes(&changed, vec![renamed])
            .expect("indexed");
        assert_filters_hold_every_key(&snapshot);
        assert!(Arc::ptr_eq(&snapshot.filters[1], &kept));
        let found = snapshot.find(&ListQuery::default(), "zebedee", november_30());
        assert_eq!(found.rows.len(), 1);

        // Chunk 5 grown past twice its size (split), chunk 9 emptied: the first group's
        // chunks are grouped again.
        let grown: Vec<Loose> = (0..2 * CHUNK_USERS)
            .map(|n| user(100_000 + n, &format!("g{n:04}"), "l05"))
            .collect();
        let emptied: HashSet<u128> = (9 * CHUNK_USERS..10 * CHUNK_USERS)
            .map(|n| n as u128)
            .collect();
        snapshot = snapshot.with_changes(&emptied, grown).expect("indexed");
        assert!(snapshot.chunks.len() > 70);
        assert_filters_hold_every_key(&snapshot);
        assert!(Arc::ptr_eq(snapshot.filters.last().expect("groups"), &kept));
        let found = snapshot.find(&ListQuery::default(), "g1023", november_30());
        assert_eq!(found.rows.len(), 1);
        let found = snapshot.find(&ListQuery::default(), "l09", november_30());
        assert!(found.rows.is_empty());
    }

    #[test]
    fn an_entry_gives_back_what_it_was_made_of() {
        let id = u128::MAX - 12_345;
        let facts = StatusFacts {
            flags: StatusFlags {
                enrolled: true,
                sent: true,
                ..StatusFlags::default()
            },
            expires_at: -7,
        };
        let entry =
            Entry::new(id, 42, facts, (2047, 1), true, (false, true)).expect("names that fit");
        assert_eq!(entry.id(), id);
        assert_eq!((entry.first_len(), entry.last_len()), (2047, 1));
        assert!(!entry.has(Flag::FirstNameCapital) && entry.has(Flag::LastNameCapital));
        let back = entry.facts();
        assert_eq!(
            (
                back.flags.deactivated,
                back.flags.enrolled,
                back.expires_at,
                back.flags.sent,
                back.flags.delivery_failed
            ),
            (false, true, -7, true, false)
        );
        assert!(entry.has(Flag::ShownFromIndex));
        assert!(
            !Entry::new(id, 42, facts, (1, 0), false, (true, true))
                .is_some_and(|e| e.has(Flag::ShownFromIndex) || e.first_len() != 1)
        );
        // A name too long to hold: the user is not indexed (the database answers).
        assert!(Entry::new(id, 42, facts, (2048, 1), true, (true, true)).is_none());
        assert!(Entry::new(id, 42, facts, (1, 2048), true, (true, true)).is_none());
    }

    #[test]
    fn a_chunks_filter_holds_every_trigram_of_its_text_and_few_others() {
        let snapshot = Snapshot::default()
            .with_changes(
                &HashSet::new(),
                (0..CHUNK_USERS)
                    .map(|n| user(n * 7919, &format!("first{n}"), &format!("last{}", n % 37)))
                    .collect(),
            )
            .expect("indexed");
        let chunk = &snapshot.chunks[0];
        let filters = &snapshot.filters[0];
        let may_hold = |key: u32| filters.holding_key(key) & 1 == 1;
        let held: HashSet<u32> = chunk_keys(&chunk.text).collect();
        assert!(held.iter().all(|&key| may_hold(key)));
        // Trigrams of no text here (capitals are never indexed: the text is lowercased).
        let absent: Vec<u32> = (0..20_000u32)
            .map(|n| trigram_hash(&[b'A' + (n % 26) as u8, b'A' + (n / 26 % 26) as u8, n as u8]))
            .filter(|key| !held.contains(key))
            .collect();
        let passed = absent.iter().filter(|&&key| may_hold(key)).count();
        let rate = passed as f64 / absent.len() as f64;
        assert!(
            rate < 0.08,
            "{passed} of {} absent trigrams passed",
            absent.len()
        );
    }

    #[test]
    fn a_number_is_found_in_every_segment_that_holds_it_and_searched_in_few() {
        // Two chunks, the second's last segment part full; numbers of every length.
        let everyone: Vec<Loose> = (0..CHUNK_USERS + 3 * SEGMENT_USERS + 5)
            .map(|n| user(n * 7919 % 100_003, "ada", &format!("l{n:04}")))
            .collect();
        let snapshot = Snapshot::default()
            .with_changes(&HashSet::new(), everyone)
            .expect("indexed");
        assert_eq!(snapshot.chunks.len(), 2);
        let mut searched_segments = 0;
        for number in (0..1000).map(|n| format!("{n:03}")).chain([
            "4821".into(),
            "0007".into(),
            "7919".into(),
        ]) {
            let term = Term::new(&number);
            let to_search: HashMap<usize, Segments> =
                snapshot.may_hold(&term, 0..snapshot.chunks.len()).collect();
            let mut segments_holding = 0;
            for (c, chunk) in snapshot.chunks.iter().enumerate() {
                let holding = rows_holding(chunk, number.as_bytes());
                assert_eq!(chunk.matching_rows(&term), holding, "{number}");
                let segments: BTreeSet<usize> =
                    holding.iter().map(|row| row / SEGMENT_USERS).collect();
                // Every segment holding it is searched, and only those.
                let searched = to_search.get(&c).copied().unwrap_or(0);
                assert!(segments.iter().all(|s| searched >> s & 1 == 1), "{number}");
                let mut rows = Vec::new();
                chunk.matching_rows_into(&term, searched, &mut rows);
                assert_eq!(rows, holding, "{number}");
                searched_segments += searched.count_ones() as usize;
                segments_holding += segments.len();
            }
            // A number of three digits is surely in more users than the segments that
            // hold it, less one; nothing else is told without reading the text.
            if number.len() == 3 && segments_holding > 0 {
                assert!(snapshot.surely_more_than(&term, segments_holding - 1));
            }
            assert!(!snapshot.surely_more_than(&term, segments_holding));
        }
        // Each segment holds about 300 of the thousand trigrams of three digits, and is
        // searched only for those.
        let segments = snapshot
            .chunks
            .iter()
            .map(|c| c.entries.len().div_ceil(SEGMENT_USERS))
            .sum::<usize>();
        let share = searched_segments as f64 / (1003 * segments) as f64;
        assert!(share < 0.5, "{share:.2} of the segments searched");
    }

    #[test]
    fn a_match_lies_within_one_users_text() {
        let snapshot = Snapshot::default()
            .with_changes(
                &HashSet::new(),
                vec![user(1, "ada", "lovelace"), user(2, "bob", "smith")],
            )
            .expect("indexed");
        let chunk = &snapshot.chunks[0];
        assert!(
            chunk
                .matching_rows(&Term::new("example.com\nbob"))
                .is_empty()
        );
        assert_eq!(chunk.matching_rows(&Term::new("bob")), [1]);
        assert_eq!(chunk.matching_rows(&Term::new("ada lovelace")), [0]);
        assert_eq!(chunk.matching_rows(&Term::new("example.com")), [0, 1]);
        // A line break would be taken for the end of a user's text: such a user is not
        // indexed (the database answers), never given another user's row.
        assert!(Loose::of(facts(3, "cy\nbob", "smith")).is_none());
        // Not a trigram of any text: the chunk is not scanned at all.
        assert!(chunk.matching_rows(&Term::new("xyz")).is_empty());

        // Runs of digits are found whatever part of them is searched for.
        let numbered = Snapshot::default()
            .with_changes(&HashSet::new(), vec![user(9_876_543, "cy", "numbers")])
            .expect("indexed");
        let chunk = &numbered.chunks[0];
        for part in ["876", "8765", "98765", "876543", "s.9876543@"] {
            assert_eq!(chunk.matching_rows(&Term::new(part)), [0], "{part}");
        }
        assert!(chunk.matching_rows(&Term::new("1234")).is_empty());
    }

    #[test]
    fn everyone_is_listed_in_name_order_a_page_at_a_time_without_counts() {
        let everyone: Vec<Loose> = (0..1500)
            .map(|n| user(n, &format!("f{n:04}"), "same"))
            .collect();
        let snapshot = Snapshot::default()
            .with_changes(&HashSet::new(), everyone)
            .expect("indexed");
        let query = ListQuery {
            search: String::new(),
            status: None,
            expiring_soon: false,
            sort: SortKey::Name,
            direction: Direction::Descending,
            from: super::super::list::PageFrom::Start,
            per_page: 50,
        };
        let now = chrono::NaiveDate::from_ymd_opt(2026, 11, 30)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .expect("a date");
        let found = snapshot.find(&query, "", now);
        assert!(
            found.counts.is_none(),
            "the page shows the counts of everyone"
        );
        let firsts: Vec<String> = made(&found, |row| &row.first_name);
        let expected: Vec<String> = (1449..1500).rev().map(|n| format!("f{n:04}")).collect();
        assert_eq!(firsts, expected, "the page and one more, from the end");
    }

    #[test]
    fn a_broad_search_in_another_order_keeps_only_its_page_and_finds_the_first_rows() {
        // Ids (the order of "invited" on one day) run against the name order, and every
        // user matches: the page is cut back to its rows many times over.
        let everyone: Vec<Loose> = (0..5000)
            .map(|n| user(n, &format!("f{:04}", 4999 - n), "same"))
            .collect();
        let snapshot = Snapshot::default()
            .with_changes(&HashSet::new(), everyone)
            .expect("indexed");
        let query = ListQuery {
            search: "example".to_owned(),
            status: None,
            expiring_soon: false,
            sort: SortKey::Invited,
            direction: Direction::Ascending,
            from: super::super::list::PageFrom::Start,
            per_page: 50,
        };
        let now = chrono::NaiveDate::from_ymd_opt(2026, 11, 30)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .expect("a date");
        let found = snapshot.find(&query, "example", now);
        let firsts: Vec<String> = made(&found, |row| &row.first_name);
        let expected: Vec<String> = (0..51).map(|n| format!("f{:04}", 4999 - n)).collect();
        assert_eq!(firsts, expected, "the first invited, and one more");
    }

    #[test]
    fn a_broad_search_in_another_order_passes_over_what_comes_after_its_page() {
        // Names, addresses and ids each in an order of their own, and every user
        // matching: whichever way the page is read, the matches arrive out of its order.
        let total = 3000;
        let everyone: Vec<(usize, String, String)> = (0..total)
            .map(|id| {
                let first = format!("f{:04}", id * 1009 % total);
                let email = format!("u{:04}@example.com", id * 7 % total);
                (id, first, email)
            })
            .collect();
        let loose = everyone
            .iter()
            .map(|(id, first, email)| {
                let mut facts = facts(*id, first, "same");
                facts.email = email.clone();
                Loose::of(facts).expect("a canonical id")
            })
            .collect();
        let snapshot = Snapshot::default()
            .with_changes(&HashSet::new(), loose)
            .expect("indexed");
        let now = november_30();
        for sort in [SortKey::Invited, SortKey::Email] {
            for direction in [Direction::Ascending, Direction::Descending] {
                let query = ListQuery {
                    search: "example".to_owned(),
                    status: None,
                    expiring_soon: false,
                    sort,
                    direction,
                    from: super::super::list::PageFrom::Start,
                    per_page: 50,
                };
                let found = snapshot.find(&query, "example", now);
                let emails: Vec<String> = made(&found, |row| &row.email);
                let mut expected = everyone.clone();
                // The same day for everyone: invited in the order of their ids.
                match sort {
                    SortKey::Email => expected.sort_by(|a, b| a.2.cmp(&b.2)),
                    _ => expected.sort_by_key(|user| user.0),
                }
                if direction == Direction::Descending {
                    expected.reverse();
                }
                let expected: Vec<String> =
                    expected.into_iter().take(51).map(|user| user.2).collect();
                assert_eq!(emails, expected, "{sort:?} {direction:?}");
            }
        }
    }

    #[test]
    fn a_broad_search_reads_its_page_on_from_the_matches_that_decided_its_counts() {
        // Everyone matches (more than the counts' cap); the last thousand have joined.
        let everyone: Vec<Loose> = (0..3000)
            .map(|n| {
                let mut facts = facts(n, &format!("f{n:04}"), "same");
                facts.flags.enrolled = n >= 2000;
                Loose::of(facts).expect("a canonical id")
            })
            .collect();
        let snapshot = Snapshot::default()
            .with_changes(&HashSet::new(), everyone)
            .expect("indexed");
        let now = chrono::NaiveDate::from_ymd_opt(2026, 11, 30)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .expect("a date");
        let firsts = |status: Option<EnrollmentStatus>, sort: SortKey| -> Vec<String> {
            let query = ListQuery {
                search: "example".to_owned(),
                status,
                expiring_soon: false,
                sort,
                direction: Direction::Ascending,
                from: super::super::list::PageFrom::Start,
                per_page: 50,
            };
            let found = snapshot.find(&query, "example", now);
            assert!(
                found.counts.as_ref().is_some_and(|c| c.capped),
                "counted past the cap"
            );
            made(&found, |row| &row.first_name)
        };
        // None of the joined is among the matches that decided the counts.
        let joined: Vec<String> = (2000..2051).map(|n| format!("f{n:04}")).collect();
        assert_eq!(
            firsts(Some(EnrollmentStatus::Enrolled), SortKey::Name),
            joined
        );
        // All of the first invited are, once each.
        let invited: Vec<String> = (0..51).map(|n| format!("f{n:04}")).collect();
        assert_eq!(firsts(None, SortKey::Invited), invited);
        assert_eq!(firsts(None, SortKey::Name), invited);
    }

    #[test]
    fn a_search_finds_its_matches_in_every_batch_of_chunks_and_asks_its_rarest_key_first() {
        // 80 chunks of one last name each, with Graces in all but the Hoppers', whose one
        // Grace is the only match of "grace hopper".
        let last_of = |n: usize| match n / CHUNK_USERS {
            33 => "hopper".to_owned(),
            chunk => format!("l{chunk:02}x"),
        };
        let first_of = |n: usize| match (n / CHUNK_USERS, n % CHUNK_USERS) {
            (33, 7) => "grace",
            (33, _) => "ada",
            _ => ["ada", "grace", "edsger"][n % 3],
        };
        let everyone: Vec<Loose> = (0..80 * CHUNK_USERS)
            .map(|n| user(n, first_of(n), &last_of(n)))
            .collect();
        let snapshot = Snapshot::default()
            .with_changes(&HashSet::new(), everyone)
            .expect("indexed");
        assert_eq!(snapshot.chunks.len(), 80);
        let mut term = Term::new("grace hopper");
        snapshot.rank_keys(&mut term);
        let in_every_chunk = [b"gra", b"rac", b"ace", b"ce "].map(|key| trigram_hash(key));
        assert!(
            !in_every_chunk.contains(&term.trigrams[0]),
            "a key of few chunks asked first"
        );
        let found = snapshot.find(&ListQuery::default(), "grace hopper", november_30());
        assert_eq!(found.rows.len(), 1);
        // A third of the users are Edsgers: every batch of chunks, the last one part
        // full, finds them in order.
        let (first, resume) = snapshot.first_matches(&Term::new("edsger"), usize::MAX);
        assert_eq!(resume, 80);
        let edsgers = (0..80 * CHUNK_USERS)
            .filter(|&n| first_of(n) == "edsger")
            .count();
        assert_eq!(first.len(), edsgers);
        assert!(
            first.windows(2).all(|pair| pair[0] < pair[1]),
            "in name order"
        );
        assert_eq!(
            first.iter().map(|&(c, _)| c).collect::<BTreeSet<_>>().len(),
            79,
            "in every chunk but the Hoppers'"
        );
    }

    /// Users of every status: the nth by `n % 6` (sending, pending, expired, delivery
    /// failed, enrolled, deactivated), expiring over two weeks from 30 November 2026.
    fn of_every_status(n: usize, first: &str, last: &str) -> Loose {
        let mut facts = facts(n, first, last);
        let kind = n % 6;
        facts.flags.sent = kind != 0;
        facts.flags.delivery_failed = kind == 3;
        facts.flags.enrolled = kind == 4;
        facts.flags.deactivated = kind == 5;
        facts.expires_at =
            november_30() + chrono::TimeDelta::hours(if kind == 2 { -1 } else { (n % 300) as i64 });
        Loose::of(facts).expect("a canonical id")
    }

    /// A field of each row of a page, every one made from the index.
    fn made(found: &Found, field: impl Fn(&super::super::list::UserRow) -> &str) -> Vec<String> {
        found
            .rows
            .iter()
            .map(|row| match row {
                FoundRow::Made(row) => field(row).to_owned(),
                FoundRow::ToRead(id) => panic!("{id} not made from the index"),
            })
            .collect()
    }

    fn november_30() -> NaiveDateTime {
        chrono::NaiveDate::from_ymd_opt(2026, 11, 30)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .expect("a date")
    }

    #[test]
    fn a_chunk_is_passed_over_only_when_none_of_its_users_can_pass_the_filter() {
        // Chunks of one status each, and chunks of all; expiries spread over two weeks.
        let everyone: Vec<Loose> = (0..6 * CHUNK_USERS)
            .map(|n| of_every_status(n, "same", &format!("l{:01}", n % 6)))
            .chain((0..CHUNK_USERS).map(|n| of_every_status(n + 10_000, "all", "mixed")))
            .collect();
        let snapshot = Snapshot::default()
            .with_changes(&HashSet::new(), everyone)
            .expect("indexed");
        let mut passed_over = 0;
        for hours in [-48, 0, 1, 100, 200, 299, 400] {
            let now = november_30() + chrono::TimeDelta::hours(hours);
            for status in EnrollmentStatus::ALL.map(Some).into_iter().chain([None]) {
                for expiring_soon in [false, true] {
                    let query = ListQuery {
                        status,
                        expiring_soon,
                        ..ListQuery::default()
                    };
                    let filter = Filter::of(&query, now);
                    for chunk in &snapshot.chunks {
                        let some_pass = chunk.entries.iter().any(|e| filter.passes(e));
                        if some_pass {
                            assert!(
                                filter.may_pass(chunk),
                                "{status:?} {expiring_soon} at {now}"
                            );
                        } else if !filter.may_pass(chunk) {
                            passed_over += 1;
                        }
                    }
                }
            }
        }
        assert!(
            passed_over > 200,
            "chunks of other statuses passed over: {passed_over}"
        );
    }

    #[test]
    fn a_broad_search_in_status_order_is_the_sorted_matches_from_its_cursor_on() {
        let everyone: Vec<Loose> = (0..4000)
            .map(|n| of_every_status(n, &format!("f{:04}", (n * 7919) % 4000), "same"))
            .collect();
        let snapshot = Snapshot::default()
            .with_changes(&HashSet::new(), everyone)
            .expect("indexed");
        let now = november_30();
        let all: Vec<At> = snapshot
            .chunks
            .iter()
            .enumerate()
            .flat_map(|(c, chunk)| (0..chunk.entries.len()).map(move |row| (c, row)))
            .collect();
        let ids = |page: &[At]| -> Vec<u128> {
            page.iter()
                .map(|&at| snapshot.parts(at).entry.id())
                .collect()
        };
        for direction in [Direction::Ascending, Direction::Descending] {
            let mut sorted = all.clone();
            sorted.sort_by(|&a, &b| {
                let order =
                    sort_order(SortKey::Status, &snapshot.parts(a), &snapshot.parts(b), now);
                match direction {
                    Direction::Ascending => order,
                    Direction::Descending => order.reverse(),
                }
            });
            for status in [None, Some(EnrollmentStatus::Expired)] {
                let filter = Filter::of(
                    &ListQuery {
                        status,
                        ..ListQuery::default()
                    },
                    now,
                );
                let matching: Vec<At> = sorted
                    .iter()
                    .copied()
                    .filter(|&at| filter.passes(snapshot.parts(at).entry))
                    .collect();
                // From the start, and from cursors at each status's boundary and within.
                let starts = [None, Some(1), Some(640), Some(665), Some(667), Some(1333)];
                for start in starts
                    .into_iter()
                    .filter(|s| s.is_none_or(|s| s < matching.len()))
                {
                    let bound = start.map(|s| {
                        let parts = snapshot.parts(matching[s]);
                        Bound::Status(
                            status_rank(parts.entry.status(now)),
                            [parts.last, b" ", parts.first].concat(),
                            parts.entry.id(),
                        )
                    });
                    let term = Term::new("example");
                    let page =
                        snapshot.walk_by_status(&term, direction, bound.as_ref(), 51, &filter);
                    let from = start.map_or(0, |s| s + 1);
                    let expected = &matching[from..(from + 51).min(matching.len())];
                    assert_eq!(
                        ids(&page),
                        ids(expected),
                        "{direction:?} {status:?} from {start:?}"
                    );
                }
            }
        }
        // The page of the Users page sorted by status is that walk's.
        let query = ListQuery {
            search: "example".to_owned(),
            sort: SortKey::Status,
            ..ListQuery::default()
        };
        let found = snapshot.find(&query, "example", now);
        let mut expected = all;
        expected.sort_by(|&a, &b| {
            sort_order(SortKey::Status, &snapshot.parts(a), &snapshot.parts(b), now)
        });
        let shown = made(&found, |row| &row.id);
        let expected: Vec<String> = ids(&expected[..51])
            .into_iter()
            .map(|id| uuid::Uuid::from_u128(id).hyphenated().to_string())
            .collect();
        assert_eq!(shown, expected);
    }

    #[test]
    fn a_row_is_made_from_the_index_with_the_names_as_typed_or_read_when_it_cannot_be() {
        let snapshot = Snapshot::default()
            .with_changes(
                &HashSet::new(),
                vec![user(1, "Ada", "McCarthy"), user(2, "ÉLODIE", "Ørsted")],
            )
            .expect("indexed");
        let chunk = &snapshot.chunks[0];
        let ada = chunk.row(0).expect("made from the index");
        assert_eq!(
            (
                ada.first_name.as_str(),
                ada.last_name.as_str(),
                ada.email.as_str()
            ),
            ("Ada", "McCarthy", "Ada.McCarthy.1@example.com")
        );
        assert_eq!(ada.email_key, "ada.mccarthy.1@example.com");
        assert_eq!(ada.name_key, "mccarthy ada");
        assert_eq!(ada.id, uuid::Uuid::from_u128(1).hyphenated().to_string());
        // Capitals beyond ASCII: the index searches the text, the database shows it.
        assert!(chunk.row(1).is_none());
        // Initials are flags; the chunk holds the other capitals (McCarthy's C and the
        // address's three), and they follow the row when its chunk is copied.
        assert_eq!(chunk.capitals.len(), 4);
        let changed = snapshot
            .with_changes(&HashSet::new(), vec![user(3, "al", "adams")])
            .expect("indexed");
        let chunk = &changed.chunks[0];
        let shown = |row: usize| {
            chunk
                .row(row)
                .map(|r| format!("{} {} {}", r.first_name, r.last_name, r.email))
        };
        assert_eq!(shown(0).as_deref(), Some("al adams al.adams.3@example.com"));
        assert_eq!(
            shown(1).as_deref(),
            Some("Ada McCarthy Ada.McCarthy.1@example.com")
        );
        assert!(shown(2).is_none());

        // Why an invitation was not delivered is held (once for the users sharing it),
        // and follows its row when its chunk is copied.
        let failed = |n: usize, first: &str| {
            let mut facts = facts(n, first, "adams");
            facts.delivery_error = Some("550 5.1.1 Mailbox unavailable".into());
            Loose::of(facts).expect("a canonical id")
        };
        let changed = changed
            .with_changes(&HashSet::new(), vec![failed(4, "bo"), failed(5, "cy")])
            .expect("indexed");
        let again = changed
            .with_changes(&HashSet::new(), vec![user(6, "aa", "adams")])
            .expect("indexed");
        for (snapshot, shift) in [(&changed, 0), (&again, 1)] {
            let chunk = &snapshot.chunks[0];
            assert_eq!(chunk.delivery_reasons.len(), 1);
            let reasons: Vec<Option<String>> = (0..4 + shift)
                .map(|row| chunk.row(row).and_then(|r| r.delivery_error))
                .collect();
            let mut expected = vec![None; 4 + shift];
            expected[1 + shift] = Some("550 5.1.1 Mailbox unavailable".to_owned());
            expected[2 + shift] = expected[1 + shift].clone();
            assert_eq!(reasons, expected);
        }
    }

    #[test]
    fn on_sqlite_the_log_is_read_through() {
        let mut log = ChangeLog::default();
        log.read_above.extend([1, 2, 3]);
        log.move_past(3, None, None);
        assert_eq!((log.read_to, log.read_above.len()), (3, 0));
    }

    #[test]
    fn a_missing_number_is_waited_for_until_the_transactions_that_could_commit_it_end() {
        let mut log = ChangeLog::default();
        log.read_above.extend([1, 2, 4]);
        log.move_past(4, Some(10), Some(20));
        assert_eq!(log.read_to, 2);
        assert_eq!(log.missing, Some((3, 20)));
        // Transactions from before it was missed still run.
        log.move_past(4, Some(15), Some(25));
        assert_eq!((log.read_to, log.missing), (2, Some((3, 20))));
        // They ended without it: it never will be committed.
        log.move_past(4, Some(20), Some(30));
        assert_eq!((log.read_to, log.missing), (4, None));

        // One that arrives is read like any other.
        log.read_above.extend([6]);
        log.move_past(6, Some(30), Some(40));
        assert_eq!((log.read_to, log.missing), (4, Some((5, 40))));
        log.read_above.insert(5);
        log.move_past(6, Some(31), Some(41));
        assert_eq!((log.read_to, log.missing), (6, None));
    }
}
