//! The declarative mapping tables' machinery: a mapping is a list of leaves (an output path and
//! how its value is made from the record), common to a source and per kind of record (a SIEM
//! `type`, say). Compiled once: the fields it reads become a capture set, and each kind's leaves
//! are merged and sorted by path for the writer.

use crate::encode::{close_header, open_header, Cap, CaptureSet, Facts, Normalize};
use std::borrow::Cow;
use std::sync::OnceLock;

/// A condition on the record.
#[derive(Debug)]
pub enum Cond {
    /// The field is there, not null and not an empty string (nor "null", "none", "n/a").
    Present(&'static str),
    /// The field's text is one of these (case-insensitive).
    Is(&'static str, &'static [&'static str]),
    /// The field's text is none of these (case-insensitive), and present.
    IsNot(&'static str, &'static [&'static str]),
    /// A number (or numeric string) at least this.
    AtLeast(&'static str, i64),
    Any(&'static [Cond]),
    All(&'static [Cond]),
    Always,
}

/// How a leaf's value is made. A leaf whose value is missing is left out.
#[derive(Debug)]
pub enum V {
    Str(&'static str),
    Int(i64),
    Bool(bool),
    /// A field as it came (string, number or boolean).
    Field(&'static str),
    /// A field's text, lower-cased.
    Lower(&'static str),
    /// A number, or a string holding one.
    Num(&'static str),
    /// A string of items separated by commas or semicolons, or a list, as a list of strings.
    Split(&'static str),
    /// A field's text if it is an IP address.
    Ip(&'static str),
    /// The domain of an email address.
    Domain(&'static str),
    /// A field's text looked up (case-insensitive) in a table of strings; `None` leaves it out
    /// when nothing matches.
    Map(
        &'static str,
        &'static [(&'static str, &'static str)],
        Option<&'static str>,
    ),
    /// The same, to integers (OCSF enums), with the value when nothing matches.
    MapInt(&'static str, &'static [(&'static str, i64)], i64),
    /// The first condition that holds picks the string.
    When(&'static [(Cond, &'static str)]),
    /// The first condition that holds picks the integer.
    WhenInt(&'static [(Cond, i64)]),
    /// The first condition that holds picks the boolean.
    WhenBool(&'static [(Cond, bool)]),
    /// A list of constant strings.
    List(&'static [&'static str]),
    /// A list of constant integers.
    Ints(&'static [i64]),
    /// A field's text if it looks like an email address (`a@b.c`; `<a@b.c>` unwrapped).
    Email(&'static str),
    /// Every email address in a field (a list, or a string separated by commas or semicolons).
    Emails(&'static str),
    /// An object of these members; left out when no member made from the record has a value.
    Obj(&'static [(&'static str, V)]),
    /// A list of the values that exist of these (objects, say); left out when empty.
    Arr(&'static [V]),
    /// The first of these that has a value.
    First(&'static [V]),
    /// Every distinct value of these fields (IPs or texts), as a list.
    Collect(&'static [&'static str], bool),
    /// The event time: RFC 3339 with milliseconds (`ms` false) or epoch milliseconds.
    Time {
        ms: bool,
    },
    /// The record's stable id.
    Id,
    /// `mimecast.<source>`.
    Dataset,
    /// The source's name.
    Source,
    /// A field the plugin added (`mimecast_snapshot`, `direction`, ...).
    Extra(&'static str),
}

/// One output leaf.
#[derive(Debug)]
pub struct Leaf {
    pub path: &'static [&'static str],
    pub v: V,
}

/// A leaf at `path`.
pub const fn l(path: &'static [&'static str], v: V) -> Leaf {
    Leaf { path, v }
}

/// A kind of record: `leaves` for the records for which `when` holds.
pub const fn kind(when: Cond, leaves: &'static [&'static [Leaf]]) -> Kind {
    Kind { when, leaves }
}

/// Leaves for the records for which `when` holds (the first kind that holds is taken).
#[derive(Debug)]
pub struct Kind {
    pub when: Cond,
    pub leaves: &'static [&'static [Leaf]],
}

/// A source's mapping in one schema.
pub struct Mapping {
    pub remainder: &'static str,
    pub drops_mapped: bool,
    /// Leaves of every record.
    pub common: &'static [&'static [Leaf]],
    pub kinds: &'static [Kind],
    compiled: OnceLock<Compiled>,
}

/// One step of writing a kind of record's leaves, compiled from their paths: the nesting is
/// known before any record comes, so writing compares no paths.
enum Op {
    /// Opens a map under this key (msgpack-encoded).
    Open(Vec<u8>),
    /// A leaf under this key (msgpack-encoded), and the slots of the fields it is made of when
    /// it has no value without one of them (empty: always made).
    Leaf(Vec<u8>, &'static V, Vec<u32>),
    /// Closes the innermost map.
    Close,
}

/// The deepest nesting of a normalized path (checked when the tables are compiled).
const MAX_NESTING: usize = 8;

/// The steps that write `leaves` (sorted by path) as nested maps.
fn ops_of(leaves: &[&'static Leaf], set: &CaptureSet) -> Vec<Op> {
    let key = |k: &str| {
        let mut b = Vec::with_capacity(k.len() + 1);
        let _ = rmp::encode::write_str(&mut b, k);
        b
    };
    let mut ops = Vec::new();
    let mut open: Vec<&str> = Vec::new();
    for leaf in leaves {
        let Some((name, dirs)) = leaf.path.split_last() else {
            continue;
        };
        let keep = open
            .iter()
            .zip(dirs.iter())
            .take_while(|(a, b)| a == b)
            .count();
        while open.len() > keep {
            open.pop();
            ops.push(Op::Close);
        }
        // The tables nest far less deep (a unit test holds them to it): a deeper leaf would be
        // left out rather than written wrong.
        debug_assert!(dirs.len() < MAX_NESTING, "too deep: {:?}", leaf.path);
        if dirs.len() >= MAX_NESTING {
            continue;
        }
        for d in dirs.iter().skip(keep) {
            open.push(d);
            ops.push(Op::Open(key(d)));
        }
        let mut needs = Vec::new();
        if none_when(&leaf.v, &|_| true) {
            let mut names = Vec::new();
            fields_of(&leaf.v, &mut names);
            needs = names
                .iter()
                .filter_map(|n| set.slot_of(n).map(|s| s as u32))
                .collect();
            needs.sort_unstable();
            needs.dedup();
        }
        ops.push(Op::Leaf(key(name), &leaf.v, needs));
    }
    ops.extend(open.iter().map(|_| Op::Close));
    ops
}

struct Compiled {
    set: CaptureSet,
    /// Per kind, the steps that write its leaves.
    kinds: Vec<Vec<Op>>,
    /// Each field name of the tables by the address of its `'static` text, in a table with no
    /// two addresses on one place: a leaf finds its slot in a few instructions, without hashing
    /// or comparing the name's text.
    by_address: Vec<(usize, usize)>,
}

/// The direct table of (address, slot) pairs: the smallest size from 2n on where no two
/// addresses share a place (None if there is none within 64n: the caller hashes the names).
fn address_table(pairs: &[(usize, usize)]) -> Vec<(usize, usize)> {
    let n = pairs.len().max(1);
    for size in 2 * n..64 * n {
        let mut t = vec![(0usize, usize::MAX); size];
        let mut clash = false;
        for (a, s) in pairs {
            let at = a % size;
            match t.get_mut(at) {
                Some(e) if e.0 == 0 || e.0 == *a => *e = (*a, *s),
                _ => {
                    clash = true;
                    break;
                }
            }
        }
        if !clash {
            return t;
        }
    }
    Vec::new()
}

impl Mapping {
    pub const fn new(
        remainder: &'static str,
        drops_mapped: bool,
        common: &'static [&'static [Leaf]],
        kinds: &'static [Kind],
    ) -> Mapping {
        Mapping {
            remainder,
            drops_mapped,
            common,
            kinds,
            compiled: OnceLock::new(),
        }
    }

    /// Every leaf of the tables, common and of every kind.
    fn all_leaves(&self) -> impl Iterator<Item = &'static Leaf> {
        let common = self.common.iter().flat_map(|l| l.iter());
        let kinds = self.kinds;
        common.chain(
            kinds
                .iter()
                .flat_map(|k| k.leaves.iter().flat_map(|l| l.iter())),
        )
    }

    fn compiled(&self) -> &Compiled {
        self.compiled.get_or_init(|| {
            let mut names: Vec<&'static str> = Vec::new();
            for leaf in self.all_leaves() {
                fields_of(&leaf.v, &mut names);
            }
            let mapped = names.clone();
            for leaf in self.all_leaves() {
                when_fields(&leaf.v, &mut names);
            }
            for k in self.kinds {
                cond_fields(&k.when, &mut names);
            }
            let set = CaptureSet::with_mapped(&names, &mapped);
            let mut kinds: Vec<Vec<Op>> = self
                .kinds
                .iter()
                .map(|k| {
                    let mut leaves: Vec<&'static Leaf> = self
                        .common
                        .iter()
                        .flat_map(|l| l.iter())
                        .chain(k.leaves.iter().flat_map(|l| l.iter()))
                        .collect();
                    // A kind's leaf replaces a common one of the same path.
                    leaves.reverse();
                    let mut seen: Vec<&[&str]> = Vec::new();
                    leaves.retain(|l| {
                        let new = !seen.contains(&l.path);
                        seen.push(l.path);
                        new
                    });
                    leaves.sort_by(|a, b| a.path.cmp(b.path));
                    ops_of(&leaves, &set)
                })
                .collect();
            // Records no kind takes get the common leaves.
            let mut leaves: Vec<&'static Leaf> =
                self.common.iter().flat_map(|l| l.iter()).collect();
            leaves.sort_by(|a, b| a.path.cmp(b.path));
            kinds.push(ops_of(&leaves, &set));
            let pairs: Vec<(usize, usize)> = names
                .iter()
                .filter_map(|n| Some((n.as_ptr() as usize, set.slot_of(n)?)))
                .collect();
            Compiled {
                by_address: address_table(&pairs),
                set,
                kinds,
            }
        })
    }

    /// The kind a record is of: the index into the compiled kinds (the last: none).
    fn kind_of(&self, r: &Reader) -> usize {
        self.kinds
            .iter()
            .position(|k| r.holds(&k.when))
            .unwrap_or(self.kinds.len())
    }
}

fn fields_of(v: &V, names: &mut Vec<&'static str>) {
    match v {
        V::Field(n)
        | V::Lower(n)
        | V::Num(n)
        | V::Split(n)
        | V::Ip(n)
        | V::Domain(n)
        | V::Map(n, _, _)
        | V::MapInt(n, _, _)
        | V::Email(n)
        | V::Emails(n) => names.push(n),
        // Fields read only by conditions are not mapped (their values stay in the remainder).
        V::When(_) | V::WhenInt(_) | V::WhenBool(_) => {}
        V::First(vs) | V::Arr(vs) => vs.iter().for_each(|v| fields_of(v, names)),
        V::Obj(ms) => ms.iter().for_each(|(_, v)| fields_of(v, names)),
        V::Collect(ns, _) => names.extend_from_slice(ns),
        _ => {}
    }
}

/// Whether `v` surely has no value when the fields for which `absent` holds are absent. With
/// `&|_| true`: whether it has none without any of the fields it maps (`fields_of`), so that a
/// record lacking them all can skip it unseen; constants, conditions and defaults have values
/// of their own.
fn none_when(v: &V, absent: &dyn Fn(&str) -> bool) -> bool {
    match v {
        V::Field(n)
        | V::Lower(n)
        | V::Num(n)
        | V::Split(n)
        | V::Ip(n)
        | V::Domain(n)
        | V::Map(n, _, None)
        | V::Email(n)
        | V::Emails(n) => absent(n),
        V::Collect(ns, _) => ns.iter().all(|n| absent(n)),
        V::Obj(ms) => ms
            .iter()
            .all(|(_, v)| is_constant(v) || none_when(v, absent)),
        V::Arr(vs) | V::First(vs) => vs.iter().all(|v| none_when(v, absent)),
        _ => false,
    }
}

/// The fields conditions read, anywhere in a value.
fn when_fields(v: &V, names: &mut Vec<&'static str>) {
    match v {
        V::When(cs) => cs.iter().for_each(|(c, _)| cond_fields(c, names)),
        V::WhenInt(cs) => cs.iter().for_each(|(c, _)| cond_fields(c, names)),
        V::WhenBool(cs) => cs.iter().for_each(|(c, _)| cond_fields(c, names)),
        V::First(vs) | V::Arr(vs) => vs.iter().for_each(|v| when_fields(v, names)),
        V::Obj(ms) => ms.iter().for_each(|(_, v)| when_fields(v, names)),
        _ => {}
    }
}

fn cond_fields(c: &Cond, names: &mut Vec<&'static str>) {
    match c {
        Cond::Present(n) | Cond::Is(n, _) | Cond::IsNot(n, _) | Cond::AtLeast(n, _) => {
            names.push(n)
        }
        Cond::Any(cs) | Cond::All(cs) => cs.iter().for_each(|c| cond_fields(c, names)),
        Cond::Always => {}
    }
}

/// Reads captured values by field name.
struct Reader<'a, 's> {
    c: &'a Compiled,
    f: &'a Facts<'s>,
}

impl<'a, 's> Reader<'a, 's> {
    fn cap(&self, name: &str) -> Cap {
        let at = name.as_ptr() as usize;
        let t = &self.c.by_address;
        let slot = match t.get(at % t.len().max(1)) {
            Some((a, s)) if *a == at => Some(*s),
            _ => self.c.set.slot_of(name),
        };
        self.f.cap(slot)
    }

    /// The text of a string field, or of a number or boolean.
    fn text(&self, name: &str) -> Option<Cow<'s, str>> {
        match self.cap(name) {
            c @ Cap::Text(..) => self.f.scratch.str(c).map(Cow::Borrowed),
            Cap::Int(i) => Some(Cow::Owned(i.to_string())),
            Cap::Float(x) => Some(Cow::Owned(x.to_string())),
            Cap::Bool(b) => Some(Cow::Borrowed(if b { "true" } else { "false" })),
            _ => None,
        }
    }

    /// A meaningful text: not empty, not a placeholder.
    fn present(&self, name: &str) -> Option<Cow<'s, str>> {
        if let c @ Cap::List(..) = self.cap(name) {
            return self
                .f
                .scratch
                .str(c)
                .filter(|t| !t.is_empty())
                .map(Cow::Borrowed);
        }
        self.text(name).filter(|t| {
            let t = t.trim();
            !t.is_empty()
                && (t.len() > 4
                    || !["null", "none", "n/a", "[]", "{}"]
                        .iter()
                        .any(|p| t.eq_ignore_ascii_case(p)))
        })
    }

    fn num(&self, name: &str) -> Option<i64> {
        match self.cap(name) {
            Cap::Int(i) => Some(i),
            Cap::Float(x) if x.is_finite() => Some(x as i64),
            c @ Cap::Text(..) => self.f.scratch.str(c)?.trim().parse().ok(),
            _ => None,
        }
    }

    /// A field's text looked up (case-insensitive) in a table.
    fn lookup<T: Copy>(&self, name: &str, table: &[(&str, T)]) -> Option<T> {
        let t = self.present(name)?;
        table
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(t.trim()))
            .map(|(_, v)| *v)
    }

    fn holds(&self, c: &Cond) -> bool {
        let is = |n: &str, vs: &[&str]| {
            self.text(n)
                .is_some_and(|t| vs.iter().any(|v| v.eq_ignore_ascii_case(t.trim())))
        };
        match c {
            Cond::Present(n) => self.present(n).is_some(),
            Cond::Is(n, vs) => is(n, vs),
            Cond::IsNot(n, vs) => self.present(n).is_some() && !is(n, vs),
            Cond::AtLeast(n, min) => self.num(n).is_some_and(|x| x >= *min),
            Cond::Any(cs) => cs.iter().any(|c| self.holds(c)),
            Cond::All(cs) => cs.iter().all(|c| self.holds(c)),
            Cond::Always => true,
        }
    }

    /// The items of a list field, or of a string separated by commas or semicolons.
    fn items(&self, name: &str) -> impl Iterator<Item = &'s str> + use<'s> {
        let (text, list) = match self.cap(name) {
            c @ Cap::List(..) => (self.f.scratch.str(c).unwrap_or(""), true),
            c @ Cap::Text(..) => (self.f.scratch.str(c).unwrap_or(""), false),
            _ => ("", false),
        };
        text.split(move |c: char| {
            if list {
                c == '\u{1f}'
            } else {
                c == ',' || c == ';'
            }
        })
        .map(str::trim)
        .filter(|s| !s.is_empty())
    }

    /// Whether `v` has no value for this record because every field it maps is absent (seen
    /// without writing anything: a member's key is written only when it may have a value).
    fn surely_none(&self, v: &V) -> bool {
        none_when(v, &|n| self.cap(n) == Cap::Absent)
    }

    /// Writes the value `v` makes of the record. Returns false, with nothing written, when it
    /// makes none.
    fn put(&self, v: &V, out: &mut Vec<u8>) -> bool {
        match v {
            V::Str(s) => put_str(out, s),
            V::Int(i) => {
                let _ = rmp::encode::write_sint(out, *i);
                true
            }
            V::Bool(b) => {
                let _ = rmp::encode::write_bool(out, *b);
                true
            }
            V::Field(n) => match self.cap(n) {
                Cap::Int(i) => {
                    let _ = rmp::encode::write_sint(out, i);
                    true
                }
                Cap::Float(x) => {
                    let _ = rmp::encode::write_f64(out, x);
                    true
                }
                Cap::Bool(b) => {
                    let _ = rmp::encode::write_bool(out, b);
                    true
                }
                Cap::List(..) => {
                    let at = open_header(out);
                    let n = self.items(n).map(|s| put_str(out, s)).count();
                    close_header(out, at, n as u32, false);
                    true
                }
                _ => self.present(n).is_some_and(|t| put_str(out, &t)),
            },
            V::Lower(n) => self.present(n).is_some_and(|t| put_lower(out, t.trim())),
            V::Num(n) => self.num(n).is_some_and(|i| {
                let _ = rmp::encode::write_sint(out, i);
                true
            }),
            V::Split(n) => put_strs(out, self.items(n)),
            V::Ip(n) => self
                .present(n)
                .filter(|t| t.trim().parse::<std::net::IpAddr>().is_ok())
                .is_some_and(|t| put_str(out, &t)),
            V::Domain(n) => self
                .present(n)
                .is_some_and(|t| match t.trim().rsplit_once('@') {
                    Some((_, d)) if !d.trim_end_matches('>').is_empty() => {
                        put_lower(out, d.trim_end_matches('>'))
                    }
                    _ => false,
                }),
            V::Map(n, table, default) => self
                .lookup(n, table)
                .or(*default)
                .is_some_and(|s| put_str(out, s)),
            V::MapInt(n, table, default) => {
                let _ = rmp::encode::write_sint(out, self.lookup(n, table).unwrap_or(*default));
                true
            }
            V::When(cs) => cs
                .iter()
                .find(|(c, _)| self.holds(c))
                .is_some_and(|(_, s)| put_str(out, s)),
            V::WhenInt(cs) => cs
                .iter()
                .find(|(c, _)| self.holds(c))
                .is_some_and(|(_, i)| {
                    let _ = rmp::encode::write_sint(out, *i);
                    true
                }),
            V::WhenBool(cs) => cs
                .iter()
                .find(|(c, _)| self.holds(c))
                .is_some_and(|(_, b)| {
                    let _ = rmp::encode::write_bool(out, *b);
                    true
                }),
            V::List(items) => {
                let _ = rmp::encode::write_array_len(out, items.len() as u32);
                items.iter().for_each(|s| {
                    put_str(out, s);
                });
                true
            }
            V::Ints(items) => {
                let _ = rmp::encode::write_array_len(out, items.len() as u32);
                for i in *items {
                    let _ = rmp::encode::write_sint(out, *i);
                }
                true
            }
            V::Email(n) => self
                .present(n)
                .is_some_and(|t| email(&t).is_some_and(|e| put_str(out, e))),
            V::Emails(n) => put_strs(out, self.items(n).filter_map(email)),
            V::Obj(members) => {
                let at = open_header(out);
                let (mut n, mut any) = (0, false);
                for (k, v) in *members {
                    if self.surely_none(v) {
                        continue;
                    }
                    let key_at = out.len();
                    put_str(out, k);
                    if self.put(v, out) {
                        n += 1;
                        any |= !is_constant(v);
                    } else {
                        out.truncate(key_at);
                    }
                }
                if !any {
                    out.truncate(at);
                    return false;
                }
                close_header(out, at, n, true);
                true
            }
            V::Arr(items) => {
                let at = open_header(out);
                let n = items
                    .iter()
                    .filter(|v| !self.surely_none(v) && self.put(v, out))
                    .count() as u32;
                if n == 0 {
                    out.truncate(at);
                    return false;
                }
                close_header(out, at, n, false);
                true
            }
            V::First(vs) => vs.iter().any(|v| self.put(v, out)),
            V::Collect(ns, ips) => {
                let at = open_header(out);
                let mut seen = Seen::default();
                for n in *ns {
                    for item in self.items(n) {
                        let item = match item.rsplit_once('<') {
                            Some((_, addr)) => addr.trim_end_matches('>'),
                            None => item,
                        };
                        let ok = if *ips {
                            item.parse::<std::net::IpAddr>().is_ok()
                        } else {
                            !item.is_empty()
                        };
                        if ok && seen.insert(item) {
                            put_str(out, item);
                        }
                    }
                }
                if seen.len == 0 {
                    out.truncate(at);
                    return false;
                }
                close_header(out, at, seen.len, false);
                true
            }
            V::Time { ms: false } => put_str(out, super::rfc3339_text(self.f.time).as_str()),
            V::Time { ms: true } => {
                let _ = rmp::encode::write_sint(out, super::epoch_ms(self.f.time));
                true
            }
            V::Id => put_str(out, self.f.id),
            V::Dataset => {
                let (a, b) = ("mimecast.", self.f.source);
                let _ = rmp::encode::write_str_len(out, (a.len() + b.len()) as u32);
                out.extend_from_slice(a.as_bytes());
                out.extend_from_slice(b.as_bytes());
                true
            }
            V::Source => put_str(out, self.f.source),
            V::Extra(k) => self
                .f
                .extra
                .iter()
                .find(|(ek, _)| ek == k)
                .is_some_and(|(_, v)| put_str(out, v)),
        }
    }
}

/// Writes a string; always true (for `is_some_and` chains).
fn put_str(out: &mut Vec<u8>, s: &str) -> bool {
    let _ = rmp::encode::write_str(out, s);
    true
}

/// Writes a string lower-cased (ASCII, as the tables compare).
fn put_lower(out: &mut Vec<u8>, s: &str) -> bool {
    put_str(out, s);
    let from = out.len() - s.len();
    if let Some(b) = out.get_mut(from..) {
        b.make_ascii_lowercase();
    }
    true
}

/// Writes a list of strings; false (nothing written) when there are none.
fn put_strs<'t>(out: &mut Vec<u8>, items: impl Iterator<Item = &'t str>) -> bool {
    let at = open_header(out);
    let n = items.map(|s| put_str(out, s)).count() as u32;
    if n == 0 {
        out.truncate(at);
        return false;
    }
    close_header(out, at, n, false);
    true
}

/// The distinct items of a list so far: a few inline, more on the heap.
#[derive(Default)]
struct Seen<'t> {
    first: [&'t str; 16],
    more: Vec<&'t str>,
    len: u32,
}

impl<'t> Seen<'t> {
    /// Whether `item` is new (and now seen).
    fn insert(&mut self, item: &'t str) -> bool {
        let inline = (self.len as usize).min(self.first.len());
        if self.first.iter().take(inline).any(|s| *s == item) || self.more.contains(&item) {
            return false;
        }
        match self.first.get_mut(inline) {
            Some(slot) if inline == self.len as usize => *slot = item,
            _ => self.more.push(item),
        }
        self.len += 1;
        true
    }
}

/// Whether a value is made without the record (a constant).
fn is_constant(v: &V) -> bool {
    matches!(
        v,
        V::Str(_) | V::Int(_) | V::Bool(_) | V::List(_) | V::Ints(_) | V::Source | V::Dataset
    )
}

/// An email address (`a@b.c`, `Name <a@b.c>` unwrapped), or None if the text is not one.
fn email(t: &str) -> Option<&str> {
    let inner = match t.rsplit_once('<') {
        Some((_, a)) => a.trim_end_matches('>').trim(),
        None => t.trim(),
    };
    let (local, domain) = inner.split_once('@')?;
    let ok = !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !inner.contains(char::is_whitespace)
        && domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    ok.then_some(inner)
}

impl Normalize for Mapping {
    fn fields(&self) -> &CaptureSet {
        &self.compiled().set
    }

    fn remainder(&self) -> &'static str {
        self.remainder
    }

    fn drops_mapped(&self) -> bool {
        self.drops_mapped
    }

    fn write(&self, f: &Facts, out: &mut Vec<u8>) -> u32 {
        let c = self.compiled();
        let r = Reader { c, f };
        let Some(ops) = c.kinds.get(self.kind_of(&r)) else {
            return 0;
        };
        // The maps open: where each one's key starts, its header, its entries so far.
        let mut open = [(0usize, 0usize, 0u32); MAX_NESTING];
        let mut depth = 0;
        let mut top = 0;
        for op in ops {
            match op {
                Op::Open(key) => {
                    let key_at = out.len();
                    out.extend_from_slice(key);
                    let at = open_header(out);
                    if let Some(m) = open.get_mut(depth) {
                        *m = (key_at, at, 0);
                    }
                    depth += 1;
                }
                Op::Leaf(key, v, needs) => {
                    // Most leaves map fields that records of this kind lack: seen at once.
                    if !needs.is_empty()
                        && needs
                            .iter()
                            .all(|s| f.cap(Some(*s as usize)) == Cap::Absent)
                    {
                        continue;
                    }
                    let key_at = out.len();
                    out.extend_from_slice(key);
                    if r.put(v, out) {
                        count_in(&mut open, depth, &mut top);
                    } else {
                        out.truncate(key_at);
                    }
                }
                Op::Close => {
                    depth = depth.saturating_sub(1);
                    let Some(&(key_at, at, n)) = open.get(depth) else {
                        continue;
                    };
                    // A map none of whose leaves has a value is left out, key and all.
                    if n == 0 {
                        out.truncate(key_at);
                    } else {
                        close_header(out, at, n, true);
                        count_in(&mut open, depth, &mut top);
                    }
                }
            }
        }
        top
    }
}

/// Counts one more entry in the innermost open map (or at the top).
fn count_in(open: &mut [(usize, usize, u32)], depth: usize, top: &mut u32) {
    match depth.checked_sub(1).and_then(|d| open.get_mut(d)) {
        Some(m) => m.2 += 1,
        None => *top += 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::{encode_as, Layout, Scratch, TimeField};

    const LEAVES: &[Leaf] = &[
        l(&["email", "to", "address"], Collect(&["recipients"], false)),
        l(&["email", "subject"], V::Field("subject")),
        l(
            &["file"],
            V::Obj(&[
                ("kind", V::Str("attachment")),
                ("hash", V::Obj(&[("md5", V::Field("md5"))])),
            ]),
        ),
        l(&["x", "y", "z"], V::Field("deep")),
    ];
    use V::Collect;
    static TEST: Mapping = Mapping::new("orig", false, &[LEAVES], &[]);

    fn encode(json: &str) -> rmpv::Value {
        let mut out = Vec::new();
        let layout = Layout {
            source: "t",
            norm: Some(&TEST),
        };
        let mut scratch = Scratch::default();
        encode_as(
            &mut out,
            json.as_bytes(),
            TimeField::Now,
            &layout,
            &[],
            &mut scratch,
        )
        .unwrap();
        let mut rd = out.as_slice();
        let v = rmpv::decode::read_value(&mut rd).unwrap();
        assert!(rd.is_empty(), "one complete record");
        v[1].clone()
    }

    fn get<'v>(v: &'v rmpv::Value, path: &[&str]) -> Option<&'v rmpv::Value> {
        path.iter().try_fold(v, |v, k| {
            v.as_map()?
                .iter()
                .find(|(key, _)| key.as_str() == Some(k))
                .map(|(_, v)| v)
        })
    }

    #[test]
    fn long_lists_get_wide_headers_and_stay_distinct() {
        // Synthetic: 40 distinct recipients, each twice, as one comma-separated string.
        let all: Vec<String> = (0..80)
            .map(|i| format!("u{}@example.com", i % 40))
            .collect();
        let json = format!(r#"{{"recipients": "{}", "subject": "s"}}"#, all.join(", "));
        let body = encode(&json);
        let to = get(&body, &["email", "to", "address"])
            .and_then(|v| v.as_array())
            .expect("a list of recipients");
        let got: Vec<&str> = to.iter().filter_map(|v| v.as_str()).collect();
        let want: Vec<String> = (0..40).map(|i| format!("u{i}@example.com")).collect();
        assert_eq!(got, want);
        assert_eq!(
            get(&body, &["email", "subject"]).and_then(|v| v.as_str()),
            Some("s")
        );
    }

    #[test]
    fn maps_without_a_value_are_left_out_key_and_all() {
        let body = encode(r#"{"subject": "s"}"#);
        // No recipients: `email.to` is not there, while `email` (with the subject) is.
        assert!(get(&body, &["email", "to"]).is_none());
        assert!(get(&body, &["email", "subject"]).is_some());
        // Only a constant member: the object is left out; so is `x.y` with nothing under it.
        assert!(get(&body, &["file"]).is_none());
        assert!(get(&body, &["x"]).is_none());
        let body = encode(r#"{"md5": "abc", "deep": 1}"#);
        assert_eq!(
            get(&body, &["file", "hash", "md5"]).and_then(|v| v.as_str()),
            Some("abc")
        );
        assert_eq!(
            get(&body, &["file", "kind"]).and_then(|v| v.as_str()),
            Some("attachment")
        );
        assert_eq!(
            get(&body, &["x", "y", "z"]).and_then(|v| v.as_i64()),
            Some(1)
        );
        assert!(get(&body, &["email"]).is_none());
    }
}
