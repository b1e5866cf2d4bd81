//! The declarative mapping tables' machinery: a mapping is a list of leaves (an output path and
//! how its value is made from the record), common to a source and per kind of record (a SIEM
//! `type`, say). Compiled once: the fields it reads become a capture set, and each kind's leaves
//! are merged and sorted by path for the writer.

use crate::encode::{
    close_header, open_header, put_str, put_str_header, same_text, slot_bit, Cap, CaptureSet,
    Facts, Normalize,
};
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
    /// Opens a map under this key (msgpack-encoded). With the fields without which none of
    /// its leaves has a value (as `Shape::needs`), and the step after its `Close`: a record
    /// lacking them all skips the whole map.
    Open(Block, u64, usize),
    /// Entries that are the same in every record (keys and values, maps of them included),
    /// encoded once, and how many they are.
    Const(Vec<u8>, u32),
    /// A leaf under this key (msgpack-encoded).
    Leaf(Block, &'static V, Shape),
    /// Closes the innermost map.
    Close,
}

/// What is known of a value before any record comes: the fields without which it surely has
/// none (as bits of a record's mask, `slot_bit`; 0 when it may have one without any), and the
/// same of its parts (an object's members, a list's items, `First`'s choices), in order; and
/// the slots of the fields it reads itself, in the order it names them.
struct Shape {
    needs: u64,
    parts: Vec<Shape>,
    slots: Vec<Option<usize>>,
    /// An object's member keys, encoded.
    keys: Vec<Block>,
}

/// A few bytes known before any record comes (a map key, msgpack-encoded), written as one
/// fixed-size copy cut back to length: a key is shorter than what a call to `memcpy` costs,
/// and an `ecs` record writes some forty of them.
enum Block {
    Short([u8; BLOCK], usize),
    Long(Vec<u8>),
}

const BLOCK: usize = 32;

/// A map key, msgpack-encoded.
fn key_bytes(k: &str) -> Vec<u8> {
    let mut b = Vec::with_capacity(k.len() + 2);
    put_str(&mut b, k);
    b
}

impl Block {
    fn of(bytes: Vec<u8>) -> Block {
        let mut b = [0; BLOCK];
        match b.get_mut(..bytes.len()) {
            Some(to) => {
                to.copy_from_slice(&bytes);
                Block::Short(b, bytes.len())
            }
            None => Block::Long(bytes),
        }
    }

    /// A key's block.
    fn key(k: &str) -> Block {
        Block::of(key_bytes(k))
    }

    fn as_slice(&self) -> &[u8] {
        match self {
            Block::Short(b, n) => b.get(..*n).unwrap_or_default(),
            Block::Long(v) => v,
        }
    }

    #[inline(always)]
    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Block::Short(b, n) => {
                let at = out.len();
                out.extend_from_slice(b);
                out.truncate(at + n);
            }
            Block::Long(v) => out.extend_from_slice(v),
        }
    }
}

impl Shape {
    fn of(v: &'static V, set: &CaptureSet) -> Shape {
        let mut needs = 0;
        if none_when(v, &|_| true) {
            let mut names = Vec::new();
            fields_of(v, &mut names);
            when_fields(v, &mut names);
            for n in names {
                if let Some(slot) = set.slot_of(n) {
                    needs |= slot_bit(slot);
                }
            }
        }
        let parts = match v {
            V::Obj(ms) => ms.iter().map(|(_, v)| Shape::of(v, set)).collect(),
            V::Arr(vs) | V::First(vs) => vs.iter().map(|v| Shape::of(v, set)).collect(),
            _ => Vec::new(),
        };
        let slots = own_fields(v).iter().map(|n| set.slot_of(n)).collect();
        let keys = match v {
            V::Obj(ms) => ms.iter().map(|(k, _)| Block::key(k)).collect(),
            _ => Vec::new(),
        };
        Shape {
            needs,
            parts,
            slots,
            keys,
        }
    }

    /// The shape of part `i`.
    fn part(&self, i: usize) -> &Shape {
        self.parts.get(i).unwrap_or(&NO_SHAPE)
    }

    /// Whether the value surely has none in a record with these fields (`Scratch::mask`).
    fn skips(&self, mask: u64) -> bool {
        skips(self.needs, mask)
    }
}

/// Whether what needs these fields (0: none) surely has no value in a record with `mask`.
fn skips(needs: u64, mask: u64) -> bool {
    needs != 0 && needs & mask == 0
}

