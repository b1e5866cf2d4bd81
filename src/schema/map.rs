//! The declarative mapping tables' machinery: a mapping is a list of leaves (an output path and
//! how its value is made from the record), common to a source and per kind of record (a SIEM
//! `type`, say). Compiled once: the fields it reads become a capture set, and each kind's leaves
//! are merged and sorted by path for the writer.

use crate::encode::{Cap, CaptureSet, Facts, Normalize, Out};
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

struct Compiled {
    set: CaptureSet,
    /// Per kind, every leaf of it sorted by path.
    kinds: Vec<Vec<&'static Leaf>>,
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
            let mut kinds: Vec<Vec<&'static Leaf>> = self
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
                    leaves
                })
                .collect();
            // Records no kind takes get the common leaves.
            let mut leaves: Vec<&'static Leaf> =
                self.common.iter().flat_map(|l| l.iter()).collect();
            leaves.sort_by(|a, b| a.path.cmp(b.path));
            kinds.push(leaves);
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

    fn items(&self, name: &str) -> Vec<Cow<'s, str>> {
        match self.cap(name) {
            c @ Cap::List(..) => self
                .f
                .scratch
                .str(c)
                .unwrap_or("")
                .split('\u{1f}')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(Cow::Borrowed)
                .collect(),
            c @ Cap::Text(..) => self
                .f
                .scratch
                .str(c)
                .unwrap_or("")
                .split([',', ';'])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(Cow::Borrowed)
                .collect(),
            _ => Vec::new(),
        }
    }

    fn value(&self, v: &V) -> Option<Out<'s>> {
        Some(match v {
            V::Str(s) => Out::Str(Cow::Borrowed(s)),
            V::Int(i) => Out::Int(*i),
            V::Bool(b) => Out::Bool(*b),
            V::Field(n) => match self.cap(n) {
                Cap::Int(i) => Out::Int(i),
                Cap::Float(x) => Out::Float(x),
                Cap::Bool(b) => Out::Bool(b),
                Cap::List(..) => Out::Strs(self.items(n)),
                _ => Out::Str(self.present(n)?),
            },
            V::Lower(n) => Out::Str(Cow::Owned(self.present(n)?.trim().to_ascii_lowercase())),
            V::Num(n) => Out::Int(self.num(n)?),
            V::Split(n) => {
                let items = self.items(n);
                if items.is_empty() {
                    return None;
                }
                Out::Strs(items)
            }
            V::Ip(n) => {
                let t = self.present(n)?;
                t.trim().parse::<std::net::IpAddr>().ok()?;
                Out::Str(t)
            }
            V::Domain(n) => {
                let t = self.present(n)?;
                let (_, d) = t.trim().rsplit_once('@')?;
                let d = d.trim_end_matches('>').to_ascii_lowercase();
                if d.is_empty() {
                    return None;
                }
                Out::Str(Cow::Owned(d))
            }
            V::Map(n, table, default) => {
                Out::Str(Cow::Borrowed(self.lookup(n, table).or(*default)?))
            }
            V::MapInt(n, table, default) => Out::Int(self.lookup(n, table).unwrap_or(*default)),
            V::When(cs) => {
                let (_, s) = cs.iter().find(|(c, _)| self.holds(c))?;
                Out::Str(Cow::Borrowed(s))
            }
            V::WhenInt(cs) => {
                let (_, i) = cs.iter().find(|(c, _)| self.holds(c))?;
                Out::Int(*i)
            }
            V::WhenBool(cs) => {
                let (_, b) = cs.iter().find(|(c, _)| self.holds(c))?;
                Out::Bool(*b)
            }
            V::List(items) => Out::Strs(items.iter().map(|s| Cow::Borrowed(*s)).collect()),
            V::Ints(items) => Out::Ints(items.to_vec()),
            V::Email(n) => Out::Str(email(self.present(n)?)?),
            V::Emails(n) => {
                let all: Vec<Cow<'s, str>> = self.items(n).into_iter().filter_map(email).collect();
                if all.is_empty() {
                    return None;
                }
                Out::Strs(all)
            }
            V::Obj(members) => {
                let mut any = false;
                let mut obj = Vec::with_capacity(members.len());
                for (k, v) in *members {
                    if let Some(x) = self.value(v) {
                        any |= !is_constant(v);
                        obj.push((*k, x));
                    }
                }
                if !any {
                    return None;
                }
                Out::Obj(obj)
            }
            V::Arr(items) => {
                let all: Vec<Out<'s>> = items.iter().filter_map(|v| self.value(v)).collect();
                if all.is_empty() {
                    return None;
                }
                Out::Arr(all)
            }
            V::First(vs) => return vs.iter().find_map(|v| self.value(v)),
            V::Collect(ns, ips) => {
                let mut all: Vec<Cow<'s, str>> = Vec::new();
                for n in *ns {
                    for item in self.items(n) {
                        let item = match item.trim().rsplit_once('<') {
                            Some((_, addr)) => Cow::Owned(addr.trim_end_matches('>').to_string()),
                            None => item,
                        };
                        let ok = if *ips {
                            item.parse::<std::net::IpAddr>().is_ok()
                        } else {
                            !item.is_empty()
                        };
                        if ok && !all.contains(&item) {
                            all.push(item);
                        }
                    }
                }
                if all.is_empty() {
                    return None;
                }
                Out::Strs(all)
            }
            V::Time { ms: false } => Out::Str(Cow::Owned(super::rfc3339_ms(self.f.time))),
            V::Time { ms: true } => Out::Int(super::epoch_ms(self.f.time)),
            V::Id => Out::Str(Cow::Borrowed(self.f.id)),
            V::Dataset => Out::Pair("mimecast.", self.f.source),
            V::Source => Out::Str(Cow::Borrowed(self.f.source)),
            V::Extra(k) => {
                let (_, v) = self.f.extra.iter().find(|(ek, _)| ek == k)?;
                Out::Str(Cow::Owned(v.to_string()))
            }
        })
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
fn email(t: Cow<'_, str>) -> Option<Cow<'_, str>> {
    let inner = match t.rsplit_once('<') {
        Some((_, a)) => Cow::Owned(a.trim_end_matches('>').trim().to_string()),
        None => match t {
            Cow::Borrowed(b) => Cow::Borrowed(b.trim()),
            Cow::Owned(o) => Cow::Owned(o.trim().to_string()),
        },
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

    fn leaves<'s>(&self, f: &Facts<'s>, out: &mut Vec<(&'static [&'static str], Out<'s>)>) {
        let c = self.compiled();
        let r = Reader { c, f };
        let Some(leaves) = c.kinds.get(self.kind_of(&r)) else {
            return;
        };
        for leaf in leaves {
            if let Some(v) = r.value(&leaf.v) {
                out.push((leaf.path, v));
            }
        }
    }
}