/// Appends constant entries, merged with the constants just before them.
fn push_const(ops: &mut Vec<Op>, bytes: Vec<u8>, n: u32) {
    match ops.last_mut() {
        Some(Op::Const(b, m)) => {
            b.extend_from_slice(&bytes);
            *m += n;
        }
        _ => ops.push(Op::Const(bytes, n)),
    }
}

/// The deepest nesting of a normalized path (checked when the tables are compiled).
const MAX_NESTING: usize = 8;

/// The steps that write `leaves` (sorted by path) as nested maps.
fn ops_of(leaves: &[&'static Leaf], set: &CaptureSet) -> Vec<Op> {
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
            ops.push(Op::Open(Block::key(d), 0, 0));
        }
        let mut bytes = key_bytes(name);
        if put_const(&leaf.v, &mut bytes) {
            push_const(&mut ops, bytes, 1);
        } else {
            // `put_const` wrote nothing: the bytes are the key's.
            ops.push(Op::Leaf(Block::of(bytes), &leaf.v, Shape::of(&leaf.v, set)));
        }
    }
    ops.extend(open.iter().map(|_| Op::Close));
    let mut ops = fold_maps(ops);
    link_maps(&mut ops);
    ops
}

/// Fills in each `Open`'s fields and end (see `Op::Open`).
fn link_maps(ops: &mut [Op]) {
    let mut opened = Vec::new();
    for j in 0..ops.len() {
        match ops.get(j) {
            Some(Op::Open(..)) => opened.push(j),
            Some(Op::Close) => {
                let Some(i) = opened.pop() else { continue };
                let mut needs = 0u64;
                for op in ops.get(i + 1..j).unwrap_or_default() {
                    let n = match op {
                        Op::Leaf(_, _, shape) => shape.needs,
                        Op::Open(_, n, _) => *n,
                        Op::Const(..) => 0,
                        Op::Close => continue,
                    };
                    if n == 0 {
                        needs = 0;
                        break;
                    }
                    needs |= n;
                }
                if let Some(Op::Open(_, n, end)) = ops.get_mut(i) {
                    *n = needs;
                    *end = j + 1;
                }
            }
            _ => {}
        }
    }
}

/// Folds the maps whose writing can be settled before any record comes, innermost first:
/// - a map whose entries are all constant becomes one constant entry, so that writing it is
///   one copy;
/// - a map that holds one leaf and nothing else becomes that leaf, its key preceded by the
///   map's key and a one-entry map header (`url` > `full` becomes one step writing
///   `"url": {"full": ...}`): one step instead of three, and a leaf without a value still
///   leaves the whole map out, key and all.
fn fold_maps(ops: Vec<Op>) -> Vec<Op> {
    let mut out: Vec<Op> = Vec::with_capacity(ops.len());
    for op in ops {
        match op {
            Op::Close => match (out.pop(), out.pop()) {
                (Some(Op::Const(body, n)), Some(Op::Open(key, ..))) => {
                    let mut bytes = key.as_slice().to_vec();
                    let _ = rmp::encode::write_map_len(&mut bytes, n);
                    bytes.extend_from_slice(&body);
                    push_const(&mut out, bytes, 1);
                }
                (Some(Op::Leaf(inner, v, shape)), Some(Op::Open(outer, ..))) => {
                    let mut key = outer.as_slice().to_vec();
                    key.push(0x81);
                    key.extend_from_slice(inner.as_slice());
                    out.push(Op::Leaf(Block::of(key), v, shape));
                }
                (last, before) => {
                    out.extend(before);
                    out.extend(last);
                    out.push(Op::Close);
                }
            },
            Op::Const(bytes, n) => push_const(&mut out, bytes, n),
            op => out.push(op),
        }
    }
    out
}

struct Compiled {
    set: CaptureSet,
    /// Per kind, the steps that write its leaves.
    kinds: Vec<Vec<Op>>,
    dispatch: Dispatch,
    /// Each field name of the tables by the address of its `'static` text, in a table with no
    /// two addresses on one place: a leaf finds its slot in a few instructions, without hashing
    /// or comparing the name's text.
    by_address: Vec<(usize, usize)>,
}

/// How a record's kind is found: the kinds' conditions in turn, the first that holds, but with
/// the value of one field looked up first when kinds are told apart by it (`Is(field, ..)`, or
/// `All` beginning with one: a SIEM record's `type`), so that kinds of other values are passed
/// over unevaluated.
struct Dispatch {
    /// The slot of the field (None: no kind is told apart by a field).
    slot: Option<usize>,
    /// Each value of the field, and the kinds (as bits) it lets through.
    values: Vec<(&'static str, u64)>,
    /// Per kind: the rest of its condition when the value lets it through (`Some`), or None
    /// when its whole condition is to be tried.
    rest: Vec<Option<&'static [Cond]>>,
}

impl Dispatch {
    fn of(kinds: &'static [Kind], set: &CaptureSet) -> Dispatch {
        // The field: that of the first kind's leading `Is`.
        let lead =
            |c: &'static Cond| -> Option<(&'static str, &'static [&'static str], &'static [Cond])> {
                match c {
                    Cond::Is(n, vs) => Some((n, vs, &[])),
                    Cond::All(cs) => match cs.split_first() {
                        Some((Cond::Is(n, vs), rest)) => Some((n, vs, rest)),
                        _ => None,
                    },
                    _ => None,
                }
            };
        let field = kinds.iter().find_map(|k| lead(&k.when)).map(|(n, _, _)| n);
        let mut d = Dispatch {
            slot: None,
            values: Vec::new(),
            rest: Vec::new(),
        };
        for (i, k) in kinds.iter().enumerate() {
            match lead(&k.when) {
                Some((n, vs, rest)) if Some(n) == field && i < 64 => {
                    for v in vs {
                        match d.values.iter_mut().find(|(x, _)| x.eq_ignore_ascii_case(v)) {
                            Some((_, bits)) => *bits |= 1 << i,
                            None => d.values.push((v, 1 << i)),
                        }
                    }
                    d.rest.push(Some(rest));
                }
                _ => d.rest.push(None),
            }
        }
        d.slot = field.and_then(|f| set.slot_of(f));
        d
    }
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
                kinds,
                dispatch: Dispatch::of(self.kinds, &set),
                set,
            }
        })
    }

    /// The kind a record is of: the index into the compiled kinds (the last: none).
    fn kind_of(&self, r: &Reader) -> usize {
        let d = &r.c.dispatch;
        let through = match d.slot {
            Some(slot) => r.text(r.f.cap(Some(slot))).map_or(0, |t| {
                let t = t.trim_ascii();
                d.values
                    .iter()
                    .find(|(v, _)| v.eq_ignore_ascii_case(t))
                    .map_or(0, |(_, bits)| *bits)
            }),
            None => 0,
        };
        let passes = |(i, (k, rest)): (usize, (&Kind, &Option<&[Cond]>))| match rest {
            Some(rest) => through & (1 << i) != 0 && rest.iter().all(|c| r.holds(c)),
            None => r.holds(&k.when),
        };
        self.kinds
            .iter()
            .zip(&d.rest)
            .enumerate()
            .position(passes)
            .unwrap_or(self.kinds.len())
    }
}

/// The fields a value reads itself (not through its parts), in the order it names them.
fn own_fields(v: &V) -> &[&'static str] {
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
        | V::Emails(n) => std::slice::from_ref(n),
        V::Collect(ns, _) => ns,
        _ => &[],
    }
}

/// The fields a value maps, its parts' included. Fields read only by conditions are not mapped
/// (their values stay in the remainder).
fn fields_of(v: &V, names: &mut Vec<&'static str>) {
    names.extend_from_slice(own_fields(v));
    match v {
        V::First(vs) | V::Arr(vs) => vs.iter().for_each(|v| fields_of(v, names)),
        V::Obj(ms) => ms.iter().for_each(|(_, v)| fields_of(v, names)),
        _ => {}
    }
}

/// Whether `v` surely has no value when the fields for which `absent` holds are absent. With
/// `&|_| true`: whether it has none without any of the fields it maps (`fields_of`), so that a
/// record lacking them all can skip it unseen; constants, conditions and defaults have values
/// of their own, and so do conditions that can hold without the fields they read.
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
        // A choice by conditions has none when none of them can hold (`tls.established` of a
        // record without `tlsUsed`): their fields are then what it needs.
        V::When(cs) => cs.iter().all(|(c, _)| fails_when(c, absent)),
        V::WhenInt(cs) => cs.iter().all(|(c, _)| fails_when(c, absent)),
        V::WhenBool(cs) => cs.iter().all(|(c, _)| fails_when(c, absent)),
        _ => false,
    }
}

/// Whether a condition surely fails when the fields for which `absent` holds are absent (as
/// `Reader::holds` reads an absent field: no text, no number).
fn fails_when(c: &Cond, absent: &dyn Fn(&str) -> bool) -> bool {
    match c {
        Cond::Present(n) | Cond::Is(n, _) | Cond::IsNot(n, _) | Cond::AtLeast(n, _) => absent(n),
        Cond::Any(cs) => cs.iter().all(|c| fails_when(c, absent)),
        Cond::All(cs) => cs.iter().any(|c| fails_when(c, absent)),
        Cond::Always => false,
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
    /// The fields the record has (`Scratch::mask`).
    mask: u64,
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

    /// The value of field `i` (named `n`) of a value of this shape, its slot found when the
    /// tables compiled.
    fn field(&self, shape: &Shape, i: usize, n: &str) -> Cap {
        match shape.slots.get(i) {
            Some(slot) => self.f.cap(*slot),
            None => self.cap(n),
        }
    }

    /// The text of a string field, or of a number or boolean.
    fn text(&self, c: Cap) -> Option<Cow<'s, str>> {
        match c {
            c @ Cap::Text(..) => self.f.scratch.str(c).map(Cow::Borrowed),
            Cap::Int(i) => Some(Cow::Owned(i.to_string())),
            Cap::Float(x) => Some(Cow::Owned(x.to_string())),
            Cap::Bool(b) => Some(Cow::Borrowed(if b { "true" } else { "false" })),
            _ => None,
        }
    }

    /// A meaningful text: not empty, not a placeholder.
    fn present(&self, c: Cap) -> Option<Cow<'s, str>> {
        if let Cap::List(..) = c {
            return self
                .f
                .scratch
                .str(c)
                .filter(|t| !t.is_empty())
                .map(Cow::Borrowed);
        }
        self.text(c).filter(|t| meaningful(t))
    }

    /// A field as it came (`V::Field`): a string, the common case, written without a call.
    #[inline(always)]
    fn put_field(&self, n: &str, shape: &Shape, out: &mut Vec<u8>) -> bool {
        let c = self.field(shape, 0, n);
        match c {
            Cap::Text(..) => match self.f.scratch.str(c) {
                Some(t) if meaningful(t) => {
                    put_str(out, t);
                    true
                }
                _ => false,
            },
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
                let n = self.items(c).map(|s| put_text(out, s)).count();
                close_header(out, at, n as u32, false);
                true
            }
            _ => false,
        }
    }

    fn num(&self, c: Cap) -> Option<i64> {
        match c {
            Cap::Int(i) => Some(i),
            Cap::Float(x) if x.is_finite() => Some(x as i64),
            c @ Cap::Text(..) => self.f.scratch.str(c)?.trim_ascii().parse().ok(),
            _ => None,
        }
    }

    /// A field's text looked up (case-insensitive) in a table.
    fn lookup<T: Copy>(&self, c: Cap, table: &[(&str, T)]) -> Option<T> {
        let t = self.present(c)?;
        table
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(t.trim_ascii()))
            .map(|(_, v)| *v)
    }

    fn holds(&self, c: &Cond) -> bool {
        let is = |n: &str, vs: &[&str]| {
            let one_of = |t: &str| {
                let t = t.trim_ascii();
                vs.iter().any(|v| v.eq_ignore_ascii_case(t))
            };
            match self.cap(n) {
                // A string (nearly always), compared where it lies.
                c @ Cap::Text(..) => self.f.scratch.str(c).is_some_and(one_of),
                c => self.text(c).is_some_and(|t| one_of(&t)),
            }
        };
        match c {
            Cond::Present(n) => self.present(self.cap(n)).is_some(),
            Cond::Is(n, vs) => is(n, vs),
            Cond::IsNot(n, vs) => self.present(self.cap(n)).is_some() && !is(n, vs),
            Cond::AtLeast(n, min) => self.num(self.cap(n)).is_some_and(|x| x >= *min),
            Cond::Any(cs) => cs.iter().any(|c| self.holds(c)),
            Cond::All(cs) => cs.iter().all(|c| self.holds(c)),
            Cond::Always => true,
        }
    }

    /// The items of a list field, or of a string separated by commas or semicolons.
    fn items(&self, c: Cap) -> Items<'s> {
        let (rest, list) = match c {
            Cap::List(..) => (self.f.scratch.str(c), true),
            Cap::Text(..) => (self.f.scratch.str(c), false),
            _ => (None, false),
        };
        Items { rest, list }
    }

    /// Writes the value `v` makes of the record. Returns false, with nothing written, when it
    /// makes none.
    fn put(&self, v: &V, shape: &Shape, out: &mut Vec<u8>) -> bool {
        match v {
            V::Str(_) | V::Int(_) | V::Bool(_) | V::List(_) | V::Ints(_) => put_const(v, out),
            V::Field(n) => self.put_field(n, shape, out),
            V::Lower(n) => self
                .present(self.field(shape, 0, n))
                .is_some_and(|t| put_lower(out, t.trim_ascii())),
            V::Num(n) => self.num(self.field(shape, 0, n)).is_some_and(|i| {
                let _ = rmp::encode::write_sint(out, i);
                true
            }),
            V::Split(n) => put_strs(out, self.items(self.field(shape, 0, n))),
            V::Ip(n) => self
                .present(self.field(shape, 0, n))
                .filter(|t| is_ip(t.trim_ascii()))
                .is_some_and(|t| put_text(out, t.trim_ascii())),
            V::Domain(n) => self.present(self.field(shape, 0, n)).is_some_and(|t| {
                match t.trim_ascii().rsplit_once('@') {
                    Some((_, d)) if !d.trim_end_matches('>').is_empty() => {
                        put_lower(out, d.trim_end_matches('>'))
                    }
                    _ => false,
                }
            }),
            V::Map(n, table, default) => self
                .lookup(self.field(shape, 0, n), table)
                .or(*default)
                .is_some_and(|s| put_text(out, s)),
            V::MapInt(n, table, default) => {
                let found = self.lookup(self.field(shape, 0, n), table);
                let _ = rmp::encode::write_sint(out, found.unwrap_or(*default));
                true
            }
            V::When(cs) => cs
                .iter()
                .find(|(c, _)| self.holds(c))
                .is_some_and(|(_, s)| put_text(out, s)),
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
            V::Email(n) => self
                .present(self.field(shape, 0, n))
                .is_some_and(|t| email(&t).is_some_and(|e| put_text(out, e))),
            V::Emails(n) => put_strs(out, self.items(self.field(shape, 0, n)).filter_map(email)),
            V::Obj(members) => self.put_obj(members, shape, out),
            V::Arr(items) => self.put_arr(items, shape, out),
            V::First(vs) => vs.iter().enumerate().any(|(i, v)| {
                !shape.part(i).skips(self.mask) && self.put_any(v, shape.part(i), out)
            }),
            V::Collect(ns, ips) => self.put_collect(ns, *ips, shape, out),
            V::Time { ms: false } => self.put_time(out),
            V::Time { ms: true } => {
                let _ = rmp::encode::write_sint(out, super::epoch_ms(self.f.time));
                true
            }
            V::Id => put_text(out, self.f.id),
            V::Dataset => {
                let (a, b) = ("mimecast.", self.f.source);
                // A source's name is short: the text is never cut.
                put_str_header(out, a.len() + b.len());
                out.extend_from_slice(a.as_bytes());
                out.extend_from_slice(b.as_bytes());
                true
            }
            V::Source => put_text(out, self.f.source),
            V::Extra(k) => self
                .f
                .extra
                .iter()
                .find(|(ek, _)| ek == k)
                .is_some_and(|(_, v)| put_text(out, v)),
        }
    }

    /// `put`, with a field as it came (the most common value) written without a call.
    #[inline(always)]
    fn put_any(&self, v: &V, shape: &Shape, out: &mut Vec<u8>) -> bool {
        match v {
            V::Field(n) => self.put_field(n, shape, out),
            _ => self.put(v, shape, out),
        }
    }

    // The larger values, apart: `put` stays small for the many plain leaves.

    #[inline(never)]
    fn put_obj(&self, members: &[(&str, V)], shape: &Shape, out: &mut Vec<u8>) -> bool {
        let at = open_header(out);
        let (mut n, mut any) = (0, false);
        for (i, (k, v)) in members.iter().enumerate() {
            let part = shape.part(i);
            if part.skips(self.mask) {
                continue;
            }
            let key_at = out.len();
            match shape.keys.get(i) {
                Some(key) => key.write(out),
                None => put_str(out, k),
            }
            if self.put_any(v, part, out) {
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

    #[inline(never)]
    fn put_arr(&self, items: &[V], shape: &Shape, out: &mut Vec<u8>) -> bool {
        let at = open_header(out);
        let n = items
            .iter()
            .enumerate()
            .filter(|(i, v)| {
                !shape.part(*i).skips(self.mask) && self.put_any(v, shape.part(*i), out)
            })
            .count() as u32;
        if n == 0 {
            out.truncate(at);
            return false;
        }
        close_header(out, at, n, false);
        true
    }

    #[inline(never)]
    fn put_collect(&self, ns: &[&str], ips: bool, shape: &Shape, out: &mut Vec<u8>) -> bool {
        let at = open_header(out);
        let mut seen = Seen::default();
        for (i, n) in ns.iter().enumerate() {
            for item in self.items(self.field(shape, i, n)) {
                // `Name <a@b.c>`: the address (looked for only when it may be there).
                let item = match item.strip_suffix('>').and_then(|i| i.rsplit_once('<')) {
                    Some((_, addr)) => addr,
                    None => item,
                };
                let ok = if ips { is_ip(item) } else { !item.is_empty() };
                if ok && seen.insert(item) {
                    put_text(out, item);
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

    #[inline(never)]
    fn put_time(&self, out: &mut Vec<u8>) -> bool {
        let t = super::rfc3339_text(self.f.time);
        let text = t.as_bytes();
        // A fixed-length ASCII text: its header is known.
        out.push(0xa0 | text.len() as u8);
        out.extend_from_slice(text);
        true
    }
}

/// Whether a text is an IP address, as `std::net::IpAddr` parses one. A dotted quad in its
/// canonical form (the common case: a record has up to three) is checked here byte by byte,
/// for a fraction of the general parser's cost; anything else goes to the parser.
fn is_ip(t: &str) -> bool {
    let b = t.as_bytes();
    if (7..=15).contains(&b.len()) && b.first().is_some_and(u8::is_ascii_digit) {
        // Four parts of one to three digits, none above 255, no leading zero (as the parser).
        let (mut parts, mut value, mut digits, mut ok) = (1u32, 0u32, 0u32, true);
        for &c in b {
            if c == b'.' {
                ok &= digits > 0;
                parts += 1;
                (value, digits) = (0, 0);
            } else if c.is_ascii_digit() {
                ok &= !(digits > 0 && value == 0);
                value = (value * 10 + u32::from(c - b'0')).min(256);
                digits += 1;
                ok &= value <= 255;
            } else {
                return t.parse::<std::net::IpAddr>().is_ok();
            }
        }
        if ok && digits > 0 && parts == 4 {
            return true;
        }
    }
    t.parse::<std::net::IpAddr>().is_ok()
}

/// Whether a text means something: not empty, not a placeholder ("null", "n/a", "[]", ...).
fn meaningful(t: &str) -> bool {
    let t = t.trim_ascii();
    !t.is_empty()
        && (t.len() > 4
            || !["null", "none", "n/a", "[]", "{}"]
                .iter()
                .any(|p| t.eq_ignore_ascii_case(p)))
}

/// Writes a string; always true (for `is_some_and` chains).
fn put_text(out: &mut Vec<u8>, s: &str) -> bool {
    put_str(out, s);
    true
}

/// Writes a value made without the record; false (nothing written) for any other.
fn put_const(v: &V, out: &mut Vec<u8>) -> bool {
    match v {
        V::Str(s) => put_text(out, s),
        V::Int(i) => {
            let _ = rmp::encode::write_sint(out, *i);
            true
        }
        V::Bool(b) => {
            let _ = rmp::encode::write_bool(out, *b);
            true
        }
        V::List(items) => {
            let _ = rmp::encode::write_array_len(out, items.len() as u32);
            items.iter().for_each(|s| put_str(out, s));
            true
        }
        V::Ints(items) => {
            let _ = rmp::encode::write_array_len(out, items.len() as u32);
            for i in *items {
                let _ = rmp::encode::write_sint(out, *i);
            }
            true
        }
        _ => false,
    }
}

/// A value's shape where its parent's has none (never: both are compiled from one table).
static NO_SHAPE: Shape = Shape {
    needs: 0,
    parts: Vec::new(),
    slots: Vec::new(),
    keys: Vec::new(),
};

/// Writes a string lower-cased (ASCII, as the tables compare).
fn put_lower(out: &mut Vec<u8>, s: &str) -> bool {
    put_text(out, s);
    let from = out.len() - s.len();
    if let Some(b) = out.get_mut(from..) {
        b.make_ascii_lowercase();
    }
    true
}

/// Writes a list of strings; false (nothing written) when there are none.
fn put_strs<'t>(out: &mut Vec<u8>, items: impl Iterator<Item = &'t str>) -> bool {
    let at = open_header(out);
    let n = items.map(|s| put_text(out, s)).count() as u32;
    if n == 0 {
        out.truncate(at);
        return false;
    }
    close_header(out, at, n, false);
    true
}

/// The items of a list (separated by 0x1f in `Scratch::text`) or of a text (by commas or
/// semicolons), trimmed, the empty ones left out. The separators are ASCII, so the text is cut
/// byte by byte, at char boundaries.
struct Items<'s> {
    rest: Option<&'s str>,
    list: bool,
}

impl<'s> Iterator for Items<'s> {
    type Item = &'s str;

    fn next(&mut self) -> Option<&'s str> {
        loop {
            let rest = self.rest?;
            let cut = find_separator(rest.as_bytes(), self.list);
            let item = match cut {
                Some(i) => {
                    self.rest = rest.get(i + 1..);
                    rest.get(..i).unwrap_or_default()
                }
                None => {
                    self.rest = None;
                    rest
                }
            };
            let item = item.trim_ascii();
            if !item.is_empty() {
                return Some(item);
            }
        }
    }
}

/// Where the first separator is: 0x1f in a list, a comma or semicolon in a text. Eight bytes
/// at a time: every record's address lists are scanned.
fn find_separator(b: &[u8], list: bool) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // The high bit of each byte of `x` equal to `c`: exact for the lowest such byte (a borrow
    // can only mark bytes above a match), which is the one taken.
    let has = |x: u64, c: u8| {
        let y = x ^ (ONES * u64::from(c));
        y.wrapping_sub(ONES) & !y & HIGH
    };
    let is = |c: u8| {
        if list {
            c == 0x1f
        } else {
            c == b',' || c == b';'
        }
    };
    let mut chunks = b.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let x = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
        let m = if list {
            has(x, 0x1f)
        } else {
            has(x, b',') | has(x, b';')
        };
        if m != 0 {
            return Some(at + (m.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|c| is(*c))
        .map(|i| at + i)
}

/// The distinct items of a list so far: a few inline, more on the heap.
#[derive(Default)]
struct Seen<'t> {
    first: [&'t str; 8],
    more: Vec<&'t str>,
    len: u32,
}

impl<'t> Seen<'t> {
    /// Whether `item` is new (and now seen).
    fn insert(&mut self, item: &'t str) -> bool {
        let inline = (self.len as usize).min(self.first.len());
        if self.first.iter().take(inline).any(|s| same_text(s, item)) || self.more.contains(&item) {
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
        Some((_, a)) => a.trim_end_matches('>').trim_ascii(),
        None => t.trim_ascii(),
    };
    let (local, domain) = inner.split_once('@')?;
    // Byte by byte where the text is ASCII (nearly always): a domain is, and so is most of
    // what a whitespace test meets.
    let ascii_space = |c: &u8| matches!(c, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r');
    let spaced = if local.is_ascii() {
        local.bytes().any(|c| ascii_space(&c))
    } else {
        local.contains(char::is_whitespace)
    };
    let mut dots = 0;
    let domain_ok = domain.bytes().all(|c| {
        dots += usize::from(c == b'.');
        c.is_ascii_alphanumeric() || c == b'-' || c == b'.'
    });
    let ok = !local.is_empty()
        && !spaced
        && domain_ok
        && dots > 0
        && !domain.starts_with('.')
        && !domain.ends_with('.');
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
        let r = Reader {
            c,
            f,
            mask: f.scratch.mask(),
        };
        let Some(ops) = c.kinds.get(self.kind_of(&r)) else {
            return 0;
        };
        // The maps open: where each one's key starts, its header, its entries so far.
        let mut open = [(0usize, 0usize, 0u32); MAX_NESTING];
        let mut depth = 0;
        let mut top = 0;
        let mut next = 0;
        while let Some(op) = ops.get(next) {
            next += 1;
            match op {
                Op::Open(key, needs, end) => {
                    if skips(*needs, r.mask) {
                        next = *end;
                        continue;
                    }
                    let key_at = out.len();
                    key.write(out);
                    let at = open_header(out);
                    if let Some(m) = open.get_mut(depth) {
                        *m = (key_at, at, 0);
                    }
                    depth += 1;
                }
                Op::Const(bytes, n) => {
                    out.extend_from_slice(bytes);
                    count_in(&mut open, depth, &mut top, *n);
                }
                Op::Leaf(key, v, shape) => {
                    // Most leaves map fields that records of this kind lack: seen at once.
                    if shape.skips(r.mask) {
                        continue;
                    }
                    let key_at = out.len();
                    key.write(out);
                    let made = r.put_any(v, shape, out);
                    if made {
                        count_in(&mut open, depth, &mut top, 1);
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
                        count_in(&mut open, depth, &mut top, 1);
                    }
                }
            }
        }
        top
    }
}

/// Counts `n` more entries in the innermost open map (or at the top).
fn count_in(open: &mut [(usize, usize, u32)], depth: usize, top: &mut u32, n: u32) {
    match depth.checked_sub(1).and_then(|d| open.get_mut(d)) {
        Some(m) => m.2 += n,
        None => *top += n,
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

    #[test]
    fn ip_check_agrees_with_the_standard_parser() {
        let mut cases: Vec<String> = [
            "1.2.3.4",
            "0.0.0.0",
            "255.255.255.255",
            "256.1.1.1",
            "01.2.3.4",
            "1.02.3.4",
            "1.2.3.04",
            "1.2.3",
            "1.2.3.4.5",
            "1..3.4",
            ".1.2.3",
            "1.2.3.",
            "1234.1.1.1",
            "10.0.0.10",
            "100.200.250.199",
            "999.999.999.999",
            "0.0.0.00",
            "1.2.3.4 ",
            "::1",
            "2001:db8::1",
            "::ffff:1.2.3.4",
            "",
            "....",
            "1.2.3.-4",
            "１.2.3.4",
            "999999999999999",
            "4294967296.1.1",
            "1.1.1.4294967297",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // Every dotted string of up to four parts of 0 to 3 digits drawn from a few values.
        let parts = [
            "", "0", "00", "1", "9", "10", "25", "99", "100", "199", "249", "255", "256", "300",
            "999",
        ];
        for a in parts {
            for b in ["0", "01", "255", "256"] {
                cases.push(format!("{a}.{b}.1.{a}"));
                cases.push(format!("{a}.{b}.{a}"));
            }
        }
        for c in &cases {
            assert_eq!(is_ip(c), c.parse::<std::net::IpAddr>().is_ok(), "{c:?}");
        }
    }

    fn encode(json: &str) -> rmpv::Value {
        encode_with(&TEST, json)
    }

    /// One synthetic record through `mapping`: the body.
    fn encode_with(mapping: &'static Mapping, json: &str) -> rmpv::Value {
        let mut out = Vec::new();
        let layout = Layout {
            source: "t",
            norm: Some(mapping),
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
    fn fields_past_the_masks_last_bit_still_map() {
        // Seventy synthetic field names, `f00` to `f69`: more than a record's mask has bits.
        let many: Vec<&'static str> = (0..70)
            .map(|i| &*Box::leak(format!("f{i:02}").into_boxed_str()))
            .collect();
        // Each field in a leaf of its own under `out.<name>`: the last ones share the mask's
        // last bit, and must be neither skipped when present nor written when absent.
        let leaves: &'static [Leaf] = Box::leak(
            many.iter()
                .map(|n| {
                    let path: &'static [&'static str] = Box::leak(Box::new(["out", *n]));
                    l(path, V::Field(n))
                })
                .collect::<Vec<_>>()
                .into_boxed_slice(),
        );
        let mapping: &'static Mapping = Box::leak(Box::new(Mapping::new(
            "orig",
            false,
            Box::leak(Box::new([leaves])),
            &[],
        )));
        assert!(mapping.compiled().set.len() > 64);
        for present in [&["f69"][..], &["f63", "f64"], &["f02", "f68"], &[]] {
            let json = format!(
                "{{{}}}",
                present
                    .iter()
                    .map(|n| format!(r#""{n}": "v-{n}""#))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let body = encode_with(mapping, &json);
            for &n in &many {
                let got = get(&body, &["out", n]).and_then(|v| v.as_str().map(str::to_string));
                let want = present.contains(&n).then(|| format!("v-{n}"));
                assert_eq!(got, want, "{n} with {present:?}");
            }
        }
    }

    #[test]
    fn separators_are_found_where_a_byte_search_finds_them() {
        // Synthetic texts: separators at every position of the 8-byte chunks and in the tail,
        // beside multi-byte characters and bytes one off the separators ('+', '-', ':', '<').
        let mut texts: Vec<String> = Vec::new();
        for len in 0..24 {
            for at in 0..=len {
                for sep in [',', ';', '\u{1f}', '+', '-', ':', '<', '\u{1e}'] {
                    let mut t: String = "aé€b".chars().cycle().take(len).collect();
                    if at < t.chars().count() {
                        let i = t.char_indices().nth(at).map_or(t.len(), |(i, _)| i);
                        t.insert(i, sep);
                    }
                    texts.push(t);
                }
            }
        }
        for t in &texts {
            for list in [false, true] {
                let want = t.bytes().position(|c| {
                    if list {
                        c == 0x1f
                    } else {
                        c == b',' || c == b';'
                    }
                });
                assert_eq!(
                    find_separator(t.as_bytes(), list),
                    want,
                    "{t:?} list={list}"
                );
            }
        }
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
